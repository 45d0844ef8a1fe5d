import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  BeyondRetentionError,
  FieldTypeConflictError,
  InfluxClient,
  InfluxQueryError,
  InfluxRequestError,
  InfluxUnavailableError,
  influxAuth,
  rowsOf,
} from '../shared/timeseries/adapters/influx-client.ts';
import { InfluxReadingStore } from '../shared/timeseries/adapters/influx-reading-store.ts';
import { ensureTimeseriesSchema } from '../shared/timeseries/adapters/influx-schema.ts';
import { InfluxRollups } from '../shared/timeseries/adapters/influx-tiers.ts';
import {
  alterRetentionPolicy,
  dropDatabase,
  duration,
  InfluxQLError,
  ident,
  showContinuousQueries,
  showRetentionPolicies,
  stringLiteral,
  tenantDelete,
  tenantSelect,
} from '../shared/timeseries/adapters/influxql.ts';
import { TooManyPointsError } from '../shared/timeseries/domain/reading-store.ts';
import {
  formatFloat,
  LineProtocolError,
  lineProblem,
  toLine,
} from '../shared/timeseries/line-protocol.ts';
import { InvalidReadingError, type Reading, readingToLine } from '../shared/timeseries/reading.ts';

/** The InfluxDB the global setup started (a missing influxd fails the run there). */
async function influxUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  return { url: inject('testStack').influxUrl, stop: async () => {} };
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const database = `ts_test_${randomBytes(4).toString('hex')}`;
let server: { url: string; stop(): Promise<void> };
let client: InfluxClient;
let store: InfluxReadingStore;
let nextTenant = 1;
const tenant = () => nextTenant++;

beforeAll(async () => {
  server = await influxUrl();
  client = new InfluxClient({ url: server.url, database, timeoutMs: 10_000 });
  await ensureTimeseriesSchema(client, { database });
  store = new InfluxReadingStore({ client });
});

afterAll(async () => {
  await client?.query(dropDatabase(database)).catch(() => {});
  await server?.stop();
});

function reading(overrides: Partial<Reading> & Pick<Reading, 'tenantId' | 'timeMs'>): Reading {
  return {
    deviceId: 'COMP_001',
    entityId: 'temp_oil',
    entityType: 'sensor',
    value: 1,
    retentionPolicy: 'free_plan',
    ...overrides,
  };
}

/** Every raw value of one field, as stored, for a tenant. */
async function stored(
  tenantId: number,
  policy: string,
  measurement = 'sensor_data',
  field = 'value',
) {
  const [result] = await client.query(
    tenantSelect({
      tenantId,
      from: { database, retentionPolicy: policy, measurement },
      select: [{ expr: { field } }],
      groupBy: { tags: ['entity_id'] },
    }),
  );
  return (result?.series ?? []).flatMap((series) =>
    rowsOf(series).map((row) => ({
      entity: series.tags.entity_id,
      time: row.time,
      value: row[field],
    })),
  );
}

describe('line protocol', () => {
  it('escapes measurement, tag and field syntax characters', () => {
    expect(
      toLine({
        measurement: 'm e,a=s',
        tags: { 'z key': 'v,a=l ue', a: 'x\\y"' },
        fields: { 'f=1': 'say "hi" \\o/', n: 42, b: false },
        timeMs: 1700000000123,
      }),
    ).toBe(
      'm\\ e\\,a=s,a=x\\y",z\\ key=v\\,a\\=l\\ ue f\\=1="say \\"hi\\" \\\\o/",n=42,b=false 1700000000123',
    );
  });

  it('refuses what it cannot write unambiguously', () => {
    const point = (tags: Record<string, string>, text = 'ok') => ({
      measurement: 'm',
      tags,
      fields: { text },
      timeMs: 1,
    });
    expect(lineProblem(point({ a: 'line\nbreak' }))).toMatch(/line break/);
    expect(lineProblem(point({ a: 'ok' }, 'two\nlines'))).toMatch(/line break/);
    expect(lineProblem(point({ a: 'ok' }, 'carriage\rreturn'))).toMatch(/line break/);
    expect(lineProblem(point({ a: 'ends with \\' }))).toMatch(/backslash/);
    expect(lineProblem(point({ a: 'slash\\,comma' }))).toMatch(/backslash/);
    expect(lineProblem(point({ a: '' }))).toMatch(/empty/);
    expect(lineProblem(point({ a: 'lone \uD800' }))).toMatch(/Unicode/);
    expect(() => toLine({ measurement: 'm', tags: {}, fields: {}, timeMs: 1 })).toThrow(
      LineProtocolError,
    );
  });

  it('writes floats in a form that parses back to the same double', () => {
    expect(formatFloat(42)).toBe('42');
    expect(formatFloat(-0)).toBe('-0');
    expect(formatFloat(1e21)).toBe('1e+21');
    expect(formatFloat(5e-324)).toBe('5e-324');
    expect(formatFloat(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(() => formatFloat(Number.NaN)).toThrow(LineProtocolError);
    expect(() => formatFloat(Number.POSITIVE_INFINITY)).toThrow(LineProtocolError);
  });

  it('stores escaped names and strings exactly as given', async () => {
    const t = tenant();
    const tagValue = 'a b,c=d"e\\f';
    const text = 'quote " backslash \\ end\\';
    await client.write(
      [
        toLine({
          measurement: 'lp_check',
          tags: { tenant_id: String(t), entity_id: tagValue },
          fields: { text, 'odd key,=': -0 },
          timeMs: Date.now(),
        }),
      ],
      { retentionPolicy: 'free_plan' },
    );
    const [result] = await client.query(
      tenantSelect({
        tenantId: t,
        from: { database, retentionPolicy: 'free_plan', measurement: 'lp_check' },
        select: [{ expr: { field: 'text' } }, { expr: { field: 'odd key,=' } }],
        tags: { entity_id: tagValue },
        groupBy: { tags: ['entity_id'] },
      }),
    );
    const series = result?.series[0];
    expect(series?.tags.entity_id).toBe(tagValue);
    const row = series ? rowsOf(series)[0] : undefined;
    expect(row?.text).toBe(text);
    expect(Object.is(row?.['odd key,='], -0)).toBe(true);
  });
});

describe('InfluxQL builder', () => {
  it('quotes and escapes identifiers and strings', () => {
    expect(ident('my "db"\\x')).toBe('"my \\"db\\"\\\\x"');
    expect(stringLiteral("it's a \\ test\n")).toBe("'it\\'s a \\\\ test\\n'");
    expect(duration('30d')).toBe('30d');
    for (const bad of ['0d', '5', '1.5h', '5m; DROP DATABASE x', '5y', '-1h', '05m']) {
      expect(() => duration(bad)).toThrow(InfluxQLError);
    }
  });

  it('puts the tenant in every tenant statement and nowhere else can it come from', () => {
    const from = { database: 'd', retentionPolicy: 'free_plan', measurement: 'sensor_data' };
    const select = tenantSelect({ tenantId: 7, from, select: [{ expr: { field: 'value' } }] });
    expect(select).toBe(
      `SELECT "value" FROM "d"."free_plan"."sensor_data" WHERE "tenant_id" = '7'`,
    );
    expect(tenantDelete({ tenantId: 7, database: 'd', time: { to: 1000 } })).toBe(
      `DELETE WHERE "tenant_id" = '7' AND time < 1000ms`,
    );
    expect(() =>
      tenantSelect({ tenantId: 0, from, select: [{ expr: { field: 'value' } }] }),
    ).toThrow(InfluxQLError);
    expect(() =>
      tenantSelect({
        tenantId: 7,
        from,
        select: [{ expr: { field: 'value' } }],
        tags: { tenant_id: '8' },
      }),
    ).toThrow(InfluxQLError);
  });

  it('runs a query whose literals hold quotes, backslashes and newlines', async () => {
    const t = tenant();
    const odd = `it's "odd" a\\b`;
    await client.write(
      [
        toLine({
          measurement: 'ql_check',
          tags: { tenant_id: String(t), entity_id: odd },
          fields: { value: 3.5 },
          timeMs: Date.now(),
        }),
      ],
      { retentionPolicy: 'free_plan' },
    );
    const query = (entity: string) =>
      client.query(
        tenantSelect({
          tenantId: t,
          from: { database, retentionPolicy: 'free_plan', measurement: 'ql_check' },
          select: [{ expr: { field: 'value' } }],
          tags: { entity_id: entity },
        }),
      );
    expect((await query(odd))[0]?.series[0]?.values[0]?.[1]).toBe(3.5);
    expect((await query(`${odd}\nor 1=1`))[0]?.series).toEqual([]);
  });
});

describe('schema', () => {
  it('creates the plan and rollup policies idempotently, correcting durations, and drops the old CQs', async () => {
    const other = `${database}_schema`;
    const otherClient = new InfluxClient({ url: server.url, database: other });
    try {
      await ensureTimeseriesSchema(otherClient, { database: other });
      // A rollup continuous query an earlier version created, and one of the operator's own.
      for (const name of ['cq_free_plan_5m', 'operator_cq']) {
        await otherClient.query(
          `CREATE CONTINUOUS QUERY "${name}" ON "${other}" BEGIN SELECT mean("value") INTO "${other}"."free_plan_5m"."sensor_data" FROM "${other}"."free_plan"."sensor_data" GROUP BY time(5m), * END` as never,
        );
      }
      // A policy shortened by hand is put back.
      await otherClient.query(
        alterRetentionPolicy({ database: other, name: 'starter_plan', duration: '7d' }),
      );
      await ensureTimeseriesSchema(otherClient, { database: other });
      await ensureTimeseriesSchema(otherClient, { database: other });

      const [policies] = await otherClient.query(showRetentionPolicies(other));
      const rows = policies?.series[0] ? rowsOf(policies.series[0]) : [];
      const byName = new Map(rows.map((row) => [row.name, row]));
      const expected: Record<string, string> = {
        free_plan: '720h0m0s',
        starter_plan: '2160h0m0s',
        professional_plan: '8760h0m0s',
        industrial_plan: '0s',
      };
      for (const [plan, goDuration] of Object.entries(expected)) {
        for (const name of [plan, `${plan}_5m`, `${plan}_1h`]) {
          expect(byName.get(name)?.duration, name).toBe(goDuration);
        }
      }
      expect(rows.filter((row) => row.default === true).map((row) => row.name)).toEqual([
        'free_plan',
      ]);

      const [cqs] = await otherClient.query(showContinuousQueries());
      const mine = cqs?.series.find((series) => series.name === other);
      expect((mine ? rowsOf(mine) : []).map((row) => row.name)).toEqual(['operator_cq']);
    } finally {
      await otherClient.query(dropDatabase(other)).catch(() => {});
    }
  });
});

describe('client', () => {
  let hanging: Server;
  let failing: Server;
  const listen = async (handler: Parameters<typeof createServer>[1]) => {
    const http = createServer(handler);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return http;
  };
  const urlOf = (http: Server) => `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  beforeAll(async () => {
    hanging = await listen(() => {});
    failing = await listen((_request, response) => {
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end('{"error":"overloaded"}');
    });
  });
  afterAll(() => {
    hanging.closeAllConnections();
    hanging.close();
    failing.close();
  });

  it('reports an unreachable, hung or failing server as unavailable', async () => {
    const select = tenantSelect({
      tenantId: 1,
      from: { database, retentionPolicy: 'free_plan', measurement: 'sensor_data' },
      select: [{ expr: { field: 'value' } }],
    });
    const down = new InfluxClient({ url: 'http://127.0.0.1:1', database, timeoutMs: 500 });
    await expect(down.write(['m v=1 1'])).rejects.toBeInstanceOf(InfluxUnavailableError);
    expect(await down.ping()).toBe(false);
    const hung = new InfluxClient({ url: urlOf(hanging), database, timeoutMs: 200 });
    // The hung server never answers: only the client's own timeout ends these calls. Writes go
    // through node:http, queries through fetch: both give up.
    await expect(hung.query(select)).rejects.toThrow(/within 200 ms/);
    await expect(hung.write(['m v=1 1'])).rejects.toThrow(/within 200 ms/);
    await expect(hung.write(['m v=1 1'])).rejects.toBeInstanceOf(InfluxUnavailableError);
    const failingClient = new InfluxClient({ url: urlOf(failing), database });
    await expect(failingClient.write(['m v=1 1'])).rejects.toThrow(InfluxUnavailableError);
    expect(await client.ping()).toBe(true);
  });

  it('sends credentials in headers, never in the URL', async () => {
    const seen: Array<{ url?: string; authorization?: string }> = [];
    const recorder = await listen((request, response) => {
      seen.push({ url: request.url, authorization: request.headers.authorization });
      response.writeHead(204).end();
    });
    try {
      const basic = influxAuth({ username: 'writer', password: 'p:w' });
      await new InfluxClient({ url: urlOf(recorder), database, auth: basic }).write(['m v=1 1']);
      const token = influxAuth({ username: 'ignored', token: 'tok' });
      await new InfluxClient({ url: urlOf(recorder), database, auth: token }).write(['m v=1 1']);
      expect(seen).toEqual([
        {
          url: `/write?db=${database}&precision=ms`,
          authorization: `Basic ${Buffer.from('writer:p:w').toString('base64')}`,
        },
        { url: `/write?db=${database}&precision=ms`, authorization: 'Token tok' },
      ]);
      expect(influxAuth({})).toBeUndefined();
    } finally {
      recorder.close();
    }
  });

  it('types field conflicts, query errors and unknown databases', async () => {
    const now = Date.now();
    await client.write([`conflict,tenant_id=1 v=1 ${now}`], { retentionPolicy: 'free_plan' });
    const conflict = await client
      .write([`conflict,tenant_id=1 v="text" ${now + 1}`], { retentionPolicy: 'free_plan' })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(FieldTypeConflictError);
    expect(conflict).toMatchObject({ measurement: 'conflict', field: 'v', dropped: 1 });

    const missing = await new InfluxClient({ url: server.url, database: 'no_such_db' })
      .write(['m v=1 1'])
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(InfluxRequestError);
    expect((missing as InfluxRequestError).status).toBe(404);
    expect((missing as Error).message).toMatch(/database not found/);

    await client.write([`relay_states,tenant_id=1,entity_id=r state=true ${now}`], {
      retentionPolicy: 'free_plan',
    });
    await expect(
      client.query(
        tenantSelect({
          tenantId: 1,
          from: { database, retentionPolicy: 'free_plan', measurement: 'relay_states' },
          select: [{ expr: { fn: 'mean', field: 'state' } }],
        }),
      ),
    ).rejects.toThrow(InfluxQueryError);
  });

  it('writes in batches and says which batch lost points to retention', async () => {
    const t = tenant();
    const now = Date.now();
    const lines = Array.from({ length: 12_001 }, (_, index) =>
      toLine({
        measurement: 'batch_check',
        tags: { tenant_id: String(t) },
        fields: { value: index },
        // Two points in the second batch are older than free_plan keeps.
        timeMs: index === 5003 || index === 5004 ? now - 40 * DAY : now - index,
      }),
    );
    const error = await client
      .write(lines, { retentionPolicy: 'free_plan' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BeyondRetentionError);
    expect((error as BeyondRetentionError).dropped).toBe(2);
    expect((error as BeyondRetentionError).batches).toEqual([
      { offset: 5000, lines: 5000, dropped: 2 },
    ]);
    const [count] = await client.query(
      tenantSelect({
        tenantId: t,
        from: { database, retentionPolicy: 'free_plan', measurement: 'batch_check' },
        select: [{ expr: { fn: 'count', field: 'value' } }],
      }),
    );
    expect(count?.series[0]?.values[0]?.[1]).toBe(11_999);
    const gzipped = new InfluxClient({ url: server.url, database, gzip: true });
    await gzipped.write(lines.slice(0, 10), { retentionPolicy: 'free_plan' });
  });

  it('keeps every batch whole while it reuses request buffers across writes', async () => {
    // Small batches, several at once, from writes running side by side and one after
    // another: each body is written into a buffer an earlier batch gave back.
    const reusing = new InfluxClient({
      url: server.url,
      database,
      batchSize: 7,
      writeConcurrency: 3,
    });
    const t = tenant();
    const now = Date.now();
    const texts = [
      'a',
      'ü'.repeat(40),
      '😀 with "quotes", commas and \\ backslashes',
      'b'.repeat(300),
    ];
    const linesOf = (round: number) =>
      Array.from({ length: 200 }, (_, index) =>
        toLine({
          measurement: 'reuse_check',
          tags: { tenant_id: String(t), round: String(round) },
          fields: { text: `${round}:${index}:${texts[(index + round) % texts.length]}` },
          timeMs: now - index,
        }),
      );
    await Promise.all([reusing.write(linesOf(1)), reusing.write(linesOf(2))]);
    await reusing.write(linesOf(3));
    const [result] = await reusing.query(
      `SELECT "text" FROM "reuse_check" WHERE "tenant_id" = '${t}' GROUP BY "round"` as never,
    );
    for (const round of [1, 2, 3]) {
      const series = result?.series.find((entry) => entry.tags?.round === String(round));
      const values = new Set(series?.values.map((row) => row[1]));
      const expected = Array.from(
        { length: 200 },
        (_, index) => `${round}:${index}:${texts[(index + round) % texts.length]}`,
      );
      expect(values).toEqual(new Set(expected));
    }
  });

  it('writes encoded lines once and refuses to send them again', async () => {
    const t = tenant();
    const encoded = client.encode([
      toLine({
        measurement: 'encoded_check',
        tags: { tenant_id: String(t) },
        fields: { value: 1 },
        timeMs: Date.now(),
      }),
    ]);
    expect(encoded.count).toBe(1);
    await client.write(encoded);
    // Its buffers went back to the pool when the request was answered: sending them again
    // could send another batch's points.
    await expect(client.write(encoded)).rejects.toThrow(/already written/);
    const [count] = await client.query(
      `SELECT count("value") FROM "encoded_check" WHERE "tenant_id" = '${t}'` as never,
    );
    expect(count?.series[0]?.values[0]?.[1]).toBe(1);
  });
});

describe('reading store', () => {
  it('stores each entity type where it belongs and reads the latest values', async () => {
    const t = tenant();
    const now = Date.now();
    const result = await store.writeReadings([
      reading({ tenantId: t, entityId: 'temp', value: 20.5, timeMs: now - 2000, unit: '°C' }),
      reading({ tenantId: t, entityId: 'temp', value: 21.25, timeMs: now - 1000, unit: '°C' }),
      reading({
        tenantId: t,
        entityId: 'speed',
        entityType: 'number',
        value: 1e-7,
        timeMs: now - 500,
      }),
      reading({
        tenantId: t,
        entityId: 'mode',
        entityType: 'text',
        value: 'auto "eco"',
        timeMs: now - 700,
      }),
      reading({
        tenantId: t,
        entityId: 'relay',
        entityType: 'switch',
        value: true,
        timeMs: now - 900,
        triggeredBy: 'user_3',
      }),
      reading({
        tenantId: t,
        entityId: 'relay',
        entityType: 'switch',
        value: false,
        timeMs: now - 100,
      }),
    ]);
    expect(result).toEqual({ written: 6, beyondRetention: [] });
    const latest = await store.latest(
      t,
      'COMP_001',
      [
        { entityId: 'temp', entityType: 'sensor' },
        { entityId: 'speed', entityType: 'number' },
        { entityId: 'mode', entityType: 'text' },
        { entityId: 'relay', entityType: 'switch' },
        { entityId: 'silent', entityType: 'sensor' },
      ],
      'free_plan',
    );
    expect(Object.fromEntries(latest)).toEqual({
      temp: { value: 21.25, time: new Date(now - 1000).toISOString() },
      speed: { value: 1e-7, time: new Date(now - 500).toISOString() },
      mode: { value: 'auto "eco"', time: new Date(now - 700).toISOString() },
      relay: { value: false, time: new Date(now - 100).toISOString() },
    });
    const relays = await stored(t, 'free_plan', 'relay_states', 'triggered_by');
    expect(relays.map((row) => row.value)).toEqual(['user_3']);
    const units = await stored(t, 'free_plan', 'sensor_data', 'unit');
    expect(units.map((row) => row.value)).toEqual(['°C', '°C']);
  });

  it('stores a point written twice once', async () => {
    const t = tenant();
    const point = reading({ tenantId: t, value: 7, timeMs: Date.now() - 5000 });
    await store.writeReadings([point]);
    await store.writeReadings([point, { ...point }]);
    expect(await stored(t, 'free_plan')).toHaveLength(1);
  });

  it('refuses invalid readings up front and writes nothing of the batch', async () => {
    const t = tenant();
    const now = Date.now();
    const good = reading({ tenantId: t, timeMs: now });
    for (const bad of [
      reading({ tenantId: t, value: Number.NaN, timeMs: now }),
      reading({ tenantId: t, value: Number.POSITIVE_INFINITY, timeMs: now }),
      reading({ tenantId: t, entityType: 'text', value: 'two\nlines', timeMs: now }),
      reading({ tenantId: t, entityType: 'switch', value: 1, timeMs: now }),
      reading({ tenantId: t, entityId: 'bad id', timeMs: now }),
      reading({ tenantId: t, timeMs: now + 0.5 }),
    ]) {
      await expect(store.writeReadings([good, bad])).rejects.toBeInstanceOf(InvalidReadingError);
      expect(() => readingToLine(bad)).toThrow(InvalidReadingError);
    }
    expect(await stored(t, 'free_plan')).toEqual([]);
  });

  it('returns readings older than the plan keeps and stores the rest', async () => {
    const t = tenant();
    const now = Date.now();
    const old = [
      reading({ tenantId: t, value: 1, timeMs: now - 45 * DAY }),
      reading({ tenantId: t, value: 2, timeMs: now - 40 * DAY }),
    ];
    const fresh = [
      reading({ tenantId: t, value: 3, timeMs: now - 10 * DAY }),
      reading({ tenantId: t, value: 4, timeMs: now - HOUR }),
      reading({ tenantId: t, value: 5, timeMs: now }),
    ];
    const starter = reading({
      tenantId: t,
      value: 6,
      timeMs: now - 40 * DAY,
      retentionPolicy: 'starter_plan',
    });
    const result = await store.writeReadings([
      fresh[0],
      old[0],
      fresh[1],
      starter,
      old[1],
      fresh[2],
    ] as Reading[]);
    expect(result.written).toBe(4);
    expect(new Set(result.beyondRetention)).toEqual(new Set(old));
    expect((await stored(t, 'free_plan')).map((row) => row.value).sort()).toEqual([3, 4, 5]);
    expect((await stored(t, 'starter_plan')).map((row) => row.value)).toEqual([6]);
  });

  it('serves raw series exactly and refuses answers that are too large', async () => {
    const t = tenant();
    const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const values = [1.5, -2, 0.1 + 0.2, 1e38, -1e-300, -0];
    await store.writeReadings(
      values.map((value, index) => reading({ tenantId: t, value, timeMs: base + index * MINUTE })),
    );
    const answer = await store.series({
      tenantId: t,
      deviceId: 'COMP_001',
      entityIds: ['temp_oil'],
      from: new Date(base - HOUR),
      to: new Date(base + HOUR),
      retentionPolicy: 'free_plan',
    });
    expect(answer.source).toBe('raw');
    expect(answer.series).toHaveLength(1);
    const points = answer.series[0]?.points ?? [];
    expect(points.map((point) => point.time)).toEqual(
      values.map((_, index) => new Date(base + index * MINUTE).toISOString()),
    );
    points.forEach((point, index) => {
      expect(Object.is(point.value, values[index])).toBe(true);
    });

    const small = new InfluxReadingStore({ client, maxPoints: 3 });
    const query = {
      tenantId: t,
      deviceId: 'COMP_001',
      from: new Date(base - HOUR),
      to: new Date(base + HOUR),
      retentionPolicy: 'free_plan',
    };
    await expect(small.series(query)).rejects.toThrow(TooManyPointsError);
    await expect(small.series(query)).rejects.toThrow(/every/);
    await expect(small.series({ ...query, every: '1m' })).rejects.toThrow(TooManyPointsError);
    expect(
      (await small.series({ ...query, every: '1h' })).series[0]?.points.length,
    ).toBeLessThanOrEqual(3);
  });

  it('computes rollups by the platform and serves long spans from them', async () => {
    const t = tenant();
    const day = Math.floor(Date.now() / DAY) * DAY - 10 * DAY;
    // Hour h of the day holds minutes 0, 10, 20 with values h, h+1, h+2 (and a 4th at 50 for h even).
    const readings: Reading[] = [];
    for (let hour = 0; hour < 24; hour++) {
      const offsets = hour % 2 === 0 ? [0, 10, 20, 50] : [0, 10, 20];
      offsets.forEach((minute, index) => {
        readings.push(
          reading({
            tenantId: t,
            value: hour + index,
            timeMs: day + hour * HOUR + minute * MINUTE,
          }),
        );
      });
    }
    readings.push(
      reading({ tenantId: t, entityId: 'mode', entityType: 'text', value: 'on', timeMs: day }),
    );
    await store.writeReadings(readings);
    await new InfluxRollups(client, database).recompute(t, 'free_plan', day, day + DAY);

    const numeric = readings.filter((r) => r.entityType === 'sensor');
    const hourly = (hour: number) =>
      numeric.filter((r) => r.timeMs >= day + hour * HOUR && r.timeMs < day + (hour + 1) * HOUR);
    const base = {
      tenantId: t,
      deviceId: 'COMP_001',
      entities: [{ entityId: 'temp_oil', entityType: 'sensor' as const }],
      retentionPolicy: 'free_plan',
    };

    // 7-day span: the 5m rollup; hourly buckets from 5m rollup points.
    const week = { ...base, from: new Date(day - 3 * DAY), to: new Date(day + 4 * DAY) };
    for (const fn of ['mean', 'min', 'max', 'count', 'last'] as const) {
      const answer = await store.series({ ...week, every: '1h', fn });
      expect(answer.source).toBe('5m');
      const points = answer.series[0]?.points ?? [];
      expect(points).toHaveLength(24);
      points.forEach((point, hour) => {
        const values = hourly(hour).map((r) => r.value as number);
        const expected = {
          mean: values.reduce((a, b) => a + b, 0) / values.length,
          min: Math.min(...values),
          max: Math.max(...values),
          count: values.length,
          last: values[values.length - 1],
        }[fn];
        expect(point, `${fn} hour ${hour}`).toEqual({
          time: new Date(day + hour * HOUR).toISOString(),
          value: expected,
        });
      });
    }
    // Without every: the rollup's own 5-minute points.
    const own = await store.series({ ...week, fn: 'max' });
    expect(own.source).toBe('5m');
    expect(own.series[0]?.points).toHaveLength(numeric.length);

    // 40-day span: the 1h rollup; a whole-day mean from sums and counts is exact.
    const month = { ...base, from: new Date(day - 20 * DAY), to: new Date(day + 20 * DAY) };
    const daily = await store.series({ ...month, every: '1d', fn: 'mean' });
    expect(daily.source).toBe('1h');
    const all = numeric.map((r) => r.value as number);
    expect(daily.series[0]?.points).toEqual([
      { time: new Date(day).toISOString(), value: all.reduce((a, b) => a + b, 0) / all.length },
    ]);
    const hours = await store.series({ ...month, fn: 'count' });
    expect(hours.source).toBe('1h');
    expect(hours.series[0]?.points.map((point) => point.value)).toEqual(
      Array.from({ length: 24 }, (_, hour) => hourly(hour).length),
    );

    // A finer `every` than the span's rollup moves to the finest source that can serve it.
    expect((await store.series({ ...month, every: '10m' })).source).toBe('5m');
    expect((await store.series({ ...month, every: '7m' })).source).toBe('raw');
    expect((await store.series({ ...week, every: '1m' })).source).toBe('raw');
    const short = { ...base, from: new Date(day), to: new Date(day + 12 * HOUR) };
    expect((await store.series({ ...short, every: '1h' })).source).toBe('raw');

    // Text reads raw whatever the span.
    const text = await store.series({
      ...week,
      entities: [{ entityId: 'mode', entityType: 'text' }],
      every: '1d',
      fn: 'mean',
    });
    expect(text.series).toEqual([
      { entity_id: 'mode', points: [{ time: new Date(day).toISOString(), value: 'on' }] },
    ]);
  });

  it('fills the recent tail the rollup function has not written yet from raw points', async () => {
    const t = tenant();
    const now = Date.now();
    const recent = [now - 20 * MINUTE, now - 10 * MINUTE, now - MINUTE];
    await store.writeReadings(
      recent.map((timeMs, index) => reading({ tenantId: t, value: index, timeMs })),
    );
    const answer = await store.series({
      tenantId: t,
      deviceId: 'COMP_001',
      from: new Date(now - 3 * DAY),
      to: new Date(now),
      every: '5m',
      fn: 'count',
      retentionPolicy: 'free_plan',
    });
    expect(answer.source).toBe('5m');
    const points = answer.series[0]?.points ?? [];
    expect(points.reduce((sum, point) => sum + (point.value as number), 0)).toBe(3);
  });

  it('aggregates switch states', async () => {
    const t = tenant();
    const hour = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const states = [true, false, true, true];
    await store.writeReadings(
      states.map((value, index) =>
        reading({
          tenantId: t,
          entityId: 'relay',
          entityType: 'switch',
          value,
          timeMs: hour + index * MINUTE,
        }),
      ),
    );
    const query = {
      tenantId: t,
      deviceId: 'COMP_001',
      entities: [{ entityId: 'relay', entityType: 'switch' as const }],
      from: new Date(hour - HOUR),
      to: new Date(hour + HOUR),
      every: '1h',
      retentionPolicy: 'free_plan',
    };
    const value = async (fn: 'mean' | 'count' | 'last' | 'min' | 'max') =>
      (await store.series({ ...query, fn })).series[0]?.points.map((point) => point.value);
    expect(await value('last')).toEqual([true]);
    expect(await value('count')).toEqual([4]);
    expect(await value('mean')).toEqual([0.75]);
    expect(await value('min')).toEqual([false]);
    expect(await value('max')).toEqual([true]);
  });
});
