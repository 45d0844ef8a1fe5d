import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Caller, Role } from '../accounts/domain/caller.ts';
import type { Authenticator } from '../accounts/domain/sessions.ts';
import type { Logger } from '../logger.ts';
import { withRequestOrigin } from '../request-context.ts';
import { CsvSyntaxError, csvRecords } from './csv.ts';
import { toHttpAnswer } from './error-registry.ts';
import { badRequest, forbidden, HttpError, notFound, unauthorized } from './errors.ts';
import {
  type HttpFunction,
  ROLES_BY_ACCESS,
  type RouteDefinition,
  type RouteKey,
  type RouteTable,
  routesOf,
  routeTable,
} from './route-table.ts';

export type { Access } from './route-table.ts';

const WRITE_ROLES: readonly Role[] = ROLES_BY_ACCESS.write;
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

type Definition<K extends RouteKey> = RouteTable[K];
type Input<K extends RouteKey, Part extends 'body' | 'query' | 'params', Otherwise> =
  Definition<K> extends { [P in Part]: infer S extends z.ZodType } ? z.output<S> : Otherwise;
/** A type with its index signatures removed, at every depth: the fields a schema names. */
type Declared<T> =
  T extends ReadonlyArray<infer Item>
    ? Declared<Item>[]
    : T extends Record<string, unknown>
      ? { [P in keyof T as string extends P ? never : P]: Declared<T[P]> }
      : T;
/**
 * What a route's code must return: a value with every field its response schema declares
 * (open objects let it carry more), or nothing for a route answered without a body.
 */
type Answer<K extends RouteKey> = Definition<K>['success'] extends {
  schema: infer S extends z.ZodType;
}
  ? Promise<Declared<z.input<S>>>
  : Promise<void>;
/**
 * A route's code: it gets the request as the route table's schemas validated it and
 * returns the success answer's body (ignored for a route whose table entry has no response
 * schema); status, headers, access and validation come from the table. Refusals are thrown.
 */
export type RouteHandler<K extends RouteKey> = (
  request: RouteRequest<
    Input<K, 'body', undefined>,
    Input<K, 'query', Record<string, string | undefined>>,
    Input<K, 'params', Record<string, string | undefined>>
  >,
) => Answer<K>;

/** One handler for each route the table gives function `F`, and no other. */
export type RouteHandlers<F extends HttpFunction> = {
  [K in RouteKey as RouteTable[K]['function'] extends F ? K : never]: RouteHandler<K>;
};

interface RouteResult {
  status: number;
  body?: unknown;
  /** A body that is not JSON (a CSV download), with its content type. */
  text?: { contentType: string; content: string };
  headers?: Record<string, string>;
}

const isCsv = (contentType: string) => /^text\/csv\b/i.test(contentType);

function readBody(event: APIGatewayProxyEventV2, definition: RouteDefinition): unknown {
  const acceptsCsv = definition.csv?.request === true;
  if (event.body === undefined || event.body === null || event.body === '') {
    throw badRequest(
      'invalid_body',
      `A ${acceptsCsv ? 'JSON or CSV' : 'JSON'} request body is required`,
    );
  }
  const text = event.isBase64Encoded
    ? Buffer.from(event.body, 'base64').toString('utf8')
    : event.body;
  const maxBytes = definition.maxBodyBytes ?? MAX_BODY_BYTES;
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new HttpError(413, 'body_too_large', `Request body must be at most ${maxBytes} bytes`);
  }
  const contentType = event.headers?.['content-type'] ?? '';
  if (acceptsCsv && isCsv(contentType)) {
    try {
      return csvRecords(text).map((record) => record.fields);
    } catch (error) {
      if (error instanceof CsvSyntaxError) {
        throw badRequest('invalid_csv', `Request body is not valid CSV: ${error.message}`, error);
      }
      throw error;
    }
  }
  if (contentType && !/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `Content-Type must be application/json${acceptsCsv ? ' or text/csv' : ''}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest('invalid_json', 'Request body is not valid JSON', error);
  }
}

/** The caller asked for the CSV form of the answer: `?format=csv` or an Accept naming text/csv first. */
function wantsCsv(event: APIGatewayProxyEventV2): boolean {
  const format = event.queryStringParameters?.format;
  if (format !== undefined) return format === 'csv';
  const accept = event.headers?.accept ?? '';
  return isCsv(accept.trim());
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

/** Validates a request as its table entry says, runs its handler and shapes the success answer. */
async function run(
  routeKey: RouteKey,
  handle: RouteHandler<RouteKey>,
  event: APIGatewayProxyEventV2,
  request: { caller: Caller | undefined; requestId: string; logger: Logger },
): Promise<RouteResult> {
  const definition: RouteDefinition = routeTable[routeKey];
  const body = definition.body
    ? parse(definition.body, readBody(event, definition), 'body')
    : undefined;
  const query = definition.query
    ? parse(definition.query, event.queryStringParameters ?? {}, 'query')
    : (event.queryStringParameters ?? {});
  const params = definition.params
    ? parse(definition.params, event.pathParameters ?? {}, 'path')
    : (event.pathParameters ?? {});
  const answer = await handle({
    body: body as never,
    query: query as never,
    params: params as never,
    // Public routes never read the caller; the cast keeps the handler type simple.
    caller: request.caller as Caller,
    requestId: request.requestId,
    event,
    logger: request.logger,
  });
  const csv = definition.csv?.answer && wantsCsv(event) ? definition.csv : undefined;
  if (csv?.answer) {
    return {
      status: definition.success.status,
      text: { contentType: 'text/csv; charset=utf-8', content: csv.answer(answer as never) },
      headers: {
        ...definition.headers,
        'content-disposition': `attachment; filename="${csv.filename ?? 'answer.csv'}"`,
      },
    };
  }
  return {
    status: definition.success.status,
    body: definition.success.schema ? answer : undefined,
    ...(definition.headers ? { headers: definition.headers } : {}),
  };
}

export interface ApiDependencies {
  authenticator: Authenticator;
  logger: Logger;
}

async function authenticate(
  event: APIGatewayProxyEventV2,
  access: RouteDefinition['access'],
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
      'content-type': result.text?.contentType ?? 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': requestId,
      'x-correlation-id': correlationId,
      ...result.headers,
    },
    body: result.text
      ? result.text.content
      : result.body === undefined
        ? ''
        : JSON.stringify(result.body),
  };
}

/**
 * The Lambda handler of function `fn`: it serves the routes the route table gives `fn`,
 * keyed by API Gateway's `routeKey` (`"GET /api/devices/{id}"`), with `handlers` for their
 * code, wrapped in middy with header normalisation and the single error-to-response mapping.
 */
export function httpApi<F extends HttpFunction>(
  fn: F,
  handlers: RouteHandlers<F>,
  deps: ApiDependencies,
) {
  const routes = handlersOf(fn, handlers);
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
                ...(httpError.expose ? httpError.details : undefined),
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
      const routeKey = event.routeKey as RouteKey;
      const handle = routes.get(routeKey);
      if (!handle) throw notFound('route_not_found', `No route ${event.routeKey}`);
      const caller = await authenticate(event, routeTable[routeKey].access, deps.authenticator);
      const logger = deps.logger.child({
        requestId,
        correlationId,
        routeKey: event.routeKey,
        ...(caller ? { tenantId: caller.tenantId, userId: caller.userId } : {}),
      });
      // What the request changes is audited with its address (shared/request-context.ts).
      const result = await withRequestOrigin({ sourceIp: sourceOf(event) }, () =>
        run(routeKey, handle, event, { caller, requestId, logger }),
      );
      logger.info('request served', {
        status: result.status,
        durationMs: Math.round(performance.now() - started),
      });
      return respond(result, requestId, correlationId);
    });
}

/** The handlers by route key; refuses a set that is not exactly the table's routes of `fn`. */
function handlersOf<F extends HttpFunction>(
  fn: F,
  handlers: RouteHandlers<F>,
): Map<RouteKey, RouteHandler<RouteKey>> {
  const expected = routesOf(fn);
  const given = Object.keys(handlers) as RouteKey[];
  const missing = expected.filter((key) => !given.includes(key));
  const unknown = given.filter((key) => !expected.includes(key));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(
      `function ${fn}: handlers must match the route table (missing: ${missing.join(', ') || 'none'}; not in the table for ${fn}: ${unknown.join(', ') || 'none'})`,
    );
  }
  return new Map(Object.entries(handlers) as Array<[RouteKey, RouteHandler<RouteKey>]>);
}
