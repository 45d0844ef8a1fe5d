import type pg from 'pg';
import { inTenantTransaction, tenantPlanHas } from '../../db/postgres.ts';
import { DEFAULT_CO_WINDOW, type ModelSettings } from '../../ml/domain/families.ts';
import { type TierRow, tiersOf } from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type {
  AnomalyLevel,
  ModelSummary,
  NewModel,
  TrainingCandidate,
  TypeSettings,
} from '../domain/model.ts';
import type {
  AnomalyTarget,
  AnomalyTargets,
  DetectorStateStore,
  DetectorStateUpdate,
  ModelRegistry,
  SavedDetectorState,
  TypeSettingsStore,
} from '../domain/ports.ts';

interface TargetRow extends TierRow {
  device_id: string;
  level: AnomalyLevel;
  custom_models: boolean;
  entity_type: string | null;
}

/** Devices with their plan's detection level and storage tiers, under the tenant's RLS. */
export class PostgresAnomalyTargets implements AnomalyTargets {
  constructor(private readonly pool: pg.Pool) {}

  find(tenantId: number, devicePk: number, entityId?: string): Promise<AnomalyTarget | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TargetRow>(
        `SELECT d.device_id, s.policy, s.prior_policy, s.prior_before, p.anomaly_detection AS level, p.custom_models,
                (SELECT e.entity_type FROM entities e WHERE e.device_id = d.id AND e.entity_id = $2) AS entity_type
         FROM devices d, tenant_storage s, tenant_plan tp JOIN plans p ON p.name = tp.plan
         WHERE d.id = $1`,
        [devicePk, entityId ?? null],
      );
      const row = rows[0];
      if (!row) return undefined;
      return {
        deviceId: row.device_id,
        level: row.level,
        entityType: row.entity_type ?? undefined,
        customModels: row.custom_models,
        ...tiersOf(row),
      };
    });
  }

  customModels(tenantId: number): Promise<boolean> {
    return tenantPlanHas(this.pool, tenantId, 'custom_models');
  }
}

const MODEL_COLUMNS = `id, device_id, entity_id, kind, version, threshold, training_points, metrics, status,
  status_reason, origin, settings, to_json(trained_at) #>> '{}' AS trained_at`;

/** `ml_models`: the record of every trained model, under the tenant's RLS. */
export class PostgresModelRegistry implements ModelRegistry {
  constructor(private readonly pool: pg.Pool) {}

  list(tenantId: number): Promise<ModelSummary[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<ModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM ml_models ORDER BY created_at DESC LIMIT 500`,
      );
      return rows;
    });
  }

  active(tenantId: number, devicePk: number, entityIds: string[]) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        entity_id: string;
        version: string;
        storage_key: string;
      }>(
        `SELECT entity_id, version, storage_key FROM ml_models
         WHERE device_id = $1 AND entity_id = ANY($2) AND status = 'active'`,
        [devicePk, entityIds],
      );
      return rows.map((row) => ({
        entityId: row.entity_id,
        version: row.version,
        storageKey: row.storage_key,
      }));
    });
  }

  record(tenantId: number, model: NewModel): Promise<ModelSummary> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      if (model.status === 'active') {
        await client.query(
          `UPDATE ml_models SET status = 'superseded' WHERE device_id = $1 AND entity_id = $2 AND status = 'active'`,
          [model.devicePk, model.entityId],
        );
      }
      const { rows } = await client.query<ModelSummary>(
        `INSERT INTO ml_models (tenant_id, device_id, entity_id, kind, version, storage_key, threshold,
                                training_points, metrics, trained_at, status, status_reason, origin, settings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING ${MODEL_COLUMNS}`,
        [
          tenantId,
          model.devicePk,
          model.entityId,
          model.kind,
          model.version,
          model.storageKey,
          model.threshold,
          model.trainingPoints,
          JSON.stringify(model.metrics),
          model.trainedAt,
          model.status,
          model.statusReason,
          model.origin,
          JSON.stringify(model.settings),
        ],
      );
      return rows[0] as ModelSummary;
    });
  }

  find(tenantId: number, modelId: number): Promise<ModelSummary | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<ModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM ml_models WHERE id = $1`,
        [modelId],
      );
      return rows[0];
    });
  }

  /** Rejected models are never activated; the caller refuses them, the WHERE makes sure. */
  activate(tenantId: number, modelId: number): Promise<ModelSummary | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows: found } = await client.query<{ device_id: number; entity_id: string }>(
        `SELECT device_id, entity_id FROM ml_models WHERE id = $1 AND status <> 'rejected' FOR UPDATE`,
        [modelId],
      );
      const model = found[0];
      if (!model) return undefined;
      await client.query(
        `UPDATE ml_models SET status = 'superseded'
         WHERE device_id = $1 AND entity_id = $2 AND status = 'active' AND id <> $3`,
        [model.device_id, model.entity_id, modelId],
      );
      const { rows } = await client.query<ModelSummary>(
        `UPDATE ml_models SET status = 'active' WHERE id = $1 RETURNING ${MODEL_COLUMNS}`,
        [modelId],
      );
      return rows[0];
    });
  }

  /** Across tenants through the migration's SECURITY DEFINER function. */
  async trainingCandidates(maxAgeDays: number, maxModels: number): Promise<TrainingCandidate[]> {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      device_id: number;
      physical_id: string;
      entity_id: string;
      settings: unknown;
    }>('SELECT * FROM ml_training_candidates($1, $2)', [maxAgeDays, maxModels]);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      devicePk: row.device_id,
      deviceId: row.physical_id,
      entityId: row.entity_id,
      settings: row.settings,
    }));
  }
}

interface StateRow {
  entity_id: string;
  detector: 'basic' | 'advanced';
  state: unknown;
  last_time_ms: string | number;
}

/** `ml_detector_states`: each entity's detector after the last reading it scored. */
export class PostgresDetectorStates implements DetectorStateStore {
  constructor(private readonly pool: pg.Pool) {}

  load(tenantId: number, devicePk: number, entityIds: string[]): Promise<SavedDetectorState[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<StateRow>(
        `SELECT entity_id, detector, state, last_time_ms FROM ml_detector_states
         WHERE device_id = $1 AND entity_id = ANY($2)`,
        [devicePk, entityIds],
      );
      return rows.map((row) => ({
        entityId: row.entity_id,
        detector: row.detector,
        state: row.state,
        lastTimeMs: Number(row.last_time_ms),
      }));
    });
  }

  /**
   * Compare-and-set, in a short transaction with nothing but PostgreSQL in it: entities that
   * had a state are locked and must still hold the one the update was computed from;
   * entities that had none must still have none (a concurrent first save wins, this one
   * rolls back). Then all are written, or none.
   */
  async saveIfUnchanged(
    tenantId: number,
    devicePk: number,
    detector: 'basic' | 'advanced',
    updates: DetectorStateUpdate[],
  ): Promise<boolean> {
    const fresh = updates.filter((update) => update.basedOn === null);
    const known = updates.filter((update) => update.basedOn !== null);
    try {
      return await inTenantTransaction(this.pool, tenantId, async (client) => {
        if (known.length > 0) {
          const { rows } = await client.query<{ entity_id: string; last_time_ms: string }>(
            `SELECT entity_id, last_time_ms FROM ml_detector_states
             WHERE device_id = $1 AND entity_id = ANY($2) FOR UPDATE`,
            [devicePk, known.map((update) => update.entityId)],
          );
          const current = new Map(rows.map((row) => [row.entity_id, Number(row.last_time_ms)]));
          if (known.some((update) => current.get(update.entityId) !== update.basedOn)) {
            throw new StateMoved();
          }
        }
        if (fresh.length > 0) {
          const inserted = await client.query(
            `${UPSERT_STATES} ON CONFLICT (device_id, entity_id) DO NOTHING`,
            [devicePk, tenantId, detector, statesJson(fresh)],
          );
          if (inserted.rowCount !== fresh.length) throw new StateMoved();
        }
        if (known.length > 0) {
          await client.query(
            `${UPSERT_STATES} ON CONFLICT (device_id, entity_id) DO UPDATE
               SET detector = EXCLUDED.detector, state = EXCLUDED.state,
                   last_time_ms = EXCLUDED.last_time_ms, updated_at = now()`,
            [devicePk, tenantId, detector, statesJson(known)],
          );
        }
        return true;
      });
    } catch (error) {
      if (error instanceof StateMoved) return false;
      throw error;
    }
  }
}

/** Rolls the compare-and-set's transaction back: another invocation saved first. */
class StateMoved extends Error {}

const UPSERT_STATES = `INSERT INTO ml_detector_states (device_id, tenant_id, entity_id, detector, state, last_time_ms)
  SELECT $1, $2, u.entity_id, $3, u.state, u.last_time_ms
  FROM jsonb_to_recordset($4::jsonb) AS u(entity_id text, state jsonb, last_time_ms bigint)`;

const statesJson = (updates: DetectorStateUpdate[]) =>
  JSON.stringify(
    updates.map((update) => ({
      entity_id: update.entityId,
      state: update.state,
      last_time_ms: update.lastTimeMs,
    })),
  );

const TYPE_SETTINGS_COLUMNS = `device_type, entity_id, settings->>'family' AS family,
  (settings->>'windowSize')::int AS window_size, settings->>'size' AS size,
  COALESCE(settings->'coEntities', '[]'::jsonb) AS co_entities,
  COALESCE((settings->>'coWindow')::int, ${DEFAULT_CO_WINDOW}) AS co_window,
  to_json(updated_at) #>> '{}' AS updated_at`;

/** `ml_model_settings`: families and settings chosen per device type, under the tenant's RLS. */
export class PostgresTypeSettings implements TypeSettingsStore {
  constructor(private readonly pool: pg.Pool) {}

  put(tenantId: number, deviceType: string, entityId: string, settings: ModelSettings) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TypeSettings>(
        `INSERT INTO ml_model_settings (tenant_id, device_type, entity_id, settings)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, device_type, entity_id)
           DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()
         RETURNING ${TYPE_SETTINGS_COLUMNS}`,
        [tenantId, deviceType, entityId, JSON.stringify(settings)],
      );
      return rows[0] as TypeSettings;
    });
  }

  list(tenantId: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TypeSettings>(
        `SELECT ${TYPE_SETTINGS_COLUMNS} FROM ml_model_settings WHERE tenant_id = $1
         ORDER BY device_type, entity_id`,
        [tenantId],
      );
      return rows;
    });
  }

  forDevice(tenantId: number, devicePk: number, entityId: string) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ settings: ModelSettings }>(
        `SELECT ms.settings FROM ml_model_settings ms JOIN devices d ON d.type = ms.device_type
         WHERE ms.tenant_id = $1 AND d.id = $2 AND ms.entity_id = $3`,
        [tenantId, devicePk, entityId],
      );
      return rows[0]?.settings;
    });
  }
}
