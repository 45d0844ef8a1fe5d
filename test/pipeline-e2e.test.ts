import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type DeviceCredentials,
  type LocalStack,
  registerOnStack,
  signUpOnStack,
  startLocalStack,
} from './support/local-stack.ts';
import { privateInfluxdb, waitUntil } from './support/servers.ts';

/**
 * The telemetry pipeline end to end, through the real local stack (serverless-offline, the
 * IoT rules emulator, Mosquitto with per-device credentials, PostgreSQL, InfluxDB): a
 * device publishes with its own credential, the API serves back every reading, a dashboard
 * WebSocket sees them live, commands round-trip, and an InfluxDB outage loses nothing the
 * broker acknowledged.
 */
let influx: Awaited<ReturnType<typeof privateInfluxdb>>;
let stack: LocalStack;
let token: string;
let devicePk: number;
let deviceId: string;
let credentials: DeviceCredentials;
const liveReadings: Array<{ entity_id: string; value: unknown }> = [];
const liveStatuses: string[] = [];
let socket: WebSocket;
let websocketUrl: string;
let elsewhere: LiveSocket;

interface LiveSocket {
  socket: WebSocket;
  messages: any[];
  /** Sends a message and resolves with the next answer that is not a push of events. */
  request(message: unknown): Promise<any>;
}

/** A dashboard tab's WebSocket, signed in as the test's user. */
async function openSocket(): Promise<LiveSocket> {
  const live = new WebSocket(`${websocketUrl}?token=${encodeURIComponent(token)}`);
  await new Promise((resolve, reject) => {
    live.once('open', resolve);
    live.once('error', reject);
  });
  const messages: any[] = [];
  live.on('message', (data) => messages.push(JSON.parse(String(data))));
  return {
    socket: live,
    messages,
    async request(message) {
      const answers = () => messages.filter((m) => m.type !== 'events');
      const before = answers().length;
      live.send(typeof message === 'string' ? message : JSON.stringify(message));
      await waitUntil('an answer on the WebSocket', async () => answers().length > before, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      return answers()[before];
    },
  };
}

beforeAll(async () => {
  // The test owns InfluxDB so it can take it away mid-stream.
  influx = await privateInfluxdb();
  stack = await startLocalStack({ INFLUX_URL: influx.url });
  ({ token } = await signUpOnStack(stack));
  ({
    id: devicePk,
    deviceId,
    credentials,
  } = await registerOnStack(stack, token, { name: 'Compressor', type: 'compressor' }));

  websocketUrl = (await stack.details()).websocketUrl;
  const watching = await openSocket();
  socket = watching.socket;
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.type !== 'events') return;
    for (const event of message.events) {
      if (event.type === 'readings') liveReadings.push(...event.readings);
      if (event.type === 'status') liveStatuses.push(event.status);
    }
  });
  // A tab receives the events of the devices it shows: this one shows the device.
  expect(await watching.request({ action: 'subscribe', device_ids: [devicePk] })).toEqual({
    type: 'subscribed',
    device_ids: [devicePk],
  });
  // Another tab of the same tenant, showing another device.
  elsewhere = await openSocket();
  await elsewhere.request({ action: 'subscribe', device_ids: [devicePk + 1_000_000] });
}, 180_000);

afterAll(async () => {
  socket?.close();
  elsewhere?.socket.close();
  await stack?.stop();
  await influx?.dispose();
});

function connectDevice(): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(stack.mqtt, {
      clientId: credentials.client_id,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 0,
      will: {
        topic: `devices/${deviceId}/status`,
        payload: Buffer.from('offline'),
        qos: 1,
        retain: true,
      },
    });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

async function series(entityId: string, from: number, to: number) {
  const query = new URLSearchParams({
    entity_id: entityId,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  });
  const response = await stack.request(
    'GET',
    `/api/devices/${devicePk}/telemetry?${query}`,
    undefined,
    token,
  );
  expect(response.status).toBe(200);
  return response.body.series[0].points as Array<{ time: string; value: number }>;
}

const deviceStatus = async () =>
  (await stack.request('GET', `/api/devices/${devicePk}`, undefined, token)).body.device.status;

describe('telemetry pipeline through the local stack', () => {
  let device: mqtt.MqttClient;
  const base = Date.now() - 20 * 60_000;

  it('discovery and online, then 1,000 state messages and 100 telemetry batches of 50, every reading served exactly', async () => {
    device = await connectDevice();
    await device.publishAsync(
      `devices/${deviceId}/discovery`,
      JSON.stringify({
        name: 'Compressor',
        entities: [
          { entity_id: 'temp_oil', entity_type: 'sensor', name: 'Oil temperature', unit: '°C' },
          { entity_id: 'pressure', entity_type: 'sensor', name: 'Pressure', unit: 'bar' },
          { entity_id: 'relay_main', entity_type: 'switch', name: 'Main relay' },
        ],
      }),
      { qos: 1, retain: true },
    );
    await device.publishAsync(`devices/${deviceId}/status`, 'online', { qos: 1, retain: true });
    await expect.poll(deviceStatus, { timeout: 10_000 }).toBe('online');
    await expect
      .poll(
        async () =>
          (await stack.request('GET', `/api/devices/${devicePk}`, undefined, token)).body.entities
            .length,
        { timeout: 10_000 },
      )
      .toBe(3);

    const states = Array.from({ length: 1000 }, (_, n) =>
      device.publishAsync(
        `devices/${deviceId}/temp_oil/state`,
        JSON.stringify({ value: 60 + n / 16, timestamp: (base + n * 100) / 1000 }),
        { qos: 1 },
      ),
    );
    const batches = Array.from({ length: 100 }, (_, b) =>
      device.publishAsync(
        `devices/${deviceId}/telemetry`,
        JSON.stringify(
          Array.from({ length: 50 }, (_, n) => ({
            timestamp: (base + (b * 50 + n) * 10) / 1000,
            values: { pressure: b + n / 100 },
          })),
        ),
        { qos: 1 },
      ),
    );
    await Promise.all([...states, ...batches]);
    // A QoS 1 redelivery carries the same device timestamp: it must overwrite, not add.
    await device.publishAsync(
      `devices/${deviceId}/temp_oil/state`,
      JSON.stringify({ value: 60, timestamp: base / 1000 }),
      { qos: 1 },
    );

    await expect
      .poll(async () => (await series('temp_oil', base, base + 100_000)).length, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(1000);
    const temps = await series('temp_oil', base, base + 100_000);
    expect(temps.map((p) => p.value)).toEqual(Array.from({ length: 1000 }, (_, n) => 60 + n / 16));
    expect(temps[10]?.time).toBe(new Date(base + 1000).toISOString());

    await expect
      .poll(async () => (await series('pressure', base, base + 50_000)).length, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(5000);
    const pressures = await series('pressure', base, base + 50_000);
    expect(pressures.map((p) => p.value)).toEqual(
      Array.from({ length: 5000 }, (_, i) => Math.floor(i / 50) + (i % 50) / 100),
    );
  });

  it('the WebSocket client saw the readings live', async () => {
    await expect
      .poll(() => liveReadings.filter((r) => r.entity_id === 'temp_oil').length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(1000);
    expect(liveReadings.filter((r) => r.entity_id === 'pressure').length).toBeGreaterThanOrEqual(
      5000,
    );
    expect(liveStatuses).toContain('online');
    // The tab showing another device was sent none of it.
    expect(elsewhere.messages.filter((m) => m.type === 'events')).toEqual([]);
  });

  it('a command from the API reaches the device on .../set and is confirmed by the matching state', async () => {
    const received: Array<{ value: unknown; command_id: string }> = [];
    device.on('message', (topic, payload) => {
      if (topic === `devices/${deviceId}/relay_main/set`) {
        const command = JSON.parse(payload.toString());
        received.push(command);
        device.publish(
          `devices/${deviceId}/relay_main/state`,
          JSON.stringify({ value: command.value, command_id: command.command_id }),
          { qos: 1 },
        );
      }
    });
    await device.subscribeAsync(`devices/${deviceId}/+/set`, { qos: 1 });
    const sent = await stack.request(
      'POST',
      `/api/devices/${devicePk}/entities/relay_main/commands`,
      { value: true },
      token,
    );
    expect(sent.status).toBe(202);
    await expect.poll(() => received.length, { timeout: 5000 }).toBe(1);
    expect(received[0]).toEqual({ value: true, command_id: sent.body.command_id });
    await expect
      .poll(
        async () =>
          (
            await stack.request(
              'GET',
              `/api/devices/${devicePk}/commands/${sent.body.command_id}`,
              undefined,
              token,
            )
          ).body.status,
        { timeout: 10_000 },
      )
      .toBe('confirmed');
  });

  it('killing InfluxDB mid-stream loses no acknowledged reading', async () => {
    const start = Date.now() - 10 * 60_000;
    const acknowledged: number[] = [];
    let n = 0;
    const stream = setInterval(() => {
      const index = n++;
      device
        .publishAsync(
          `devices/${deviceId}/pressure/state`,
          JSON.stringify({ value: 1000 + index, timestamp: (start + index * 10) / 1000 }),
          { qos: 1 },
        )
        .then(
          () => acknowledged.push(index),
          () => {},
        );
    }, 25);
    // Each phase lasts until the broker has acknowledged so many more readings: flowing before
    // the outage, 300 (about 7 s of the stream) while InfluxDB is down, then flowing again.
    const acknowledgedMore = async (count: number) => {
      const target = acknowledged.length + count;
      await expect
        .poll(() => acknowledged.length, { timeout: 60_000 })
        .toBeGreaterThanOrEqual(target);
    };
    await acknowledgedMore(80);
    await influx.stop();
    await acknowledgedMore(300);
    await influx.start();
    await acknowledgedMore(80);
    clearInterval(stream);
    await expect.poll(() => acknowledged.length, { timeout: 10_000 }).toBe(n);
    expect(n).toBeGreaterThan(400);
    await expect
      .poll(async () => (await series('pressure', start, start + n * 10)).length, {
        timeout: 90_000,
        interval: 1000,
      })
      .toBe(n);
    const stored = await series('pressure', start, start + n * 10);
    expect(stored.map((p) => p.value)).toEqual(Array.from({ length: n }, (_, i) => 1000 + i));
  }, 150_000);

  it('killing the device’s connection turns it offline through the LWT', async () => {
    device.stream.destroy();
    await expect.poll(deviceStatus, { timeout: 15_000 }).toBe('offline');
    await expect.poll(() => liveStatuses.at(-1), { timeout: 5000 }).toBe('offline');
  });
});

describe('live updates through the local stack’s WebSocket API', () => {
  it('refuses malformed, wildcard and oversized subscriptions, and stops pushing after unsubscribe', async () => {
    const tab = await openSocket();
    try {
      for (const bad of [
        'not json',
        { action: 'subscribe', device_ids: null },
        { action: 'subscribe', device_ids: ['1'] },
        { action: 'subscribe', device_ids: [0] },
        { action: 'subscribe', device_ids: Array.from({ length: 1001 }, (_, i) => i + 1) },
        { action: 'subscribe', device_ids: [1], extra: true },
      ]) {
        expect(await tab.request(bad), JSON.stringify(bad).slice(0, 60)).toMatchObject({
          type: 'error',
          error: { code: 'invalid_message' },
        });
      }
      expect(await tab.request({ action: 'subscribe', device_ids: [devicePk] })).toEqual({
        type: 'subscribed',
        device_ids: [devicePk],
      });
      expect(await tab.request({ action: 'unsubscribe', device_ids: [devicePk] })).toEqual({
        type: 'subscribed',
        device_ids: [],
      });
      // A reading now reaches the watching tab but not this one.
      const device = await connectDevice();
      const seen = liveReadings.length;
      await device.publishAsync(
        `devices/${deviceId}/pressure/state`,
        JSON.stringify({ value: 7, timestamp: Date.now() / 1000 }),
        { qos: 1 },
      );
      await expect.poll(() => liveReadings.length, { timeout: 10_000 }).toBeGreaterThan(seen);
      device.end(true);
      expect(tab.messages.filter((m) => m.type === 'events')).toEqual([]);
    } finally {
      tab.socket.close();
    }
  });

  it('throttles a connection that sends too fast, and only that one', async () => {
    const tab = await openSocket();
    try {
      const answers = tab.messages;
      for (let i = 0; i < 100; i++) tab.socket.send(JSON.stringify({ action: 'ping' }));
      await expect.poll(() => answers.length, { timeout: 30_000 }).toBe(100);
      const throttled = answers.filter((m) => m.type === 'error' && m.error.code === 'throttled');
      expect(throttled.length).toBeGreaterThan(0);
      expect(throttled[0].retry_after_ms).toBeGreaterThan(0);
      expect(answers.filter((m) => m.type === 'pong').length).toBeGreaterThanOrEqual(20);
      // The other tabs of the tenant answer as usual.
      expect(await elsewhere.request({ action: 'ping' })).toEqual({ type: 'pong' });
    } finally {
      tab.socket.close();
    }
  });
});
