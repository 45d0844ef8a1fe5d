import fc from 'fast-check';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { IngestionService } from '../shared/ingestion/domain/ingestion-service.ts';
import { MAX_PAYLOAD_BYTES } from '../shared/ingestion/domain/payload-limits.ts';
import {
  type ReadingStore,
  ReadingsRefusedError,
} from '../shared/timeseries/domain/reading-store.ts';
import type { Reading } from '../shared/timeseries/reading.ts';
import { callRoute } from './support/api-event.ts';
import { kinesisEvent, ruleOutput } from './support/kinesis-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * The ingest function as the Kinesis event source mapping invokes it (locally, the rules
 * emulator sends the same event), against real PostgreSQL and InfluxDB: each message is judged
 * on its own, readings without a device timestamp never overwrite each other, and hostile
 * MQTT payloads of every topic kind are rejected without touching another tenant's reading
 * in the same batch.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const ingest = (await import('../functions/ingest/handler.ts')).handler;
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const { streamRecords } = await import('../shared/ingestion/adapters/kinesis-records.ts');
/** Hostile MQTT messages tried, each beside another tenant's good reading. */
const FUZZ_CASES = 60;

const DISCOVERY = {
  entities: [
    { entity_id: 'temp', entity_type: 'sensor', name: 'Temperature' },
    { entity_id: 'label', entity_type: 'text', name: 'Label' },
    { entity_id: 'relay', entity_type: 'switch', name: 'Relay' },
  ],
};

interface Tenant {
  token: string;
  id: number;
  deviceId: string;
}

async function tenantWithDevice(): Promise<Tenant> {
  const name = unique('stream');
  const registered = await callRoute(auth, 'POST /api/auth/register', {
    body: {
      tenant_name: unique('Stream'),
      username: name,
      email: `${name}@example.com`,
      password: 'stream-ingest-password',
    },
  });
  const deviceId = unique('STR');
  const created = await callRoute(devices, 'POST /api/devices', {
    token: registered.body.token,
    body: { device_id: deviceId, name: 'Line sensor', type: 'sensor' },
  });
  const answer = await ingest(
    kinesisEvent([ruleOutput(`devices/${deviceId}/discovery`, DISCOVERY)]),
  );
  expect(answer.batchItemFailures).toEqual([]);
  return { token: registered.body.token, id: created.body.device.id, deviceId };
}

async function points(tenant: Tenant, entityId: string, fromMs: number, toMs: number) {
  const response = await callRoute(devices, 'GET /api/devices/{id}/telemetry', {
    token: tenant.token,
    params: { id: String(tenant.id) },
    query: {
      entity_id: entityId,
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
    },
  });
  expect(response.status).toBe(200);
  return (response.body.series[0]?.points ?? []) as Array<{ time: string; value: unknown }>;
}

describe('the broker', () => {
  it("refuses a packet over AWS IoT's 128 KB payload limit, and only that sender's connection", async () => {
    const topic = `devices/${unique('BIG')}/blob/state`;
    const options = { ...stack.mqttPlatform, reconnectPeriod: 0 };
    const subscriber = await mqtt.connectAsync(stack.mqttUrl, {
      ...options,
      clientId: unique('sub'),
    });
    const publisher = await mqtt.connectAsync(stack.mqttUrl, {
      ...options,
      clientId: unique('pub'),
    });
    try {
      const received: number[] = [];
      subscriber.on('message', (_topic, payload) => received.push(payload.length));
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await publisher.publishAsync(topic, Buffer.alloc(MAX_PAYLOAD_BYTES, 0x20), { qos: 1 });
      await expect.poll(() => received, { timeout: 5000 }).toEqual([MAX_PAYLOAD_BYTES]);
      const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
      publisher.publish(topic, Buffer.alloc(MAX_PAYLOAD_BYTES + 2048, 0x20), { qos: 1 });
      await closed;
      // The subscriber is still connected and got nothing more.
      await subscriber.publishAsync(topic, 'small', { qos: 1 });
      await expect.poll(() => received, { timeout: 5000 }).toEqual([MAX_PAYLOAD_BYTES, 5]);
    } finally {
      publisher.end(true);
      await subscriber.endAsync();
    }
  });
});

describe('ingest handler (Kinesis event)', () => {
  it('judges each message alone: what the database refuses, absurd times and oversized payloads are rejected; the batch does not fail', async () => {
    const a = await tenantWithDevice();
    const b = await tenantWithDevice();
    const now = Date.now();
    const at = (offsetS: number) => Math.floor(now / 1000) - offsetS;
    const answer = await ingest(
      kinesisEvent([
        // A NUL in a discovery name and in a text value: PostgreSQL refuses both.
        ruleOutput(`devices/${a.deviceId}/discovery`, {
          entities: [{ entity_id: 'x', entity_type: 'sensor', name: 'bad\u0000name' }],
        }),
        ruleOutput(`devices/${a.deviceId}/label/state`, {
          value: 'nul\u0000here',
          timestamp: at(5),
        }),
        ruleOutput(`devices/${a.deviceId}/label/state`, '{"value":"lone \\ud800","timestamp":1}'),
        ruleOutput(`devices/${b.deviceId}/temp/state`, { value: 1.5, timestamp: at(4) }),
        // A year-2000 reading next to a recent one: the whole message is refused.
        ruleOutput(`devices/${a.deviceId}/telemetry`, [
          { timestamp: 946_684_800, values: { temp: 1 } },
          { timestamp: at(3), values: { temp: 2 } },
        ]),
        ruleOutput(`devices/${a.deviceId}/temp/state`, Buffer.alloc(10 * 1024 * 1024, 0x20)),
        ruleOutput(`devices/${b.deviceId}/temp/state`, { value: 2.5, timestamp: at(2) }),
      ]),
    );
    expect(answer.batchItemFailures).toEqual([]);
    expect((await points(b, 'temp', now - 60_000, now)).map((p) => p.value)).toEqual([1.5, 2.5]);
    expect(await points(a, 'temp', now - 40 * 365 * 86_400_000, now)).toEqual([]);
    expect(await points(a, 'label', now - 60_000, now)).toEqual([]);
  });

  it('stores every reading without a device timestamp, in order, even a thousand in one millisecond; a retried record overwrites itself', async () => {
    const a = await tenantWithDevice();
    const receivedAt = Date.now() - 10_000;
    const burst = Array.from({ length: 1000 }, (_, n) =>
      ruleOutput(`devices/${a.deviceId}/temp/state`, { value: n }, receivedAt),
    );
    // Times within a millisecond follow the stream's sequence numbers modulo 1,000: a burst
    // starting at a multiple of 1,000 keeps its order exactly (one crossing one would wrap).
    const event = kinesisEvent(burst, { alignSequence: true });
    expect((await ingest(event)).batchItemFailures).toEqual([]);
    // The stream retries a record after a partial failure: same record, same time.
    expect((await ingest({ Records: event.Records.slice(400) })).batchItemFailures).toEqual([]);
    // Items of one telemetry message without timestamps: one point each.
    expect(
      (
        await ingest(
          kinesisEvent([
            ruleOutput(
              `devices/${a.deviceId}/telemetry`,
              [{ values: { temp: 5000 } }, { values: { temp: 5001 } }],
              receivedAt + 1,
            ),
          ]),
        )
      ).batchItemFailures,
    ).toEqual([]);
    const stored = await points(a, 'temp', receivedAt - 1, receivedAt + 2);
    expect(stored.map((p) => p.value)).toEqual([
      ...Array.from({ length: 1000 }, (_, n) => n),
      5000,
      5001,
    ]);
  });
});

/** A store that refuses or fails as told, in memory: InfluxDB failures cannot be staged. */
class ScriptedStore {
  readonly written: Reading[] = [];
  failWith: Error | undefined;
  async writeReadings(readings: Reading[]) {
    if (this.failWith) throw this.failWith;
    if (readings.some((reading) => reading.value === 'refused')) {
      throw new ReadingsRefusedError('field type conflict');
    }
    this.written.push(...readings);
    return { written: readings.length, beyondRetention: [] };
  }
}

describe('ingestion batches with infrastructure failures (in-memory ports)', () => {
  const context = (deviceId: string, devicePk: number) => ({
    devicePk,
    deviceId,
    tenantId: devicePk,
    plan: 'free',
    retentionPolicy: 'free_plan',
    retentionDays: 30,
    anomalyDetection: 'none' as const,
    entities: {
      temp: { type: 'sensor' as const, config: null },
      label: { type: 'text' as const, config: null },
    },
  });
  function service(store: ScriptedStore, discoveryFails: Set<string>) {
    const directory = {
      resolve: async (deviceId: string) => context(deviceId, deviceId === 'A' ? 1 : 2),
      resolveMany: async (deviceIds: readonly string[]) =>
        new Map(deviceIds.map((id) => [id, context(id, id === 'A' ? 1 : 2)])),
      applyDiscoveries: async (
        _tenantId: number,
        items: ReadonlyArray<{ device: { deviceId: string } }>,
      ) => {
        if (items.some(({ device }) => discoveryFails.has(device.deviceId)))
          throw new Error('connection terminated');
        return items.map(() => null);
      },
      recordSeen: async () => {},
      confirmCommands: async () => new Map<string, string>(),
      recordRejections: async () => {},
      planVersion: async () => 1,
      markLateRollups: async () => {},
    };
    const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
    return new IngestionService({
      directory,
      readings: store as unknown as ReadingStore,
      logger: silent as never,
    });
  }
  const record = (topic: string, payload: unknown) => ({ event: ruleOutput(topic, payload) });
  const ts = Math.floor(Date.now() / 1000) - 60;

  it("a failed discovery fails that message and the same device's later ones; other devices go on", async () => {
    const store = new ScriptedStore();
    const outcome = await service(store, new Set(['A'])).ingestBatch([
      record('devices/A/temp/state', { value: 1, timestamp: ts }),
      record('devices/B/temp/state', { value: 2, timestamp: ts }),
      record('devices/A/discovery', DISCOVERY),
      record('devices/B/temp/state', { value: 3, timestamp: ts + 1 }),
      record('devices/A/temp/state', { value: 4, timestamp: ts + 1 }),
    ]);
    expect(outcome.failed).toEqual([2, 4]);
    expect(store.written.map((reading) => reading.value)).toEqual([1, 2, 3]);
  });

  it('an unavailable store fails the messages with readings, a refusal rejects only its message', async () => {
    const store = new ScriptedStore();
    const ingestion = service(store, new Set());
    const refused = await ingestion.ingestBatch([
      record('devices/A/label/state', { value: 'refused', timestamp: ts }),
      record('devices/B/temp/state', { value: 2, timestamp: ts }),
    ]);
    expect(refused.failed).toEqual([]);
    expect(refused.summary.rejected).toEqual({ refused_by_database: 1 });
    expect(store.written.map((reading) => reading.value)).toEqual([2]);
    store.failWith = new Error('InfluxDB unavailable');
    const down = await ingestion.ingestBatch([
      record('devices/A/status', 'online'),
      record('devices/A/temp/state', { value: 1, timestamp: ts }),
      record('devices/B/temp/state', { value: 2, timestamp: ts }),
    ]);
    expect(down.failed).toEqual([1, 2]);
  });
});

const hostileText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', '\udfff', 'x\udc00y', '\uffff', '\n', '"', '\\'),
);
const hostileNumber = fc.oneof(
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    -1,
    1e308,
    -1e308,
    2 ** 63,
    Number.MAX_SAFE_INTEGER,
    946_684_800,
    32_503_680_001,
    1e20,
  ),
);
const hostileValue = fc.oneof(
  hostileText,
  hostileNumber,
  fc.boolean(),
  fc.constant(null),
  fc.object(),
);
const hostileKey = fc.oneof(
  hostileText,
  fc.constantFrom('temp', 'label', 'relay', 'status', '__proto__'),
);

/** A hostile message of one topic kind, for a device: [topic suffix, payload]. */
const hostileMessage = fc.oneof(
  fc
    .tuple(hostileKey, hostileValue, fc.option(hostileNumber), fc.option(hostileText))
    .map(([entity, value, timestamp, commandId]) => [
      `${entity}/state`,
      JSON.stringify({ value, timestamp, command_id: commandId }),
    ]),
  fc
    .array(
      fc.record({
        timestamp: fc.option(hostileNumber),
        values: fc.dictionary(hostileKey, hostileValue),
      }),
      {
        maxLength: 3,
      },
    )
    .map((items) => ['telemetry', JSON.stringify(items.length === 1 ? items[0] : items)]),
  fc
    .record({
      name: hostileText,
      entities: fc.array(
        fc.record({
          entity_id: hostileKey,
          entity_type: fc.constantFrom('sensor', 'switch', 'text', 'laser'),
          name: hostileText,
          unit: fc.option(hostileText),
          config: fc.option(fc.dictionary(hostileText, hostileValue)),
        }),
        { maxLength: 3 },
      ),
    })
    .map((discovery) => ['discovery', JSON.stringify(discovery)]),
  hostileText.map((status) => ['status', status]),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ['telemetry', Buffer.from(bytes)]),
);

describe('MQTT payload fuzz through the stream path', () => {
  it("property: a hostile message of any topic kind stores no point unless accepted, and never touches another tenant's reading in the batch", async () => {
    const a = await tenantWithDevice();
    const b = await tenantWithDevice();
    const start = Date.now() - 120_000;
    const window = [start - 7_200_000, Date.now() + 360_000] as const;
    const storedOfA = async () => {
      const response = await callRoute(devices, 'GET /api/devices/{id}/telemetry', {
        token: a.token,
        params: { id: String(a.id) },
        query: { from: new Date(window[0]).toISOString(), to: new Date(window[1]).toISOString() },
      });
      return (response.body.series as Array<{ points: unknown[] }>).reduce(
        (total, series) => total + series.points.length,
        0,
      );
    };
    let before = await storedOfA();
    let run = 0;
    const kinds = new Map<string, number>();
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(hostileMessage, async ([suffix, payload]) => {
        run += 1;
        const kind = String(suffix).split('/').at(-1) as string;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        const goodAt = start + run * 10;
        // The same decoding and ingestion the handler runs, with the summary it logs.
        const { summary, failed } = await ingestionService().ingestBatch(
          streamRecords(
            kinesisEvent([
              ruleOutput(`devices/${a.deviceId}/${suffix}`, payload, start - 3_600_000 + run),
              ruleOutput(`devices/${b.deviceId}/temp/state`, {
                value: run,
                timestamp: goodAt / 1000,
              }),
            ]),
          ),
        );
        expect(failed).toEqual([]);
        rejected += Object.values(summary.rejected).reduce((sum, n) => sum + (n ?? 0), 0);
        expect(await points(b, 'temp', goodAt, goodAt + 1)).toEqual([
          { time: new Date(goodAt).toISOString(), value: run },
        ]);
        const fromA = summary.readings - 1;
        const after = await storedOfA();
        if (fromA === 0) expect(after).toBe(before);
        else expect(after - before).toBeLessThanOrEqual(fromA);
        before = after;
      }),
      { numRuns: FUZZ_CASES },
    );
    console.info(
      `MQTT payload fuzz: ${run} cases (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}), ` +
        `${rejected} messages rejected with a counted reason, 0 failed in their batch`,
    );
    // Whatever A sent, its entities hold only values of their types, and B got every reading.
    const types: Record<string, string> = { temp: 'number', label: 'string', relay: 'boolean' };
    for (const [entity, type] of Object.entries(types)) {
      for (const point of await points(a, entity, ...window)) expect(typeof point.value).toBe(type);
    }
    expect(await points(b, 'temp', start, Date.now())).toHaveLength(FUZZ_CASES);
  }, 180_000);
});
