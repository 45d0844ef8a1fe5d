import { z } from 'zod';
import type { PlanName } from '../accounts/domain/model.ts';
import {
  anomalies,
  credentials,
  device,
  deviceDetail,
  jwks,
  model,
  predictions,
  profile,
  command as sentCommand,
  storedCommand,
  telemetry,
  tenant,
  tenantOverview,
  tokenResponse,
  user,
} from './responses.ts';
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
  telemetryQuery,
  trainModelBody,
} from './schemas.ts';

/**
 * THE route table: every HTTP route of the platform, once. From it come each function's
 * routing and request validation (`httpApi` in ./api.ts), the OpenAPI document
 * (./openapi.ts), and so the dashboard's API types (`npm run api:types`);
 * test/route-table.test.ts proves serverless.yml's httpApi events deploy exactly these
 * routes to the functions named here.
 *
 * Adding a route: one entry here, its handler in `functions/<function>/handler.ts` (the
 * type checker refuses a function that misses one of its routes), and its httpApi event
 * in serverless.yml (the test prints the lines to add).
 */

/** Who may call a route: anyone, any signed-in user, or users whose role may change things. */
export type Access = 'public' | 'read' | 'write';

/** Roles that may call a route of each access level (the OpenAPI document's `x-roles`). */
export const ROLES_BY_ACCESS = {
  public: [],
  read: ['owner', 'admin', 'viewer'],
  write: ['owner', 'admin'],
} as const satisfies Record<Access, readonly string[]>;

export type Tag =
  | 'auth'
  | 'tenant'
  | 'users'
  | 'devices'
  | 'commands'
  | 'ml'
  | 'maintenance'
  | 'alarms'
  | 'meta';

/** The lowest plan whose tenants may use a route; others get 403 `plan_required`. */
export type PlanGate = Exclude<PlanName, 'free'>;

export interface RouteDefinition {
  /** The serverless.yml function that serves it. */
  function: string;
  summary: string;
  /** A longer explanation, when the summary cannot say all a client must know. */
  description?: string;
  tag: Tag;
  access: Access;
  plan?: PlanGate;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** A valid body, shown in the document (and what the authorisation matrix sends). */
  example?: Record<string, unknown>;
  /** Success status and its body schema (none: the answer has no body). */
  success: { status: number; description: string; schema?: z.ZodType };
  /** Client errors this route can answer beyond those its access, plan and input imply. */
  errors?: number[];
  /** Headers every success answer carries. */
  headers?: Record<string, string>;
}

export const routeTable = {
  'POST /api/auth/register': {
    function: 'auth',
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
    function: 'auth',
    summary: 'Sign in with username or email',
    tag: 'auth',
    access: 'public',
    body: loginBody,
    example: { username: 'ana', password: 'a long password' },
    success: { status: 200, description: 'An access token', schema: tokenResponse },
    errors: [401, 429, 503],
  },
  'POST /api/auth/password': {
    function: 'auth',
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
    function: 'auth',
    summary: 'Sign out: every token of the caller stops working and their WebSockets close',
    tag: 'auth',
    access: 'read',
    success: { status: 204, description: 'Signed out' },
  },
  'GET /api/auth/me': {
    function: 'auth',
    summary: 'The caller and their tenant',
    tag: 'auth',
    access: 'read',
    success: { status: 200, description: 'The caller', schema: profile },
  },
  'GET /.well-known/jwks.json': {
    function: 'auth',
    summary: 'Public keys that verify access tokens',
    tag: 'auth',
    access: 'public',
    success: { status: 200, description: 'A JSON Web Key Set', schema: jwks },
    headers: { 'cache-control': 'public, max-age=300' },
  },
  'GET /api/tenant': {
    function: 'auth',
    summary: "The tenant's plan, limits and usage",
    tag: 'tenant',
    access: 'read',
    success: { status: 200, description: 'Plan and usage', schema: tenantOverview },
  },
  'GET /api/users': {
    function: 'auth',
    summary: "The tenant's users",
    tag: 'users',
    access: 'read',
    success: { status: 200, description: 'Users', schema: objectOf('users', user) },
  },
  'POST /api/users': {
    function: 'auth',
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
    success: { status: 201, description: 'The new user', schema: wrapped('user', user) },
    errors: [409, 503],
  },
  'PATCH /api/users/{id}': {
    function: 'auth',
    summary: "Change a user's role (only an owner changes an owner); the user's sessions end",
    tag: 'users',
    access: 'write',
    params: idParam,
    body: changeRoleBody,
    example: { role: 'viewer' },
    success: { status: 200, description: 'The user', schema: wrapped('user', user) },
    errors: [403, 404, 409],
  },
  'DELETE /api/users/{id}': {
    function: 'auth',
    summary: 'Remove a user (only an owner removes an owner); their sessions end',
    tag: 'users',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [403, 404, 409],
  },
  'GET /api/devices': {
    function: 'devices',
    summary: "The tenant's devices",
    tag: 'devices',
    access: 'read',
    success: { status: 200, description: 'Devices', schema: objectOf('devices', device) },
  },
  'POST /api/devices': {
    function: 'devices',
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
      schema: wrapped('device', device).extend({ credentials }),
    },
    errors: [409, 502],
  },
  'GET /api/devices/{id}': {
    function: 'devices',
    summary: "A device and each entity's latest value",
    tag: 'devices',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'The device', schema: deviceDetail },
    errors: [404],
  },
  'PATCH /api/devices/{id}': {
    function: 'devices',
    summary: 'Update a device',
    tag: 'devices',
    access: 'write',
    params: idParam,
    body: devicePatchBody,
    example: { name: 'Compressor 1 (rebuilt)', location: 'Hall C' },
    success: { status: 200, description: 'The device', schema: wrapped('device', device) },
    errors: [404],
  },
  'DELETE /api/devices/{id}': {
    function: 'devices',
    summary: 'Remove a device, its entities and its credential',
    tag: 'devices',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [404],
  },
  'GET /api/devices/{id}/telemetry': {
    function: 'devices',
    summary: 'Raw or aggregated readings; old ranges are read from the rollups',
    tag: 'devices',
    access: 'read',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Series per entity', schema: telemetry },
    errors: [404],
  },
  'POST /api/devices/{id}/entities/{entity_id}/commands': {
    function: 'devices',
    summary: "Set an entity's value: published to the device's .../set topic",
    tag: 'commands',
    access: 'write',
    params: entityParams,
    body: commandBody,
    example: { value: true },
    success: { status: 202, description: 'The command, sent', schema: sentCommand },
    errors: [404, 409, 502],
  },
  'GET /api/devices/{id}/commands': {
    function: 'devices',
    summary: "A device's recent commands",
    tag: 'commands',
    access: 'read',
    params: idParam,
    success: {
      status: 200,
      description: 'Commands, newest first',
      schema: objectOf('commands', storedCommand),
    },
    errors: [404],
  },
  'GET /api/devices/{id}/commands/{command_id}': {
    function: 'devices',
    summary: 'One command and its outcome',
    tag: 'commands',
    access: 'read',
    params: commandParams,
    success: { status: 200, description: 'The command', schema: storedCommand },
    errors: [404],
  },
  'GET /api/devices/{id}/anomalies': {
    function: 'ml',
    summary: "Anomalies the plan's detector found in a time range",
    tag: 'ml',
    access: 'read',
    plan: 'professional',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Anomalies', schema: anomalies },
    errors: [404],
  },
  'GET /api/devices/{id}/predictions': {
    function: 'ml',
    summary: "Every score the plan's detector gave in a time range",
    tag: 'ml',
    access: 'read',
    plan: 'professional',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Scores', schema: predictions },
    errors: [404],
  },
  'GET /api/ml/models': {
    function: 'ml',
    summary: "The tenant's trained models",
    tag: 'ml',
    access: 'read',
    success: { status: 200, description: 'Models', schema: objectOf('models', model) },
  },
  'POST /api/ml/models': {
    function: 'ml',
    summary: "Train an entity's model now (plans with custom models), through the quality gate",
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    body: trainModelBody,
    example: { device_id: 1, entity_id: 'temperature' },
    success: {
      status: 201,
      description:
        "The new model: active, or rejected (with status_reason and the held-back metrics) when it does not forecast held-back readings better than repeating the last value or yesterday's value; a rejected model leaves the previous one active",
      schema: wrapped('model', model),
    },
    errors: [404, 422],
  },
  'GET /api/openapi.json': {
    function: 'docs',
    summary: 'This document',
    tag: 'meta',
    access: 'public',
    success: {
      status: 200,
      description: 'OpenAPI 3.1',
      schema: openApiShape(),
    },
    headers: { 'cache-control': 'public, max-age=300' },
  },
} as const satisfies Record<string, RouteDefinition>;

export type RouteTable = typeof routeTable;
export type RouteKey = keyof RouteTable;
/** The serverless.yml functions that serve HTTP routes. */
export type HttpFunction = RouteTable[RouteKey]['function'];

/** The table's routes one function serves. */
export function routesOf(fn: HttpFunction): RouteKey[] {
  return (Object.keys(routeTable) as RouteKey[]).filter((key) => routeTable[key].function === fn);
}

/** `{ <key>: [item, ...] }`, the shape of every list answer. */
function objectOf<K extends string, S extends z.ZodType>(key: K, item: S) {
  return z.object({ [key]: z.array(item) } as { [P in K]: z.ZodArray<S> });
}

/** `{ <key>: item }`, the shape of every single-resource answer but the device's detail. */
function wrapped<K extends string, S extends z.ZodType>(key: K, item: S) {
  return z.looseObject({ [key]: item } as { [P in K]: S });
}

function openApiShape() {
  return z.looseObject({ openapi: z.string() });
}
