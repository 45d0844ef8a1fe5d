import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import {
  TIER_COLUMNS,
  type TierRow,
  tiersOf,
} from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type { AnomalyLevel } from '../domain/model.ts';
import type { ScoringLedger, ScoringTenant } from '../domain/ports.ts';
import { POSITION_LAG_MS } from '../domain/scoring-pass.ts';

/**
 * `anomaly_scoring_positions`: how far each device's stored readings have been read by the
 * scoring passes (migration 1796664290162). A device without a row (registered since) is
 * read from a little before its registration.
 */
export class PostgresScoringLedger implements ScoringLedger {
  constructor(private readonly pool: pg.Pool) {}

  async tenants(): Promise<number[]> {
    const { rows } = await this.pool.query<{ tenant_id: number }>(
      'SELECT tenant_id FROM anomaly_scoring_tenants()',
    );
    return rows.map((row) => row.tenant_id);
  }

  tenant(tenantId: number): Promise<ScoringTenant | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows: plans } = await client.query<TierRow & { level: AnomalyLevel }>(
        `SELECT ${TIER_COLUMNS}, p.anomaly_detection AS level
         FROM tenant_storage, tenant_plan tp JOIN plans p ON p.name = tp.plan
         WHERE tp.tenant_id = $1`,
        [tenantId],
      );
      const plan = plans[0];
      if (!plan || plan.level === 'none') return undefined;
      // Where each device's read starts: its position, or later, just after the oldest of its
      // numeric entities' last scored readings when every one has been scored (what is not
      // newer than an entity's last scored reading is not scored again): a pass then reads
      // back only new readings, not the overlap its position keeps for batches in flight.
      const { rows } = await client.query<{
        id: number;
        device_id: string;
        read_from_ms: string;
        generation: string;
      }>(
        `SELECT d.id, d.device_id,
                GREATEST(COALESCE(s.read_from_ms,
                                  floor(extract(epoch FROM d.created_at) * 1000)::bigint - $1),
                         (SELECT min(COALESCE(CASE WHEN st.detector = $2 THEN st.last_time_ms END, -1)) + 1
                          FROM entities e
                          LEFT JOIN ml_detector_states st
                            ON st.device_id = e.device_id AND st.entity_id = e.entity_id
                          WHERE e.device_id = d.id AND e.entity_type IN ('sensor', 'number'))
                ) AS read_from_ms,
                COALESCE(s.generation, -1) AS generation
         FROM devices d LEFT JOIN anomaly_scoring_positions s ON s.device_id = d.id
         WHERE d.tenant_id = $3
         ORDER BY 3, d.id`,
        [POSITION_LAG_MS, plan.level, tenantId],
      );
      return {
        tenantId,
        level: plan.level,
        ...tiersOf(plan),
        devices: rows.map((row) => ({
          devicePk: row.id,
          deviceId: row.device_id,
          readFromMs: Number(row.read_from_ms),
          generation: Number(row.generation),
        })),
      };
    });
  }

  async advance(
    tenantId: number,
    moves: ReadonlyArray<{ devicePk: number; readFromMs: number; generation: number }>,
  ): Promise<void> {
    if (moves.length === 0) return;
    const known = moves.filter((move) => move.generation >= 0);
    const fresh = moves.filter((move) => move.generation < 0);
    await inTenantTransaction(this.pool, tenantId, async (client) => {
      if (known.length > 0) {
        await client.query(
          `UPDATE anomaly_scoring_positions s SET read_from_ms = GREATEST(s.read_from_ms, w.read_from_ms)
           FROM unnest($1::int[], $2::bigint[], $3::bigint[]) AS w(device_id, read_from_ms, generation)
           WHERE s.device_id = w.device_id AND s.generation = w.generation`,
          [
            known.map((move) => move.devicePk),
            known.map((move) => move.readFromMs),
            known.map((move) => move.generation),
          ],
        );
      }
      if (fresh.length > 0) {
        // A row ingestion made meanwhile (readings stored late) is left as it is.
        await client.query(
          `INSERT INTO anomaly_scoring_positions (device_id, tenant_id, read_from_ms)
           SELECT w.device_id, $1, w.read_from_ms
           FROM unnest($2::int[], $3::bigint[]) AS w(device_id, read_from_ms)
           JOIN devices d ON d.id = w.device_id
           ON CONFLICT (device_id) DO NOTHING`,
          [tenantId, fresh.map((move) => move.devicePk), fresh.map((move) => move.readFromMs)],
        );
      }
    });
  }

  /** Ingestion's side: devices whose readings were stored behind their read position. */
  async markLate(
    devices: ReadonlyArray<{ tenantId: number; devicePk: number; fromMs: number }>,
  ): Promise<void> {
    if (devices.length === 0) return;
    await this.pool.query('SELECT anomaly_scoring_mark_late($1::jsonb)', [
      JSON.stringify(
        devices.map((device) => ({
          tenant_id: device.tenantId,
          device_id: device.devicePk,
          from_ms: device.fromMs,
        })),
      ),
    ]);
  }
}
