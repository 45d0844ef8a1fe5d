import type pg from 'pg';
import type { BacklogHour, RollupBacklog, RollupTarget } from '../domain/rollups.ts';

/** `rollup_tenants` and `rollup_backlog` (migrations/…_storage_tiers.sql). */
export class PostgresRollupBacklog implements RollupBacklog {
  constructor(private readonly pool: pg.Pool) {}

  async active(since: number): Promise<RollupTarget[]> {
    const { rows } = await this.pool.query<{ tenant_id: number; policy: string }>(
      'SELECT * FROM rollup_tenants($1)',
      [new Date(since)],
    );
    return rows.map((row) => ({ tenantId: row.tenant_id, policy: row.policy }));
  }

  async take(max: number): Promise<BacklogHour[]> {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      policy: string;
      hour_ms: number;
      marked_at: string;
      // As text: a Date would drop the microseconds the comparison in `done` needs.
    }>(
      'SELECT tenant_id, policy, hour_ms, marked_at::text AS marked_at FROM rollup_backlog_take($1)',
      [max],
    );
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      policy: row.policy,
      hourMs: Number(row.hour_ms),
      markedAt: row.marked_at,
    }));
  }

  async done(hours: BacklogHour[]): Promise<void> {
    if (hours.length === 0) return;
    await this.pool.query('SELECT rollup_backlog_done($1::jsonb)', [
      JSON.stringify(
        hours.map((hour) => ({
          tenant_id: hour.tenantId,
          policy: hour.policy,
          hour_ms: hour.hourMs,
          seen: hour.markedAt,
        })),
      ),
    ]);
  }
}
