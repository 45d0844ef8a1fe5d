import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { AccountRefusal } from '../../shared/accounts/domain/refusal.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { HttpError } from '../../shared/http/errors.ts';
import { databaseId } from '../../shared/http/schemas.ts';
import { liveConnections } from '../../shared/live/composition.ts';

const sessions = authenticator();
const connections = liveConnections();
const log = logger().child({ function: 'live' });

const clientMessage = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('subscribe'),
    device_ids: z.array(databaseId).max(1000).nullable().optional(),
  }),
  z.object({ action: z.literal('ping') }),
]);

// $connect carries query parameters, which the v2 WebSocket event type leaves out.
type WebsocketEvent = APIGatewayProxyWebsocketEventV2 & {
  queryStringParameters?: Record<string, string | undefined>;
};

/**
 * WebSocket API: `$connect?token=<access token>` (browsers cannot set headers on a
 * WebSocket), then `{"action":"subscribe","device_ids":[...]}` to narrow the stream, and
 * `{"type":"events","events":[...]}` pushed by ingestion.
 */
export async function handler(event: WebsocketEvent): Promise<APIGatewayProxyResultV2> {
  const { connectionId, routeKey } = event.requestContext;
  if (routeKey === '$connect') {
    try {
      const caller = await sessions.authenticate(event.queryStringParameters?.token ?? '');
      await connections.connect(connectionId, caller.tenantId, caller.userId);
      return { statusCode: 200, body: '' };
    } catch (error) {
      if ((error instanceof HttpError && error.status === 401) || error instanceof AccountRefusal)
        return { statusCode: 401, body: 'Unauthorized' };
      log.error('connect failed', { error });
      return { statusCode: 500, body: '' };
    }
  }
  if (routeKey === '$disconnect') {
    await connections.disconnect(connectionId);
    return { statusCode: 200, body: '' };
  }
  let parsed: ReturnType<typeof clientMessage.safeParse>;
  try {
    parsed = clientMessage.safeParse(JSON.parse(event.body ?? ''));
  } catch {
    parsed = clientMessage.safeParse(undefined);
  }
  if (!parsed.success) {
    await connections.send(connectionId, {
      type: 'error',
      error: {
        code: 'invalid_message',
        message: 'Send {"action":"subscribe","device_ids":[...]} or {"action":"ping"}',
      },
    });
    return { statusCode: 200, body: '' };
  }
  if (parsed.data.action === 'ping') {
    await connections.send(connectionId, { type: 'pong' });
  } else {
    const deviceIds = parsed.data.device_ids ?? null;
    await connections.subscribe(connectionId, deviceIds);
    await connections.send(connectionId, { type: 'subscribed', device_ids: deviceIds });
  }
  return { statusCode: 200, body: '' };
}
