import { z } from 'zod';
import {
  devicesRulResponse,
  entityLimitBody,
  fleetModel,
  healthResponse,
  limitResponse,
  maintenanceEvent,
  maintenanceEventBody,
  trainFleetBody,
  trainingRequestResponse,
} from '../maintenance/schemas.ts';
import {
  addUserBody,
  changePasswordBody,
  changeRoleBody,
  commandBody,
  commandParams,
  devicePatchBody,
  entityParams,
  idParam,
  loginBody,
  newDeviceBody,
  registerBody,
  roleSchema,
  telemetryQuery,
  trainModelBody,
} from './schemas.ts';

/**
 * The HTTP API's OpenAPI 3.1 document. Request schemas are the zod schemas the handlers
 * validate with (shared/http/schemas.ts), so the document cannot drift from what is
 * accepted; response schemas are declared here and test/openapi.test.ts checks real
 * responses against them, and this route table against serverless.yml's httpApi events.
 * Response objects are open (more fields are welcome, DESIGN.md section 5).
 */

type Access = 'public' | 'read' | 'write';

interface Operation {
  summary: string;
  tag: 'auth' | 'tenant' | 'users' | 'devices' | 'commands' | 'ml' | 'maintenance' | 'meta';
  access: Access;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** A valid body, shown in the document (and what the authorisation matrix sends). */
  example?: Record<string, unknown>;
  /** Success status and its body schema (undefined: no body). */
  success: { status: number; description: string; schema?: z.ZodType };
  /** Client errors this route can answer beyond those its access level implies. */
  errors?: number[];
}

const isoTime = z.string().describe('ISO 8601 time, UTC');
const nullableTime = isoTime.nullable();

const user = z.looseObject({
  id: z.number().int(),
  tenant_id: z.number().int(),
  username: z.string(),
  email: z.string(),
  role: roleSchema,
  last_login_at: nullableTime,
  created_at: isoTime,
});

const planName = z.enum(['free', 'starter', 'professional', 'industrial']);

const tenant = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  plan: planName,
  effective_plan: planName,
  status: z.enum(['active', 'suspended']),
  trial_ends_at: nullableTime,
  created_at: isoTime,
});

const plan = z.looseObject({
  name: planName,
  display_name: z.string(),
  max_devices: z.number().int().nullable(),
  max_users: z.number().int().nullable(),
  max_entities_per_device: z.number().int().nullable(),
  max_series: z.number().int().nullable(),
  retention_days: z.number().int().nullable(),
  anomaly_detection: z.enum(['none', 'basic', 'advanced']),
  predictive_maintenance: z.boolean(),
  pattern_recognition: z.boolean(),
  custom_models: z.boolean(),
  edge_deployment: z.boolean(),
});

const tokenResponse = z.looseObject({
  token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
});

const device = z.looseObject({
  id: z.number().int(),
  tenant_id: z.number().int(),
  device_id: z.string(),
  name: z.string(),
  type: z.string(),
  location: z.string().nullable(),
  status: z.enum(['online', 'offline']),
  config: z.record(z.string(), z.unknown()).nullable(),
  last_seen: nullableTime,
  created_at: isoTime,
  updated_at: isoTime,
});

const readingValue = z.union([z.number(), z.boolean(), z.string()]);

const entity = z.looseObject({
  entity_id: z.string(),
  entity_type: z.enum(['switch', 'sensor', 'number', 'text']),
  name: z.string(),
  unit: z.string().nullable(),
  latest: z.object({ value: readingValue, time: isoTime }).nullable(),
});

const credentials = z.looseObject({
  client_id: z.string(),
  username: z.string().optional(),
  password: z.string().optional(),
  certificate_pem: z.string().optional(),
  private_key: z.string().optional(),
  certificate_id: z.string().optional(),
  broker_url: z.string().optional(),
});

const command = z.looseObject({
  command_id: z.uuid(),
  status: z.enum(['sent', 'confirmed', 'timed_out', 'failed']),
});

const storedCommand = command.extend({
  device_id: z.number().int(),
  entity_id: z.string(),
  value: z.unknown(),
  triggered_by: z.string(),
  created_at: isoTime,
  updated_at: isoTime,
});

const telemetry = z.looseObject({
  device_id: z.string(),
  source: z.enum(['raw', '5m', '1h']),
  series: z.array(
    z.object({
      entity_id: z.string(),
      points: z.array(z.object({ time: isoTime, value: readingValue.nullable() })),
    }),
  ),
});

const jwks = z.object({
  keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })),
});

const model = z.looseObject({
  id: z.number().int(),
  device_id: z.number().int(),
  entity_id: z.string(),
  kind: z.string(),
  version: z.string(),
  threshold: z.number(),
  training_points: z.number().int(),
  metrics: z.record(z.string(), z.unknown()),
  /** `rejected`: it did not beat the naive forecasts on held-back readings and never scored. */
  status: z.enum(['active', 'superseded', 'rejected']),
  status_reason: z.string().nullable(),
  trained_at: isoTime,
});

const mlResults = (key: 'anomalies' | 'predictions') =>
  z.looseObject({
    device_id: z.string(),
    detector: z.string().nullable(),
    [key]: z.array(z.looseObject({})),
  });

export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});

export const operations: Record<string, Operation> = {
  'POST /api/auth/register': {
    summary: 'Sign up: creates the tenant (plan free) and its owner',
    tag: 'auth',
    access: 'public',
    body: registerBody,
    example: {
      tenant_name: 'Acme Plant',
      username: 'ana',
      email: 'ana@example.com',
      password: 'a long password',
    },
    success: {
      status: 201,
      description: 'The owner, the tenant and an access token',
      schema: tokenResponse.extend({ user, tenant }),
    },
    errors: [409, 429, 503],
  },
  'POST /api/auth/login': {
    summary: 'Sign in with username or email',
    tag: 'auth',
    access: 'public',
    body: loginBody,
    example: { username: 'ana', password: 'a long password' },
    success: { status: 200, description: 'An access token', schema: tokenResponse },
    errors: [401, 429, 503],
  },
  'POST /api/auth/password': {
    summary: "Change the caller's password; every other session of theirs ends",
    tag: 'auth',
    access: 'read',
    body: changePasswordBody,
    example: { current_password: 'a long password', new_password: 'an even longer password' },
    success: {
      status: 200,
      description: 'A fresh access token for this session',
      schema: tokenResponse,
    },
    errors: [403, 429, 503],
  },
  'POST /api/auth/logout': {
    summary: 'Sign out: every token of the caller stops working and their WebSockets close',
    tag: 'auth',
    access: 'read',
    success: { status: 204, description: 'Signed out' },
  },
  'GET /api/auth/me': {
    summary: 'The caller and their tenant',
    tag: 'auth',
    access: 'read',
    success: { status: 200, description: 'The caller', schema: z.looseObject({ user, tenant }) },
  },
  'GET /.well-known/jwks.json': {
    summary: 'Public keys that verify access tokens',
    tag: 'auth',
    access: 'public',
    success: { status: 200, description: 'A JSON Web Key Set', schema: jwks },
  },
  'GET /api/tenant': {
    summary: "The tenant's plan, limits and usage",
    tag: 'tenant',
    access: 'read',
    success: {
      status: 200,
      description: 'Plan and usage',
      schema: z.looseObject({
        tenant,
        plan,
        usage: z.object({
          devices: z.number().int(),
          users: z.number().int(),
          entities: z.number().int(),
        }),
      }),
    },
  },
  'GET /api/users': {
    summary: "The tenant's users",
    tag: 'users',
    access: 'read',
    success: { status: 200, description: 'Users', schema: z.object({ users: z.array(user) }) },
  },
  'POST /api/users': {
    summary: 'Add a user to the tenant',
    tag: 'users',
    access: 'write',
    body: addUserBody,
    example: {
      username: 'bruno',
      email: 'bruno@example.com',
      password: 'another long password',
      role: 'viewer',
    },
    success: { status: 201, description: 'The new user', schema: z.object({ user }) },
    errors: [409, 503],
  },
  'PATCH /api/users/{id}': {
    summary: "Change a user's role (only an owner changes an owner); the user's sessions end",
    tag: 'users',
    access: 'write',
    params: idParam,
    body: changeRoleBody,
    example: { role: 'viewer' },
    success: { status: 200, description: 'The user', schema: z.object({ user }) },
    errors: [403, 404, 409],
  },
  'DELETE /api/users/{id}': {
    summary: 'Remove a user (only an owner removes an owner); their sessions end',
    tag: 'users',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [403, 404, 409],
  },
  'GET /api/devices': {
    summary: "The tenant's devices",
    tag: 'devices',
    access: 'read',
    success: {
      status: 200,
      description: 'Devices',
      schema: z.object({ devices: z.array(device) }),
    },
  },
  'POST /api/devices': {
    summary: 'Register a device; its broker credential is shown only in this answer',
    tag: 'devices',
    access: 'write',
    body: newDeviceBody,
    example: {
      device_id: 'COMP_001',
      name: 'Compressor 1',
      type: 'compressor',
      location: 'Hall B',
    },
    success: {
      status: 201,
      description: 'The device and its credential',
      schema: z.looseObject({ device, credentials }),
    },
    errors: [409, 502],
  },
  'GET /api/devices/{id}': {
    summary: "A device and each entity's latest value",
    tag: 'devices',
    access: 'read',
    params: idParam,
    success: {
      status: 200,
      description: 'The device',
      schema: z.looseObject({ device, entities: z.array(entity) }),
    },
    errors: [404],
  },
  'PATCH /api/devices/{id}': {
    summary: 'Update a device',
    tag: 'devices',
    access: 'write',
    params: idParam,
    body: devicePatchBody,
    example: { name: 'Compressor 1 (rebuilt)', location: 'Hall C' },
    success: { status: 200, description: 'The device', schema: z.looseObject({ device }) },
    errors: [404],
  },
  'DELETE /api/devices/{id}': {
    summary: 'Remove a device, its entities and its credential',
    tag: 'devices',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [404],
  },
  'GET /api/devices/{id}/telemetry': {
    summary: 'Raw or aggregated readings; old ranges are read from the rollups',
    tag: 'devices',
    access: 'read',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Series per entity', schema: telemetry },
    errors: [404],
  },
  'POST /api/devices/{id}/entities/{entity_id}/commands': {
    summary: "Set an entity's value: published to the device's .../set topic",
    tag: 'commands',
    access: 'write',
    params: entityParams,
    body: commandBody,
    example: { value: true },
    success: { status: 202, description: 'The command, sent', schema: command },
    errors: [404, 409, 502],
  },
  'GET /api/devices/{id}/commands': {
    summary: "A device's recent commands",
    tag: 'commands',
    access: 'read',
    params: idParam,
    success: {
      status: 200,
      description: 'Commands, newest first',
      schema: z.object({ commands: z.array(storedCommand) }),
    },
    errors: [404],
  },
  'GET /api/devices/{id}/commands/{command_id}': {
    summary: 'One command and its outcome',
    tag: 'commands',
    access: 'read',
    params: commandParams,
    success: { status: 200, description: 'The command', schema: storedCommand },
    errors: [404],
  },
  'GET /api/devices/{id}/anomalies': {
    summary: "Anomalies the plan's detector found in a time range",
    tag: 'ml',
    access: 'read',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Anomalies', schema: mlResults('anomalies') },
    errors: [403, 404],
  },
  'GET /api/devices/{id}/predictions': {
    summary: "Every score the plan's detector gave in a time range",
    tag: 'ml',
    access: 'read',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Scores', schema: mlResults('predictions') },
    errors: [403, 404],
  },
  'GET /api/ml/models': {
    summary: "The tenant's trained models",
    tag: 'ml',
    access: 'read',
    success: { status: 200, description: 'Models', schema: z.object({ models: z.array(model) }) },
  },
  'POST /api/ml/models': {
    summary: "Train an entity's model now (plans with custom models), through the quality gate",
    tag: 'ml',
    access: 'write',
    body: trainModelBody,
    example: { device_id: 1, entity_id: 'temperature' },
    success: {
      status: 201,
      description:
        "The new model: active, or rejected (with status_reason and the held-back metrics) when it does not forecast held-back readings better than repeating the last value or yesterday's value; a rejected model leaves the previous one active",
      schema: z.object({ model }),
    },
    errors: [404, 422],
  },
  'POST /api/devices/{id}/maintenance': {
    summary:
      'Record a maintenance event (Professional and Industrial plans): a failure ends a run-to-failure history; a failure, repair or replacement starts the next life',
    tag: 'maintenance',
    access: 'write',
    params: idParam,
    body: maintenanceEventBody,
    example: { kind: 'inspection', note: 'bearings checked' },
    success: {
      status: 201,
      description: 'The event',
      schema: z.object({ event: maintenanceEvent }),
    },
    errors: [403, 404],
  },
  'GET /api/devices/{id}/maintenance': {
    summary: "A device's maintenance events, newest first (Professional and Industrial plans)",
    tag: 'maintenance',
    access: 'read',
    params: idParam,
    success: {
      status: 200,
      description: 'Events',
      schema: z.object({ events: z.array(maintenanceEvent) }),
    },
    errors: [403, 404],
  },
  'PUT /api/devices/{id}/entities/{entity_id}/limit': {
    summary:
      "Set a numeric entity's limit (above, below or both; neither removes it): its time-to-threshold forecast is in the device's health",
    tag: 'maintenance',
    access: 'write',
    params: entityParams,
    body: entityLimitBody,
    example: { above: 90 },
    success: { status: 200, description: 'The limit now in force', schema: limitResponse },
    errors: [403, 404],
  },
  'GET /api/devices/{id}/health': {
    summary:
      "A device's health: remaining useful life from its fleet's active model (with its 10-90% interval) and, per limit, when the trend crosses it",
    tag: 'maintenance',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'Health', schema: healthResponse },
    errors: [403, 404],
  },
  'GET /api/maintenance/devices': {
    summary: "Every device's latest remaining useful life (for sorting the fleet)",
    tag: 'maintenance',
    access: 'read',
    success: { status: 200, description: 'Devices with their RUL', schema: devicesRulResponse },
    errors: [403],
  },
  'GET /api/maintenance/models': {
    summary: "The tenant's fleet remaining-useful-life models",
    tag: 'maintenance',
    access: 'read',
    success: {
      status: 200,
      description: 'Models, newest first',
      schema: z.object({ models: z.array(fleetModel) }),
    },
    errors: [403],
  },
  'POST /api/maintenance/models': {
    summary:
      "Ask for a fleet's remaining-useful-life model to be trained (within 5 minutes): it becomes active only if it beats the fleet's mean life on held-back histories",
    tag: 'maintenance',
    access: 'write',
    body: trainFleetBody,
    example: { device_type: 'press', step_unit: 'hours' },
    success: {
      status: 202,
      description: 'The request, queued for the trainer',
      schema: z.object({ request: trainingRequestResponse }),
    },
    errors: [403, 404],
  },
  'GET /api/openapi.json': {
    summary: 'This document',
    tag: 'meta',
    access: 'public',
    success: {
      status: 200,
      description: 'OpenAPI 3.1',
      schema: z.looseObject({ openapi: z.string() }),
    },
  },
};

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  // Refinements (byte limits, non-empty patches) cannot be expressed and are left out.
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input');
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

const errorDescriptions: Record<number, string> = {
  400: 'The request is invalid (validation_failed, invalid_json, ...)',
  401: 'No valid access token',
  403: "The caller's role or the tenant's plan does not allow it",
  404: 'Not found in the caller’s tenant',
  409: 'Conflicts with existing data',
  422: 'Not enough data to do it',
  413: 'The body is too large',
  415: 'The body is not JSON',
  429: 'Too many attempts: try again after Retry-After seconds',
  503: 'Busy: try again after Retry-After seconds',
  502: 'The MQTT broker or AWS IoT failed',
};

function errorStatuses(operation: Operation): number[] {
  const statuses = new Set<number>(operation.errors ?? []);
  if (operation.body) for (const status of [400, 413, 415]) statuses.add(status);
  if (operation.params || operation.query) statuses.add(400);
  if (operation.access !== 'public') statuses.add(401);
  if (operation.access === 'write') statuses.add(403);
  return [...statuses].sort((a, b) => a - b);
}

function operationId(routeKey: string): string {
  const [method, path] = routeKey.split(' ') as [string, string];
  const words = path
    .split(/[/{}._-]+/)
    .filter((word) => word && word !== 'api')
    .map((word) => word[0]?.toUpperCase() + word.slice(1));
  return method.toLowerCase() + words.join('');
}

/** The document served at GET /api/openapi.json; `serverUrl` when the caller knows it. */
export function openApiDocument(options: { serverUrl?: string } = {}) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [routeKey, operation] of Object.entries(operations)) {
    const [method, path] = routeKey.split(' ') as [string, string];
    const responses: Record<string, unknown> = {
      [operation.success.status]: {
        description: operation.success.description,
        ...(operation.success.schema
          ? {
              content: {
                'application/json': { schema: jsonSchema(operation.success.schema, 'output') },
              },
            }
          : {}),
      },
    };
    for (const status of errorStatuses(operation)) {
      responses[status] = { $ref: `#/components/responses/Error${status}` };
    }
    responses['500'] = { $ref: '#/components/responses/Error500' };
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = {
      operationId: operationId(routeKey),
      summary: operation.summary,
      tags: [operation.tag],
      security: operation.access === 'public' ? [] : [{ bearer: [] }],
      ...(operation.access === 'write' ? { description: 'Requires the owner or admin role.' } : {}),
      // Machine-readable for clients and the test suite's authorisation matrix.
      'x-roles':
        operation.access === 'public'
          ? []
          : operation.access === 'write'
            ? ['owner', 'admin']
            : ['owner', 'admin', 'viewer'],
      parameters: [
        ...parameters(operation.params, 'path'),
        ...parameters(operation.query, 'query'),
      ],
      ...(operation.body
        ? {
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: jsonSchema(operation.body, 'input'),
                  ...(operation.example ? { example: operation.example } : {}),
                },
              },
            },
          }
        : {}),
      responses,
    };
  }
  const errorSchema = jsonSchema(errorResponse, 'output');
  const errorResponses = Object.fromEntries(
    [...Object.entries(errorDescriptions), ['500', 'Internal error']].map(
      ([status, description]) => [
        `Error${status}`,
        {
          description,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
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
    tags: [
      { name: 'auth' },
      { name: 'tenant' },
      { name: 'users' },
      { name: 'devices' },
      { name: 'commands' },
      { name: 'ml' },
      { name: 'maintenance' },
      { name: 'meta' },
    ],
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
      schemas: { Error: errorSchema },
      responses: errorResponses,
    },
  };
}
