import fc from 'fast-check';
import mqtt from 'mqtt';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StoredBatch } from '../shared/ingestion/domain/model.ts';
import { callRoute } from './support/api-event.ts';
import { adminPool, useDataPlane } from './support/in-process.ts';
import { ruleOutput } from './support/kinesis-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

/**
 * Ingestion, the read path and commands with the functions invoked in-process, as the IoT
 * rules engine and API Gateway would, against real PostgreSQL, InfluxDB and Mosquitto.
 */
const stack = useTestStack();
await useDataPlane(stack);
const COMMAND_TIMEOUT_SECONDS = 30;
process.env.COMMAND_TIMEOUT_SECONDS = String(COMMAND_TIMEOUT_SECONDS);
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
// The service the ingest handler runs, with its summary (the handler answers the stream with
// the failed records only; test/ingest-stream.test.ts covers that answer).
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const ingest = (events: unknown[]) => ingestionService().ingest(events);
const admin = adminPool(stack);

const DISCOVERY = {
  name: 'Compressor',
  type: 'compressor',
  firmware: '1.2.0',
  entities: [
    { entity_id: 'temp_oil', entity_type: 'sensor', name: 'Oil temperature', unit: '°C' },
    { entity_id: 'pressure', entity_type: 'sensor', name: 'Pressure', unit: 'bar' },
    { entity_id: 'relay_main', entity_type: 'switch', name: 'Main relay' },
    {
      entity_id: 'setpoint',
      entity_type: 'number',
      name: 'Setpoint',
      config: { min: 0, max: 100, step: 0.5 },
    },
    { entity_id: 'label', entity_type: 'text', name: 'Label' },
  ],
};

interface Setup {
  token: string;
  tenantId: number;
  id: number;
  deviceId: string;
}

async function setUp(plan?: string): Promise<Setup> {
  const { token, tenantId } = await signUp(auth, plan ? { plan, admin } : {});
  const { id, deviceId } = await addDevice(devices, token, {
    name: 'Compressor 7',
    type: 'compressor',
  });
  const summary = await ingest([
    ruleOutput(`devices/${deviceId}/discovery`, DISCOVERY),
    ruleOutput(`devices/${deviceId}/status`, 'online'),
  ]);
  expect(summary.rejected).toEqual({});
  return { token, tenantId, id, deviceId };
}

const telemetry = (s: Setup, query: Record<string, string>) =>
  callRoute(devices, 'GET /api/devices/{id}/telemetry', {
    token: s.token,
    params: { id: String(s.id) },
    query,
  });
const detail = (s: Setup) =>
  callRoute(devices, 'GET /api/devices/{id}', { token: s.token, params: { id: String(s.id) } });

describe('ingestion and the read path', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp();
  });

  it('discovery creates the entities and status makes the device online', async () => {
    const response = await detail(s);
    expect(response.body.device.status).toBe('online');
    expect(response.body.device.last_seen).not.toBeNull();
    expect(response.body.entities.map((e: { entity_id: string }) => e.entity_id).sort()).toEqual([
      'label',
      'pressure',
      'relay_main',
      'setpoint',
      'temp_oil',
    ]);
    const setpoint = response.body.entities.find(
      (e: { entity_id: string }) => e.entity_id === 'setpoint',
    );
    expect(setpoint).toMatchObject({
      entity_type: 'number',
      config: { min: 0, max: 100, step: 0.5 },
      latest: null,
    });
  });

  it('stores state and telemetry readings exactly, and serves them with the latest values', async () => {
    const base = Math.floor(Date.now() / 1000) - 600;
    const states = Array.from({ length: 50 }, (_, n) =>
      ruleOutput(`devices/${s.deviceId}/temp_oil/state`, {
        value: 20 + n / 8,
        unit: '°C',
        timestamp: base + n,
      }),
    );
    const batches = Array.from({ length: 10 }, (_, n) =>
      ruleOutput(`devices/${s.deviceId}/telemetry`, {
        timestamp: base + 100 + n,
        values: { pressure: 1 + n / 10, relay_main: n % 2 === 0, label: `run, "${n}" = \\ok` },
      }),
    );
    const summary = await ingest([...states, ...batches]);
    expect(summary).toMatchObject({ messages: 60, readings: 80, rejected: {} });

    const response = await telemetry(s, {
      entity_id: 'temp_oil,pressure,relay_main,label',
      from: new Date((base - 1) * 1000).toISOString(),
      to: new Date((base + 200) * 1000).toISOString(),
    });
    expect(response.status).toBe(200);
    expect(response.body.source).toBe('raw');
    const byEntity = Object.fromEntries(
      response.body.series.map((series: { entity_id: string; points: unknown[] }) => [
        series.entity_id,
        series.points,
      ]),
    );
    expect(byEntity.temp_oil).toHaveLength(50);
    expect(byEntity.temp_oil[7]).toEqual({
      time: new Date((base + 7) * 1000).toISOString(),
      value: 20 + 7 / 8,
    });
    expect(byEntity.pressure.map((p: { value: number }) => p.value)).toEqual(
      Array.from({ length: 10 }, (_, n) => 1 + n / 10),
    );
    expect(byEntity.relay_main.map((p: { value: boolean }) => p.value)).toEqual(
      Array.from({ length: 10 }, (_, n) => n % 2 === 0),
    );
    expect(byEntity.label[3].value).toBe('run, "3" = \\ok');

    const latest = await detail(s);
    const temp = latest.body.entities.find(
      (e: { entity_id: string }) => e.entity_id === 'temp_oil',
    );
    expect(temp.latest).toEqual({
      value: 20 + 49 / 8,
      time: new Date((base + 49) * 1000).toISOString(),
    });
  });

  it('stores a redelivered message once, and gives a reading without timestamp the receive time', async () => {
    const at = Math.floor(Date.now() / 1000) - 300;
    const message = ruleOutput(`devices/${s.deviceId}/pressure/state`, {
      value: 4.25,
      timestamp: at,
    });
    await ingest([message]);
    await ingest([message, message]);
    const receivedAt = Date.now() - 1234;
    await ingest([ruleOutput(`devices/${s.deviceId}/pressure/state`, { value: 9.5 }, receivedAt)]);
    const response = await telemetry(s, {
      entity_id: 'pressure',
      from: new Date((at - 1) * 1000).toISOString(),
      to: new Date(Date.now() + 1000).toISOString(),
    });
    const points = response.body.series[0].points;
    expect(points.filter((p: { value: number }) => p.value === 4.25)).toHaveLength(1);
    expect(points.find((p: { value: number }) => p.value === 9.5).time).toBe(
      new Date(receivedAt).toISOString(),
    );
  });

  it('rejects and counts readings older than the plan keeps, and stores the rest of the batch', async () => {
    const old = Math.floor(Date.now() / 1000) - 40 * 86_400;
    const recent = Math.floor(Date.now() / 1000) - 30;
    const summary = await ingest([
      ruleOutput(`devices/${s.deviceId}/temp_oil/state`, { value: 1.5, timestamp: old }),
      ruleOutput(`devices/${s.deviceId}/temp_oil/state`, { value: 2.5, timestamp: recent }),
    ]);
    expect(summary.rejected).toEqual({ beyond_retention: 1 });
    expect(summary.readings).toBe(1);
    const { rows } = await admin.query(
      `SELECT sum(count)::integer AS n FROM ingestion_rejections WHERE device_id = $1 AND reason = 'beyond_retention'`,
      [s.deviceId],
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(1);
  });

  it('refuses a value beyond ±1e38 as value_out_of_range, so a window of the largest values still averages', async () => {
    // InfluxDB 1.x answers a window whose sum overflows with `json: unsupported value: +Inf`.
    const start = Math.floor(Date.now() / 600_000) * 600 - 1200;
    const summary = await ingest([
      ...Array.from({ length: 40 }, (_, n) =>
        ruleOutput(`devices/${s.deviceId}/setpoint/state`, { value: 1e38, timestamp: start + n }),
      ),
      ruleOutput(`devices/${s.deviceId}/setpoint/state`, { value: -1.5e38, timestamp: start + 50 }),
      ruleOutput(`devices/${s.deviceId}/telemetry`, {
        timestamp: start + 51,
        values: { pressure: 2, setpoint: 1e308 },
      }),
    ]);
    expect(summary.rejected).toEqual({ value_out_of_range: 2 });
    expect(summary.readings).toBe(40);
    const response = await telemetry(s, {
      entity_id: 'setpoint,pressure',
      from: new Date(start * 1000).toISOString(),
      to: new Date((start + 300) * 1000).toISOString(),
      every: '5m',
      fn: 'mean',
    });
    expect(response.status).toBe(200);
    const setpoint = response.body.series.find(
      (series: { entity_id: string }) => series.entity_id === 'setpoint',
    );
    expect(setpoint.points).toHaveLength(1);
    expect(setpoint.points[0].time).toBe(new Date(start * 1000).toISOString());
    // The mean of forty 1e38s, summed in doubles: 1e38 give or take rounding.
    expect(setpoint.points[0].value / 1e38).toBeCloseTo(1, 12);
    const { rows } = await admin.query(
      `SELECT sum(count)::integer AS n FROM ingestion_rejections WHERE device_id = $1 AND reason = 'value_out_of_range'`,
      [s.deviceId],
    );
    expect(rows[0].n).toBe(2);
  });

  it('aggregates with every and fn', async () => {
    // InfluxDB aligns GROUP BY time() buckets to the epoch, so the test does too.
    const start = Math.floor(Date.now() / 600_000) * 600 - 3600;
    await ingest(
      Array.from({ length: 60 }, (_, n) =>
        ruleOutput(`devices/${s.deviceId}/pressure/state`, { value: n, timestamp: start + n * 30 }),
      ),
    );
    const response = await telemetry(s, {
      entity_id: 'pressure',
      from: new Date(start * 1000).toISOString(),
      to: new Date((start + 1800) * 1000).toISOString(),
      every: '10m',
      fn: 'max',
    });
    expect(response.status).toBe(200);
    expect(response.body.series[0].points.map((p: { value: number }) => p.value)).toEqual([
      19, 39, 59,
    ]);
    const bad = await telemetry(s, { every: '5 minutes' });
    expect(bad.status).toBe(400);
    const unknown = await telemetry(s, { entity_id: 'nope' });
    expect(unknown.status).toBe(404);
  });

  it('status offline (the LWT) turns the device offline', async () => {
    await ingest([ruleOutput(`devices/${s.deviceId}/status`, 'offline')]);
    expect((await detail(s)).body.device.status).toBe('offline');
    await ingest([ruleOutput(`devices/${s.deviceId}/status`, 'online')]);
    expect((await detail(s)).body.device.status).toBe('online');
  });

  it('discovery never overwrites an entity the user manages', async () => {
    await admin.query(
      `UPDATE entities SET name = 'Named by user', discovery_mode = 'manual' WHERE entity_id = 'pressure' AND tenant_id = $1`,
      [s.tenantId],
    );
    await ingest([ruleOutput(`devices/${s.deviceId}/discovery`, DISCOVERY)]);
    const pressure = (await detail(s)).body.entities.find(
      (e: { entity_id: string }) => e.entity_id === 'pressure',
    );
    expect(pressure.name).toBe('Named by user');
  });
});

describe('a fleet re-announcing (as after a broker restart)', () => {
  it('settles identical discoveries without writing, applies a changed one, and stores the readings behind them', async () => {
    const { token } = await signUp(auth);
    type Device = { deviceId: string };
    const fleet: Device[] = [];
    for (let n = 0; n < 3; n++)
      fleet.push(await addDevice(devices, token, { name: `Line ${n}`, type: 'compressor' }));
    const [same, other, grown] = fleet as [Device, Device, Device];
    const announce = (device: Device, discovery: object) => [
      ruleOutput(`devices/${device.deviceId}/status`, 'online'),
      ruleOutput(`devices/${device.deviceId}/discovery`, discovery),
    ];
    await ingest(fleet.flatMap((device) => announce(device, DISCOVERY)));
    // An entity row's xmin changes with every write to it, even one that sets the same
    // values; a device's updated_at with every discovery written (its status is written apart).
    const versions = async () =>
      (
        await admin.query(
          `SELECT d.device_id, d.updated_at AS device_updated, array_agg(e.xmin::text ORDER BY e.entity_id) AS entity_versions
             FROM devices d JOIN entities e ON e.device_id = d.id
            WHERE d.device_id = ANY($1) GROUP BY d.device_id, d.updated_at ORDER BY d.device_id`,
          [fleet.map((device) => device.deviceId)],
        )
      ).rows;
    const before = await versions();
    const vibration = { entity_id: 'vibration', entity_type: 'sensor', name: 'Vibration' };
    const summary = await ingest([
      ...announce(same, DISCOVERY),
      ...announce(other, DISCOVERY),
      ...announce(grown, { ...DISCOVERY, entities: [...DISCOVERY.entities, vibration] }),
      ruleOutput(`devices/${same.deviceId}/temp_oil/state`, { value: 70.5 }),
      ruleOutput(`devices/${grown.deviceId}/vibration/state`, { value: 2.25 }),
    ]);
    expect(summary.rejected).toEqual({});
    expect(summary.readings).toBe(2);
    const after = await versions();
    expect(after.find((row) => row.device_id === same.deviceId)).toEqual(
      before.find((row) => row.device_id === same.deviceId),
    );
    expect(after.find((row) => row.device_id === other.deviceId)).toEqual(
      before.find((row) => row.device_id === other.deviceId),
    );
    expect(after.find((row) => row.device_id === grown.deviceId)?.entity_versions).toHaveLength(6);
  });
});

describe('several function instances', () => {
  it('an instance that cached a device before its discovery accepts the new entities after a recheck', async () => {
    const { IngestionService } = await import('../shared/ingestion/domain/ingestion-service.ts');
    const { PostgresDeviceDirectory } = await import(
      '../shared/ingestion/adapters/postgres-device-directory.ts'
    );
    const { databasePool, logger } = await import('../shared/composition.ts');
    const { readingStore } = await import('../shared/timeseries/composition.ts');
    // The instances' clock: the test moves it instead of waiting for the cache to age.
    let clock = Date.now();
    const instance = () =>
      new IngestionService({
        directory: new PostgresDeviceDirectory(databasePool(), 30),
        readings: readingStore(),
        logger: logger(),
        now: () => clock,
      });
    const [first, second] = [instance(), instance()];
    const { token } = await signUp(auth);
    const { deviceId } = await addDevice(devices, token, { name: 'Late discovery', type: 'pump' });
    const reading = () => ruleOutput(`devices/${deviceId}/temp_oil/state`, { value: 1.25 });
    // The first instance caches the device while it has no entities yet.
    expect((await first.ingest([reading()])).rejected).toEqual({ unknown_entity: 1 });
    await second.ingest([ruleOutput(`devices/${deviceId}/discovery`, DISCOVERY)]);
    // Past the one second after which a cached device is looked up again before a refusal.
    clock += 1_100;
    const after = await first.ingest([reading()]);
    expect(after.rejected).toEqual({});
    expect(after.readings).toBe(1);
  });
});

describe('the stored-readings port', () => {
  it("gets each batch's stored readings once, grouped by device; its failure fails those messages for a retry", async () => {
    const { IngestionService } = await import('../shared/ingestion/domain/ingestion-service.ts');
    const { PostgresDeviceDirectory } = await import(
      '../shared/ingestion/adapters/postgres-device-directory.ts'
    );
    const { databasePool, logger } = await import('../shared/composition.ts');
    const { readingStore } = await import('../shared/timeseries/composition.ts');
    const [a, b] = [await setUp(), await setUp()];
    const calls: StoredBatch[] = [];
    const expected: number[][] = [];
    let failing = false;
    const service = new IngestionService({
      directory: new PostgresDeviceDirectory(databasePool(), 30),
      readings: readingStore(),
      logger: logger(),
      storedReadings: {
        expect: (devicePks) => {
          expected.push([...devicePks]);
          return {
            readingsStored: async (batch) => {
              calls.push(batch);
              if (failing) throw new Error('alarm store unavailable');
            },
          };
        },
      },
    });
    const t = Math.floor(Date.now() / 1000) - 60;
    const batch = [
      ruleOutput(`devices/${a.deviceId}/temp_oil/state`, { value: 1, timestamp: t }),
      ruleOutput(`devices/${b.deviceId}/telemetry`, {
        timestamp: t,
        values: { pressure: 2, setpoint: 3 },
      }),
      ruleOutput(`devices/${a.deviceId}/temp_oil/state`, { value: 'hot', timestamp: t + 1 }),
      ruleOutput(`devices/${a.deviceId}/status`, 'online'),
      ruleOutput(`devices/${a.deviceId}/pressure/state`, { value: 4, timestamp: t + 2 }),
    ];
    const outcome = await service.ingestBatch(batch.map((event) => ({ event })));
    expect(outcome.failed).toEqual([]);
    expect(calls).toHaveLength(1);
    // Told before the write which devices' readings were coming: the same devices it got.
    expect(expected).toEqual([calls[0]?.devices.map(({ device }) => device.devicePk)]);
    const seen = calls[0]?.devices.map(({ device, readings }) => ({
      device: device.deviceId,
      readings: readings.map((r) => [r.entityId, r.value, r.timeMs]),
    }));
    expect(seen).toEqual([
      {
        device: a.deviceId,
        readings: [
          ['temp_oil', 1, t * 1000],
          ['pressure', 4, (t + 2) * 1000],
        ],
      },
      {
        device: b.deviceId,
        readings: [
          ['pressure', 2, t * 1000],
          ['setpoint', 3, t * 1000],
        ],
      },
    ]);

    failing = true;
    const retried = await service.ingestBatch(batch.map((event) => ({ event })));
    // Every message whose readings the listener did not take; the stream resumes from the first.
    expect(retried.failed).toEqual([0, 1, 4]);
    expect(retried.summary.rejected).toEqual({ wrong_value_type: 1 });
  });
});

describe('bad messages', () => {
  it('1,000+ generated bad messages: 0 crashes, 0 points, each counted; good traffic alongside is stored', async () => {
    const s = await setUp();
    const other = await setUp();
    const dev = s.deviceId;
    const t = Math.floor(Date.now() / 1000) - 120;
    const nasty = [',', '=', '"', '\\', '\n', ' ', '\u0000', '😀'];
    const bad: Array<ReturnType<typeof ruleOutput>> = [];
    for (let n = 0; bad.length < 1100; n++) {
      const ch = nasty[n % nasty.length] as string;
      const variants = [
        ruleOutput(`devices/${dev}/temp_oil/state`, `{"value": ${n}`), // malformed JSON
        ruleOutput(`devices/${dev}/temp_oil/state`, '{"value": NaN}'),
        ruleOutput(`devices/${dev}/temp_oil/state`, { value: 'hot' }), // wrong type for a sensor
        ruleOutput(`devices/${dev}/relay_main/state`, { value: 1 }), // a switch takes booleans
        ruleOutput(`devices/${dev}/temp_oil/state`, '{"value": 1e400}'), // parses to Infinity
        ruleOutput(`devices/${dev}/temp_oil/state`, { value: n, timestamp: 'yesterday' }),
        ruleOutput(`devices/${dev}/temp_oil/state`, { value: n, timestamp: 12 }), // uptime, not a date
        ruleOutput(`devices/${dev}/temp_oil/state`, { value: n, timestamp: t + 86_400 * 365 }),
        ruleOutput(`devices/${dev}/temp_oil/state`, Buffer.alloc(200_000, 0x20)), // huge
        ruleOutput(`devices/${dev}/not_announced/state`, { value: n }),
        ruleOutput(`devices/${dev}/status/state`, { value: n }), // reserved entity id
        ruleOutput(`devices/${dev}/telemetry/state`, { value: n }),
        ruleOutput(`devices/UNKNOWN_${n}/temp_oil/state`, { value: n }),
        ruleOutput(`devices/${dev}/temp_oil/state`, { value: n }, Date.now(), other.deviceId), // another device's topic
        ruleOutput(`devices/${dev}/label/state`, { value: `line${ch}\nbreak` }),
        ruleOutput(`devices/${dev}/telemetry`, { values: { temp_oil: n, [`bad${ch}id`]: 1 } }),
        ruleOutput(`devices/${dev}/telemetry`, { values: { temp_oil: n, pressure: 'x' } }),
        ruleOutput(`devices/${dev}/telemetry`, [{ values: { temp_oil: n } }, { values: 'nope' }]),
        ruleOutput(`devices/${dev}/discovery`, {
          entities: [{ entity_id: 'x', entity_type: 'laser', name: 'n' }],
        }),
        ruleOutput(`devices/${dev}/status`, 'maybe'),
        ruleOutput(`devices/${dev}/x/y/state`, { value: n }),
        { topic: `devices/${dev}/temp_oil/state`, payload: 42 },
        null,
      ];
      bad.push(...(variants as Array<ReturnType<typeof ruleOutput>>));
    }
    const good = Array.from({ length: 200 }, (_, n) =>
      ruleOutput(`devices/${dev}/temp_oil/state`, { value: 1000 + n, timestamp: t + n / 10 }),
    );
    // Interleave good and bad traffic in batches, as the emulator would deliver them.
    const mixed = [...bad];
    for (const [n, message] of good.entries()) mixed.splice(n * 6, 0, message);
    let rejected = 0;
    let stored = 0;
    for (let i = 0; i < mixed.length; i += 250) {
      const summary = await ingest(mixed.slice(i, i + 250));
      rejected += Object.values(summary.rejected).reduce((a: number, b) => a + (b ?? 0), 0);
      stored += summary.readings;
    }
    expect(rejected).toBe(bad.length);
    expect(stored).toBe(200);
    const series = await telemetry(s, {
      from: new Date((t - 60) * 1000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    const values = series.body.series.flatMap((x: { points: Array<{ value: unknown }> }) =>
      x.points.map((p) => p.value),
    );
    expect(values.sort((a: number, b: number) => a - b)).toEqual(good.map((_, n) => 1000 + n));
    const otherSeries = await telemetry(other, {
      from: new Date((t - 60) * 1000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(otherSeries.body.series.every((x: { points: unknown[] }) => x.points.length === 0)).toBe(
      true,
    );
    const counted = await admin.query(
      `SELECT reason, sum(count)::integer AS n FROM ingestion_rejections WHERE device_id = $1 OR device_id LIKE 'UNKNOWN_%' GROUP BY reason`,
      [dev],
    );
    const total = counted.rows.reduce((sum: number, row: { n: number }) => sum + row.n, 0);
    expect(total).toBeGreaterThanOrEqual(bad.length - 100); // null events name no device
  });

  it('property: a value round-trips exactly or is rejected, and never reaches another tenant', async () => {
    const a = await setUp();
    const b = await setUp();
    const t0 = Math.floor(Date.now() / 1000) - 3000;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.double({ noNaN: false }), fc.string({ maxLength: 40 }), fc.boolean()),
        fc.constantFrom('temp_oil', 'label', 'relay_main', 'ghost-entity', 'status'),
        async (value, entityId) => {
          n += 1;
          const timestamp = t0 + n;
          const summary = await ingest([
            ruleOutput(
              `devices/${a.deviceId}/${entityId}/state`,
              JSON.stringify({ value, timestamp }).replace('null', 'NaN'),
            ),
          ]);
          const response = await telemetry(a, {
            from: new Date(timestamp * 1000).toISOString(),
            to: new Date(timestamp * 1000 + 1).toISOString(),
          });
          const stored = response.body.series.flatMap(
            (x: { entity_id: string; points: Array<{ value: unknown }> }) =>
              x.points.map((p) => ({ entity: x.entity_id, value: p.value })),
          );
          if (summary.readings === 1) {
            // JSON has no negative zero: the device's payload above says 0.
            expect(stored).toEqual([{ entity: entityId, value: Object.is(value, -0) ? 0 : value }]);
          } else {
            expect(stored).toEqual([]);
          }
          const leaked = await telemetry(b, {
            from: new Date(timestamp * 1000).toISOString(),
            to: new Date(timestamp * 1000 + 1).toISOString(),
          });
          expect(
            leaked.body.series.every((x: { points: unknown[] }) => x.points.length === 0),
          ).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    // 60 runs of three round trips each: generous for a loaded machine.
  }, 120_000);
});

describe('commands', () => {
  it('a command reaches the device on .../set and is confirmed by the matching state', async () => {
    const s = await setUp();
    const seen: Array<{ topic: string; payload: any }> = [];
    const platform = mqtt.connect(stack.mqttUrl, {
      ...stack.mqttPlatform,
      clientId: unique('sub'),
    });
    await new Promise<void>((resolve) => platform.once('connect', () => resolve()));
    platform.on('message', (topic, payload) =>
      seen.push({ topic, payload: JSON.parse(payload.toString()) }),
    );
    await platform.subscribeAsync(`devices/${s.deviceId}/+/set`, { qos: 1 });

    const sent = await callRoute(devices, 'POST /api/devices/{id}/entities/{entity_id}/commands', {
      token: s.token,
      params: { id: String(s.id), entity_id: 'relay_main' },
      body: { value: true },
    });
    expect(sent.status).toBe(202);
    expect(sent.body.status).toBe('sent');
    await expect.poll(() => seen.length, { timeout: 5000 }).toBe(1);
    expect(seen[0]).toEqual({
      topic: `devices/${s.deviceId}/relay_main/set`,
      payload: { value: true, command_id: sent.body.command_id },
    });

    await ingest([
      ruleOutput(`devices/${s.deviceId}/relay_main/state`, {
        value: true,
        command_id: sent.body.command_id,
      }),
    ]);
    const status = await callRoute(devices, 'GET /api/devices/{id}/commands/{command_id}', {
      token: s.token,
      params: { id: String(s.id), command_id: sent.body.command_id },
    });
    expect(status.body.status).toBe('confirmed');
    platform.end(true);
  });

  it('validates values against the entity, and times out an unanswered command', async () => {
    const s = await setUp();
    const send = (entity_id: string, value: unknown) =>
      callRoute(devices, 'POST /api/devices/{id}/entities/{entity_id}/commands', {
        token: s.token,
        params: { id: String(s.id), entity_id },
        body: { value },
      });
    expect((await send('relay_main', 'on')).status).toBe(400);
    expect((await send('setpoint', 101)).status).toBe(400);
    expect((await send('setpoint', 10.25)).status).toBe(400);
    expect((await send('temp_oil', 3)).body.error.code).toBe('not_commandable');
    expect((await send('ghost', true)).status).toBe(404);
    const ok = await send('setpoint', 42.5);
    expect(ok.status).toBe(202);
    // The timeout runs on PostgreSQL's clock: the command is made older than it instead of
    // waiting it out.
    await admin.query(
      `UPDATE commands SET created_at = created_at - make_interval(secs => $2) WHERE id = $1`,
      [ok.body.command_id, COMMAND_TIMEOUT_SECONDS + 1],
    );
    // A late confirmation no longer counts.
    await ingest([
      ruleOutput(`devices/${s.deviceId}/setpoint/state`, {
        value: 42.5,
        command_id: ok.body.command_id,
      }),
    ]);
    const status = await callRoute(devices, 'GET /api/devices/{id}/commands/{command_id}', {
      token: s.token,
      params: { id: String(s.id), command_id: ok.body.command_id },
    });
    expect(status.body.status).toBe('timed_out');
  });
});
