import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setPlan } from '../infra/admin.ts';
import { startMailbox } from '../local/mailbox.ts';
import { verifyWebhook } from '../shared/alarms/domain/notifications.ts';
import { callRoute } from './support/api-event.ts';
import { kinesisEvent, ruleOutput } from './support/kinesis-event.ts';
import { scoreAnomalies } from './support/scoring.ts';
import { temporaryDataDir } from './support/servers.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * Alarm rules through the functions in-process against real PostgreSQL and InfluxDB:
 * readings go through the ingest handler (a Kinesis event), the rule fires, a webhook
 * receiver started here gets a signed POST, a mail reaches a real SMTP server, the alarm
 * clears past the hysteresis band; offline rules fire on the notifier's scheduled run.
 */
const mailDir = await temporaryDataDir('mailbox');
const mailbox = await startMailbox({ dir: mailDir.dir });
const stack = useTestStack({
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
  SMTP_URL: mailbox.url,
  MAIL_FROM: 'alarms@easysmart.test',
});
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const alarms = (await import('../functions/alarms/handler.ts')).handler;
const audit = (await import('../functions/audit/handler.ts')).handler;
const ingest = (await import('../functions/ingest/handler.ts')).handler;
const notifier = (await import('../functions/alarm-notifier/handler.ts')).handler;
const admin = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 2 });

interface Received {
  body: string;
  signature: string;
}
const received: Received[] = [];
let receiverStatus = 200;
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    received.push({
      body: Buffer.concat(chunks).toString('utf8'),
      signature: String(request.headers['x-easysmart-signature'] ?? ''),
    });
    response.writeHead(receiverStatus).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
const SECRET = 'whsec-0123456789abcdef';

afterAll(async () => {
  await admin.end();
  receiver.close();
  await mailbox.stop();
  await mailDir.remove();
});

async function send(...outputs: unknown[]) {
  const answer = await ingest(kinesisEvent(outputs));
  expect(answer.batchItemFailures).toEqual([]);
}

interface Tenant {
  tenantId: number;
  owner: string;
  ownerId: number;
  adminToken: string;
  adminId: number;
  viewer: string;
  id: number;
  deviceId: string;
}

async function tenant(): Promise<Tenant> {
  const name = unique('alarm');
  const registered = await callRoute(auth, 'POST /api/auth/register', {
    body: {
      tenant_name: unique('Plant'),
      username: name,
      email: `${name}@example.com`,
      password: 'alarm-password-1',
    },
  });
  const owner = registered.body.token as string;
  const client = await admin.connect();
  await setPlan(client, String(registered.body.tenant.id), 'professional').finally(() =>
    client.release(),
  );
  const addUser = async (role: string) => {
    const username = `${name}-${role}`;
    const added = await callRoute(auth, 'POST /api/users', {
      token: owner,
      body: { username, email: `${username}@example.com`, password: 'alarm-password-1', role },
    });
    const login = await callRoute(auth, 'POST /api/auth/login', {
      body: { username, password: 'alarm-password-1' },
    });
    return { token: login.body.token as string, id: added.body.user.id as number };
  };
  const adminUser = await addUser('admin');
  const viewer = await addUser('viewer');
  const deviceId = unique('PRESS');
  const created = await callRoute(devices, 'POST /api/devices', {
    token: owner,
    body: { device_id: deviceId, name: 'Press', type: 'hydraulic-press' },
  });
  await send(
    ruleOutput(`devices/${deviceId}/discovery`, {
      entities: [
        { entity_id: 'temperature', entity_type: 'sensor', name: 'Oil temperature', unit: '°C' },
        { entity_id: 'pump', entity_type: 'switch', name: 'Pump' },
      ],
    }),
  );
  return {
    tenantId: registered.body.tenant.id,
    owner,
    ownerId: registered.body.user.id,
    adminToken: adminUser.token,
    adminId: adminUser.id,
    viewer: viewer.token,
    id: created.body.device.id,
    deviceId,
  };
}

const reading = (t: Tenant, value: unknown, timeMs: number) =>
  ruleOutput(`devices/${t.deviceId}/temperature/state`, { value, timestamp: timeMs / 1000 });

async function mails(): Promise<string[]> {
  const names = (await readdir(mailDir.dir)).filter((name) => name.endsWith('.eml')).sort();
  return Promise.all(names.map((name) => readFile(path.join(mailDir.dir, name), 'utf8')));
}

let plant: Tenant;
let other: Tenant;
beforeAll(async () => {
  [plant, other] = await Promise.all([tenant(), tenant()]);
});

describe('a threshold rule', () => {
  let ruleId: number;
  let alarmId: number;
  const start = Math.floor(Date.now() / 1000) * 1000 - 60_000;

  it('is created by an admin and refused to a viewer', async () => {
    const body = {
      name: 'Oil too hot',
      device_id: plant.id,
      entity_id: 'temperature',
      severity: 'critical',
      condition: { type: 'threshold', op: '>', value: 80, for_seconds: 10, hysteresis: 5 },
      notify: { webhooks: [{ url: hookUrl, secret: SECRET }], emails: ['shift@plant.example'] },
      quiet_minutes: 0,
    };
    const refused = await callRoute(alarms, 'POST /api/alarm-rules', { token: plant.viewer, body });
    expect(refused.status).toBe(403);
    const created = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: plant.adminToken,
      body,
    });
    expect(created.status).toBe(201);
    ruleId = created.body.rule.id;
    expect(created.body.rule).toMatchObject({
      device_id: plant.id,
      severity: 'critical',
      notify: { webhooks: [{ url: hookUrl }], emails: ['shift@plant.example'] },
    });
    // The secret is write-only.
    expect(JSON.stringify(created.body)).not.toContain(SECRET);
  });

  it('waits out for_seconds, then raises once with a signed webhook and a mail', async () => {
    await send(reading(plant, 85, start), reading(plant, 86, start + 5_000));
    let listed = await callRoute(alarms, 'GET /api/alarms', { token: plant.viewer });
    expect(listed.body.alarms).toEqual([]);
    await send(reading(plant, 90, start + 10_000), reading(plant, 91, start + 11_000));
    listed = await callRoute(alarms, 'GET /api/alarms', { token: plant.viewer });
    expect(listed.body.alarms).toHaveLength(1);
    const alarm = listed.body.alarms[0];
    alarmId = alarm.id;
    expect(alarm).toMatchObject({
      rule_id: ruleId,
      device_id: plant.id,
      entity_id: 'temperature',
      severity: 'critical',
      status: 'active',
      count: 1,
      value: 90,
      started_at: new Date(start + 10_000).toISOString(),
      acknowledged_by: null,
      cleared_at: null,
    });
    expect(received).toHaveLength(1);
    const hook = received[0] as Received;
    expect(verifyWebhook(SECRET, hook.body, hook.signature, Math.floor(Date.now() / 1000))).toBe(
      true,
    );
    expect(
      verifyWebhook('another-secret-value', hook.body, hook.signature, Date.now() / 1000),
    ).toBe(false);
    expect(JSON.parse(hook.body)).toMatchObject({
      alarm_id: alarmId,
      event: 'raised',
      rule_name: 'Oil too hot',
      value: 90,
    });
    const sent = await mails();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toContain('To: shift@plant.example');
    expect(sent[0]).toContain('Subject: [CRITICAL] Alarm: Oil too hot');
  });

  it('stays active inside the hysteresis band, counts a return over the limit', async () => {
    await send(reading(plant, 77, start + 20_000), reading(plant, 88, start + 21_000));
    const detail = await callRoute(alarms, 'GET /api/alarms/{id}', {
      token: plant.viewer,
      params: { id: String(alarmId) },
    });
    expect(detail.body.alarm).toMatchObject({ status: 'active', count: 2, value: 88 });
    expect(detail.body.alarm.history.map((event: { type: string }) => event.type)).toEqual([
      'raised',
      'repeated',
    ]);
    // A repeat notifies nobody.
    expect(received).toHaveLength(1);
  });

  it('stays one occurrence when its name and condition are edited while it is open', async () => {
    const patched = await callRoute(alarms, 'PATCH /api/alarm-rules/{id}', {
      token: plant.adminToken,
      params: { id: String(ruleId) },
      body: {
        name: 'Oil too hot (pump side)',
        condition: { type: 'threshold', op: '>', value: 80, for_seconds: 5, hysteresis: 5 },
      },
    });
    expect(patched.status).toBe(200);
    await send(reading(plant, 89, start + 22_000));
    const detail = await callRoute(alarms, 'GET /api/alarms/{id}', {
      token: plant.viewer,
      params: { id: String(alarmId) },
    });
    expect(detail.body.alarm).toMatchObject({ status: 'active', count: 2, value: 88 });
    expect(received).toHaveLength(1);
  });

  it('is acknowledged by an admin, who is recorded; a viewer may not', async () => {
    const params = { id: String(alarmId) };
    expect(
      (await callRoute(alarms, 'POST /api/alarms/{id}/ack', { token: plant.viewer, params }))
        .status,
    ).toBe(403);
    const acked = await callRoute(alarms, 'POST /api/alarms/{id}/ack', {
      token: plant.adminToken,
      params,
    });
    expect(acked.status).toBe(200);
    expect(acked.body.alarm).toMatchObject({
      status: 'acknowledged',
      acknowledged_by: plant.adminId,
    });
    const again = await callRoute(alarms, 'POST /api/alarms/{id}/ack', {
      token: plant.adminToken,
      params,
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('alarm_not_open');
  });

  it('clears once the value is back below the limit less the hysteresis', async () => {
    await send(reading(plant, 76, start + 30_000));
    let detail = await callRoute(alarms, 'GET /api/alarms/{id}', {
      token: plant.viewer,
      params: { id: String(alarmId) },
    });
    expect(detail.body.alarm.status).toBe('acknowledged');
    await send(reading(plant, 74.5, start + 31_000));
    detail = await callRoute(alarms, 'GET /api/alarms/{id}', {
      token: plant.viewer,
      params: { id: String(alarmId) },
    });
    expect(detail.body.alarm).toMatchObject({
      status: 'cleared',
      acknowledged_by: plant.adminId,
      cleared_at: new Date(start + 31_000).toISOString(),
    });
    expect(detail.body.alarm.history.map((event: { type: string }) => event.type)).toEqual([
      'raised',
      'repeated',
      'acknowledged',
      'cleared',
    ]);
    expect(received.map((hook) => JSON.parse(hook.body).event)).toEqual(['raised', 'cleared']);
    expect(detail.body.alarm.deliveries).toHaveLength(4);
    expect(
      detail.body.alarm.deliveries.every(
        (delivery: { status: string }) => delivery.status === 'delivered',
      ),
    ).toBe(true);
    // The same readings again (a retried batch) change nothing.
    await send(reading(plant, 91, start + 11_000), reading(plant, 74.5, start + 31_000));
    const listed = await callRoute(alarms, 'GET /api/alarms', {
      token: plant.viewer,
      query: { status: 'active' },
    });
    expect(listed.body.alarms).toEqual([]);
  });

  it('retries a failing webhook with backoff and dead-letters it after the last try', async () => {
    receiverStatus = 503;
    await send(reading(plant, 95, start + 40_000), reading(plant, 96, start + 51_000));
    const listed = await callRoute(alarms, 'GET /api/alarms', {
      token: plant.viewer,
      query: { status: 'active' },
    });
    const id = String(listed.body.alarms[0].id);
    const webhook = async () =>
      (
        await callRoute(alarms, 'GET /api/alarms/{id}', { token: plant.viewer, params: { id } })
      ).body.alarm.deliveries.find(
        (delivery: { channel: string }) => delivery.channel === 'webhook',
      );
    expect(await webhook()).toMatchObject({ status: 'pending', attempts: 1, last_status: 503 });
    for (let attempt = 2; attempt <= 6; attempt++) {
      // The backoff is the database's clock: move the retry due instead of waiting for it.
      await admin.query(
        `UPDATE alarm_deliveries SET next_attempt_at = now() - interval '1 second' WHERE alarm_id = $1 AND status = 'pending'`,
        [Number(id)],
      );
      await notifier({});
    }
    expect(await webhook()).toMatchObject({ status: 'dead', attempts: 6, last_status: 503 });
    receiverStatus = 200;
  });
});

describe('an offline rule', () => {
  it('fires on the scheduled run once the device went offline, and clears when it is back', async () => {
    const created = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: other.owner,
      body: {
        name: 'Press offline',
        device_type: 'hydraulic-press',
        severity: 'major',
        condition: { type: 'offline', minutes: 0 },
      },
    });
    expect(created.status).toBe(201);
    await send(ruleOutput(`devices/${other.deviceId}/status`, 'offline'));
    await notifier({});
    const listed = await callRoute(alarms, 'GET /api/alarms', { token: other.viewer });
    expect(listed.body.alarms).toMatchObject([
      { rule_id: created.body.rule.id, device_id: other.id, status: 'active', severity: 'major' },
    ]);
    await send(ruleOutput(`devices/${other.deviceId}/status`, 'online'));
    await notifier({});
    const after = await callRoute(alarms, 'GET /api/alarms', { token: other.viewer });
    expect(after.body.alarms[0].status).toBe('cleared');
  });
});

describe('a rul_below rule', () => {
  it('fires on the scheduled run when the predicted life falls below the value, clears past the hysteresis', async () => {
    const created = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: other.adminToken,
      body: {
        name: 'Press wearing out',
        device_type: 'hydraulic-press',
        severity: 'major',
        condition: { type: 'rul_below', value: 20, hysteresis: 5 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body.rule.condition).toEqual({ type: 'rul_below', value: 20, hysteresis: 5 });
    const ruleId = created.body.rule.id;
    const model = await admin.query<{ id: number }>(
      `INSERT INTO rul_models (tenant_id, device_type, version, storage_key, step_unit, histories,
         metrics, status, trained_at)
       VALUES ($1, 'hydraulic-press', 'v1', 'test/none', 'cycles', 8, '{}', 'active', now())
       RETURNING id`,
      [other.tenantId],
    );
    const predict = (value: number, computedAt: Date) =>
      admin.query(
        `INSERT INTO rul_predictions (device_id, tenant_id, model_id, value, low, high, unit,
           model_version, window_end, computed_at)
         VALUES ($1, $2, $3, $4::float8, $4::float8 - 4, $4::float8 + 4, 'cycles', 'v1', $5, $5)
         ON CONFLICT (device_id) DO UPDATE SET value = EXCLUDED.value, low = EXCLUDED.low,
           high = EXCLUDED.high, window_end = EXCLUDED.window_end, computed_at = EXCLUDED.computed_at`,
        [other.id, other.tenantId, model.rows[0]?.id, value, computedAt],
      );
    const ruleAlarms = async () =>
      (await callRoute(alarms, 'GET /api/alarms', { token: other.viewer })).body.alarms.filter(
        (alarm: { rule_id: number }) => alarm.rule_id === ruleId,
      );
    await predict(35, new Date(Date.now() - 120_000));
    await notifier({});
    expect(await ruleAlarms()).toEqual([]);
    const at = new Date(Date.now() - 60_000);
    await predict(12.5, at);
    await notifier({});
    await notifier({});
    const raised = await ruleAlarms();
    expect(raised).toMatchObject([
      {
        device_id: other.id,
        entity_id: null,
        severity: 'major',
        status: 'active',
        count: 1,
        value: 12.5,
        started_at: at.toISOString(),
        reason: 'remaining useful life 12.5 cycles (10-90%: 8.5-16.5) below 20',
      },
    ]);
    // Back above the value but inside the hysteresis band: still active.
    await predict(22, new Date(Date.now() - 30_000));
    await notifier({});
    expect((await ruleAlarms())[0]).toMatchObject({ status: 'active', count: 1 });
    await predict(26, new Date());
    await notifier({});
    const cleared = (await ruleAlarms())[0];
    expect(cleared).toMatchObject({ status: 'cleared', value: 12.5 });
    const detail = await callRoute(alarms, 'GET /api/alarms/{id}', {
      token: other.viewer,
      params: { id: String(cleared.id) },
    });
    expect(detail.body.alarm.history.map((event: { type: string }) => event.type)).toEqual([
      'raised',
      'cleared',
    ]);
    expect(detail.body.alarm.history[1].value).toBe(26);
  });
});

describe('alarm routes', () => {
  it('keep tenants apart', async () => {
    const rules = await callRoute(alarms, 'GET /api/alarm-rules', { token: other.owner });
    expect(
      rules.body.rules.every((r: { device_id: number | null }) => r.device_id !== plant.id),
    ).toBe(true);
    const theirs = await callRoute(alarms, 'GET /api/alarms', { token: plant.owner });
    const id = String(theirs.body.alarms[0].id);
    for (const [key, options] of [
      ['GET /api/alarms/{id}', { params: { id } }],
      ['POST /api/alarms/{id}/ack', { params: { id } }],
    ] as const) {
      const answer = await callRoute(alarms, key, { token: other.owner, ...options });
      expect(answer.status, key).toBe(404);
    }
    const planRules = await callRoute(alarms, 'GET /api/alarm-rules', { token: plant.owner });
    const ruleId = String(planRules.body.rules[0].id);
    expect(
      (
        await callRoute(alarms, 'PATCH /api/alarm-rules/{id}', {
          token: other.owner,
          params: { id: ruleId },
          body: { name: 'stolen' },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await callRoute(alarms, 'DELETE /api/alarm-rules/{id}', {
          token: other.owner,
          params: { id: ruleId },
        })
      ).status,
    ).toBe(404);
    // A rule naming another tenant's device is refused as if the device did not exist.
    const foreign = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: other.owner,
      body: {
        name: 'x',
        device_id: plant.id,
        entity_id: 'temperature',
        severity: 'minor',
        condition: { type: 'threshold', op: '<', value: 1 },
      },
    });
    expect(foreign.status).toBe(404);
  });

  it('refuse bad input with a 400 and store nothing', async () => {
    const base = {
      name: 'bad',
      device_id: plant.id,
      entity_id: 'temperature',
      severity: 'minor',
      condition: { type: 'threshold', op: '>', value: 1 },
    };
    const bad: unknown[] = [
      { ...base, severity: 'fatal' },
      { ...base, condition: { type: 'threshold', op: '>' } },
      { ...base, condition: { type: 'threshold', op: 'outside', low: 5, high: 1 } },
      { ...base, condition: { type: 'no_data', minutes: 0 } },
      { ...base, condition: { type: 'sometimes' } },
      { ...base, device_type: 'press' },
      { ...base, entity_id: undefined },
      { ...base, name: 'a\u0000b' },
      { ...base, notify: { webhooks: [{ url: 'ftp://example.com', secret: SECRET }] } },
      { ...base, notify: { webhooks: [{ url: hookUrl, secret: 'short' }] } },
      { ...base, notify: { emails: ['not an address'] } },
      { ...base, extra: true },
      // A remaining-useful-life rule watches the device, not an entity; its value is a life.
      { ...base, condition: { type: 'rul_below', value: 10 } },
      { ...base, entity_id: undefined, condition: { type: 'rul_below', value: 0 } },
    ];
    const before = await callRoute(alarms, 'GET /api/alarm-rules', { token: plant.owner });
    for (const body of bad) {
      const answer = await callRoute(alarms, 'POST /api/alarm-rules', { token: plant.owner, body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.code, JSON.stringify(body)).toMatch(
        /^(validation_failed|invalid_rule)$/,
      );
    }
    const queries: Array<Record<string, string>> = [
      { status: 'open' },
      { severity: 'x' },
      { device_id: '0' },
      { limit: '5000' },
    ];
    for (const query of queries) {
      const answer = await callRoute(alarms, 'GET /api/alarms', { token: plant.owner, query });
      expect(answer.status, JSON.stringify(query)).toBe(400);
    }
    const after = await callRoute(alarms, 'GET /api/alarm-rules', { token: plant.owner });
    expect(after.body.rules).toEqual(before.body.rules);
    // Anomaly rules need a plan with anomaly detection; this tenant has one.
    const free = await callRoute(auth, 'POST /api/auth/register', {
      body: {
        tenant_name: unique('Free'),
        username: unique('free'),
        email: `${unique('free')}@example.com`,
        password: 'alarm-password-1',
      },
    });
    const anomaly = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: free.body.token,
      body: {
        ...base,
        device_id: undefined,
        device_type: 'press',
        condition: { type: 'anomaly', min_score: 3 },
      },
    });
    expect(anomaly.status).toBe(403);
    expect(anomaly.body.error.code).toBe('plan_required');
    // Remaining-useful-life rules need predictive maintenance; a free plan has none.
    const rul = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: free.body.token,
      body: {
        ...base,
        device_id: undefined,
        entity_id: undefined,
        device_type: 'press',
        condition: { type: 'rul_below', value: 10 },
      },
    });
    expect(rul.status).toBe(403);
    expect(rul.body.error.code).toBe('plan_required');
  });
});

describe('the audit trail', () => {
  it('shows the session in order, with who, from where and the changed fields', async () => {
    const rules = await callRoute(alarms, 'GET /api/alarm-rules', { token: plant.owner });
    const id = String(rules.body.rules[0].id);
    const patched = await callRoute(alarms, 'PATCH /api/alarm-rules/{id}', {
      token: plant.owner,
      params: { id },
      body: { severity: 'major' },
      sourceIp: '203.0.113.9',
    });
    expect(patched.status).toBe(200);
    const trail = await callRoute(audit, 'GET /api/audit', { token: plant.owner });
    expect(trail.status).toBe(200);
    const actions = trail.body.entries.map((entry: { action: string }) => entry.action).reverse();
    expect(actions).toEqual([
      'tenant.register',
      'tenant.plan',
      'user.add',
      'auth.login',
      'user.add',
      'auth.login',
      'device.register',
      'alarm_rule.create',
      'alarm_rule.update',
      'alarm.acknowledge',
      'alarm_rule.update',
    ]);
    expect(trail.body.entries[0]).toMatchObject({
      user_id: plant.ownerId,
      target: `alarm_rule:${id}`,
      source: '203.0.113.9',
      changes: { severity: { before: 'critical', after: 'major' } },
    });
    const page = await callRoute(audit, 'GET /api/audit', {
      token: plant.owner,
      query: { action: 'alarm_rule.', limit: '1' },
    });
    expect(page.body.entries.map((entry: { action: string }) => entry.action)).toEqual([
      'alarm_rule.update',
    ]);
    const next = await callRoute(audit, 'GET /api/audit', {
      token: plant.owner,
      query: { action: 'alarm_rule.', limit: '1', cursor: page.body.next_cursor },
    });
    expect(next.body.entries.map((entry: { action: string }) => entry.action)).toEqual([
      'alarm_rule.update',
    ]);
    expect(next.body.entries[0].changes.name).toEqual({
      before: 'Oil too hot',
      after: 'Oil too hot (pump side)',
    });
    expect((await callRoute(audit, 'GET /api/audit', { token: plant.viewer })).status).toBe(403);
    const foreign = await callRoute(audit, 'GET /api/audit', { token: other.owner });
    expect(
      foreign.body.entries.some((entry: { target: string }) => entry.target === `alarm_rule:${id}`),
    ).toBe(false);
    expect(
      (
        await callRoute(audit, 'GET /api/audit', {
          token: plant.owner,
          query: { from: 'yesterday' },
        })
      ).status,
    ).toBe(400);
    const sent = await callRoute(devices, 'POST /api/devices/{id}/entities/{entity_id}/commands', {
      token: plant.adminToken,
      params: { id: String(plant.id), entity_id: 'pump' },
      body: { value: true },
    });
    // No data-plane endpoint in this file's environment: the publish fails (502), the
    // command was still sent by a person, and the trail says so.
    expect([202, 502]).toContain(sent.status);
    const commands = await callRoute(audit, 'GET /api/audit', {
      token: plant.owner,
      query: { action: 'command.send' },
    });
    expect(commands.body.entries).toMatchObject([
      {
        user_id: plant.adminId,
        target: `device:${plant.id}`,
        details: { entity_id: 'pump', value: true },
      },
    ]);
  });

  it('is append-only for the application role', async () => {
    const app = new pg.Client({ connectionString: stack.databaseUrl });
    await app.connect();
    try {
      await app.query(`SELECT set_config('app.current_tenant_id', $1, false)`, [
        String(plant.tenantId),
      ]);
      const { rows } = await app.query('SELECT count(*)::int AS n FROM audit_log');
      expect(rows[0].n).toBeGreaterThan(0);
      await expect(app.query(`UPDATE audit_log SET action = 'forged'`)).rejects.toThrow(
        /permission denied/,
      );
      await expect(app.query('DELETE FROM audit_log')).rejects.toThrow(/permission denied/);
      await expect(app.query('TRUNCATE audit_log')).rejects.toThrow(/permission denied/);
    } finally {
      await app.end();
    }
  });
});

describe('an anomaly rule', () => {
  it('is judged by the scheduled scoring pass, not by ingestion, and raises once however often the pass runs', async () => {
    const press = await tenant();
    const created = await callRoute(alarms, 'POST /api/alarm-rules', {
      token: press.adminToken,
      body: {
        name: 'Odd oil temperature',
        device_id: press.id,
        entity_id: 'temperature',
        severity: 'major',
        condition: { type: 'anomaly', min_score: 0.5 },
        quiet_minutes: 0,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const alarmsOfPress = async () =>
      (await callRoute(alarms, 'GET /api/alarms', { token: press.viewer })).body.alarms;
    const end = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    await send(
      ...Array.from({ length: 200 }, (_, n) =>
        reading(press, 40 + 0.2 * Math.sin(n), end - (200 - n) * 60_000),
      ),
    );
    await scoreAnomalies(press.tenantId);
    expect(await alarmsOfPress()).toEqual([]);

    await send(reading(press, 95, end));
    // Stored at once, scored by the next pass: no alarm yet.
    expect(await alarmsOfPress()).toEqual([]);
    const pass = await scoreAnomalies(press.tenantId);
    expect(pass.anomalies).toBeGreaterThanOrEqual(1);
    const raised = await alarmsOfPress();
    expect(raised).toMatchObject([
      {
        rule_id: created.body.rule.id,
        device_id: press.id,
        entity_id: 'temperature',
        status: 'active',
        count: 1,
        value: 95,
        started_at: new Date(end).toISOString(),
      },
    ]);
    // Passes that find nothing new change nothing.
    await scoreAnomalies(press.tenantId);
    expect(await alarmsOfPress()).toMatchObject([{ id: raised[0].id, count: 1 }]);
  });
});
