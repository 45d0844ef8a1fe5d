/**
 * InfluxDB line protocol, written so that what the server stores is exactly what was given
 * or the point is refused here, before anything is sent.
 *
 * The rules are InfluxDB 1.x's parser's (also 2.x's and 3.x's): in measurements `,` and
 * space are escaped; in tag keys, tag values and field keys `,`, `=` and space are; a
 * backslash there is literal unless it precedes one of those characters. So a name with a
 * backslash right before such a character, or at its end, cannot be written unambiguously
 * and is refused. String field values escape `"` and `\`. Newlines are refused everywhere:
 * the parser would split the point (names) or other clients would (strings).
 */

/** A float, a boolean, a string, or (a bigint) an integer field, written `5i`. */
export type FieldValue = number | boolean | string | bigint;

export interface LinePoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Epoch milliseconds. */
  timeMs: number;
  /** Nanoseconds within `timeMs` (0 to 999,999); written only with `ns` precision. */
  subMsNs?: number | undefined;
}

/** The precision a write request declares, which every line's timestamp must be in. */
export type Precision = 'ms' | 'ns';

/**
 * Where lines are written as bytes, one at a time: `reserve` room for a line, write it into
 * `buffer` from `at` on, then `commit` where it ends. The InfluxDB client's request bodies
 * are one; writing lines there directly spares a string per line.
 */
export interface LineSink {
  reserve(maxBytes: number): void;
  readonly buffer: Buffer;
  readonly at: number;
  commit(end: number): void;
  /** A finished line, at most `text.length * 3` bytes as UTF-8. */
  line(text: string): void;
}

export class LineProtocolError extends Error {
  override readonly name = 'LineProtocolError';
}

/** InfluxDB 1.x's limit on a string field value. */
export const MAX_STRING_FIELD_BYTES = 64 * 1024 - 1;

const NEWLINE = /[\r\n]/;
// A backslash in a name is literal only when it is not followed by an escapable character.
const AMBIGUOUS_BACKSLASH = /\\([, =]|$)/;
const AMBIGUOUS_BACKSLASH_MEASUREMENT = /\\([, ]|$)/;
// A lone surrogate cannot be encoded as UTF-8: it would come back as U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

// Nearly every name (tags are ids, measurements and keys are ours) needs no escaping and
// has nothing to refuse; testing for that once keeps the write path cheap.
const PLAIN_NAME = /^[A-Za-z0-9_:.-]+$/;

function nameProblem(kind: string, name: string, ambiguous: RegExp): string | undefined {
  if (PLAIN_NAME.test(name)) return undefined;
  if (name === '') return `${kind} is empty`;
  if (NEWLINE.test(name)) return `${kind} contains a line break`;
  if (LONE_SURROGATE.test(name)) return `${kind} is not valid Unicode`;
  if (ambiguous.test(name)) return `${kind} has a backslash line protocol cannot represent`;
  return undefined;
}

function stringProblem(kind: string, value: string): string | undefined {
  if (NEWLINE.test(value)) return `${kind} contains a line break`;
  if (LONE_SURROGATE.test(value)) return `${kind} is not valid Unicode`;
  if (Buffer.byteLength(value, 'utf8') > MAX_STRING_FIELD_BYTES) {
    return `${kind} is longer than ${MAX_STRING_FIELD_BYTES} bytes`;
  }
  return undefined;
}

function checked(problem: string | undefined): void {
  if (problem) throw new LineProtocolError(problem);
}

export function escapeMeasurement(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  checked(nameProblem('measurement', name, AMBIGUOUS_BACKSLASH_MEASUREMENT));
  return name.replace(/[, ]/g, '\\$&');
}

/** Tag keys, tag values and field keys share one escaping rule. */
export function escapeKey(name: string, kind = 'tag key or value'): string {
  if (PLAIN_NAME.test(name)) return name;
  checked(nameProblem(kind, name, AMBIGUOUS_BACKSLASH));
  return name.replace(/[, =]/g, '\\$&');
}

export const escapeTagKey = (key: string) => escapeKey(key, 'tag key');
export const escapeTagValue = (value: string) => escapeKey(value, 'tag value');
export const escapeFieldKey = (key: string) => escapeKey(key, 'field key');

export function formatStringField(value: string): string {
  checked(stringProblem('string field', value));
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * A float the server parses back to the identical double: JavaScript's shortest round-trip
 * form (`1e+21`, `5e-324` are accepted by the parser). Integers stay floats (no `i`
 * suffix), so a field never flips type between `42` and `42.5`. `String(-0)` is `"0"`, so
 * negative zero is spelled out.
 */
export function formatFloat(value: number): string {
  if (!Number.isFinite(value)) throw new LineProtocolError(`${value} is not a finite number`);
  return Object.is(value, -0) ? '-0' : String(value);
}

const MIN_INTEGER_FIELD = -(2n ** 63n);
const MAX_INTEGER_FIELD = 2n ** 63n - 1n;

export function formatFieldValue(value: FieldValue): string {
  switch (typeof value) {
    case 'number':
      return formatFloat(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return formatStringField(value);
    case 'bigint':
      if (value < MIN_INTEGER_FIELD || value > MAX_INTEGER_FIELD) {
        throw new LineProtocolError(`${value} is beyond a 64-bit integer field`);
      }
      return `${value}i`;
    default:
      throw new LineProtocolError(`unsupported field value type ${typeof value}`);
  }
}

/** Why `toLine` would refuse this point, or undefined. */
export function lineProblem(point: LinePoint, precision: Precision = 'ms'): string | undefined {
  try {
    toLine(point, precision);
    return undefined;
  } catch (error) {
    if (error instanceof LineProtocolError) return error.message;
    throw error;
  }
}

/**
 * The measurement and the tags, sorted by key: what the server would produce anyway, and
 * cheaper for it to index. Every line of a series starts with it.
 */
export function seriesKey(measurement: string, tags: Record<string, string>): string {
  let key = escapeMeasurement(measurement);
  for (const name of Object.keys(tags).sort()) {
    key += `,${escapeTagKey(name)}=${escapeTagValue(tags[name] as string)}`;
  }
  return key;
}

/** A timestamp in the request's precision. */
export function formatTime(timeMs: number, subMsNs: number | undefined, precision: Precision) {
  if (!Number.isSafeInteger(timeMs)) {
    throw new LineProtocolError('timestamp must be an integer number of milliseconds');
  }
  if (precision === 'ms') return String(timeMs);
  const ns = subMsNs ?? 0;
  if (!Number.isInteger(ns) || ns < 0 || ns > 999_999) {
    throw new LineProtocolError(`subMsNs must be an integer from 0 to 999999, not ${ns}`);
  }
  return `${timeMs}${String(ns).padStart(6, '0')}`;
}

/** The one line-protocol writer: a point as a line, or a `LineProtocolError` saying why not. */
export function toLine(point: LinePoint, precision: Precision = 'ms'): string {
  const fieldKeys = Object.keys(point.fields);
  if (fieldKeys.length === 0) throw new LineProtocolError('a point needs at least one field');
  const time = formatTime(point.timeMs, point.subMsNs, precision);
  let fields = '';
  for (const key of fieldKeys) {
    if (fields !== '') fields += ',';
    fields += `${escapeFieldKey(key)}=${formatFieldValue(point.fields[key] as FieldValue)}`;
  }
  return `${seriesKey(point.measurement, point.tags)} ${fields} ${time}`;
}

/*
 * The same lines as bytes, for the points that make up nearly every write: one float or
 * boolean field, millisecond time. Their start (`seriesKey` and the field's key) is made
 * once per series by `linePrefix`; the value and the time are written as digits straight
 * into the sink, with no string made per line. test/unit/inbound-validators.test.ts holds
 * the bytes equal to `toLine`'s for any such point.
 */

/** `<series key> <field key>=` as UTF-8 bytes: the start of every line of a one-field series. */
export function linePrefix(measurement: string, tags: Record<string, string>, field: string) {
  return Buffer.from(`${seriesKey(measurement, tags)} ${escapeFieldKey(field)}=`, 'utf8');
}

const SPACE = 0x20;
const MINUS = 0x2d;
const ZERO = 0x30;
/** Longest `formatFloat` (`-1.7976931348623157e+308`) or millisecond time, with room to spare. */
const MAX_NUMBER_BYTES = 26;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** Writes the digits of an integer from 0 to 2^31 - 1; returns where they end. */
function writeSmallInteger(out: Buffer, at: number, value: number): number {
  // `| 0` keeps V8 on integer arithmetic: held as a double (as `Math.floor` returns it), each
  // `% 10` is a floating-point remainder (bench/README.md has what that cost).
  const whole = value | 0;
  let digits = 1;
  for (let left = whole; left >= 10; left = (left / 10) | 0) digits += 1;
  let rest = whole;
  for (let index = at + digits - 1; index >= at; index--) {
    out[index] = ZERO + (rest % 10);
    rest = (rest / 10) | 0;
  }
  return at + digits;
}

/**
 * Writes a safe integer's decimal digits, as `String` would, and returns where they end. In
 * two parts below 10^8, so that the digits come from small-integer arithmetic: dividing the
 * whole 13-digit time as a double, digit by digit, cost as much as the rest of the line.
 */
function writeInteger(out: Buffer, at: number, value: number): number {
  let end = at;
  let rest = value;
  if (rest < 0) {
    out[end++] = MINUS;
    rest = -rest;
  }
  if (rest < 1e8) return writeSmallInteger(out, end, rest);
  // Below 2^53, the high part is below 10^8 too.
  const high = Math.floor(rest / 1e8);
  // An integer to V8 as well (see writeSmallInteger).
  let low = (rest - high * 1e8) | 0;
  end = writeSmallInteger(out, end, high);
  for (let index = end + 7; index >= end; index--) {
    out[index] = ZERO + (low % 10);
    low = (low / 10) | 0;
  }
  return end + 8;
}

/**
 * Writes `prefix`, the value and the time (milliseconds) into `sink`: the line `toLine`
 * makes of the same point, or a `LineProtocolError` as it would throw.
 */
export function writePrefixedLine(
  sink: LineSink,
  prefix: Buffer,
  value: number | boolean,
  timeMs: number,
): void {
  if (!Number.isSafeInteger(timeMs)) {
    throw new LineProtocolError('timestamp must be an integer number of milliseconds');
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new LineProtocolError(`${value} is not a finite number`);
  }
  sink.reserve(prefix.length + 2 * MAX_NUMBER_BYTES);
  const out = sink.buffer;
  // `set`, not `Buffer#copy`, which makes a view of the source for every call.
  out.set(prefix, sink.at);
  let at = sink.at + prefix.length;
  if (typeof value === 'boolean') {
    const text = value ? TRUE : FALSE;
    out.set(text, at);
    at += text.length;
  } else if (Number.isSafeInteger(value) && !Object.is(value, -0)) {
    at = writeInteger(out, at, value);
  } else at += out.write(formatFloat(value), at, 'latin1');
  out[at++] = SPACE;
  sink.commit(writeInteger(out, at, timeMs));
}
