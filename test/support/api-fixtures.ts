import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { routeTable } from '../../shared/http/route-table.ts';
import { callRoute } from './api-event.ts';
import { adminPool, useDataPlane } from './in-process.ts';
import { unique, useTestStack } from './stack-env.ts';
import { setTenantPlan } from './tenants.ts';

type Handler = Parameters<typeof callRoute>[0];

export interface DocumentedOperation {
  routeKey: string;
  method: string;
  path: string;
  roles: string[];
  statuses: Set<number>;
  pathParams: string[];
  query: Array<{ name: string; schema: Record<string, unknown> }>;
  bodySchema?: Record<string, unknown>;
  example?: Record<string, unknown>;
}

/** Every operation of the served OpenAPI document, as the suite's generated tests use them. */
export function documentedOperations(): DocumentedOperation[] {
  const document = openApiDocument();
  return Object.entries(document.paths).flatMap(([route, methods]) =>
    Object.entries(methods as Record<string, any>).map(([method, operation]) => {
      const json = operation.requestBody?.content?.['application/json'];
      return {
        routeKey: `${method.toUpperCase()} ${route}`,
        method: method.toUpperCase(),
        path: route,
        roles: operation['x-roles'] as string[],
        statuses: new Set(Object.keys(operation.responses).map(Number)),
        pathParams: operation.parameters
          .filter((parameter: any) => parameter.in === 'path')
          .map((parameter: any) => parameter.name),
        query: operation.parameters
          .filter((parameter: any) => parameter.in === 'query')
          .map((parameter: any) => ({ name: parameter.name, schema: parameter.schema })),
        ...(json ? { bodySchema: json.schema, example: json.example } : {}),
      };
    }),
  );
}

/**
 * Which handler serves each route: the route table names the function, serverless.yml's
 * `handler:` line of that function names the module and its export.
 */
export async function handlersByRoute(
  repoRoot = path.join(import.meta.dirname, '..', '..'),
): Promise<Map<string, Handler>> {
  const text = readFileSync(path.join(repoRoot, 'serverless.yml'), 'utf8');
  const handlerOf = new Map<string, string>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const name = /^ {2}([a-z-]+):\s*$/.exec(line);
    if (name) current = name[1];
    const handler = /^ {4}handler:\s*(\S+)\s*$/.exec(line);
    if (handler && current) handlerOf.set(current, handler[1] as string);
  }
  const handlers = new Map<string, Handler>();
  for (const [routeKey, route] of Object.entries(routeTable)) {
    const handler = handlerOf.get(route.function);
    if (!handler) throw new Error(`serverless.yml has no function ${route.function}`);
    const file = handler.slice(0, handler.lastIndexOf('.'));
    const exported = handler.slice(handler.lastIndexOf('.') + 1);
    const module = await import(path.join(repoRoot, `${file}.ts`));
    handlers.set(routeKey, module[exported] as Handler);
  }
  return handlers;
}

/**
 * Every route's handler in-process, as API Gateway invokes them, against the test stack: with
 * the IoT Data Plane endpoint commands go through, and a superuser pool for the test's own
 * look-ups. Call at the top of a file, before anything imports a handler.
 */
export async function inProcessApi() {
  const stack = useTestStack();
  await useDataPlane(stack);
  return { stack, handlers: await handlersByRoute(), admin: adminPool(stack) };
}

export interface Tenant {
  id: number;
  /** Appears in the tenant's names; must never appear in another tenant's answers. */
  marker: string;
  owner: { username: string; password: string; userId: number };
  admin: { username: string; password: string; userId: number };
  viewer: { username: string; password: string; userId: number };
  device: { id: number; deviceId: string };
  commandId: string;
}

export const FIXTURE_PASSWORD = 'fixture-password';

/**
 * A tenant on the Industrial plan (so no plan gate hides an authorisation answer) with an
 * owner, an admin and a viewer, a device with a sensor and a switch entity, and a command.
 */
export async function seedTenant(
  handlers: Map<string, Handler>,
  admin: pg.Pool,
  sourceIp: string,
): Promise<Tenant> {
  const auth = handlers.get('POST /api/auth/register') as Handler;
  const marker = unique('secret');
  const owner = { username: `${marker}-owner`, password: FIXTURE_PASSWORD, userId: 0 };
  const registered = await callRoute(auth, 'POST /api/auth/register', {
    sourceIp,
    body: {
      tenant_name: `${marker} plant`,
      username: owner.username,
      email: `${owner.username}@example.com`,
      password: owner.password,
    },
  });
  if (registered.status !== 201) throw new Error(`sign-up: ${JSON.stringify(registered.body)}`);
  owner.userId = registered.body.user.id;
  const tenantId = registered.body.tenant.id as number;
  const token = registered.body.token as string;
  await setTenantPlan(admin, tenantId, 'industrial');
  const addUser = async (role: 'admin' | 'viewer') => {
    const username = `${marker}-${role}`;
    const added = await callRoute(handlers.get('POST /api/users') as Handler, 'POST /api/users', {
      token,
      body: { username, email: `${username}@example.com`, password: FIXTURE_PASSWORD, role },
    });
    return { username, password: FIXTURE_PASSWORD, userId: added.body.user.id as number };
  };
  const deviceId = `${marker}-dev`;
  const created = await callRoute(
    handlers.get('POST /api/devices') as Handler,
    'POST /api/devices',
    { token, body: { device_id: deviceId, name: `${marker} machine`, type: 'press' } },
  );
  const device = { id: created.body.device.id as number, deviceId };
  await admin.query(
    `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name)
     VALUES ($1, $2, 'temperature', 'sensor', $3), ($1, $2, 'relay', 'switch', $3)`,
    [device.id, tenantId, `${marker} entity`],
  );
  const routeKey = 'POST /api/devices/{id}/entities/{entity_id}/commands';
  const command = await callRoute(handlers.get(routeKey) as Handler, routeKey, {
    token,
    params: { id: String(device.id), entity_id: 'relay' },
    body: { value: true },
  });
  if (command.status !== 202) throw new Error(`command: ${JSON.stringify(command.body)}`);
  return {
    id: tenantId,
    marker,
    owner,
    admin: await addUser('admin'),
    viewer: await addUser('viewer'),
    device,
    commandId: command.body.command_id,
  };
}
