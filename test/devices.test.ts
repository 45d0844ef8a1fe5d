import mqtt from 'mqtt';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import {
  type SignedUp as Session,
  setTenantPlan,
  signUp as signUpWith,
} from './support/tenants.ts';

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const admin = adminPool(stack);
const signUp = () => signUpWith(auth);

const register = (session: Session, body: Record<string, unknown>) =>
  callRoute(devices, 'POST /api/devices', { token: session.token, body });
const byId = (routeKey: string, session: Session, id: number, body?: unknown) =>
  callRoute(devices, routeKey, { token: session.token, params: { id: String(id) }, body });

function connect(options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(stack.mqttUrl, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
  });
}

describe('device registry', () => {
  let a: Session;
  let b: Session;
  beforeAll(async () => {
    // These two register more devices than the free plan allows.
    [a, b] = await Promise.all([
      signUpWith(auth, { plan: 'professional', admin }),
      signUpWith(auth, { plan: 'professional', admin }),
    ]);
  });

  it('registers a device, shows its credential once, and lists and reads it', async () => {
    const deviceId = unique('COMP');
    const created = await register(a, {
      device_id: deviceId,
      name: 'Compressor 1',
      type: 'compressor',
      location: 'Hall A',
    });
    expect(created.status).toBe(201);
    expect(created.body.device).toMatchObject({
      device_id: deviceId,
      name: 'Compressor 1',
      type: 'compressor',
      location: 'Hall A',
      status: 'offline',
      last_seen: null,
    });
    expect(created.body.credentials).toMatchObject({ client_id: deviceId, username: deviceId });
    expect(created.body.credentials.password.length).toBeGreaterThanOrEqual(24);

    const list = await callRoute(devices, 'GET /api/devices', { token: a.token });
    expect(list.body.devices.map((d: { device_id: string }) => d.device_id)).toContain(deviceId);
    expect(JSON.stringify(list.body)).not.toContain(created.body.credentials.password);

    const detail = await byId('GET /api/devices/{id}', a, created.body.device.id);
    expect(detail.status).toBe(200);
    expect(detail.body.device.device_id).toBe(deviceId);
    expect(detail.body.entities).toEqual([]);
    expect(JSON.stringify(detail.body)).not.toContain(created.body.credentials.password);
  });

  it('updates only the fields given', async () => {
    const created = await register(a, {
      device_id: unique('PUMP'),
      name: 'Pump',
      type: 'pump',
      location: 'Hall B',
    });
    const patched = await byId('PATCH /api/devices/{id}', a, created.body.device.id, {
      name: 'Main pump',
    });
    expect(patched.status).toBe(200);
    expect(patched.body.device).toMatchObject({
      name: 'Main pump',
      type: 'pump',
      location: 'Hall B',
    });
    const cleared = await byId('PATCH /api/devices/{id}', a, created.body.device.id, {
      location: null,
    });
    expect(cleared.body.device.location).toBeNull();
  });

  it('keeps tenants apart on every device route', async () => {
    const created = await register(a, { device_id: unique('RELAY'), name: 'Relay', type: 'relay' });
    const id = created.body.device.id;

    const list = await callRoute(devices, 'GET /api/devices', { token: b.token });
    expect(list.body.devices.some((d: { id: number }) => d.id === id)).toBe(false);
    for (const [routeKey, body] of [
      ['GET /api/devices/{id}', undefined],
      ['PATCH /api/devices/{id}', { name: 'stolen' }],
      ['DELETE /api/devices/{id}', undefined],
    ] as const) {
      const response = await byId(routeKey, b, id, body);
      expect(response.status, routeKey).toBe(404);
      expect(response.body.error.code).toBe('device_not_found');
    }
    const unchanged = await byId('GET /api/devices/{id}', a, id);
    expect(unchanged.status).toBe(200);
    expect(unchanged.body.device.name).toBe('Relay');
  });

  it('rejects a device_id registered anywhere with 409, without saying by whom', async () => {
    const deviceId = unique('DUP');
    expect((await register(a, { device_id: deviceId, name: 'First', type: 'pump' })).status).toBe(
      201,
    );
    for (const session of [a, b]) {
      const again = await register(session, { device_id: deviceId, name: 'Second', type: 'pump' });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('device_id_taken');
      expect(again.body.error.message).not.toContain(a.tenantName);
      expect(again.body.error.message).not.toMatch(/tenant/i);
    }
    const { rows } = await admin.query('SELECT count(*) FROM devices WHERE device_id = $1', [
      deviceId,
    ]);
    expect(Number(rows[0].count)).toBe(1);
  });

  it('refuses bad input with a 4xx and a code, and registers nothing', async () => {
    const marker = unique('BAD');
    const bodies: Array<[unknown, string]> = [
      [{ device_id: `${marker}/x`, name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: `${marker}+`, name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: `${marker}#`, name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: `${marker} x`, name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: `${marker}${'x'.repeat(129)}`, name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: '', name: 'n', type: 't' }, 'validation_failed'],
      [{ device_id: marker, name: '', type: 't' }, 'validation_failed'],
      [{ device_id: marker, name: 'n'.repeat(256), type: 't' }, 'validation_failed'],
      [{ device_id: marker, name: 'n' }, 'validation_failed'],
      [{ device_id: marker, name: 7, type: 't' }, 'validation_failed'],
      [{ device_id: marker, name: 'n', type: 't', config: 'x' }, 'validation_failed'],
      [{ device_id: marker, name: 'n', type: 't', tenant_id: b.tenantId }, 'validation_failed'],
    ];
    for (const [body, code] of bodies) {
      const response = await register(a, body as Record<string, unknown>);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(response.body.error.code).toBe(code);
    }
    const malformed = await callRoute(devices, 'POST /api/devices', {
      token: a.token,
      rawBody: '{"device_id":',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_json');
    const badId = await callRoute(devices, 'GET /api/devices/{id}', {
      token: a.token,
      params: { id: '1 OR 1=1' },
    });
    expect(badId.status).toBe(400);
    const { rows } = await admin.query('SELECT count(*) FROM devices WHERE device_id LIKE $1', [
      `${marker}%`,
    ]);
    expect(Number(rows[0].count)).toBe(0);
  });

  it('enforces the plan’s device limit, and a plan change applies at once', async () => {
    const tenant = await signUp();
    for (let n = 0; n < 3; n++) {
      expect(
        (await register(tenant, { device_id: unique('LIM'), name: `d${n}`, type: 't' })).status,
      ).toBe(201);
    }
    const over = await register(tenant, { device_id: unique('LIM'), name: 'fourth', type: 't' });
    expect(over.status).toBe(403);
    expect(over.body.error.code).toBe('plan_limit_reached');
    const { rows } = await admin.query('SELECT count(*) FROM devices WHERE tenant_id = $1', [
      tenant.tenantId,
    ]);
    expect(Number(rows[0].count)).toBe(3);

    // The operator names the tenant by its name.
    await setTenantPlan(admin, tenant.tenantName, 'starter');
    expect(
      (await register(tenant, { device_id: unique('LIM'), name: 'fourth', type: 't' })).status,
    ).toBe(201);
    const overview = await callRoute(auth, 'GET /api/tenant', { token: tenant.token });
    expect(overview.body.plan).toMatchObject({ name: 'starter', max_devices: 25 });
    expect(overview.body.usage.devices).toBe(4);
  });

  it('concurrent registrations cannot exceed the limit', async () => {
    const tenant = await signUp();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) =>
        register(tenant, { device_id: unique('RACE'), name: `r${n}`, type: 't' }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 403)).toHaveLength(3);
  });

  it('an expired trial falls back to the free plan’s limits', async () => {
    const tenant = await signUp();
    await setTenantPlan(admin, tenant.tenantId, 'professional', 14);
    const during = await callRoute(auth, 'GET /api/tenant', { token: tenant.token });
    expect(during.body.tenant.effective_plan).toBe('professional');
    await admin.query(
      `UPDATE tenants SET trial_ends_at = now() - interval '1 minute' WHERE id = $1`,
      [tenant.tenantId],
    );
    const after = await callRoute(auth, 'GET /api/tenant', { token: tenant.token });
    expect(after.body.tenant).toMatchObject({ plan: 'professional', effective_plan: 'free' });
    expect(after.body.plan.name).toBe('free');
  });

  it('a viewer cannot register, change or delete devices', async () => {
    const owner = await signUp();
    const created = await register(owner, { device_id: unique('VIEW'), name: 'Seen', type: 't' });
    const viewerName = unique('viewer');
    await callRoute(auth, 'POST /api/users', {
      token: owner.token,
      body: {
        username: viewerName,
        email: `${viewerName}@example.com`,
        password: 'viewer-password',
        role: 'viewer',
      },
    });
    const login = await callRoute(auth, 'POST /api/auth/login', {
      body: { username: viewerName, password: 'viewer-password' },
    });
    const viewer = { ...owner, token: login.body.token };
    expect((await callRoute(devices, 'GET /api/devices', { token: viewer.token })).status).toBe(
      200,
    );
    const attempts = [
      await register(viewer, { device_id: unique('VIEW'), name: 'No', type: 't' }),
      await byId('PATCH /api/devices/{id}', viewer, created.body.device.id, { name: 'No' }),
      await byId('DELETE /api/devices/{id}', viewer, created.body.device.id),
    ];
    for (const response of attempts) {
      expect(response.status).toBe(403);
      expect(response.body.error.code).toBe('insufficient_role');
    }
    expect(
      (await byId('GET /api/devices/{id}', owner, created.body.device.id)).body.device.name,
    ).toBe('Seen');
  });
});

describe('device credentials in Mosquitto', () => {
  it('a registered device connects as itself and stays in its topics; a deleted one cannot connect', async () => {
    const owner = await signUp();
    const deviceId = unique('MQTT');
    const created = await register(owner, {
      device_id: deviceId,
      name: 'Broker test',
      type: 'pump',
    });
    const { username, password, client_id } = created.body.credentials;

    const platform = await connect({
      username: stack.mqttPlatform.username,
      password: stack.mqttPlatform.password,
      clientId: unique('platform'),
    });
    const received: string[] = [];
    platform.on('message', (topic) => received.push(topic));
    await platform.subscribeAsync('devices/#', { qos: 1 });

    const device = await connect({ username, password, clientId: client_id });
    await device.publishAsync(`devices/${deviceId}/temp/state`, '{"value":1}', { qos: 1 });
    await device.publishAsync('devices/SOMEONE_ELSE/temp/state', '{"value":2}', { qos: 1 });
    // A marker published after the refused message on the same connection: the broker keeps one
    // client's messages in order, so once the marker is delivered the refused one would have been.
    await device.publishAsync(`devices/${deviceId}/marker/state`, '{"value":3}', { qos: 1 });
    await vi.waitFor(() => expect(received).toContain(`devices/${deviceId}/marker/state`));
    expect(received).toContain(`devices/${deviceId}/temp/state`);
    expect(received).not.toContain('devices/SOMEONE_ELSE/temp/state');
    device.end(true);

    await expect(connect({ username, password: 'wrong', clientId: client_id })).rejects.toThrow();

    const removed = await callRoute(devices, 'DELETE /api/devices/{id}', {
      token: owner.token,
      params: { id: String(created.body.device.id) },
    });
    expect(removed.status).toBe(204);
    await expect(connect({ username, password, clientId: client_id })).rejects.toThrow();
    const gone = await callRoute(devices, 'GET /api/devices/{id}', {
      token: owner.token,
      params: { id: String(created.body.device.id) },
    });
    expect(gone.status).toBe(404);
    platform.end(true);
  });
});
