import { TimeSlices } from '../../time-slices.ts';
import type {
  Prediction,
  PredictionQuery,
  PredictionRow,
  PredictionStore,
} from '../domain/prediction-store.ts';
import { toLine } from '../line-protocol.ts';
import { MEASUREMENTS } from '../reading.ts';
import type { InfluxClient, LineEncoder } from './influx-client.ts';
import { rowsOf } from './influx-client.ts';
import { tenantSelect } from './influxql.ts';

/** Anomaly scores in InfluxDB's `ml_predictions`, next to the readings they score. */
export class InfluxPredictionStore implements PredictionStore {
  constructor(
    private readonly client: InfluxClient,
    private readonly database: string,
  ) {}

  async write(predictions: Prediction[]): Promise<void> {
    // A scoring pass writes tens of thousands of scores: made into lines a slice at a time.
    const slices = new TimeSlices();
    const byPolicy = new Map<string, LineEncoder>();
    for (const p of predictions) {
      if (slices.due()) await slices.turn();
      const line = toLine({
        measurement: MEASUREMENTS.predictions,
        tags: {
          tenant_id: String(p.tenantId),
          device_id: p.deviceId,
          entity_id: p.entityId,
          detector: p.detector,
        },
        fields: {
          score: p.score,
          anomalous: p.anomalous,
          value: p.value,
          model: p.model,
          model_version: p.modelVersion,
          ...(p.reason ? { reason: p.reason } : {}),
        },
        timeMs: p.timeMs,
      });
      let encoder = byPolicy.get(p.retentionPolicy);
      if (!encoder) {
        encoder = this.client.encoder();
        byPolicy.set(p.retentionPolicy, encoder);
      }
      encoder.line(line);
    }
    for (const [retentionPolicy, encoder] of byPolicy) {
      await this.client.write(encoder.finish(), { retentionPolicy });
    }
  }

  async query(options: PredictionQuery): Promise<PredictionRow[]> {
    const fromMs = options.from.getTime();
    const toMs = options.to.getTime();
    const prior = options.priorTier;
    const parts =
      prior === undefined
        ? [{ policy: options.retentionPolicy, from: fromMs, to: toMs }]
        : [
            { policy: prior.policy, from: fromMs, to: Math.min(toMs, prior.before) },
            { policy: options.retentionPolicy, from: Math.max(fromMs, prior.before), to: toMs },
          ].filter((part) => part.from < part.to);
    const rows: PredictionRow[] = [];
    for (const part of parts) rows.push(...(await this.#query(options, part)));
    return rows.sort((a, b) => a.time.localeCompare(b.time)).slice(0, options.limit);
  }

  async #query(
    options: {
      tenantId: number;
      deviceId: string;
      entityIds?: string[] | undefined;
      onlyAnomalies: boolean;
      limit: number;
    },
    part: { policy: string; from: number; to: number },
  ): Promise<PredictionRow[]> {
    const results = await this.client.query(
      tenantSelect({
        tenantId: options.tenantId,
        from: {
          database: this.database,
          retentionPolicy: part.policy,
          measurement: MEASUREMENTS.predictions,
        },
        select: ['score', 'anomalous', 'value', 'reason', 'model', 'model_version'].map(
          (field) => ({
            expr: { field },
          }),
        ),
        tags: {
          device_id: options.deviceId,
          ...(options.entityIds ? { entity_id: options.entityIds } : {}),
        },
        time: { from: part.from, to: part.to },
        groupBy: { tags: ['entity_id', 'detector'] },
        limit: options.limit,
      }),
    );
    const rows: PredictionRow[] = [];
    for (const series of results[0]?.series ?? []) {
      for (const row of rowsOf(series)) {
        if (options.onlyAnomalies && row.anomalous !== true) continue;
        rows.push({
          entity_id: series.tags.entity_id as string,
          detector: series.tags.detector as string,
          time: new Date(Number(row.time)).toISOString(),
          score: Number(row.score),
          anomalous: row.anomalous === true,
          value: Number(row.value),
          reason: typeof row.reason === 'string' ? row.reason : null,
          model: String(row.model),
          model_version: String(row.model_version),
        });
      }
    }
    return rows;
  }
}
