import type pg from 'pg';
import type { Caller } from '../../accounts/tokens.ts';
import { inTenantTransaction } from '../../db/postgres.ts';
import { InvalidInput, NotFound, NotPermitted, Unprocessable } from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import type { TrainedModel } from '../../ml/model.ts';
import { trainAndJudge } from '../../ml/quality-gate.ts';
import type { HistoryPoint } from '../../ml/training.ts';
import type { PredictionStore } from '../../timeseries/adapters/influx-prediction-store.ts';
import { type TierRow, tiersOf } from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type { ReadingStore } from '../../timeseries/domain/reading-store.ts';
import type { ModelStore } from '../adapters/model-stores.ts';

export type AnomalyLevel = 'none' | 'basic' | 'advanced';

export interface ModelSummary {
  id: number;
  device_id: number;
  entity_id: string;
  kind: string;
  version: string;
  threshold: number;
  training_points: number;
  metrics: Record<string, unknown>;
  status: 'active' | 'superseded' | 'rejected';
  /** Why the quality gate rejected the model; null otherwise. */
  status_reason: string | null;
  trained_at: string;
}

const MODEL_COLUMNS = `id, device_id, entity_id, kind, version, threshold, training_points, metrics, status,
  status_reason, to_json(trained_at) #>> '{}' AS trained_at`;

/** Trains a model from history; throws `TrainingDataError` when the data cannot teach one. */
export type Train = (history: HistoryPoint[]) => Promise<TrainedModel>;

const planRequired = (needed: string) =>
  new NotPermitted('plan_required', `This needs the ${needed} plan or higher; upgrade to use it`);

interface DeviceRow extends TierRow {
  device_id: string;
  level: AnomalyLevel;
  entity_type: string | null;
}

/**
 * Anomaly results for the API, and model training for the Industrial plan's advanced
 * detector, gated by the tenant's plan: detection needs Professional (basic) or
 * Industrial (advanced); trained models need Industrial.
 */
export class AnomalyService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly readings: ReadingStore,
    private readonly predictions: PredictionStore,
    private readonly models: ModelStore,
    private readonly train: Train,
    private readonly logger: Logger,
  ) {}

  async #device(tenantId: number, deviceRowId: number, entityId?: string): Promise<DeviceRow> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<DeviceRow>(
        `SELECT d.device_id, s.policy, s.prior_policy, s.prior_before, p.anomaly_detection AS level,
                (SELECT e.entity_type FROM entities e WHERE e.device_id = d.id AND e.entity_id = $2) AS entity_type
         FROM devices d, tenant_storage s, tenant_plan tp JOIN plans p ON p.name = tp.plan
         WHERE d.id = $1`,
        [deviceRowId, entityId ?? null],
      );
      const row = rows[0];
      if (!row) throw new NotFound('device_not_found', 'No such device');
      return row;
    });
  }

  /** Scores (or only the anomalous ones) for a device over a time range. */
  async results(
    caller: Caller,
    deviceRowId: number,
    query: { from: Date; to: Date; entityIds?: string[] },
    onlyAnomalies: boolean,
  ) {
    const device = await this.#device(caller.tenantId, deviceRowId);
    if (device.level === 'none') throw planRequired('Professional');
    const rows = await this.predictions.query({
      tenantId: caller.tenantId,
      deviceId: device.device_id,
      ...tiersOf(device),
      from: query.from,
      to: query.to,
      entityIds: query.entityIds,
      onlyAnomalies,
      limit: 100_000,
    });
    return {
      device_id: device.device_id,
      detector: device.level,
      scores: rows,
    };
  }

  async listModels(caller: Caller): Promise<ModelSummary[]> {
    return inTenantTransaction(this.pool, caller.tenantId, async (client) => {
      const { rows } = await client.query<ModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM ml_models ORDER BY created_at DESC LIMIT 500`,
      );
      return rows;
    });
  }

  /**
   * Trains the entity's model now (Industrial only). It becomes the active one if it passes
   * the quality gate; otherwise it is recorded as rejected and the entity keeps its model.
   */
  async trainOnRequest(
    caller: Caller,
    deviceRowId: number,
    entityId: string,
  ): Promise<ModelSummary> {
    const device = await this.#device(caller.tenantId, deviceRowId, entityId);
    if (device.level !== 'advanced') throw planRequired('Industrial');
    if (!device.entity_type)
      throw new NotFound('entity_not_found', 'The device has no such entity');
    if (device.entity_type !== 'sensor' && device.entity_type !== 'number') {
      throw new InvalidInput('not_trainable', 'Models are trained for numeric sensors only');
    }
    return this.#train(caller.tenantId, deviceRowId, device, entityId);
  }

  /** The scheduled run: trains every Industrial entity whose model is missing or stale. */
  async trainDue(maxAgeDays: number, maxModels: number) {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      device_id: number;
      physical_id: string;
      entity_id: string;
    }>('SELECT * FROM ml_training_candidates($1, $2)', [maxAgeDays, maxModels]);
    const outcome = { trained: 0, rejected: 0, skipped: 0, failed: 0 };
    for (const candidate of rows) {
      try {
        const device = await this.#device(
          candidate.tenant_id,
          candidate.device_id,
          candidate.entity_id,
        );
        const model = await this.#train(
          candidate.tenant_id,
          candidate.device_id,
          device,
          candidate.entity_id,
        );
        if (model.status === 'rejected') outcome.rejected += 1;
        else outcome.trained += 1;
      } catch (error) {
        if (error instanceof Unprocessable && error.code === 'training_failed') {
          outcome.skipped += 1;
        } else {
          outcome.failed += 1;
          this.logger.error('training failed', { ...candidate, error });
        }
      }
    }
    return outcome;
  }

  async #history(tenantId: number, device: DeviceRow, entityId: string): Promise<HistoryPoint[]> {
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    const query = {
      tenantId,
      deviceId: device.device_id,
      entities: [{ entityId, entityType: device.entity_type as 'sensor' | 'number' }],
      from,
      to,
      ...tiersOf(device),
    };
    // One-minute means: raw for one-minute sensors, and a chattier entity's month still
    // fits in one query (a longer span would otherwise be served from the 5m rollup).
    const result = await this.readings.series({ ...query, every: '1m', fn: 'mean' });
    return (result.series[0]?.points ?? [])
      .filter((point) => typeof point.value === 'number')
      .map((point) => ({ timeMs: Date.parse(point.time), value: point.value as number }));
  }

  async #train(
    tenantId: number,
    deviceRowId: number,
    device: DeviceRow,
    entityId: string,
  ): Promise<ModelSummary> {
    const history = await this.#history(tenantId, device, entityId);
    let trained: Awaited<ReturnType<typeof trainAndJudge>>;
    try {
      trained = await trainAndJudge(history, this.train);
    } catch (error) {
      if ((error as Error).name === 'TrainingDataError') {
        throw new Unprocessable(
          'training_failed',
          `No model could be trained: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    const { model, verdict } = trained;
    const status = verdict.accepted ? 'active' : 'rejected';
    const metrics = { ...model.metrics, heldBack: verdict.metrics };
    const storageKey = `tenant-${tenantId}/device-${deviceRowId}/${entityId}/${model.version}`;
    await this.models.save(storageKey, model);
    const summary = await inTenantTransaction(this.pool, tenantId, async (client) => {
      // A rejected model leaves the active one (or the basic signals) in place.
      if (verdict.accepted) {
        await client.query(
          `UPDATE ml_models SET status = 'superseded' WHERE device_id = $1 AND entity_id = $2 AND status = 'active'`,
          [deviceRowId, entityId],
        );
      }
      const { rows } = await client.query<ModelSummary>(
        `INSERT INTO ml_models (tenant_id, device_id, entity_id, kind, version, storage_key, threshold,
                                training_points, metrics, trained_at, status, status_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING ${MODEL_COLUMNS}`,
        [
          tenantId,
          deviceRowId,
          entityId,
          model.kind,
          model.version,
          storageKey,
          model.threshold,
          model.metrics.trainingPoints,
          JSON.stringify(metrics),
          model.trainedAt,
          status,
          verdict.reason,
        ],
      );
      return rows[0] as ModelSummary;
    });
    this.logger.info(verdict.accepted ? 'model trained' : 'model rejected by the quality gate', {
      tenantId,
      deviceId: device.device_id,
      entityId,
      version: model.version,
      reason: verdict.reason,
      points: model.metrics.trainingPoints,
      durationMs: model.metrics.durationMs,
    });
    return summary;
  }
}
