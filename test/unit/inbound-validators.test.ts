import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { streamRecords } from '../../shared/ingestion/adapters/kinesis-records.ts';
import { MAX_PAYLOAD_BYTES } from '../../shared/ingestion/domain/payload-limits.ts';
import {
  decodeRuleEvent,
  statePayload,
  telemetryPayload,
} from '../../shared/ingestion/domain/payloads.ts';
import { Rejection } from '../../shared/ingestion/domain/rejection.ts';
import { InfluxClient } from '../../shared/timeseries/adapters/influx-client.ts';
import { toLine } from '../../shared/timeseries/line-protocol.ts';
import {
  InvalidReadingError,
  MAX_NUMERIC_MAGNITUDE,
  pointOf,
  type Reading,
  readingToLine,
  writeReadingLine,
} from '../../shared/timeseries/reading.ts';
import { kinesisEvent } from '../support/kinesis-event.ts';

// The zod schemas are the one definition of each payload. These properties hold what
// decoding makes of a payload (through the telemetry scanner where it answers) to what the
// schema makes of the same text: the same verdict and the same readings.

const RECEIVED_AT = 1_700_000_000_000;
const event = (topic: string, text: string) => ({
  topic,
  payload: Buffer.from(text).toString('base64'),
  received_at: RECEIVED_AT,
});

function decoded(topic: string, text: string) {
  try {
    return { ok: true as const, message: decodeRuleEvent(event(topic, text)) };
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    return { ok: false as const, reason: error.reason };
  }
}

const key = fc.constantFrom(
  'v',
  'temp_oil',
  'a-b',
  '42',
  'status',
  'telemetry',
  '__proto__',
  'constructor',
  'bad id',
  'x'.repeat(101),
  '',
);
const number = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(946_684_800, 946_684_799.5, 32_503_680_000, 32_503_680_000.5, 0, -1),
);
const value = fc.oneof(
  number,
  fc.boolean(),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('y'.repeat(1024), 'y'.repeat(1025)),
  fc.constant(null),
  fc.constant([1]),
  fc.constant({}),
);
const timestamp = fc.oneof(number, fc.constant('1700000000'), fc.constant(null));
const item = fc.oneof(
  fc.record(
    { timestamp, values: fc.dictionary(key, value, { maxKeys: 4 }) },
    { requiredKeys: ['values'] },
  ),
  fc.record({ values: fc.oneof(value, fc.constant([])) }),
  value,
);
const telemetry = fc.oneof(item, fc.array(item, { maxLength: 4 }));

describe('payload decoding', () => {
  const telemetry = 'devices/PUMP_1/telemetry';
  const padded = (bytes: number, value: number | string) => {
    const json = JSON.stringify({ values: { t: value } });
    return ' '.repeat(bytes - Buffer.byteLength(json)) + json;
  };

  it('takes a payload of exactly the size limit and refuses one byte more', () => {
    expect(decoded(telemetry, padded(MAX_PAYLOAD_BYTES, 1))).toMatchObject({
      ok: true,
      message: { readings: [{ entityId: 't', value: 1 }] },
    });
    expect(decoded(telemetry, padded(MAX_PAYLOAD_BYTES + 1, 1))).toEqual({
      ok: false,
      reason: 'payload_too_large',
    });
    expect(decoded(telemetry, padded(4 * MAX_PAYLOAD_BYTES, 1))).toEqual({
      ok: false,
      reason: 'payload_too_large',
    });
  });

  it('decodes each payload on its own: nothing of a longer one before it shows through', () => {
    const texts = ['ü€😀 long '.repeat(80), 'short', 'çà'];
    expect(decoded(telemetry, padded(MAX_PAYLOAD_BYTES, texts[0] as string)).ok).toBe(true);
    for (const text of texts) {
      expect(decoded(telemetry, JSON.stringify({ values: { t: text } }))).toMatchObject({
        ok: true,
        message: { readings: [{ entityId: 't', value: text }] },
      });
    }
  });
});

describe('decoding follows the payload definitions', () => {
  it('telemetry: the same verdict and readings as telemetryPayload', () => {
    fc.assert(
      fc.property(telemetry, (payload) => {
        const text = JSON.stringify(payload);
        const parsed = JSON.parse(text);
        const expected = telemetryPayload.safeParse(parsed);
        const actual = decoded('devices/d1/telemetry', text);
        expect(actual.ok).toBe(expected.success);
        if (!actual.ok || !expected.success) {
          if (!actual.ok) expect(actual.reason).toBe('invalid_payload');
          return;
        }
        const items = Array.isArray(expected.data) ? expected.data : [expected.data];
        const readings = items.flatMap((entry, index) =>
          Object.entries(entry.values).map(([entityId, reading]) => ({
            entityId,
            value: reading,
            timeMs:
              entry.timestamp === undefined ? RECEIVED_AT : Math.round(entry.timestamp * 1000),
            ...(entry.timestamp === undefined ? { untimedItem: index } : {}),
          })),
        );
        expect(actual.message).toEqual({
          kind: 'readings',
          deviceId: 'd1',
          readings,
          receivedAtMs: RECEIVED_AT,
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('telemetry: values zod refuses from JSON text, and the item count limits', () => {
    for (const text of [
      '{"values":{"v":1e400}}',
      '{"timestamp":1e400,"values":{"v":1}}',
      '[]',
      JSON.stringify(Array.from({ length: 1001 }, () => ({ values: { v: 1 } }))),
    ]) {
      expect(telemetryPayload.safeParse(JSON.parse(text)).success).toBe(false);
      expect(decoded('devices/d1/telemetry', text)).toEqual({
        ok: false,
        reason: 'invalid_payload',
      });
    }
    const thousand = JSON.stringify(Array.from({ length: 1000 }, () => ({ values: { v: 1 } })));
    expect(decoded('devices/d1/telemetry', thousand).ok).toBe(true);
  });

  it('state: the same verdict and reading as statePayload', () => {
    const state = fc.oneof(
      fc.record(
        {
          value,
          timestamp,
          unit: fc.oneof(fc.string({ maxLength: 55 }), fc.constant(null)),
          command_id: fc.oneof(fc.string({ maxLength: 70 }), fc.integer()),
        },
        { requiredKeys: [] },
      ),
      value,
    );
    fc.assert(
      fc.property(state, (payload) => {
        const text = JSON.stringify(payload);
        const expected = statePayload.safeParse(JSON.parse(text));
        const actual = decoded('devices/d1/temp_oil/state', text);
        expect(actual.ok).toBe(expected.success);
        if (!actual.ok || !expected.success) return;
        expect(actual.message).toEqual({
          kind: 'readings',
          deviceId: 'd1',
          receivedAtMs: RECEIVED_AT,
          readings: [
            {
              entityId: 'temp_oil',
              value: expected.data.value,
              timeMs:
                expected.data.timestamp === undefined
                  ? RECEIVED_AT
                  : Math.round(expected.data.timestamp * 1000),
              ...(expected.data.timestamp === undefined ? { untimedItem: 0 } : {}),
              ...(expected.data.command_id ? { commandId: expected.data.command_id } : {}),
            },
          ],
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('readings without string fields: the same line as the general builder, as text and as bytes', () => {
    // Few devices, entities and tenants, so that series recur (their line prefixes are kept)
    // with another tenant or entity type than the one kept.
    const reading = fc.record({
      tenantId: fc.oneof(fc.constantFrom(1, 2), fc.integer({ min: 1, max: 2 ** 40 })),
      deviceId: fc.oneof(
        fc.constantFrom('PUMP_1', 'PUMP_2'),
        fc.stringMatching(/^[a-zA-Z0-9:_-]{1,20}$/),
      ),
      entityId: fc.oneof(
        fc.constantFrom('temperature', 'relay'),
        fc.stringMatching(/^[a-zA-Z0-9_-]{1,20}$/),
      ),
      timeMs: fc.oneof(
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.integer({ min: -9_223_372_036_854, max: 9_223_372_036_854 }),
        fc.constantFrom(0, 999_999, 1_000_000, 99_999_999, 100_000_000, 1_764_000_000_000),
      ),
      retentionPolicy: fc.constant('free_plan'),
      kind: fc.oneof(
        fc.record({
          entityType: fc.constantFrom('sensor', 'number'),
          value: fc.oneof(
            fc.double(),
            fc.integer(),
            fc.maxSafeInteger(),
            fc.constantFrom(-0, 0, 99_999_999, 100_000_000, 2 ** 53, 1e21, 0.1, -1.5e-300),
          ),
        }),
        fc.record({ entityType: fc.constant('switch'), value: fc.boolean() }),
      ),
    });
    // Bodies are written straight from readings, in batches of 7 lines here: the bytes must
    // be the lines, whatever the batch boundaries.
    const client = new InfluxClient({ url: 'http://127.0.0.1:9', database: 'none', batchSize: 7 });
    const encoder = client.encoder();
    const lines: string[] = [];
    fc.assert(
      fc.property(reading, ({ kind, ...rest }) => {
        const candidate = { ...rest, ...kind } as Reading;
        // Not finite, or beyond the bound that keeps a window's sum finite: refused by both.
        if (
          typeof candidate.value === 'number' &&
          !(Math.abs(candidate.value) <= MAX_NUMERIC_MAGNITUDE)
        ) {
          expect(() => readingToLine(candidate)).toThrow();
          expect(() => writeReadingLine(candidate, encoder)).toThrow(InvalidReadingError);
          return;
        }
        const line = toLine(pointOf(candidate));
        expect(readingToLine(candidate)).toBe(line);
        writeReadingLine(candidate, encoder);
        lines.push(line);
      }),
      { numRuns: 3000 },
    );
    const batches = encoder.finish().take();
    expect(batches.every((batch) => batch.lines <= 7)).toBe(true);
    expect(batches.map((batch) => batch.body.toString('utf8')).join('\n')).toBe(lines.join('\n'));
  });

  it('readings with string fields: written through as the general builder makes them', () => {
    const client = new InfluxClient({ url: 'http://127.0.0.1:9', database: 'none' });
    const encoder = client.encoder();
    const base = { tenantId: 3, deviceId: 'PUMP_1', timeMs: 1_764_000_000_000 };
    const readings: Reading[] = [
      {
        ...base,
        entityId: 'note',
        entityType: 'text',
        value: 'ü "quoted" \\ 😀',
        retentionPolicy: 'free_plan',
      },
      {
        ...base,
        entityId: 'temperature',
        entityType: 'sensor',
        value: 21.5,
        unit: '°C',
        retentionPolicy: 'free_plan',
      },
      {
        ...base,
        entityId: 'relay',
        entityType: 'switch',
        value: true,
        triggeredBy: 'user_7',
        retentionPolicy: 'free_plan',
      },
    ];
    for (const candidate of readings) writeReadingLine(candidate, encoder);
    const [batch] = encoder.finish().take();
    expect(batch?.body.toString('utf8')).toBe(readings.map((r) => toLine(pointOf(r))).join('\n'));
  });
});

describe('stream records', () => {
  it('reads each rule output exactly as JSON.parse does, by the fast path or not', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'binary', maxLength: 10 }),
      fc.constantFrom('devices/d1/telemetry', 'a"b', 'a\\b', '', 'é'),
    );
    const output = fc.oneof(
      fc.record(
        {
          payload: fc.oneof(fc.base64String({ maxLength: 400 }), text),
          topic: text,
          client_id: text,
          received_at: fc.oneof(fc.integer({ min: 0 }), fc.double(), fc.constant(1.7e12)),
        },
        { requiredKeys: ['payload', 'topic'] },
      ),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(fc.array(output, { maxLength: 5 }), (outputs) => {
        const event = kinesisEvent(outputs);
        const records = streamRecords(event);
        expect(records.map((record) => record.event)).toEqual(
          outputs.map((value) => JSON.parse(JSON.stringify(value))),
        );
      }),
      { numRuns: 300 },
    );
    // Long payloads, read four bytes at a time, with one character anywhere that JSON.parse
    // reads otherwise (an escape, a control character, non-ASCII text, a quote) or not at all.
    const odd = fc.constantFrom(
      '\\',
      '\\"',
      '\\u0041',
      '\n',
      '\u0000',
      '\u001f',
      'é',
      '"',
      ' ',
      '\u007f',
    );
    fc.assert(
      fc.property(
        fc.base64String({ minLength: 4, maxLength: 2_000 }),
        fc.nat(),
        odd,
        (base64, at, character) => {
          const where = at % (base64.length + 1);
          const payloads = [base64, base64.slice(0, where) + character + base64.slice(where)];
          for (const payload of payloads) {
            const text = `{"payload":"${payload}","topic":"devices/d1/telemetry","client_id":"d1","received_at":1700000000000}`;
            const event = kinesisEvent([]);
            event.Records.push({
              ...(kinesisEvent([{}]).Records[0] as (typeof event.Records)[number]),
            });
            (event.Records[0] as (typeof event.Records)[number]).kinesis.data =
              Buffer.from(text).toString('base64');
            let expected: unknown;
            try {
              expected = JSON.parse(text);
            } catch {
              expected = undefined;
            }
            expect(streamRecords(event)[0]?.event).toEqual(expected);
          }
        },
      ),
      { numRuns: 500 },
    );
    const garbage = kinesisEvent([]);
    garbage.Records.push({
      ...(kinesisEvent([{}]).Records[0] as (typeof garbage.Records)[number]),
    });
    (garbage.Records[0] as (typeof garbage.Records)[number]).kinesis.data =
      Buffer.from('{"pay').toString('base64');
    expect(streamRecords(garbage)[0]?.event).toBeUndefined();
  });
});
