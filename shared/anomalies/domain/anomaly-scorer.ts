import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { Logger } from '../../logger.ts';
import {
  type AnomalyDetector,
  createDetector,
  DetectorStateError,
  restoreDetector,
} from '../../ml/detector.ts';
import type { TrainedModel } from '../../ml/model.ts';
import type {
  Prediction,
  PredictionStore,
} from '../../timeseries/adapters/influx-prediction-store.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type { ModelStore } from '../adapters/model-stores.ts';

export interface DetectedAnomaly {
  entityId: string;
  timeMs: number;
  score: number;
  value: number;
  reason: string | null;
}

/** What scoring needs to know of the device whose readings it scores. */
export interface ScoredDevice {
  /** Registry row id. */
  id: number;
  deviceId: string;
  tenantId: number;
  retentionPolicy: string;
  anomalyDetection: 'none' | 'basic' | 'advanced';
}

interface StateRow {
  entity_id: string;
  detector: 'basic' | 'advanced';
  state: unknown;
  last_time_ms: number;
}

/**
 * Runs the plan's detector on every new numeric reading inside the ingestion path: each
 * entity's detector state is restored from PostgreSQL, fed the readings in time order,
 * written back, and every score goes to `ml_predictions`. Readings not newer than the last
 * one scored (redeliveries, a late flush) are stored but not scored again, so a retry never
 * double-counts. Uses no TensorFlow.js: trained models are evaluated in TypeScript.
 */
export class AnomalyScorer {
  /** Models are immutable per version: loaded once per function instance. */
  readonly #models = new Map<string, TrainedModel | null>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly predictions: PredictionStore,
    private readonly models: ModelStore,
    private readonly logger: Logger,
  ) {}

  async score(device: ScoredDevice, readings: Reading[]): Promise<DetectedAnomaly[]> {
    const level = device.anomalyDetection;
    if (level === 'none') return [];
    const byEntity = new Map<string, Reading[]>();
    for (const reading of readings) {
      if (reading.entityType !== 'sensor' && reading.entityType !== 'number') continue;
      const list = byEntity.get(reading.entityId) ?? [];
      list.push(reading);
      byEntity.set(reading.entityId, list);
    }
    if (byEntity.size === 0) return [];
    const entityIds = [...byEntity.keys()];

    return inTenantTransaction(this.pool, device.tenantId, async (client) => {
      // Row locks serialise concurrent invocations scoring the same entity.
      const states = await client.query<StateRow>(
        `SELECT entity_id, detector, state, last_time_ms FROM ml_detector_states
         WHERE device_id = $1 AND entity_id = ANY($2) FOR UPDATE`,
        [device.id, entityIds],
      );
      const stateOf = new Map(states.rows.map((row) => [row.entity_id, row]));
      const activeModels =
        level === 'advanced' ? await this.#activeModels(client, device.id, entityIds) : new Map();

      const predictions: Prediction[] = [];
      const anomalies: DetectedAnomaly[] = [];
      const updates: Array<{ entity_id: string; state: unknown; last_time_ms: number }> = [];
      for (const [entityId, entityReadings] of byEntity) {
        const saved = stateOf.get(entityId);
        const model = activeModels.get(entityId) ?? null;
        const detector = this.#detector(level, saved, model, device, entityId);
        let lastTimeMs = saved && saved.detector === level ? Number(saved.last_time_ms) : -Infinity;
        for (const reading of entityReadings.sort((a, b) => a.timeMs - b.timeMs)) {
          if (reading.timeMs <= lastTimeMs) continue;
          lastTimeMs = reading.timeMs;
          const value = reading.value as number;
          const result = detector.score(reading.timeMs, value);
          predictions.push({
            tenantId: device.tenantId,
            deviceId: device.deviceId,
            entityId,
            timeMs: reading.timeMs,
            retentionPolicy: device.retentionPolicy,
            detector: level,
            model: detector.name,
            modelVersion: model ? model.version : detector.version,
            score: result.score,
            anomalous: result.anomalous,
            value,
            reason: result.reason,
          });
          if (result.anomalous) {
            anomalies.push({
              entityId,
              timeMs: reading.timeMs,
              score: result.score,
              value,
              reason: result.reason,
            });
          }
        }
        if (Number.isFinite(lastTimeMs)) {
          updates.push({
            entity_id: entityId,
            state: detector.snapshot(),
            last_time_ms: lastTimeMs,
          });
        }
      }
      if (predictions.length === 0) return [];
      // Scores first: if InfluxDB refuses them the states roll back and the retry rescores.
      await this.predictions.write(predictions);
      await client.query(
        `INSERT INTO ml_detector_states (device_id, tenant_id, entity_id, detector, state, last_time_ms)
         SELECT $1, $2, u.entity_id, $3, u.state, u.last_time_ms
         FROM jsonb_to_recordset($4::jsonb) AS u(entity_id text, state jsonb, last_time_ms bigint)
         ON CONFLICT (device_id, entity_id) DO UPDATE
           SET detector = EXCLUDED.detector, state = EXCLUDED.state,
               last_time_ms = EXCLUDED.last_time_ms, updated_at = now()`,
        [device.id, device.tenantId, level, JSON.stringify(updates)],
      );
      return anomalies;
    });
  }

  #detector(
    level: 'basic' | 'advanced',
    saved: StateRow | undefined,
    model: TrainedModel | null,
    device: ScoredDevice,
    entityId: string,
  ): AnomalyDetector {
    if (saved && saved.detector === level) {
      try {
        return restoreDetector(saved.state, { model });
      } catch (error) {
        if (!(error instanceof DetectorStateError)) throw error;
        // A state from another detector version: start over rather than stop scoring.
        this.logger.warn('detector state discarded', {
          deviceId: device.deviceId,
          entityId,
          error,
        });
      }
    }
    return level === 'basic'
      ? createDetector({ kind: 'basic' })
      : createDetector({ kind: 'advanced', model });
  }

  async #activeModels(client: pg.PoolClient, deviceRowId: number, entityIds: string[]) {
    const { rows } = await client.query<{
      entity_id: string;
      version: string;
      storage_key: string;
    }>(
      `SELECT entity_id, version, storage_key FROM ml_models
       WHERE device_id = $1 AND entity_id = ANY($2) AND status = 'active'`,
      [deviceRowId, entityIds],
    );
    const models = new Map<string, TrainedModel>();
    for (const row of rows) {
      if (!this.#models.has(row.version))
        this.#models.set(row.version, await this.models.load(row.storage_key));
      const model = this.#models.get(row.version);
      if (model) models.set(row.entity_id, model);
    }
    return models;
  }
}
