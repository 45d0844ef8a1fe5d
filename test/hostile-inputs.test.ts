import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';
import { callWebsocket, startManagementStandIn } from './support/websocket-management.ts';

// Inputs that used to reach PostgreSQL or InfluxDB and come back as 500s; each must be a
// clear 4xx that stores nothing.
const management = await startManagementStandIn();
const stack = useTestStack({ WEBSOCKET_MANAGEMENT_ENDPOINT: management.url });
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const ml = (await import('../functions/ml/handler.ts')).handler;
const live = (await import('../functions/live/handler.ts')).handler;
const admin = adminPool(stack);
afterAll(() => management.stop());

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'a\ud800b';
let token = '';
let tenantId = 0;
let devicePk = 0;

beforeAll(async () => {
  ({ token, tenantId } = await signUp(auth));
  devicePk = (await addDevice(devices, token, { name: 'Panel', type: 'display' })).id;
  // A text entity, as discovery would have created it.
  await admin.query(
    `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name) VALUES ($1, $2, 'message', 'text', 'Message')`,
    [devicePk, tenantId],
  );
});

async function stored() {
  const { rows } = await admin.query<{ devices: number; audit: number; commands: number }>(
    `SELECT (SELECT count(*) FROM devices WHERE tenant_id = $1)::int AS devices,
            (SELECT count(*) FROM audit_log WHERE tenant_id = $1)::int AS audit,
            (SELECT count(*) FROM commands WHERE tenant_id = $1)::int AS commands`,
    [tenantId],
  );
  return rows[0];
}

function expectClientError(response: { status: number; body: any }, label: string) {
  expect(response.status, label).toBeGreaterThanOrEqual(400);
  expect(response.status, label).toBeLessThan(500);
  expect(typeof response.body?.error?.code, label).toBe('string');
}

describe('text PostgreSQL cannot store is refused', () => {
  it('NUL and lone surrogates in names, types, locations, config, usernames and text commands', async () => {
    const before = await stored();
    const id = { id: String(devicePk) };
    const cases: Array<[string, () => ReturnType<typeof callRoute>]> = [];
    for (const [label, bad] of [
      ['NUL', NUL],
      ['lone surrogate', LONE_SURROGATE],
    ] as const) {
      for (const field of ['name', 'type', 'location']) {
        cases.push([
          `register device, ${field} with ${label}`,
          () =>
            callRoute(devices, 'POST /api/devices', {
              token,
              body: { device_id: unique('esp32'), name: 'n', type: 't', [field]: bad },
            }),
        ]);
        cases.push([
          `patch device, ${field} with ${label}`,
          () =>
            callRoute(devices, 'PATCH /api/devices/{id}', {
              token,
              params: id,
              body: { [field]: bad },
            }),
        ]);
      }
      cases.push([
        `config value with ${label}`,
        () =>
          callRoute(devices, 'POST /api/devices', {
            token,
            body: { device_id: unique('esp32'), name: 'n', type: 't', config: { note: bad } },
          }),
      ]);
      cases.push([
        `config key with ${label}`,
        () =>
          callRoute(devices, 'PATCH /api/devices/{id}', {
            token,
            params: id,
            body: { config: { [bad]: 1 } },
          }),
      ]);
      cases.push([
        `sign-in username with ${label}`,
        () =>
          callRoute(auth, 'POST /api/auth/login', {
            body: { username: bad, password: 'whatever-password' },
          }),
      ]);
      cases.push([
        `new user with ${label}`,
        () =>
          callRoute(auth, 'POST /api/users', {
            token,
            body: {
              username: bad,
              email: 'x@example.com',
              password: 'long-password',
              role: 'viewer',
            },
          }),
      ]);
      cases.push([
        `text command with ${label}`,
        () =>
          callRoute(devices, 'POST /api/devices/{id}/entities/{entity_id}/commands', {
            token,
            params: { ...id, entity_id: 'message' },
            body: { value: bad },
          }),
      ]);
    }
    for (const [label, call] of cases) expectClientError(await call(), label);
    expect(await stored()).toEqual(before);
  });
});

describe('ranges and ids beyond what the stores hold are refused', () => {
  it('from/to at InfluxDB range limits and an every of 999999w', async () => {
    const params = { id: String(devicePk) };
    const queries: Array<Record<string, string>> = [
      { from: '0001-01-01T00:00:00Z' },
      { from: '1677-09-21T00:12:43.145Z' },
      { to: '2262-04-11T23:47:16.854Z' },
      { to: '9999-12-31T23:59:59Z' },
      { from: '1969-12-31T23:59:59Z', to: '2000-01-01T00:00:00Z' },
      { every: '999999w' },
      { every: '999999d', fn: 'mean' },
    ];
    for (const query of queries) {
      for (const routeKey of [
        'GET /api/devices/{id}/telemetry',
        'GET /api/devices/{id}/anomalies',
        'GET /api/devices/{id}/predictions',
      ]) {
        const handler = routeKey.includes('telemetry') ? devices : ml;
        const response = await callRoute(handler, routeKey, { token, params, query });
        expectClientError(response, `${routeKey} ${JSON.stringify(query)}`);
      }
    }
  });

  it('ids above 2^31-1 in paths, in POST /api/ml/models and in WebSocket subscribe messages', async () => {
    for (const huge of ['2147483648', '9999999999']) {
      for (const [handler, routeKey, extra] of [
        [devices, 'GET /api/devices/{id}', {}],
        [devices, 'GET /api/devices/{id}/telemetry', {}],
        [devices, 'DELETE /api/devices/{id}', {}],
        [devices, 'GET /api/devices/{id}/commands', {}],
        [devices, 'GET /api/devices/{id}/commands/{command_id}', { command_id: randomUUID() }],
        [auth, 'DELETE /api/users/{id}', {}],
        [ml, 'GET /api/devices/{id}/anomalies', {}],
      ] as const) {
        const response = await callRoute(handler, routeKey, {
          token,
          params: { id: huge, ...extra },
        });
        expect(response.status, `${routeKey} ${huge}`).toBe(400);
      }
      const training = await callRoute(ml, 'POST /api/ml/models', {
        token,
        body: { device_id: Number(huge), entity_id: 'temperature' },
      });
      expect(training.status).toBe(400);
    }

    const connectionId = `conn-${randomUUID()}`;
    expect(await callWebsocket(live, '$connect', connectionId, { token })).toBe(200);
    const status = await callWebsocket(live, '$default', connectionId, {
      body: JSON.stringify({ action: 'subscribe', device_ids: [2 ** 31] }),
    });
    expect(status).toBe(200);
    const answer = management.pushed.find((push) => push.connectionId === connectionId);
    expect(answer?.body).toMatchObject({ type: 'error', error: { code: 'invalid_message' } });
  });
});
