import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { InfluxReadingStore } from '../shared/timeseries/adapters/influx-reading-store.ts';
import { ensureTimeseriesSchema } from '../shared/timeseries/adapters/influx-schema.ts';
import { dropDatabase } from '../shared/timeseries/adapters/influxql.ts';
import type { SeriesPoint } from '../shared/timeseries/domain/reading-store.ts';
import {
  InvalidReadingError,
  MAX_NUMERIC_MAGNITUDE,
  type Reading,
  readingProblem,
} from '../shared/timeseries/reading.ts';

/** The InfluxDB the global setup started (a missing influxd fails the run there). */
async function influxUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  return { url: inject('testStack').influxUrl, stop: async () => {} };
}

const HOUR = 3_600_000;
const database = `ts_prop_${randomBytes(4).toString('hex')}`;
let server: { url: string; stop(): Promise<void> };
let client: InfluxClient;
let store: InfluxReadingStore;
let devices = 0;
/** Each run writes to a device of its own, so runs cannot see each other's points. */
const nextDevice = () => `DEV-${++devices}`;

beforeAll(async () => {
  server = await influxUrl();
  client = new InfluxClient({ url: server.url, database });
  await ensureTimeseriesSchema(client, { database });
  store = new InfluxReadingStore({ client });
});

afterAll(async () => {
  await client?.query(dropDatabase(database)).catch(() => {});
  await server?.stop();
});

const entityId = fc.stringMatching(/^[a-zA-Z0-9_-]{1,100}$/);
const tricky = fc.constantFrom(
  'a',
  ' ',
  ',',
  '=',
  '"',
  "'",
  '\\',
  '\n',
  '\r',
  '\t',
  '\u0000',
  '\uD800',
  '\uDC00',
  'é',
  '😀',
);
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: tricky, maxLength: 20 }),
);

async function rawSeries(tenantId: number, deviceId: string, from: number, to: number) {
  const answer = await store.series({
    tenantId,
    deviceId,
    from: new Date(from),
    to: new Date(to),
    retentionPolicy: 'free_plan',
  });
  expect(answer.source).toBe('raw');
  return new Map(answer.series.map((series) => [series.entity_id, series.points]));
}

/** Writes what can be stored; whatever is refused must be refused before anything is sent. */
async function writeOrRefuse(readings: Reading[]): Promise<Reading[]> {
  const valid = readings.filter((reading) => readingProblem(reading) === undefined);
  if (valid.length < readings.length) {
    await expect(store.writeReadings(readings)).rejects.toBeInstanceOf(InvalidReadingError);
  }
  if (valid.length > 0) {
    expect(await store.writeReadings(valid)).toEqual({
      written: valid.length,
      beyondRetention: [],
    });
  }
  return valid;
}

function expectSame(points: SeriesPoint[] | undefined, readings: Reading[]) {
  expect(points?.map((point) => point.time)).toEqual(
    readings.map((reading) => new Date(reading.timeMs).toISOString()),
  );
  points?.forEach((point, index) => {
    // Object.is: -0 must stay -0, and a value is never replaced by a near one.
    expect(Object.is(point.value, readings[index]?.value), `${point.value}`).toBe(true);
  });
}

describe('time-series properties (real InfluxDB)', () => {
  it('reads back every float exactly, or refuses it up front', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ entityId, value: fc.double() }), {
          selector: (item) => item.entityId,
          minLength: 1,
          maxLength: 8,
        }),
        async (items) => {
          const deviceId = nextDevice();
          const base = Date.now() - HOUR;
          const readings: Reading[] = items.map((item, index) => ({
            tenantId: 1,
            deviceId,
            entityId: item.entityId,
            entityType: index % 2 === 0 ? 'sensor' : 'number',
            value: item.value,
            timeMs: base + index,
            retentionPolicy: 'free_plan',
          }));
          const valid = await writeOrRefuse(readings);
          // Every finite value within the bound that keeps a window's sum finite is stored.
          const storable = (r: Reading) => Math.abs(r.value as number) <= MAX_NUMERIC_MAGNITUDE;
          expect(valid.every(storable)).toBe(true);
          expect(valid).toHaveLength(readings.filter(storable).length);
          const series = await rawSeries(1, deviceId, base, base + readings.length);
          expect([...series.keys()].sort()).toEqual(valid.map((r) => r.entityId).sort());
          for (const reading of valid) expectSame(series.get(reading.entityId), [reading]);
          const latest = await store.latest(
            1,
            deviceId,
            valid.map((reading) => ({
              entityId: reading.entityId,
              entityType: reading.entityType,
            })),
            'free_plan',
          );
          for (const reading of valid) {
            expect(Object.is(latest.get(reading.entityId)?.value, reading.value)).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads back every text value exactly, or refuses it up front', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(text, { minLength: 1, maxLength: 6 }), async (values) => {
        const deviceId = nextDevice();
        const base = Date.now() - HOUR;
        const readings: Reading[] = values.map((value, index) => ({
          tenantId: 1,
          deviceId,
          entityId: 'mode',
          entityType: 'text',
          value,
          timeMs: base + index,
          retentionPolicy: 'free_plan',
        }));
        for (const reading of readings) {
          const refused = readingProblem(reading) !== undefined;
          expect(refused).toBe(/[\r\n]|[\uD800-\uDFFF]/u.test(reading.value as string));
        }
        const valid = await writeOrRefuse(readings);
        const series = await rawSeries(1, deviceId, base, base + readings.length);
        expectSame(series.get('mode') ?? [], valid);
      }),
      { numRuns: 60 },
    );
  });

  it('never shows one tenant the points of another with the same device and entity ids', async () => {
    const tenantValues = fc.array(
      fc.record({
        entityId: fc.constantFrom('temp', 'pressure', 'relay'),
        value: fc.double({ noNaN: true, min: -MAX_NUMERIC_MAGNITUDE, max: MAX_NUMERIC_MAGNITUDE }),
        offset: fc.integer({ min: 0, max: 50 }),
      }),
      { maxLength: 12 },
    );
    await fc.assert(
      fc.asyncProperty(tenantValues, tenantValues, async (first, second) => {
        const deviceId = nextDevice();
        const base = Date.now() - HOUR;
        const toReadings = (tenantId: number, items: typeof first): Reading[] => {
          // One reading per series and time: the later one overwrites, as in InfluxDB.
          const byKey = new Map<string, Reading>();
          for (const item of items) {
            const relay = item.entityId === 'relay';
            byKey.set(`${item.entityId}/${item.offset}`, {
              tenantId,
              deviceId,
              entityId: item.entityId,
              entityType: relay ? 'switch' : 'sensor',
              value: relay ? item.value > 0 : item.value,
              timeMs: base + item.offset,
              retentionPolicy: 'free_plan',
            });
          }
          return [...byKey.values()].sort((a, b) => a.timeMs - b.timeMs);
        };
        const mine = { 10: toReadings(10, first), 11: toReadings(11, second) };
        await store.writeReadings([...mine[10], ...mine[11]]);
        for (const tenantId of [10, 11] as const) {
          const series = await rawSeries(tenantId, deviceId, base, base + 60);
          const expected = new Map<string, Reading[]>();
          for (const reading of mine[tenantId]) {
            expected.set(reading.entityId, [...(expected.get(reading.entityId) ?? []), reading]);
          }
          expect([...series.keys()].sort()).toEqual([...expected.keys()].sort());
          for (const [id, readings] of expected) expectSame(series.get(id), readings);

          const counts = await store.series({
            tenantId,
            deviceId,
            from: new Date(base),
            to: new Date(base + 60),
            every: '1h',
            fn: 'count',
            retentionPolicy: 'free_plan',
          });
          const total = counts.series
            .flatMap((series) => series.points)
            .reduce((sum, point) => sum + (point.value as number), 0);
          expect(total).toBe(mine[tenantId].length);
        }
      }),
      { numRuns: 40 },
    );
  });
});
