import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type pg from 'pg';
import type { LiveSessionCloser } from '../../accounts/domain/sessions.ts';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { Logger } from '../../logger.ts';

/**
 * Closes a user's WebSockets when their session ends. The rows go first, in the tenant's
 * transaction: ingestion pushes only to connections it finds there, so nothing more reaches
 * the user even if API Gateway's DeleteConnection fails; then each connection is closed.
 */
export interface LiveSessionsOptions {
  pool: pg.Pool;
  region: string;
  /** Unset where no WebSocket API exists (then no connection can have been opened). */
  managementEndpoint: string | undefined;
  logger: Logger;
}

export class LiveSessions implements LiveSessionCloser {
  #management: ApiGatewayManagementApiClient | undefined;
  private readonly pool: pg.Pool;
  private readonly region: string;
  private readonly managementEndpoint: string | undefined;
  private readonly logger: Logger;

  constructor(options: LiveSessionsOptions) {
    this.pool = options.pool;
    this.region = options.region;
    this.managementEndpoint = options.managementEndpoint;
    this.logger = options.logger;
  }

  async endLiveSessions(tenantId: number, userId: number): Promise<void> {
    const { rows } = await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query<{ connection_id: string }>(
        'DELETE FROM ws_connections WHERE user_id = $1 RETURNING connection_id',
        [userId],
      ),
    );
    if (rows.length === 0 || !this.managementEndpoint) return;
    this.#management ??= new ApiGatewayManagementApiClient({
      region: this.region,
      endpoint: this.managementEndpoint,
    });
    const management = this.#management;
    await Promise.all(
      rows.map(({ connection_id }) =>
        management
          .send(new DeleteConnectionCommand({ ConnectionId: connection_id }))
          .catch((error: unknown) => {
            // Gone already, or the API refused: the row is deleted, so it receives nothing.
            this.logger.warn('could not close a WebSocket of an ended session', {
              connectionId: connection_id,
              error,
            });
          }),
      ),
    );
  }
}
