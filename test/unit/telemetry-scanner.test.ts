import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ruleEventOf,
  ruleEventSchema,
  statePayload,
  telemetryPayload,
} from '../../shared/ingestion/domain/payloads.ts';
import { scanState, scanTelemetry } from '../../shared/ingestion/domain/telemetry-scanner.ts';

// The scanner reads telemetry bytes without JSON.parse. Whatever it answers must be what
// JSON.parse and the telemetry schema (the definition) make of the same bytes; where it
// declines, the general path decides. These properties write JSON in every way the grammar
// allows (spacing, number forms, escapes, repeated and unknown keys), not only as
// JSON.stringify does.

const RECEIVED_AT = 1_700_000_000_000;

/** The readings the schema makes of `text`, or undefined if it refuses them. */
function defined(text: string) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = telemetryPayload.safeParse(parsed);
  if (!result.success) return undefined;
  const items = Array.isArray(result.data) ? result.data : [result.data];
  return items.flatMap((item, index) =>
    Object.entries(item.values).map(([entityId, value]) => ({
      entityId,
      value,
      timeMs: item.timestamp === undefined ? RECEIVED_AT : Math.round(item.timestamp * 1000),
      ...(item.timestamp === undefined ? { untimedItem: index } : {}),
    })),
  );
}

const scanned = (text: string) => scanTelemetry(Buffer.from(text), RECEIVED_AT);

const space = fc.oneof(
  { weight: 60, arbitrary: fc.constantFrom('', '', ' ', '\n', '\t', '\r\n  ') },
  { weight: 1, arbitrary: fc.constantFrom('\u00a0', '\f') },
);
/** JSON number text, valid or nearly so. */
const numberText = fc.oneof(
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  { weight: 3, arbitrary: fc.integer().map(String) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom('', '', '-', '-', '+'),
        fc.stringMatching(/^(0|[1-9][0-9]{0,17}|0[0-9]|)$/),
        fc.option(fc.stringMatching(/^[0-9]{0,24}$/)),
        fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.nat(400))),
      )
      .map(
        ([sign, whole, fraction, exponent]) =>
          `${sign}${whole}${fraction === null ? '' : `.${fraction}`}${exponent === null ? '' : exponent.join('')}`,
      ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('1764412345.678', '946684800', '946684799.9995', '-0', '-0.0'),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('1e400', '9007199254740993', '0.1', '123456789012345.6', '5e-324'),
  },
);
/** Epoch seconds, mostly in the range the schema takes, written in any of the ways JSON allows. */
const timeText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.double({ min: 946_684_800, max: 32_503_680_000, noNaN: true }), fc.nat(20))
      .chain(([seconds, digits]) =>
        fc.constantFrom(
          String(seconds),
          seconds.toFixed(Math.min(digits, 6)),
          seconds.toExponential(Math.min(digits, 12)),
          `${Math.trunc(seconds)}.${'0'.repeat(digits)}`,
        ),
      ),
  },
  { weight: 1, arbitrary: numberText },
);
/** JSON string text for `text`, with some characters escaped in any of the allowed ways. */
const stringText = (text: string) =>
  fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length }).map((escaped) => {
    const body = [...text]
      .map((ch, at) => {
        const plain = JSON.stringify(ch).slice(1, -1);
        if (!escaped[at]) return plain;
        return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
      })
      .join('');
    return `"${body}"`;
  });
const keyOrText = fc.oneof(
  { weight: 24, arbitrary: fc.stringMatching(/^[a-zA-Z_-][a-zA-Z0-9_-]{0,6}$/) },
  {
    weight: 4,
    arbitrary: fc.constantFrom('v', 'temp_oil', 'a-b', 'A9', '007', '1e3', 'x'.repeat(100)),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom('42', 'status', 'telemetry', '__proto__', 'constructor'),
  },
  { weight: 2, arbitrary: fc.constantFrom('bad id', 'x'.repeat(101), '', 'é', 'ü€😀', 'quote"') },
  { weight: 1, arbitrary: fc.constantFrom('line\nbreak', 'back\\slash', '\u007f') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
/** Mostly plain, now and then with escapes. */
const sometimesEscaped = (text: string) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constant(JSON.stringify(text)) },
    { weight: 1, arbitrary: stringText(text) },
  );
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: numberText },
  { weight: 2, arbitrary: fc.constantFrom('true', 'false') },
  { weight: 1, arbitrary: fc.constantFrom('null', 'tru', 'truex', '[1]', '{}', 'nul') },
  { weight: 2, arbitrary: keyOrText.chain(sometimesEscaped) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(JSON.stringify('y'.repeat(1024)), JSON.stringify('y'.repeat(1025))),
  },
);
const join = (parts: string[], separators: string[]) =>
  parts.map((part, at) => `${separators[at] ?? ''}${part}`).join(',');
const objectText = (members: fc.Arbitrary<Array<[string, string]>>) =>
  fc.tuple(members, fc.array(space, { minLength: 12, maxLength: 12 }), space, space).map(
    ([entries, spaces, open, close]) =>
      `{${open}${join(
        entries.map(
          ([key, value], at) => `${key}${spaces[at % 12]}:${spaces[(at + 5) % 12]}${value}`,
        ),
        spaces,
      )}${close}}`,
  );
const valuesText = objectText(
  fc
    .array(fc.tuple(keyOrText.chain(sometimesEscaped), valueText), { maxLength: 6 })
    .chain((entries) =>
      // Now and then a key again, as JSON allows and JSON.parse resolves (the last one wins).
      fc
        .boolean()
        .map((repeat) =>
          repeat && entries.length > 1 ? [...entries, entries[0] as [string, string]] : entries,
        ),
    ),
);
/** Item members: mostly the usual ones, now and then what the scanner must leave alone. */
const itemMembers = (time: string, values: string) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom<Array<[string, string]>>(
        [
          ['"timestamp"', time],
          ['"values"', values],
        ],
        [
          ['"values"', values],
          ['"timestamp"', time],
        ],
        [['"values"', values]],
      ),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom<Array<[string, string]>>(
        [
          ['"values"', values],
          ['"unit"', '"bar"'],
        ],
        [
          ['"timestamp"', time],
          ['"values"', values],
          ['"timestamp"', time],
        ],
        [['"\\u0076alues"', values]],
        [['"timestamp"', time]],
        [],
      ),
    },
  );
const itemText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(timeText, valuesText)
      .chain(([time, values]) => itemMembers(time, values))
      .chain((members) => objectText(fc.constant(members))),
  },
  { weight: 1, arbitrary: valueText },
);
const payloadText = fc.oneof(
  itemText,
  fc
    .tuple(fc.array(itemText, { maxLength: 4 }), fc.array(space, { minLength: 5, maxLength: 5 }))
    .map(([items, spaces]) => `[${spaces[0]}${join(items, spaces)}${spaces[1]}]`),
  fc
    .tuple(space, itemText, space, fc.constantFrom('', '', ',', '}', 'x'))
    .map((parts) => parts.join('')),
);

describe('telemetry scanner', () => {
  it('answers only with what JSON.parse and the telemetry schema make of the same bytes', () => {
    let valid = 0;
    let answered = 0;
    fc.assert(
      fc.property(payloadText, (text) => {
        const readings = scanned(text);
        if (defined(text) !== undefined) valid += 1;
        if (readings === undefined) return;
        answered += 1;
        expect(readings).toEqual(defined(text));
        for (const [at, reading] of readings.entries()) {
          // toEqual would take 0 for -0.
          expect(Object.is(reading.value, defined(text)?.[at]?.value)).toBe(true);
        }
      }),
      { numRuns: 20_000 },
    );
    // Not a scanner that declines everything: the generator makes many payloads it must
    // leave, but about half the valid ones are plain.
    expect(valid).toBeGreaterThan(2_000);
    expect(answered).toBeGreaterThan(valid / 3);
  });

  it('reads what devices send itself, rather than leaving it to the general path', () => {
    const base = 1_764_412_345_678;
    const payloads = [
      Array.from({ length: 50 }, (_, i) => ({ timestamp: (base + i) / 1000, values: { v: i } })),
      { timestamp: base / 1000, values: { temp_oil: 81.25, running: true, mode: 'auto', p: -0.5 } },
      { values: { pressure: 6.2 } },
      Array.from({ length: 1000 }, (_, i) => ({ values: { v: i / 7 } })),
    ];
    for (const payload of payloads) {
      const text = JSON.stringify(payload, null, payload === payloads[1] ? 2 : undefined);
      expect(scanned(text)).toEqual(defined(text));
    }
    // Many entities in one item: the repeated-key check does not decline them either.
    const wide = {
      values: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`e${i}`, i])),
    };
    expect(scanned(JSON.stringify(wide))).toHaveLength(3000);
  });

  it('leaves to the general path what it cannot answer exactly', () => {
    for (const text of [
      '{"values":{"v":1,"v":2}}',
      `{"values":{${Array.from({ length: 40 }, (_, i) => `"e${i}":1`).join(',')},"e3":2}}`,
      '{"values":{"b":1,"42":2}}',
      '{"values":{"__proto__":1}}',
      '{"values":{"v":1e400}}',
      '{"values":{"v":"caf\\u00e9"}}',
      '{"values":{"v":"café"}}',
      '{"values":{"v":1},"unit":"bar"}',
      '{"timestamp":946684799,"values":{"v":1}}',
      `[${Array.from({ length: 1001 }, () => '{"values":{"v":1}}').join(',')}]`,
      '[]',
      '{"values":{"v":01}}',
      '\ufeff{"values":{"v":1}}',
    ]) {
      expect(scanned(text), text.slice(0, 60)).toBeUndefined();
    }
  });
});

/** What JSON.parse and the state schema make of `text`, or undefined if they refuse it. */
function definedState(text: string) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = statePayload.safeParse(parsed);
  return result.success ? result.data : undefined;
}

/** State members: mostly the usual ones, now and then what the scanner must leave alone. */
const stateMembers = fc.tuple(timeText, valueText).chain(([time, value]) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom<Array<[string, string]>>(
        [
          ['"value"', value],
          ['"timestamp"', time],
        ],
        [
          ['"timestamp"', time],
          ['"value"', value],
        ],
        [['"value"', value]],
      ),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom<Array<[string, string]>>(
        [
          ['"value"', value],
          ['"unit"', '"bar"'],
        ],
        [
          ['"value"', value],
          ['"command_id"', '"c-1"'],
        ],
        [
          ['"value"', value],
          ['"value"', '2'],
        ],
        [['"\\u0076alue"', value]],
        [['"timestamp"', time]],
        [],
      ),
    },
  ),
);
const stateText = fc
  .tuple(space, objectText(stateMembers), space, fc.constantFrom('', '', '', ',', '}', 'x'))
  .map((parts) => parts.join(''));

describe('state scanner', () => {
  it('answers only with what JSON.parse and the state schema make of the same bytes', () => {
    let valid = 0;
    let answered = 0;
    fc.assert(
      fc.property(stateText, (text) => {
        const state = scanState(Buffer.from(text));
        const expected = definedState(text);
        if (expected !== undefined) valid += 1;
        if (state === undefined) return;
        answered += 1;
        expect(state).toEqual(expected);
        // toEqual would take 0 for -0.
        expect(Object.is(state.value, expected?.value)).toBe(true);
      }),
      { numRuns: 10_000 },
    );
    expect(valid).toBeGreaterThan(1_000);
    expect(answered).toBeGreaterThan(valid / 3);
  });

  it('reads what devices send itself, and leaves the rest to the general path', () => {
    for (const text of [
      '{"value":21.5,"timestamp":1764412345.678}',
      '{"value":true}',
      '{ "timestamp": 1764412345, "value": "auto" }',
    ]) {
      expect(scanState(Buffer.from(text)), text).toEqual(definedState(text));
    }
    for (const text of [
      '{"value":1,"value":2}',
      '{"value":1,"unit":"bar"}',
      '{"value":1,"command_id":"c-1"}',
      '{"value":1e400}',
      '{"value":"caf\u00e9"}',
      '{"value":null}',
      '{"timestamp":946684799,"value":1}',
      '{}',
      '[1]',
    ]) {
      expect(scanState(Buffer.from(text)), text).toBeUndefined();
    }
  });
});

describe('rule event check', () => {
  // `ruleEventOf` stands in for `ruleEventSchema.safeParse` on every message: it must take
  // exactly what the schema takes, with the same fields.
  const field = <T>(arbitrary: fc.Arbitrary<T>) =>
    fc.oneof(
      arbitrary,
      fc.constant(undefined),
      fc.constantFrom(
        null,
        0,
        -1,
        1.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        '',
        'x',
        true,
        [],
        {},
      ),
    );
  const ruleEvent = fc.oneof(
    fc.record(
      {
        payload: field(fc.base64String()),
        topic: field(fc.string({ minLength: 0, maxLength: 520 })),
        client_id: field(fc.string({ maxLength: 140 })),
        received_at: field(fc.oneof(fc.double(), fc.integer(), fc.constant(1_700_000_000_000))),
        other: field(fc.string()),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom(null, undefined, 'text', 5, [], [{ payload: '', topic: 't', received_at: 1 }]),
  );

  it('takes exactly what the schema takes, with the same fields', () => {
    fc.assert(
      fc.property(ruleEvent, (input) => {
        const defined = ruleEventSchema.safeParse(input);
        expect(ruleEventOf(input)).toEqual(defined.success ? defined.data : undefined);
      }),
      { numRuns: 20_000 },
    );
  });
});
