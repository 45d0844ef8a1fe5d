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

export type FieldValue = number | boolean | string;

export interface LinePoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Epoch milliseconds: written with `precision=ms`. */
  timeMs: number;
}

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

export function formatFieldValue(value: FieldValue): string {
  switch (typeof value) {
    case 'number':
      return formatFloat(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return formatStringField(value);
    default:
      throw new LineProtocolError(`unsupported field value type ${typeof value}`);
  }
}

/** Why `toLine` would refuse this point, or undefined. */
export function lineProblem(point: LinePoint): string | undefined {
  try {
    toLine(point);
    return undefined;
  } catch (error) {
    if (error instanceof LineProtocolError) return error.message;
    throw error;
  }
}

export function toLine(point: LinePoint): string {
  const tagKeys = Object.keys(point.tags).sort();
  const fieldKeys = Object.keys(point.fields);
  if (fieldKeys.length === 0) throw new LineProtocolError('a point needs at least one field');
  if (!Number.isSafeInteger(point.timeMs)) {
    throw new LineProtocolError('timestamp must be an integer number of milliseconds');
  }
  // Sorted tags are what the server would produce anyway, and cheaper for it to index.
  let line = escapeMeasurement(point.measurement);
  for (const key of tagKeys) {
    line += `,${escapeTagKey(key)}=${escapeTagValue(point.tags[key] as string)}`;
  }
  line += ' ';
  line += fieldKeys
    .map((key) => `${escapeFieldKey(key)}=${formatFieldValue(point.fields[key] as FieldValue)}`)
    .join(',');
  return `${line} ${point.timeMs}`;
}
