import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setPlan } from '../infra/admin.ts';
import { openApiDocument } from '../shared/http/openapi.ts';
import { type RouteDefinition, routeTable } from '../shared/http/route-table.ts';
import { type ApiResponse, callRoute } from './support/api-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * The OpenAPI document tells the truth: real answers of the handlers (called in-process
 * against the test stack) validate against the response schemas it gives for their status.
 * (That it lists exactly the deployed routes is test/route-table.test.ts's.)
 */

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const docs = (await import('../functions/docs/handler.ts')).handler;
const ml = (await import('../functions/ml/handler.ts')).handler;
const alarms = (await import('../functions/alarms/handler.ts')).handler;
const audit = (await import('../functions/audit/handler.ts')).handler;
const exporter = (await import('../functions/export/handler.ts')).handler as Handler;
const maintenance = (await import('../functions/maintenance/handler.ts')).handler;
const patterns = (await import('../functions/patterns/handler.ts')).handler as Handler;

const _repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const document = openApiDocument() as any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
// The formats zod emits for these schemas.
ajv.addFormat('email', /^[^\s@]+@[^\s@]+\.[^\s@]+$/);
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addSchema(document, 'openapi');

/** routeKey -> statuses whose answers were validated. */
const validated = new Map<string, Set<number>>();

function responseSchema(routeKey: string, status: number): unknown {
  const [method, route] = routeKey.split(' ') as [string, string];
  const operation = document.paths[route]?.[method.toLowerCase()];
  expect(operation, `${routeKey} is documented`).toBeDefined();
  const response = operation.responses[String(status)];
  expect(response, `${routeKey} documents status ${status}`).toBeDefined();
  const resolved = response.$ref
    ? document.components.responses[response.$ref.split('/').pop()]
    : response;
  return resolved.content?.['application/json']?.schema;
}

/** Asserts the answer matches the document, and returns it. */
function checked(routeKey: string, response: ApiResponse): ApiResponse {
  const schema = responseSchema(routeKey, response.status);
  if (schema === undefined) {
    expect(response.body, `${routeKey} ${response.status} has no body`).toBeUndefined();
  } else {
    const validate = ajv.compile({ $ref: `openapi#${pointerTo(routeKey, response.status)}` });
    const valid = validate(response.body);
    expect(
      valid,
      `${routeKey} ${response.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(response.body).slice(0, 500)}`,
    ).toBe(true);
  }
  const statuses = validated.get(routeKey) ?? new Set<number>();
  statuses.add(response.status);
  validated.set(routeKey, statuses);
  return response;
}

function pointerTo(routeKey: string, status: number): string {
  const [method, route] = routeKey.split(' ') as [string, string];
  const response = document.paths[route][method.toLowerCase()].responses[String(status)];
  const pointerEscape = (part: string) => part.replace(/~/g, '~0').replace(/\//g, '~1');
  if (response.$ref) return `${response.$ref.slice(1)}/content/application~1json/schema`;
  return `/paths/${pointerEscape(route)}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`;
}

type Handler = Parameters<typeof callRoute>[0];
const call = (handler: Handler, routeKey: string, options: Parameters<typeof callRoute>[2] = {}) =>
  callRoute(handler, routeKey, options).then((response) => checked(routeKey, response));

describe('OpenAPI document', () => {
  it('is served by the docs function and is valid OpenAPI 3.1 with compilable schemas', async () => {
    const served = await call(docs as Handler, 'GET /api/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body).toEqual(document);
    expect(document.openapi).toBe('3.1.0');
    for (const [route, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods as Record<string, any>)) {
        for (const parameter of operation.parameters) {
          expect(
            () => ajv.compile(parameter.schema),
            `${method} ${route} ${parameter.name}`,
          ).not.toThrow();
          if (parameter.in === 'path') expect(route).toContain(`{${parameter.name}}`);
        }
        const body = operation.requestBody?.content['application/json'].schema;
        if (body) expect(() => ajv.compile(body)).not.toThrow();
      }
    }
  });
});

describe('request examples', () => {
  it('every example body is accepted by the schema its route validates with', () => {
    for (const [routeKey, operation] of Object.entries(routeTable) as Array<
      [string, RouteDefinition]
    >) {
      if (!operation.body) continue;
      expect(operation.example, `${routeKey} has an example`).toBeDefined();
      const parsed = operation.body.safeParse(operation.example);
      expect(parsed.success, `${routeKey}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
    }
  });
});

describe('real answers match the document', () => {
  let token = '';
  let deviceId = 0;
  let userId = 0;
  const owner = unique('owner');

  beforeAll(async () => {
    const registered = await call(auth, 'POST /api/auth/register', {
      body: {
        tenant_name: unique('Plant'),
        username: owner,
        email: `${owner}@example.com`,
        password: 'owner-password',
      },
    });
    expect(registered.status).toBe(201);
    token = registered.body.token;
  });

  it('auth, tenant and users', async () => {
    expect(
      (
        await call(auth, 'POST /api/auth/login', {
          body: { username: owner, password: 'owner-password' },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call(auth, 'POST /api/auth/login', {
          body: { username: owner, password: 'wrong-password' },
        })
      ).status,
    ).toBe(401);
    expect((await call(auth, 'POST /api/auth/register', { body: { username: 'x' } })).status).toBe(
      400,
    );
    expect((await call(auth, 'GET /api/auth/me', { token })).status).toBe(200);
    expect((await call(auth, 'GET /api/auth/me')).status).toBe(401);
    expect((await call(auth, 'GET /.well-known/jwks.json')).status).toBe(200);
    expect((await call(auth, 'GET /api/tenant', { token })).status).toBe(200);
    const viewer = unique('viewer');
    const added = await call(auth, 'POST /api/users', {
      token,
      body: {
        username: viewer,
        email: `${viewer}@example.com`,
        password: 'viewer-password',
        role: 'viewer',
      },
    });
    expect(added.status).toBe(201);
    userId = added.body.user.id;
    expect((await call(auth, 'GET /api/users', { token })).status).toBe(200);
    const params = { id: String(userId) };
    expect(
      (await call(auth, 'PATCH /api/users/{id}', { token, params, body: { role: 'admin' } }))
        .status,
    ).toBe(200);
    expect((await call(auth, 'DELETE /api/users/{id}', { token, params })).status).toBe(204);
    expect((await call(auth, 'DELETE /api/users/{id}', { token, params })).status).toBe(404);
    const changed = await call(auth, 'POST /api/auth/password', {
      token,
      body: { current_password: 'owner-password', new_password: 'owner-password-2' },
    });
    expect(changed.status).toBe(200);
    token = changed.body.token;
    const leaving = unique('leaving');
    const other = await call(auth, 'POST /api/auth/register', {
      body: {
        tenant_name: unique('Plant'),
        username: leaving,
        email: `${leaving}@example.com`,
        password: 'leaving-password',
      },
    });
    const otherToken = other.body.token;
    expect((await call(auth, 'POST /api/auth/logout', { token: otherToken })).status).toBe(204);
    expect((await call(auth, 'GET /api/auth/me', { token: otherToken })).status).toBe(401);
  });

  it('devices, telemetry and commands', async () => {
    const registered = await call(devices, 'POST /api/devices', {
      token,
      body: { device_id: unique('DEV'), name: 'Pump 1', type: 'pump', location: 'Hall A' },
    });
    expect(registered.status).toBe(201);
    deviceId = registered.body.device.id;
    const bulk = await call(devices, 'POST /api/devices/bulk', {
      token,
      body: [{ device_id: unique('DEV'), name: 'Pump 2', type: 'pump' }],
    });
    expect(bulk.status).toBe(201);
    const params = { id: String(deviceId) };
    expect((await call(devices, 'GET /api/devices', { token })).status).toBe(200);
    expect((await call(devices, 'GET /api/devices/{id}', { token, params })).status).toBe(200);
    expect(
      (await call(devices, 'GET /api/devices/{id}', { token, params: { id: '999999999' } })).status,
    ).toBe(404);
    expect(
      (await call(devices, 'PATCH /api/devices/{id}', { token, params, body: { name: 'Pump 2' } }))
        .status,
    ).toBe(200);
    expect((await call(devices, 'GET /api/devices/{id}/telemetry', { token, params })).status).toBe(
      200,
    );
    expect(
      (
        await call(devices, 'GET /api/devices/{id}/telemetry', {
          token,
          params,
          query: { fn: 'median' },
        })
      ).status,
    ).toBe(400);
    expect((await call(devices, 'GET /api/devices/{id}/commands', { token, params })).status).toBe(
      200,
    );
    // No entity yet: the command is refused, in the documented error shape.
    const command = await call(devices, 'POST /api/devices/{id}/entities/{entity_id}/commands', {
      token,
      params: { ...params, entity_id: 'relay_1' },
      body: { value: true },
    });
    expect(command.status).toBe(404);
    expect(
      (
        await call(devices, 'GET /api/devices/{id}/commands/{command_id}', {
          token,
          params: { ...params, command_id: '00000000-0000-4000-8000-000000000000' },
        })
      ).status,
    ).toBe(404);
    // A free tenant: machine learning is refused, in the documented error shape.
    for (const routeKey of [
      'GET /api/devices/{id}/anomalies',
      'GET /api/devices/{id}/predictions',
    ]) {
      expect([200, 403]).toContain((await call(ml, routeKey, { token, params })).status);
    }
    expect((await call(ml, 'GET /api/ml/models', { token })).status).toBe(200);
    const training = await call(ml, 'POST /api/ml/models', {
      token,
      body: { device_id: deviceId, entity_id: 'temperature' },
    });
    expect([403, 404]).toContain(training.status);
    const { example } = routeTable['POST /api/ml/models/upload'];
    const upload = await call(ml, 'POST /api/ml/models/upload', {
      token,
      body: { ...example, device_id: deviceId },
    });
    expect(upload.status).toBe(403);
    const activate = await call(ml, 'POST /api/ml/models/{id}/activate', {
      token,
      params: { id: '1' },
    });
    expect(activate.status).toBe(403);
    // A repeated device_id: the 422 lists the failing rows, as the error schema documents.
    const repeated = { device_id: unique('BULK'), name: 'Valve', type: 'valve' };
    const refused = await call(devices, 'POST /api/devices/bulk', {
      token,
      body: [repeated, repeated] as unknown as Record<string, unknown>,
    });
    expect(refused.status).toBe(422);
    expect((await call(ml, 'GET /api/ml/settings', { token })).status).toBe(200);
    const choose = await call(ml, 'PUT /api/ml/settings', {
      token,
      body: { device_type: 'pump', entity_id: 'temperature' },
    });
    expect(choose.status).toBe(403);
    expect((await call(devices, 'DELETE /api/devices/{id}', { token, params })).status).toBe(204);
  });

  it('alarms, exports and audit', async () => {
    const registered = await call(devices, 'POST /api/devices', {
      token,
      body: { device_id: unique('DEV'), name: 'Oven', type: 'oven' },
    });
    const device = String(registered.body.device.id);
    const rule = await call(alarms, 'POST /api/alarm-rules', {
      token,
      body: {
        name: 'Oven silent',
        device_id: Number(device),
        severity: 'warning',
        condition: { type: 'no_data', minutes: 5 },
      },
    });
    expect(rule.status).toBe(201);
    const params = { id: String(rule.body.rule.id) };
    expect(
      (await call(alarms, 'POST /api/alarm-rules', { token, body: { name: '' } })).status,
    ).toBe(400);
    expect((await call(alarms, 'GET /api/alarm-rules', { token })).status).toBe(200);
    expect((await call(alarms, 'GET /api/alarm-rules/{id}', { token, params })).status).toBe(200);
    expect(
      (
        await call(alarms, 'PATCH /api/alarm-rules/{id}', {
          token,
          params,
          body: { severity: 'minor' },
        })
      ).status,
    ).toBe(200);
    expect((await call(alarms, 'GET /api/alarms', { token })).status).toBe(200);
    const none = { id: '2147483647' };
    expect((await call(alarms, 'GET /api/alarms/{id}', { token, params: none })).status).toBe(404);
    expect((await call(alarms, 'POST /api/alarms/{id}/ack', { token, params: none })).status).toBe(
      404,
    );
    expect((await call(alarms, 'DELETE /api/alarm-rules/{id}', { token, params })).status).toBe(
      204,
    );
    const range = { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' };
    expect(
      (
        await call(exporter, 'GET /api/devices/{id}/export', {
          token,
          params: { id: device },
          query: range,
        })
      ).status,
    ).toBe(200);
    const job = await call(exporter, 'POST /api/exports', { token, body: range });
    expect(job.status).toBe(202);
    expect(
      (
        await call(exporter, 'GET /api/exports/{id}', {
          token,
          params: { id: String(job.body.job.id) },
        })
      ).status,
    ).toBe(200);
    expect((await call(audit, 'GET /api/audit', { token })).status).toBe(200);
  });

  it('predictive maintenance', async () => {
    const tenantId = (await call(auth, 'GET /api/auth/me', { token })).body.tenant.id;
    const admin = new pg.Client({ connectionString: stack.databaseAdminUrl });
    await admin.connect();
    try {
      await setPlan(admin, String(tenantId), 'professional');
      const registered = await call(devices, 'POST /api/devices', {
        token,
        body: { device_id: unique('PRESS'), name: 'Press 1', type: 'press' },
      });
      const id = registered.body.device.id;
      await admin.query(
        `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name)
         VALUES ($1, $2, 'temperature', 'sensor', 'Temperature')`,
        [id, tenantId],
      );
      const params = { id: String(id) };
      const expectStatus = async (routeKey: string, options: object, status: number) =>
        expect((await call(maintenance, routeKey, { token, ...options })).status, routeKey).toBe(
          status,
        );
      await expectStatus(
        'POST /api/devices/{id}/maintenance',
        { params, body: { kind: 'inspection', note: 'ok' } },
        201,
      );
      await expectStatus('GET /api/devices/{id}/maintenance', { params }, 200);
      const limit = 'PUT /api/devices/{id}/entities/{entity_id}/limit';
      const entity = { ...params, entity_id: 'temperature' };
      await expectStatus(limit, { params: entity, body: { above: 90 } }, 200);
      await expectStatus(limit, { params: { ...params, entity_id: 'nothing' }, body: {} }, 404);
      await expectStatus('GET /api/devices/{id}/health', { params }, 200);
      await expectStatus('GET /api/maintenance/devices', {}, 200);
      await expectStatus('GET /api/maintenance/models', {}, 200);
      await expectStatus('POST /api/maintenance/models', { body: { device_type: 'press' } }, 202);
      const measuring = 'PUT /api/devices/{id}/entities/{entity_id}/measuring-range';
      const setRange = async (body: object, status: number) =>
        expect((await call(devices, measuring, { token, params: entity, body })).status).toBe(
          status,
        );
      await setRange({ min: 0, max: 150 }, 403);
      await setPlan(admin, String(tenantId), 'industrial');
      await setRange({ min: 0, max: 150 }, 200);
      await setRange({ min: 150, max: 0 }, 400);
      await setPlan(admin, String(tenantId), 'free');
      await expectStatus('GET /api/devices/{id}/health', { params }, 403);
    } finally {
      await admin.end();
    }
  });

  it('edge deployment', async () => {
    const tenantId = (await call(auth, 'GET /api/auth/me', { token })).body.tenant.id;
    const admin = new pg.Client({ connectionString: stack.databaseAdminUrl });
    await admin.connect();
    try {
      await setPlan(admin, String(tenantId), 'industrial');
      const registered = await call(devices, 'POST /api/devices', {
        token,
        body: { device_id: unique('EDGE'), name: 'Edge 1', type: 'press' },
      });
      const id = registered.body.device.id;
      await admin.query(
        `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name)
         VALUES ($1, $2, 'temperature', 'sensor', 'Temperature')`,
        [id, tenantId],
      );
      const params = { id: String(id) };
      const never = await call(ml, 'GET /api/devices/{id}/edge-model', { token, params });
      expect(never.status).toBe(200);
      expect(never.body).toMatchObject({ status: 'none', version: null, running: null });
      // Sent once a model is active (test/edge-deployment.test.ts); refused before.
      const send = (body: object) =>
        call(ml, 'POST /api/devices/{id}/edge-model', { token, params, body });
      const noModel = await send({ entity_id: 'temperature' });
      expect(noModel.status).toBe(422);
      expect(noModel.body.error.code).toBe('no_active_model');
      expect((await send({ entity_id: 'temperature', version: 'v-none' })).status).toBe(404);
      expect((await send({ entity_id: 'nothing' })).status).toBe(404);
      await setPlan(admin, String(tenantId), 'professional');
      const gated = await call(ml, 'GET /api/devices/{id}/edge-model', { token, params });
      expect(gated.status).toBe(403);
      expect(gated.body.error.code).toBe('plan_required');
    } finally {
      await admin.end();
    }
  });

  it('pattern recognition', async () => {
    const tenantId = (await call(auth, 'GET /api/auth/me', { token })).body.tenant.id;
    const admin = new pg.Client({ connectionString: stack.databaseAdminUrl });
    await admin.connect();
    try {
      await setPlan(admin, String(tenantId), 'industrial');
      const registered = await call(devices, 'POST /api/devices', {
        token,
        body: { device_id: unique('MODES'), name: 'Modes 1', type: 'press' },
      });
      const id = registered.body.device.id;
      await admin.query(
        `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name)
         VALUES ($1, $2, 'temperature', 'sensor', 'Temperature')`,
        [id, tenantId],
      );
      const params = { id: String(id) };
      // Without readings the job fails with its reason (test/patterns-api.test.ts finds modes).
      const started = await call(patterns, 'POST /api/devices/{id}/patterns/discover', {
        token,
        params,
        body: {},
      });
      expect(started.status).toBe(202);
      const job = await call(patterns, 'GET /api/devices/{id}/patterns/jobs/{job_id}', {
        token,
        params: { ...params, job_id: String(started.body.job.job_id) },
      });
      expect(job.body.job).toMatchObject({
        status: 'failed',
        error: { code: 'not_enough_history' },
      });
      const listed = await call(patterns, 'GET /api/devices/{id}/patterns', { token, params });
      expect(listed.body).toEqual({ patterns: [], current_pattern: null });
      const timeline = await call(patterns, 'GET /api/devices/{id}/patterns/timeline', {
        token,
        params,
      });
      expect(timeline.body).toEqual({ segments: [], window_seconds: null });
      const label = await call(patterns, 'PATCH /api/devices/{id}/patterns/{pattern_id}', {
        token,
        params: { ...params, pattern_id: '1' },
        body: { label: 'idle' },
      });
      expect(label.status).toBe(404);
      await setPlan(admin, String(tenantId), 'professional');
      const gated = await call(patterns, 'GET /api/devices/{id}/patterns', { token, params });
      expect(gated.body.error.code).toBe('plan_required');
    } finally {
      await admin.end();
    }
  });

  afterAll(() => {
    // Every documented route answered at least once above, so none is documented blind.
    const untested = Object.keys(routeTable).filter((routeKey) => !validated.has(routeKey));
    expect(untested).toEqual([]);
  });
});
