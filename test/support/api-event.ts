import { randomUUID } from 'node:crypto';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';

type LambdaHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyResultV2>;

export interface ApiResponse<T = any> {
  status: number;
  headers: Record<string, string>;
  body: T;
}

/**
 * Calls a function's handler in-process with the event API Gateway's HTTP API would send
 * for `routeKey` (e.g. `GET /api/devices/{id}`), path parameters filled in from `params`.
 */
export async function callRoute(
  handler: LambdaHandler,
  routeKey: string,
  options: {
    params?: Record<string, string>;
    query?: Record<string, string>;
    body?: unknown;
    rawBody?: string;
    token?: string;
    headers?: Record<string, string>;
    /** The caller's address as API Gateway reports it (throttling keys on it). */
    sourceIp?: string;
  } = {},
): Promise<ApiResponse> {
  const [method, template] = routeKey.split(' ') as [string, string];
  const rawPath = template.replace(/\{(\w+)\}/g, (_, name: string) => options.params?.[name] ?? '');
  const body =
    options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const event = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: new URLSearchParams(options.query ?? {}).toString(),
    headers: {
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    queryStringParameters: options.query,
    pathParameters: options.params,
    body,
    isBase64Encoded: false,
    requestContext: {
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: options.sourceIp ?? '127.0.0.1',
        userAgent: 'test',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
    },
  } as unknown as APIGatewayProxyEventV2;
  const context = { awsRequestId: randomUUID() } as Context;
  const result = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  const text = typeof result.body === 'string' ? result.body : '';
  const headers = (result.headers ?? {}) as Record<string, string>;
  // A download (CSV) is handed back as its text.
  const json = !/^text\//.test(headers['content-type'] ?? '');
  return {
    status: result.statusCode ?? 200,
    headers,
    body: text ? (json ? JSON.parse(text) : text) : undefined,
  };
}
