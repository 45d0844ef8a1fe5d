import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Authenticator } from '../accounts/domain/sessions.ts';
import type { Caller, Role } from '../accounts/tokens.ts';
import type { Logger } from '../logger.ts';
import { withRequestOrigin } from '../request-context.ts';
import { toHttpAnswer } from './error-registry.ts';
import { badRequest, forbidden, HttpError, notFound, unauthorized } from './errors.ts';

/** Who may call a route: anyone, any signed-in user, or users whose role may change things. */
export type Access = 'public' | 'read' | 'write';

const WRITE_ROLES: readonly Role[] = ['owner', 'admin'];
const MAX_BODY_BYTES = 64 * 1024;

export interface RouteRequest<Body, Query, Params> {
  body: Body;
  query: Query;
  params: Params;
  caller: Caller;
  requestId: string;
  event: APIGatewayProxyEventV2;
  logger: Logger;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Route {
  access: Access;
  run(
    event: APIGatewayProxyEventV2,
    caller: Caller | undefined,
    requestId: string,
    logger: Logger,
  ): Promise<RouteResult>;
}

interface RouteSpec<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType> {
  access: Access;
  body?: B;
  query?: Q;
  params?: P;
}

/**
 * Declares one route: its schemas validate the request before the handler sees it, so
 * handlers get typed, trusted input and never check fields by hand.
 */
export function route<
  B extends z.ZodType = z.ZodUndefined,
  Q extends z.ZodType = z.ZodType<Record<string, string>>,
  P extends z.ZodType = z.ZodType<Record<string, string>>,
>(
  spec: RouteSpec<B, Q, P>,
  handle: (request: RouteRequest<z.output<B>, z.output<Q>, z.output<P>>) => Promise<RouteResult>,
): Route {
  return {
    access: spec.access,
    async run(event, caller, requestId, logger) {
      const body = spec.body ? parse(spec.body, readJsonBody(event), 'body') : undefined;
      const query = spec.query
        ? parse(spec.query, event.queryStringParameters ?? {}, 'query')
        : (event.queryStringParameters ?? {});
      const params = spec.params
        ? parse(spec.params, event.pathParameters ?? {}, 'path')
        : (event.pathParameters ?? {});
      return handle({
        body: body as z.output<B>,
        query: query as z.output<Q>,
        params: params as z.output<P>,
        // Public routes never read the caller; the cast keeps the handler type simple.
        caller: caller as Caller,
        requestId,
        event,
        logger,
      });
    },
  };
}

function readJsonBody(event: APIGatewayProxyEventV2): unknown {
  if (event.body === undefined || event.body === null || event.body === '') {
    throw badRequest('invalid_body', 'A JSON request body is required');
  }
  const text = event.isBase64Encoded
    ? Buffer.from(event.body, 'base64').toString('utf8')
    : event.body;
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) {
    throw new HttpError(
      413,
      'body_too_large',
      `Request body must be at most ${MAX_BODY_BYTES} bytes`,
    );
  }
  const contentType = event.headers?.['content-type'] ?? '';
  if (contentType && !/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest('invalid_json', 'Request body is not valid JSON', error);
  }
}

function parse<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : where}: ${issue.message}`)
    .join('; ');
  throw badRequest('validation_failed', `Invalid ${where}: ${problems}`, result.error);
}

export interface ApiDependencies {
  authenticator: Authenticator;
  logger: Logger;
}

async function authenticate(
  event: APIGatewayProxyEventV2,
  access: Access,
  authenticator: Authenticator,
): Promise<Caller | undefined> {
  if (access === 'public') return undefined;
  const header = event.headers?.authorization ?? '';
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  if (!match?.[1]) throw unauthorized();
  const caller = await authenticator.authenticate(match[1]);
  if (access === 'write' && !WRITE_ROLES.includes(caller.role)) {
    throw forbidden('insufficient_role', 'Your role may view but not change this');
  }
  return caller;
}

/** The address the request came from, as API Gateway saw it (the throttles' key). */
export function sourceOf(event: APIGatewayProxyEventV2): string {
  return event.requestContext?.http?.sourceIp ?? 'unknown';
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's correlation id when it sent a sane one, else this request's id. */
function correlationIdOf(event: APIGatewayProxyEventV2 | undefined, requestId: string): string {
  const given = event?.headers?.['x-correlation-id'];
  return given && CORRELATION_ID.test(given) ? given : requestId;
}

function respond(
  result: RouteResult,
  requestId: string,
  correlationId: string,
): APIGatewayProxyResultV2 {
  return {
    statusCode: result.status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': requestId,
      'x-correlation-id': correlationId,
      ...result.headers,
    },
    body: result.body === undefined ? '' : JSON.stringify(result.body),
  };
}

/**
 * One Lambda handler serving a set of HTTP API routes, keyed by API Gateway's `routeKey`
 * (`"GET /api/devices/{id}"`), wrapped in middy with header normalisation and the single
 * error-to-response mapping.
 */
export function httpApi(routes: Record<string, Route>, deps: ApiDependencies) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2, Error, Context>()
    .use(httpHeaderNormalizer())
    .use({
      onError: async (request) => {
        const requestId = request.context?.awsRequestId ?? 'unknown';
        const correlationId = correlationIdOf(request.event, requestId);
        const { error: httpError, failure } = toHttpAnswer(request.error);
        const log = deps.logger.child({
          requestId,
          correlationId,
          routeKey: request.event?.routeKey,
        });
        if (failure) log.error('request failed', { error: httpError });
        else log.info('request refused', { status: httpError.status, code: httpError.code });
        request.response = respond(
          {
            status: httpError.status,
            headers: httpError.headers,
            body: {
              error: {
                code: httpError.code,
                message: httpError.expose ? httpError.message : 'Internal error',
              },
            },
          },
          requestId,
          correlationId,
        );
      },
    })
    .handler(async (event, context) => {
      const started = performance.now();
      const requestId = context.awsRequestId;
      const correlationId = correlationIdOf(event, requestId);
      const matched = routes[event.routeKey];
      if (!matched) throw notFound('route_not_found', `No route ${event.routeKey}`);
      const caller = await authenticate(event, matched.access, deps.authenticator);
      const logger = deps.logger.child({
        requestId,
        correlationId,
        routeKey: event.routeKey,
        ...(caller ? { tenantId: caller.tenantId, userId: caller.userId } : {}),
      });
      // What the request changes is audited with its address (shared/request-context.ts).
      const result = await withRequestOrigin({ sourceIp: sourceOf(event) }, () =>
        matched.run(event, caller, requestId, logger),
      );
      logger.info('request served', {
        status: result.status,
        durationMs: Math.round(performance.now() - started),
      });
      return respond(result, requestId, correlationId);
    });
}
