import type pg from 'pg';
import { inTenantTransaction, tenantPlanHas } from '../../db/postgres.ts';
import {
  TIER_COLUMNS,
  type TierRow,
  tiersOf,
} from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type {
  EntityLimit,
  FleetModelSummary,
  MaintenanceEvent,
  MaintenanceKind,
  StepUnit,
} from '../domain/model.ts';
import type {
  ActiveModel,
  DeviceRul,
  LifeBoundary,
  Machine,
  MaintenanceStore,
  NewFleetModel,
  StoredPrediction,
} from '../domain/ports.ts';

const EVENT_COLUMNS = `id, device_id, kind, to_json(time) #>> '{}' AS time, note, recorded_by,
  to_json(created_at) #>> '{}' AS created_at`;
const MODEL_COLUMNS = `id, device_type, version, step_unit, histories, metrics, status, status_reason,
  to_json(trained_at) #>> '{}' AS trained_at`;

interface MachineRow extends TierRow {
  id: number;
  device_id: string;
  type: string;
  entities: Array<{ entity_id: string; entity_type: string }>;
}

const MACHINE_SELECT = `SELECT d.id, d.device_id, d.type, s.policy, s.prior_policy, s.prior_before,
    COALESCE((SELECT json_agg(json_build_object('entity_id', e.entity_id, 'entity_type', e.entity_type)
                              ORDER BY e.entity_id)
              FROM entities e WHERE e.device_id = d.id), '[]'::json) AS entities
  FROM devices d CROSS JOIN (SELECT ${TIER_COLUMNS} FROM tenant_storage) s`;

function machineOf(row: MachineRow): Machine {
  return {
    id: row.id,
    deviceId: row.device_id,
    type: row.type,
    entities: row.entities.map((e) => ({ entityId: e.entity_id, entityType: e.entity_type })),
    tier: tiersOf(row),
  };
}

/** Predictive maintenance's tables, every query in the tenant's row-level-security context. */
export class PostgresMaintenanceStore implements MaintenanceStore {
  constructor(private readonly pool: pg.Pool) {}

  #inTenant<T>(tenantId: number, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTenantTransaction(this.pool, tenantId, work);
  }

  planAllows(tenantId: number): Promise<boolean> {
    return tenantPlanHas(this.pool, tenantId, 'predictive_maintenance');
  }

  machine(tenantId: number, devicePk: number): Promise<Machine | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<MachineRow>(`${MACHINE_SELECT} WHERE d.id = $1`, [
        devicePk,
      ]);
      return rows[0] ? machineOf(rows[0]) : null;
    });
  }

  fleet(tenantId: number, deviceType: string): Promise<Machine[]> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<MachineRow>(
        `${MACHINE_SELECT} WHERE d.type = $1 ORDER BY d.id`,
        [deviceType],
      );
      return rows.map(machineOf);
    });
  }

  addEvent(
    tenantId: number,
    devicePk: number,
    event: {
      kind: MaintenanceKind;
      time: Date;
      note?: string | undefined;
      recordedBy: number | null;
    },
  ): Promise<MaintenanceEvent> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<MaintenanceEvent>(
        `INSERT INTO maintenance_events (tenant_id, device_id, kind, time, note, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${EVENT_COLUMNS}`,
        [tenantId, devicePk, event.kind, event.time, event.note ?? null, event.recordedBy],
      );
      return rows[0] as MaintenanceEvent;
    });
  }

  events(tenantId: number, devicePk: number): Promise<MaintenanceEvent[]> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<MaintenanceEvent>(
        `SELECT ${EVENT_COLUMNS} FROM maintenance_events WHERE device_id = $1
         ORDER BY time DESC, id DESC LIMIT 1000`,
        [devicePk],
      );
      return rows;
    });
  }

  lifeBoundaries(tenantId: number, devicePks: number[]): Promise<Map<number, LifeBoundary[]>> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<{
        device_id: number;
        kind: MaintenanceKind;
        time_ms: string;
      }>(
        `SELECT device_id, kind, (extract(epoch FROM time) * 1000)::bigint AS time_ms
         FROM maintenance_events
         WHERE device_id = ANY($1::integer[]) AND kind IN ('failure', 'repair', 'replacement')
         ORDER BY device_id, time, id`,
        [devicePks],
      );
      const byDevice = new Map<number, LifeBoundary[]>();
      for (const row of rows) {
        const list = byDevice.get(row.device_id) ?? [];
        list.push({ kind: row.kind, timeMs: Number(row.time_ms) });
        byDevice.set(row.device_id, list);
      }
      return byDevice;
    });
  }

  limits(tenantId: number, devicePk: number): Promise<Map<string, EntityLimit>> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<{ entity_id: string } & EntityLimit>(
        'SELECT entity_id, above, below FROM entity_limits WHERE device_id = $1',
        [devicePk],
      );
      return new Map(rows.map((row) => [row.entity_id, { above: row.above, below: row.below }]));
    });
  }

  setLimit(
    tenantId: number,
    devicePk: number,
    entityId: string,
    limit: EntityLimit | null,
  ): Promise<void> {
    return this.#inTenant(tenantId, async (client) => {
      if (limit === null) {
        await client.query('DELETE FROM entity_limits WHERE device_id = $1 AND entity_id = $2', [
          devicePk,
          entityId,
        ]);
        return;
      }
      await client.query(
        `INSERT INTO entity_limits (tenant_id, device_id, entity_id, above, below)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (device_id, entity_id)
         DO UPDATE SET above = EXCLUDED.above, below = EXCLUDED.below, updated_at = now()`,
        [tenantId, devicePk, entityId, limit.above, limit.below],
      );
    });
  }

  activeModel(tenantId: number, deviceType: string): Promise<ActiveModel | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<{ id: number; version: string; storage_key: string }>(
        `SELECT id, version, storage_key FROM rul_models WHERE device_type = $1 AND status = 'active'`,
        [deviceType],
      );
      const row = rows[0];
      return row ? { id: row.id, version: row.version, storageKey: row.storage_key } : null;
    });
  }

  recordModel(tenantId: number, model: NewFleetModel): Promise<FleetModelSummary> {
    return this.#inTenant(tenantId, async (client) => {
      // A rejected model leaves the active one in place.
      if (model.activate) {
        await client.query(
          `UPDATE rul_models SET status = 'superseded' WHERE device_type = $1 AND status = 'active'`,
          [model.deviceType],
        );
      }
      const { rows } = await client.query<FleetModelSummary>(
        `INSERT INTO rul_models (tenant_id, device_type, version, storage_key, step_unit, histories,
                                 metrics, status, status_reason, trained_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${MODEL_COLUMNS}`,
        [
          tenantId,
          model.deviceType,
          model.version,
          model.storageKey,
          model.stepUnit,
          model.histories,
          JSON.stringify(model.metrics),
          model.activate ? 'active' : 'rejected',
          model.statusReason,
          model.trainedAt,
        ],
      );
      return rows[0] as FleetModelSummary;
    });
  }

  models(tenantId: number): Promise<FleetModelSummary[]> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<FleetModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM rul_models ORDER BY created_at DESC, id DESC LIMIT 500`,
      );
      return rows;
    });
  }

  requestTraining(
    tenantId: number,
    deviceType: string,
    stepUnit: StepUnit,
    requestedBy: number,
  ): Promise<{ requested_at: string }> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<{ requested_at: string }>(
        `INSERT INTO rul_training_requests (tenant_id, device_type, step_unit, requested_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, device_type)
         DO UPDATE SET step_unit = EXCLUDED.step_unit, requested_by = EXCLUDED.requested_by
         RETURNING to_json(requested_at) #>> '{}' AS requested_at`,
        [tenantId, deviceType, stepUnit, requestedBy],
      );
      return rows[0] as { requested_at: string };
    });
  }

  trainingAttempted(tenantId: number, deviceType: string, outcome: string): Promise<void> {
    return this.#inTenant(tenantId, async (client) => {
      await client.query(
        'DELETE FROM rul_training_requests WHERE tenant_id = $1 AND device_type = $2',
        [tenantId, deviceType],
      );
      await client.query(
        `INSERT INTO rul_training_attempts (tenant_id, device_type, attempted_at, outcome)
         VALUES ($1, $2, now(), $3)
         ON CONFLICT (tenant_id, device_type)
         DO UPDATE SET attempted_at = EXCLUDED.attempted_at, outcome = EXCLUDED.outcome`,
        [tenantId, deviceType, outcome.slice(0, 1000)],
      );
    });
  }

  savePrediction(tenantId: number, p: StoredPrediction): Promise<void> {
    return this.#inTenant(tenantId, async (client) => {
      await client.query(
        `INSERT INTO rul_predictions (device_id, tenant_id, model_id, value, low, high, unit,
                                      model_version, window_end, computed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0), to_timestamp($10 / 1000.0))
         ON CONFLICT (device_id) DO UPDATE SET
           model_id = EXCLUDED.model_id, value = EXCLUDED.value, low = EXCLUDED.low,
           high = EXCLUDED.high, unit = EXCLUDED.unit, model_version = EXCLUDED.model_version,
           window_end = EXCLUDED.window_end, computed_at = EXCLUDED.computed_at`,
        [
          p.devicePk,
          tenantId,
          p.modelId,
          p.value,
          p.low,
          p.high,
          p.unit,
          p.modelVersion,
          p.windowEndMs,
          p.computedAtMs,
        ],
      );
    });
  }

  devicesRul(tenantId: number): Promise<DeviceRul[]> {
    return this.#inTenant(tenantId, async (client) => {
      // Only predictions of the fleet's current model: a superseded model's are out of date.
      const { rows } = await client.query<DeviceRul>(
        `SELECT d.id, d.device_id,
                CASE WHEN r.device_id IS NULL THEN NULL ELSE json_build_object(
                  'value', round(r.value::numeric, 1), 'low', round(r.low::numeric, 1),
                  'high', round(r.high::numeric, 1), 'unit', r.unit,
                  'model_version', r.model_version,
                  'computed_at', to_json(r.computed_at) #>> '{}') END AS rul
         FROM devices d
         LEFT JOIN rul_models m ON m.device_type = d.type AND m.status = 'active'
         LEFT JOIN rul_predictions r ON r.device_id = d.id AND r.model_id = m.id
         ORDER BY d.id`,
      );
      return rows.map((row) =>
        row.rul
          ? {
              ...row,
              rul: {
                ...row.rul,
                value: Number(row.rul.value),
                low: Number(row.rul.low),
                high: Number(row.rul.high),
              },
            }
          : row,
      );
    });
  }

  async trainingCandidates(minFailures: number, maxRows: number) {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      device_type: string;
      step_unit: StepUnit;
    }>('SELECT * FROM rul_training_candidates($1, $2)', [minFailures, maxRows]);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      deviceType: row.device_type,
      stepUnit: row.step_unit,
    }));
  }

  async predictionCandidates(maxRows: number) {
    const { rows } = await this.pool.query<{ tenant_id: number; device_id: number }>(
      'SELECT * FROM rul_prediction_candidates($1)',
      [maxRows],
    );
    return rows.map((row) => ({ tenantId: row.tenant_id, devicePk: row.device_id }));
  }
}
