import { z } from 'zod';
import { errorResponse } from './responses.ts';
import {
  type PlanGate,
  ROLES_BY_ACCESS,
  type RouteDefinition,
  type RouteKey,
  routeTable,
  type Tag,
} from './route-table.ts';

/**
 * The HTTP API's OpenAPI 3.1 document, made from the route table (./route-table.ts): its
 * request schemas are the zod schemas the handlers validate with, so the document cannot
 * drift from what is accepted; the response schemas are those test/openapi.test.ts checks
 * real answers against. Named response schemas (./responses.ts) become components.
 */

type JsonSchema = Record<string, unknown>;

const DEFS = '#/$defs/';
const COMPONENTS = '#/components/schemas/';

/**
 * JSON Schemas of zod schemas, collecting the named ones (./responses.ts) as components:
 * zod puts them in `$defs`, which this moves to `components.schemas` and points at there.
 */
class SchemaCollector {
  readonly components: Record<string, JsonSchema> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    // Refinements (byte limits, non-empty patches) cannot be expressed and are left out.
    const converted = z.toJSONSchema(schema, {
      io,
      target: 'draft-2020-12',
      unrepresentable: 'any',
    }) as JsonSchema;
    const {
      $schema: _,
      $defs,
      ...rest
    } = JSON.parse(
      JSON.stringify(converted).replaceAll(`"${DEFS}`, `"${COMPONENTS}`),
    ) as JsonSchema & { $defs?: Record<string, JsonSchema> };
    for (const [name, definition] of Object.entries($defs ?? {})) {
      const known = this.components[name];
      if (known && JSON.stringify(known) !== JSON.stringify(definition)) {
        throw new Error(`two different schemas are named ${name}`);
      }
      this.components[name] = definition;
    }
    return rest;
  }

  parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
    if (!schema) return [];
    const object = this.convert(schema, 'input');
    const properties = (object.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((object.required as string[] | undefined) ?? []);
    return Object.entries(properties).map(([name, property]) => ({
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof property.description === 'string' ? { description: property.description } : {}),
      schema: property,
    }));
  }
}

const errorDescriptions: Record<number, string> = {
  400: 'The request is invalid (validation_failed, invalid_json, ...)',
  401: 'No valid access token',
  403: "The caller's role or the tenant's plan does not allow it",
  404: 'Not found in the caller’s tenant',
  409: 'Conflicts with existing data',
  422: 'Well formed but cannot be done as it stands (too little data, rows that fail)',
  413: 'The body is too large',
  415: 'The body is not JSON',
  429: 'Too many attempts: try again after Retry-After seconds',
  503: 'Busy: try again after Retry-After seconds',
  502: 'The MQTT broker or AWS IoT failed',
};

/** Every client error a route can answer: those its table entry names and those it implies. */
export function errorStatuses(route: RouteDefinition): number[] {
  const statuses = new Set<number>(route.errors ?? []);
  if (route.body) for (const status of [400, 413, 415]) statuses.add(status);
  if (route.params || route.query) statuses.add(400);
  if (route.access !== 'public') statuses.add(401);
  if (route.access === 'write' || route.plan) statuses.add(403);
  return [...statuses].sort((a, b) => a - b);
}

const PLAN_NAMES: Record<PlanGate, string> = {
  starter: 'Starter',
  professional: 'Professional',
  industrial: 'Industrial',
};

function description(route: RouteDefinition): string | undefined {
  const sentences = [
    route.description,
    route.access === 'write' ? 'Requires the owner or admin role.' : undefined,
    route.plan
      ? `Requires the ${PLAN_NAMES[route.plan]} plan or higher (else 403 plan_required).`
      : undefined,
  ].filter(Boolean);
  return sentences.length > 0 ? sentences.join(' ') : undefined;
}

function operationId(routeKey: string): string {
  const [method, path] = routeKey.split(' ') as [string, string];
  const words = path
    .split(/[/{}._-]+/)
    .filter((word) => word && word !== 'api')
    .map((word) => word[0]?.toUpperCase() + word.slice(1));
  return method.toLowerCase() + words.join('');
}

function operation(routeKey: string, route: RouteDefinition, schemas: SchemaCollector) {
  const responses: Record<string, unknown> = {
    [route.success.status]: {
      description: route.success.description,
      ...(route.success.schema
        ? {
            content: {
              'application/json': { schema: schemas.convert(route.success.schema, 'output') },
              ...(route.csv?.answer ? { 'text/csv': { schema: { type: 'string' } } } : {}),
            },
          }
        : {}),
    },
  };
  for (const status of errorStatuses(route)) {
    responses[status] = { $ref: `#/components/responses/Error${status}` };
  }
  responses['500'] = { $ref: '#/components/responses/Error500' };
  const explained = description(route);
  return {
    operationId: operationId(routeKey),
    summary: route.summary,
    ...(explained ? { description: explained } : {}),
    tags: [route.tag],
    security: route.access === 'public' ? [] : [{ bearer: [] }],
    // Machine-readable for clients and the test suite's authorisation and plan matrices.
    'x-roles': [...ROLES_BY_ACCESS[route.access]],
    ...(route.plan ? { 'x-plan': route.plan } : {}),
    parameters: [
      ...schemas.parameters(route.params, 'path'),
      ...schemas.parameters(route.query, 'query'),
    ],
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: schemas.convert(route.body, 'input'),
                ...(route.example ? { example: route.example } : {}),
              },
              ...(route.csv?.request
                ? {
                    'text/csv': {
                      schema: {
                        type: 'string',
                        description: 'A header line naming the columns, then one line per item',
                      },
                    },
                  }
                : {}),
            },
          },
        }
      : {}),
    responses,
  };
}

/** The document served at GET /api/openapi.json; `serverUrl` when the caller knows it. */
export function openApiDocument(options: { serverUrl?: string } = {}) {
  const schemas = new SchemaCollector();
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<Tag>();
  for (const [routeKey, route] of Object.entries(routeTable) as Array<
    [RouteKey, RouteDefinition]
  >) {
    const [method, path] = routeKey.split(' ') as [string, string];
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = operation(routeKey, route, schemas);
    tags.add(route.tag);
  }
  schemas.convert(errorResponse, 'output');
  const errorResponses = Object.fromEntries(
    [...Object.entries(errorDescriptions), ['500', 'Internal error']].map(
      ([status, description]) => [
        `Error${status}`,
        {
          description,
          content: { 'application/json': { schema: { $ref: `${COMPONENTS}Error` } } },
        },
      ],
    ),
  );
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'EasySmart API',
      version: '1.0.0',
      description:
        'Multi-tenant IoT platform. JSON in and out, snake_case fields, errors as {"error":{"code","message"}}. Live updates: the WebSocket API ($connect?token=<access token>).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    tags: [...tags].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An access token from POST /api/auth/login or /register (ES256, 1 h)',
        },
      },
      schemas: Object.fromEntries(
        Object.entries(schemas.components).sort(([a], [b]) => a.localeCompare(b)),
      ),
      responses: errorResponses,
    },
  };
}
