import type pg from 'pg';
import type { PresenceStore, SilencedDevice, SilencePolicy } from '../domain/presence.ts';

/** `mark_silent_devices_offline` (a migration): one statement across tenants. */
export class PostgresPresenceStore implements PresenceStore {
  constructor(private readonly pool: pg.Pool) {}

  async markSilentOffline(atMs: number, policy: SilencePolicy): Promise<SilencedDevice[]> {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      device_pk: number;
      last_seen: Date | null;
    }>('SELECT * FROM mark_silent_devices_offline($1, $2, $3, $4)', [
      new Date(atMs).toISOString(),
      policy.factor,
      policy.defaultReportIntervalS,
      policy.lastSeenWriteS,
    ]);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      devicePk: row.device_pk,
      lastSeenMs: row.last_seen ? row.last_seen.getTime() : null,
    }));
  }
}
