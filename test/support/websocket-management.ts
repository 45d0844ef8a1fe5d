import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';

/**
 * Stands in for API Gateway's WebSocket management API (an AWS API, so mocked): records
 * every `POST /@connections/{id}` (a push) and `DELETE /@connections/{id}` (a close) and
 * answers as AWS does when the connection exists.
 */
export async function startManagementStandIn() {
  const pushed: Array<{ connectionId: string; body: unknown }> = [];
  const closed: string[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const connectionId = decodeURIComponent(
        (request.url ?? '').replace(/^.*\/@connections\//, ''),
      );
      if (request.method === 'DELETE') closed.push(connectionId);
      else
        pushed.push({ connectionId, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') });
      response.writeHead(request.method === 'DELETE' ? 204 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pushed,
    closed,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type WebsocketHandler = (
  event: APIGatewayProxyWebsocketEventV2 & {
    queryStringParameters?: Record<string, string | undefined>;
  },
) => Promise<unknown>;

/** Calls the live function as API Gateway's WebSocket API would for `routeKey`. */
export async function callWebsocket(
  handler: WebsocketHandler,
  routeKey: '$connect' | '$disconnect' | '$default',
  connectionId: string,
  options: { token?: string; body?: string } = {},
): Promise<number> {
  const result = (await handler({
    requestContext: {
      connectionId,
      routeKey,
      eventType: routeKey === '$default' ? 'MESSAGE' : 'CONNECT',
    },
    ...(options.token !== undefined ? { queryStringParameters: { token: options.token } } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
    isBase64Encoded: false,
  } as unknown as Parameters<WebsocketHandler>[0])) as { statusCode?: number };
  return result.statusCode ?? 200;
}
