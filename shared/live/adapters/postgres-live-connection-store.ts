import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { ConnectionState, LiveConnectionStore } from '../domain/subscriptions.ts';

/** Connection state in `ws_connections`, changed under a row lock in the tenant's transaction. */
export class PostgresLiveConnectionStore implements LiveConnectionStore {
  constructor(private readonly pool: pg.Pool) {}

  async update<T>(
    connectionId: string,
    change: (state: ConnectionState) => { state: ConnectionState; reply: T },
  ): Promise<T | null> {
    const { rows: owners } = await this.pool.query<{ tenant: number | null }>(
      'SELECT ws_connection_tenant($1) AS tenant',
      [connectionId],
    );
    const tenantId = owners[0]?.tenant ?? null;
    if (tenantId === null) return null;
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        device_ids: number[];
        message_tokens: number | null;
        message_tokens_at: Date | null;
      }>(
        `SELECT device_ids, message_tokens, message_tokens_at FROM ws_connections
         WHERE connection_id = $1 FOR UPDATE`,
        [connectionId],
      );
      const row = rows[0];
      if (!row) return null;
      const { state, reply } = change({
        deviceIds: row.device_ids,
        budget:
          row.message_tokens === null || row.message_tokens_at === null
            ? null
            : { tokens: row.message_tokens, at: row.message_tokens_at.getTime() },
      });
      await client.query(
        `UPDATE ws_connections SET device_ids = $2, message_tokens = $3, message_tokens_at = $4
         WHERE connection_id = $1`,
        [
          connectionId,
          state.deviceIds,
          state.budget?.tokens ?? null,
          state.budget ? new Date(state.budget.at) : null,
        ],
      );
      return reply;
    });
  }
}
