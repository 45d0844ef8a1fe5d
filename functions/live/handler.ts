import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { authenticator, logger } from '../../shared/composition.ts';
import { Unauthenticated } from '../../shared/domain-errors.ts';
import { databaseId } from '../../shared/http/schemas.ts';
import { liveConnections, liveSubscriptions } from '../../shared/live/composition.ts';
import { type ClientMessage, MAX_WATCHED_DEVICES } from '../../shared/live/domain/subscriptions.ts';

const sessions = authenticator();
const connections = liveConnections();
const subscriptions = liveSubscriptions();
const log = logger().child({ function: 'live' });

const deviceIds = z.array(databaseId).max(MAX_WATCHED_DEVICES);
const clientMessage = z.discriminatedUnion('action', [
  z.object({ action: z.literal('subscribe'), device_ids: deviceIds }).strict(),
  z.object({ action: z.literal('unsubscribe'), device_ids: deviceIds }).strict(),
  z.object({ action: z.literal('ping') }).strict(),
]);

// $connect carries query parameters, which the v2 WebSocket event type leaves out.
type WebsocketEvent = APIGatewayProxyWebsocketEventV2 & {
  queryStringParameters?: Record<string, string | undefined>;
};

function parse(body: string | undefined): ClientMessage | null {
  let json: unknown;
  try {
    json = JSON.parse(body ?? '');
  } catch {
    return null;
  }
  const parsed = clientMessage.safeParse(json);
  if (!parsed.success) return null;
  const message = parsed.data;
  return message.action === 'ping'
    ? message
    : { action: message.action, deviceIds: message.device_ids };
}

/**
 * WebSocket API: `$connect?token=<access token>` (browsers cannot set headers on a
 * WebSocket); then `{"action":"subscribe"|"unsubscribe","device_ids":[...]}` says which
 * devices the tab shows (none at first: it receives nothing until it subscribes), and
 * `{"type":"events","events":[...]}` is pushed by ingestion for those devices only. Each
 * connection's messages are throttled; `{"action":"ping"}` keeps an idle connection open.
 */
export async function handler(event: WebsocketEvent): Promise<APIGatewayProxyResultV2> {
  const { connectionId, routeKey } = event.requestContext;
  if (routeKey === '$connect') {
    try {
      const caller = await sessions.authenticate(event.queryStringParameters?.token ?? '');
      await connections.connect(connectionId, caller.tenantId, caller.userId);
      return { statusCode: 200, body: '' };
    } catch (error) {
      if (error instanceof Unauthenticated) return { statusCode: 401, body: 'Unauthorized' };
      log.error('connect failed', { error });
      return { statusCode: 500, body: '' };
    }
  }
  if (routeKey === '$disconnect') {
    await connections.disconnect(connectionId);
    return { statusCode: 200, body: '' };
  }
  const reply = await subscriptions.handle(connectionId, parse(event.body));
  // null: a connection this platform does not know (gone, or its session ended).
  if (reply) await connections.send(connectionId, reply);
  return { statusCode: 200, body: '' };
}
