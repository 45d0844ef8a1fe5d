import {
  type ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';

/**
 * WebSocket connections of signed-in dashboards, kept in PostgreSQL under the tenant's RLS
 * because API Gateway holds no per-connection state, and pushes through API Gateway's
 * management API (locally serverless-offline's `/@connections`).
 */
/** A live event: what changed, on which device. */
export interface LiveEvent {
  type: string;
  device_id: number;
}

/** A dashboard connection and the devices it watches. */
interface WatchingConnection {
  connection_id: string;
  device_ids: number[];
}

export class LiveConnections {
  constructor(
    private readonly pool: pg.Pool,
    private readonly management: ApiGatewayManagementApiClient,
  ) {}

  async connect(connectionId: string, tenantId: number, userId: number): Promise<void> {
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(
        `INSERT INTO ws_connections (connection_id, tenant_id, user_id) VALUES ($1, $2, $3)
         ON CONFLICT (connection_id) DO NOTHING`,
        [connectionId, tenantId, userId],
      ),
    );
  }

  async disconnect(connectionId: string): Promise<void> {
    const tenantId = await this.#tenantOf(connectionId);
    if (tenantId === null) return;
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(`DELETE FROM ws_connections WHERE connection_id = $1`, [connectionId]),
    );
  }

  async send(connectionId: string, message: unknown): Promise<void> {
    await this.management.send(
      new PostToConnectionCommand({
        ConnectionId: connectionId,
        Data: new TextEncoder().encode(JSON.stringify(message)),
      }),
    );
  }

  /**
   * Which connections watch something in each of the tenants, looked up at once (ingestion
   * asks beside its write); `publish` then pushes to them.
   */
  audience(tenantIds: readonly number[]): {
    publish(tenantId: number, pending: () => LiveEvent[]): Promise<void>;
  } {
    const watching = this.#watching(tenantIds);
    // Awaited by each push; until then (or if nothing is pushed) its failure is no one's.
    watching.catch(() => {});
    return {
      publish: async (tenantId, pending) =>
        this.#push(tenantId, (await watching).get(tenantId) ?? [], pending),
    };
  }

  async publish(tenantId: number, pending: () => LiveEvent[]): Promise<void> {
    await this.#push(tenantId, (await this.#watching([tenantId])).get(tenantId) ?? [], pending);
  }

  /**
   * One statement for every tenant, not a transaction setting each tenant: this runs for
   * every batch (on AWS, every message), nearly always to find nobody connected.
   */
  async #watching(tenantIds: readonly number[]): Promise<Map<number, WatchingConnection[]>> {
    const byTenant = new Map<number, WatchingConnection[]>();
    if (tenantIds.length === 0) return byTenant;
    const { rows } = await this.pool.query<WatchingConnection & { tenant_id: number }>(
      `SELECT t.tenant_id, c.connection_id, c.device_ids
       FROM unnest($1::integer[]) AS t(tenant_id), tenant_ws_connections(t.tenant_id) AS c`,
      [tenantIds],
    );
    for (const { tenant_id, ...connection } of rows) {
      const list = byTenant.get(tenant_id);
      if (list) list.push(connection);
      else byTenant.set(tenant_id, [connection]);
    }
    return byTenant;
  }

  async #push(
    tenantId: number,
    connections: WatchingConnection[],
    pending: () => LiveEvent[],
  ): Promise<void> {
    if (connections.length === 0) return;
    const events = pending();
    if (events.length === 0) return;
    const gone: string[] = [];
    await Promise.all(
      connections.map(async (connection) => {
        // Each dashboard tab gets only the devices it subscribed to (shared/live/domain).
        const watched = new Set(connection.device_ids);
        const relevant = events.filter((event) => watched.has(event.device_id));
        if (relevant.length === 0) return;
        try {
          await this.send(connection.connection_id, { type: 'events', events: relevant });
        } catch (error) {
          if (
            error instanceof GoneException ||
            (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410
          ) {
            gone.push(connection.connection_id);
          } else {
            throw error;
          }
        }
      }),
    );
    if (gone.length > 0) {
      await inTenantTransaction(this.pool, tenantId, (client) =>
        client.query('DELETE FROM ws_connections WHERE connection_id = ANY($1)', [gone]),
      );
    }
  }

  async #tenantOf(connectionId: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ tenant: number | null }>(
      'SELECT ws_connection_tenant($1) AS tenant',
      [connectionId],
    );
    return rows[0]?.tenant ?? null;
  }
}
