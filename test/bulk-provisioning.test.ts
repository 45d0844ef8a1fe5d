import { readFile } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvRecords } from '../shared/http/csv.ts';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { waitUntil } from './support/servers.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { type SignedUp, signUp } from './support/tenants.ts';

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const admin = adminPool(stack);

const FLEET_SIZE = 500;
const openClients: MqttClient[] = [];

const bulk = (session: SignedUp, options: Parameters<typeof callRoute>[2]) =>
  callRoute(devices, 'POST /api/devices/bulk', { token: session.token, ...options });

async function deviceCount(session: SignedUp): Promise<number> {
  const listed = await callRoute(devices, 'GET /api/devices', { token: session.token });
  return listed.body.devices.length;
}

/** Whether the broker's password file (where devices' credentials are) has a line for it. */
async function brokerHasClient(username: string): Promise<boolean> {
  const lines = (await readFile(stack.mqttDevicePasswordFile, 'utf8')).split('\n');
  return lines.some((line) => line.startsWith(`${username}:`));
}

async function connectDevice(credential: {
  client_id: string;
  username: string;
  password: string;
}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(stack.mqttUrl, {
    clientId: credential.client_id,
    username: credential.username,
    password: credential.password,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  openClients.push(client);
  return client;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function inBatches<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

let industrial: SignedUp;
let starter: SignedUp;

beforeAll(async () => {
  [industrial, starter] = await Promise.all([
    signUp(auth, { plan: 'industrial', admin }),
    signUp(auth, { plan: 'starter', admin }),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(openClients.map((client) => client.endAsync(true)));
});

describe('bulk provisioning (POST /api/devices/bulk) on the local stack', () => {
  it(`registers ${FLEET_SIZE} devices at once; every credential connects, and only to its own topics`, async () => {
    const prefix = unique('fleet');
    const rows = Array.from({ length: FLEET_SIZE }, (_, index) => ({
      device_id: `${prefix}-${String(index).padStart(4, '0')}`,
      name: `Pump ${index}`,
      type: 'pump',
      location: 'Line 1',
    }));
    const created = await bulk(industrial, { body: rows });
    expect(created.status).toBe(201);
    expect(created.body.devices).toHaveLength(FLEET_SIZE);
    created.body.devices.forEach((item: any, index: number) => {
      expect(item.row).toBe(index + 1);
      expect(item.device).toMatchObject({
        device_id: rows[index]?.device_id,
        name: `Pump ${index}`,
      });
      expect(item.credentials).toMatchObject({
        client_id: rows[index]?.device_id,
        username: rows[index]?.device_id,
      });
    });
    expect(await deviceCount(industrial)).toBe(FLEET_SIZE);

    // One observer with the platform's account sees what the broker lets through.
    const seen: string[] = [];
    const observer = await mqtt.connectAsync(stack.mqttUrl, {
      ...stack.mqttPlatform,
      clientId: unique('observer'),
      reconnectPeriod: 0,
    });
    openClients.push(observer);
    observer.on('message', (topic) => seen.push(topic));
    await observer.subscribeAsync(`devices/#`, { qos: 1 });

    const credentials = created.body.devices.map((item: any) => item.credentials);
    const refusedPublishes: Array<string | number | undefined> = [];
    const receivedBy = new Map<string, string[]>();
    await inBatches(credentials, 25, async (credential: any) => {
      const client = await connectDevice(credential);
      const received: string[] = [];
      receivedBy.set(credential.client_id, received);
      client.on('message', (topic) => received.push(topic));
      // Every device asks for everything; the broker must deliver only its own topics.
      await client.subscribeAsync('devices/#', { qos: 1 });
      const index = credentials.indexOf(credential);
      const neighbour = credentials[(index + 1) % credentials.length].client_id;
      await client.publishAsync(`devices/${credential.client_id}/status`, 'online', { qos: 1 });
      // MQTT 5 answers the refused publish with PUBACK 0x87; it must not reach anyone either.
      const spoof = await client
        .publishAsync(`devices/${neighbour}/status`, 'spoofed', { qos: 1 })
        .then(
          () => 'accepted',
          (error: { code?: number }) => error.code,
        );
      refusedPublishes.push(spoof);
      await client.publishAsync(`devices/${credential.client_id}/marker`, 'done', { qos: 1 });
    });
    await waitUntil(
      'every marker',
      async () => seen.filter((topic) => topic.endsWith('/marker')).length >= FLEET_SIZE,
      { timeoutMs: 60_000 },
    );
    const statuses = seen.filter(
      (topic) => topic.startsWith(`devices/${prefix}-`) && topic.endsWith('/status'),
    );
    // Each device's own status arrived once; no neighbour's status was spoofed.
    expect(statuses.sort()).toEqual(rows.map((row) => `devices/${row.device_id}/status`).sort());
    expect(new Set(refusedPublishes)).toEqual(new Set([0x87]));

    // The platform sends each device a command; each device gets its own and no other.
    for (const row of rows) {
      await observer.publishAsync(`devices/${row.device_id}/probe/set`, '{"value":1}', { qos: 1 });
    }
    await waitUntil(
      'every command',
      async () =>
        rows.every((row) =>
          receivedBy.get(row.device_id)?.includes(`devices/${row.device_id}/probe/set`),
        ),
      { timeoutMs: 60_000 },
    );
    for (const row of rows) {
      const foreign = (receivedBy.get(row.device_id) ?? []).filter(
        (topic) => !topic.startsWith(`devices/${row.device_id}/`),
      );
      expect(foreign, row.device_id).toEqual([]);
    }
  }, 240_000);

  it('reports every failing row and creates nothing when any row fails', async () => {
    const prefix = unique('rows');
    const taken = `${prefix}-taken`;
    const first = await bulk(industrial, {
      body: [{ device_id: taken, name: 'Taken', type: 'pump' }],
    });
    expect(first.status).toBe(201);
    const before = await deviceCount(industrial);

    const good = `${prefix}-good`;
    const answer = await bulk(industrial, {
      body: [
        { device_id: good, name: 'Good', type: 'pump' },
        { device_id: 'bad id with spaces', name: 'Bad', type: 'pump' },
        { device_id: `${prefix}-noname`, type: 'pump' },
        { device_id: 'easysmart-rules', name: 'Reserved', type: 'pump' },
        { device_id: good, name: 'Again', type: 'pump' },
        { device_id: taken, name: 'Taken', type: 'pump' },
      ],
    });
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe('invalid_rows');
    expect(answer.body.error.rows.map((row: any) => [row.row, row.code])).toEqual([
      [2, 'validation_failed'],
      [3, 'validation_failed'],
      [4, 'reserved_device_id'],
      [5, 'duplicate_device_id'],
      [6, 'device_id_taken'],
    ]);
    expect(answer.body.error.rows[1].message).toMatch(/name/);
    expect(await deviceCount(industrial)).toBe(before);
    expect(await brokerHasClient(good)).toBe(false);
  });

  it("refuses a batch beyond the plan's device limit whole", async () => {
    const prefix = unique('cap');
    const rows = Array.from({ length: 26 }, (_, index) => ({
      device_id: `${prefix}-${index}`,
      name: `Sensor ${index}`,
      type: 'sensor',
    }));
    const refused = await bulk(starter, { body: rows });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('plan_limit_reached');
    expect(await deviceCount(starter)).toBe(0);
    expect(await brokerHasClient(`${prefix}-0`)).toBe(false);

    const fits = await bulk(starter, { body: rows.slice(0, 25) });
    expect(fits.status).toBe(201);
    expect(await deviceCount(starter)).toBe(25);
  });

  it('takes a CSV file and answers the credentials as a CSV download that connects', async () => {
    const prefix = unique('csv');
    const csv = [
      'device_id,name,type,location',
      `${prefix}-a,"Boiler, north",boiler,"Hall ""B"""`,
      `${prefix}-b,Boiler south,boiler,`,
      '',
    ].join('\r\n');
    const answer = await bulk(industrial, {
      rawBody: csv,
      headers: { 'Content-Type': 'text/csv', Accept: 'text/csv' },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    expect(answer.headers['content-type']).toMatch(/^text\/csv/);
    expect(answer.headers['content-disposition']).toMatch(/attachment; filename=/);
    const lines = csvRecords(answer.body);
    expect(lines.map((line) => line.fields.device_id)).toEqual([`${prefix}-a`, `${prefix}-b`]);
    const listed = await callRoute(devices, 'GET /api/devices', { token: industrial.token });
    const north = listed.body.devices.find((device: any) => device.device_id === `${prefix}-a`);
    expect(north).toMatchObject({ name: 'Boiler, north', location: 'Hall "B"' });
    const south = listed.body.devices.find((device: any) => device.device_id === `${prefix}-b`);
    expect(south.location).toBeNull();
    for (const line of lines) {
      const client = await connectDevice({
        client_id: line.fields.client_id as string,
        username: line.fields.username as string,
        password: line.fields.password as string,
      });
      expect(client.connected).toBe(true);
    }

    const malformed = await bulk(industrial, {
      rawBody: 'device_id,name,type\n"unclosed,x,y\n',
      headers: { 'Content-Type': 'text/csv' },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_csv');
  });

  it('audits each registered device with the bulk marker', async () => {
    const prefix = unique('audit');
    const answer = await bulk(industrial, {
      body: [
        { device_id: `${prefix}-1`, name: 'One', type: 'meter' },
        { device_id: `${prefix}-2`, name: 'Two', type: 'meter' },
      ],
    });
    expect(answer.status).toBe(201);
    const { rows } = await admin.query(
      `SELECT details->>'device_id' AS device_id, user_id FROM audit_log
       WHERE tenant_id = $1 AND action = 'device.register' AND details->>'bulk' = 'true'
         AND details->>'device_id' LIKE $2 ORDER BY details->>'device_id'`,
      [industrial.tenantId, `${prefix}-%`],
    );
    expect(rows).toEqual([
      { device_id: `${prefix}-1`, user_id: industrial.userId },
      { device_id: `${prefix}-2`, user_id: industrial.userId },
    ]);
  });
});
