import { ENTITY_ID_PATTERN, MAX_ENTITY_ID_LENGTH, RESERVED_ENTITY_IDS } from '../../identifiers.ts';
import type { RawReading } from './model.ts';
import {
  MAX_TELEMETRY_ITEMS,
  MAX_TEXT_VALUE_LENGTH,
  MAX_TIMESTAMP_S,
  MIN_TIMESTAMP_S,
} from './payload-limits.ts';

/*
 * Reads the usual telemetry payload straight from its bytes: an item, or an array of items,
 * `{"timestamp": <epoch s>, "values": {"<entity id>": <number | true | false | "text">}}`.
 * JSON.parse built an object per item and per `values`, and a string of the whole payload
 * first: a fifth of the ingest function's time with 50-reading messages.
 *
 * It answers only when the payload is valid and means exactly what `JSON.parse` followed by
 * the telemetry checks would make of it: the same readings, in the same order, with the same
 * values. Anything else (escapes, non-ASCII text, another key, a repeated key, a key that
 * JSON.parse would order first or treat specially, a value or timestamp the checks refuse)
 * gets `undefined`, and the general path decides, with its error messages.
 */

const RESERVED = new Set<string>(RESERVED_ENTITY_IDS);

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const BACKSLASH = 0x5c;

/** Powers of ten that doubles hold exactly: dividing by one is a correctly rounded step. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);

/** The ASCII characters an entity id may have, by code: 1 where ENTITY_ID_PATTERN allows. */
const ID_CHARACTER = Uint8Array.from({ length: 128 }, (_, code) =>
  ENTITY_ID_PATTERN.test(String.fromCharCode(code)) ? 1 : 0,
);

/** How the usual item starts, and what follows its timestamp. */
const TIMESTAMP_FIRST = Buffer.from('{"timestamp":');
const VALUES_NEXT = Buffer.from(',"values":');

const isDigit = (byte: number) => byte >= ZERO && byte <= 0x39;

/** Declines: the general path takes the payload. */
class Decline {}
const DECLINE = new Decline();

class Scanner {
  at = 0;
  /** Each position's entity id in the previous `values` object: items usually repeat them. */
  readonly previousIds: string[] = [];

  readonly end: number;

  constructor(readonly bytes: Buffer) {
    this.end = bytes.length;
  }

  skipSpace(): number {
    const { bytes, end } = this;
    let at = this.at;
    while (at < end) {
      const byte = bytes[at] as number;
      if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) break;
      at++;
    }
    this.at = at;
    return at < end ? (bytes[at] as number) : -1;
  }

  expect(byte: number): void {
    if (this.skipSpace() !== byte) throw DECLINE;
    this.at++;
  }

  /** A string without escapes or non-ASCII bytes; returns where its characters end. */
  stringEnd(): number {
    const { bytes, end } = this;
    let at = this.at + 1;
    while (at < end) {
      const byte = bytes[at] as number;
      if (byte === QUOTE) return at;
      if (byte === BACKSLASH || byte < 0x20 || byte >= 0x80) throw DECLINE;
      at++;
    }
    throw DECLINE;
  }

  /** Do the bytes from `at` on start with `text`? */
  literal(text: Uint8Array): boolean {
    const { bytes, at } = this;
    if (at + text.length > this.end) return false;
    for (let i = 0; i < text.length; i++) {
      if (bytes[at + i] !== text[i]) return false;
    }
    return true;
  }

  /** Is the string at `from`..`to` these ASCII characters? */
  equals(from: number, to: number, text: string): boolean {
    if (to - from !== text.length) return false;
    for (let i = 0; i < text.length; i++) {
      if (this.bytes[from + i] !== text.charCodeAt(i)) return false;
    }
    return true;
  }

  /** A JSON number (the whole grammar), as JSON.parse reads it. */
  number(): number {
    const { bytes, end } = this;
    const start = this.at;
    let at = start;
    const negative = bytes[at] === MINUS;
    if (negative) at++;
    let mantissa = 0;
    let digits = 0;
    // Each byte read once (a read past the end is undefined, which is no digit).
    let byte = bytes[at] as number;
    if (byte === ZERO) {
      byte = bytes[++at] as number;
    } else {
      if (!isDigit(byte)) throw DECLINE;
      do {
        mantissa = mantissa * 10 + (byte - ZERO);
        digits++;
        byte = bytes[++at] as number;
      } while (isDigit(byte));
    }
    let fractionDigits = 0;
    if (byte === DOT) {
      byte = bytes[++at] as number;
      if (!isDigit(byte)) throw DECLINE;
      do {
        mantissa = mantissa * 10 + (byte - ZERO);
        fractionDigits++;
        byte = bytes[++at] as number;
      } while (isDigit(byte));
    }
    let exact = digits + fractionDigits <= 15 && fractionDigits < EXACT_POWERS_OF_TEN.length;
    if (byte === 0x65 || byte === 0x45) {
      at++;
      if (bytes[at] === 0x2b || bytes[at] === MINUS) at++;
      if (at >= end || !isDigit(bytes[at] as number)) throw DECLINE;
      while (at < end && isDigit(bytes[at] as number)) at++;
      exact = false;
    }
    this.at = at;
    if (!exact) {
      // Rare here: the text, read by the same correctly rounded conversion JSON.parse uses.
      const value = Number(bytes.toString('latin1', start, at));
      // JSON.parse makes 1e400 Infinity; the checks refuse it.
      if (!Number.isFinite(value)) throw DECLINE;
      return value;
    }
    // At most 15 digits: the mantissa is exact, so is the power, and one division rounds
    // correctly, as JSON.parse does.
    const magnitude =
      fractionDigits === 0 ? mantissa : mantissa / (EXACT_POWERS_OF_TEN[fractionDigits] as number);
    return negative ? -magnitude : magnitude;
  }

  /** The entity id at `from`..`to` as a string, reusing the previous item's when equal. */
  entityId(from: number, to: number, position: number): string {
    const length = to - from;
    if (length < 1 || length > MAX_ENTITY_ID_LENGTH) throw DECLINE;
    const previous = this.previousIds[position];
    if (previous !== undefined && this.equals(from, to, previous)) return previous;
    let allDigits = true;
    for (let at = from; at < to; at++) {
      const byte = this.bytes[at] as number;
      if (ID_CHARACTER[byte] !== 1) throw DECLINE;
      if (!isDigit(byte)) allDigits = false;
    }
    // JSON.parse puts keys that are array indices first, whatever their place.
    if (allDigits) throw DECLINE;
    const id = this.bytes.toString('latin1', from, to);
    // JSON.parse makes `__proto__` an own key, which the checks skip.
    if (RESERVED.has(id) || id === '__proto__') throw DECLINE;
    this.previousIds[position] = id;
    return id;
  }

  /** `{"id": value, ...}` into `readings`, each dated later (the timestamp may follow). */
  values(readings: RawReading[]): void {
    this.expect(OPEN_BRACE);
    const first = readings.length;
    let seen: Set<string> | undefined;
    if (this.skipSpace() === CLOSE_BRACE) {
      this.at++;
      return;
    }
    for (let position = 0; ; position++) {
      if (this.skipSpace() !== QUOTE) throw DECLINE;
      const keyEnd = this.stringEnd();
      const entityId = this.entityId(this.at + 1, keyEnd, position);
      // A repeated key: JSON.parse keeps the last value at the first one's place.
      if (position < 16) {
        for (let i = first; i < readings.length; i++) {
          if ((readings[i] as RawReading).entityId === entityId) throw DECLINE;
        }
      } else {
        if (!seen) {
          seen = new Set();
          for (let i = first; i < readings.length; i++)
            seen.add((readings[i] as RawReading).entityId);
        }
        if (seen.has(entityId)) throw DECLINE;
        seen.add(entityId);
      }
      this.at = keyEnd + 1;
      this.expect(COLON);
      readings.push({ entityId, value: this.value(), timeMs: 0 });
      const next = this.skipSpace();
      this.at++;
      if (next === CLOSE_BRACE) return;
      if (next !== COMMA) throw DECLINE;
    }
  }

  value(): number | boolean | string {
    const byte = this.skipSpace();
    if (byte === QUOTE) {
      const end = this.stringEnd();
      const length = end - this.at - 1;
      if (length > MAX_TEXT_VALUE_LENGTH) throw DECLINE;
      const text = this.bytes.toString('latin1', this.at + 1, end);
      this.at = end + 1;
      return text;
    }
    if (byte === 0x74) return this.word('true', true);
    if (byte === 0x66) return this.word('false', false);
    if (byte === MINUS || isDigit(byte)) return this.number();
    throw DECLINE;
  }

  word(text: string, meaning: boolean): boolean {
    if (!this.equals(this.at, Math.min(this.at + text.length, this.end), text)) throw DECLINE;
    this.at += text.length;
    return meaning;
  }

  /**
   * The members of a non-empty object whose `{` was just read, up to its `}`: `member` reads
   * each value, given where its key's characters are.
   */
  members(member: (keyStart: number, keyEnd: number) => void): void {
    if (this.skipSpace() === CLOSE_BRACE) throw DECLINE;
    for (;;) {
      if (this.skipSpace() !== QUOTE) throw DECLINE;
      const keyEnd = this.stringEnd();
      const keyStart = this.at + 1;
      this.at = keyEnd + 1;
      this.expect(COLON);
      member(keyStart, keyEnd);
      const next = this.skipSpace();
      this.at++;
      if (next === CLOSE_BRACE) return;
      if (next !== COMMA) throw DECLINE;
    }
  }

  /** A timestamp in epoch seconds within the range the checks take. */
  timestamp(): number {
    const byte = this.skipSpace();
    if (byte !== MINUS && !isDigit(byte)) throw DECLINE;
    const timestamp = this.number();
    if (!(timestamp >= MIN_TIMESTAMP_S && timestamp <= MAX_TIMESTAMP_S)) throw DECLINE;
    return timestamp;
  }

  /** One `{"timestamp": ..., "values": {...}}` into `readings`; `index` is its place. */
  item(readings: RawReading[], receivedAtMs: number, index: number): void {
    const first = readings.length;
    if (this.skipSpace() === OPEN_BRACE && this.literal(TIMESTAMP_FIRST)) {
      // The usual item, `{"timestamp":<t>,"values":{...}}`, read without looking its keys
      // up; should it go on otherwise, the general path reads it again from its start.
      const start = this.at;
      this.at += TIMESTAMP_FIRST.length;
      const timestamp = this.timestamp();
      if (this.literal(VALUES_NEXT)) {
        this.at += VALUES_NEXT.length;
        this.values(readings);
        if (this.bytes[this.at] === CLOSE_BRACE) {
          this.at++;
          const timeMs = Math.round(timestamp * 1000);
          for (let i = first; i < readings.length; i++) (readings[i] as RawReading).timeMs = timeMs;
          return;
        }
        readings.length = first;
      }
      this.at = start;
    }
    this.expect(OPEN_BRACE);
    let timestamp: number | undefined;
    let sawValues = false;
    this.members((keyStart, keyEnd) => {
      if (this.equals(keyStart, keyEnd, 'values') && !sawValues) {
        sawValues = true;
        this.values(readings);
      } else if (this.equals(keyStart, keyEnd, 'timestamp') && timestamp === undefined) {
        timestamp = this.timestamp();
      } else {
        throw DECLINE;
      }
    });
    if (!sawValues) throw DECLINE;
    if (timestamp === undefined) {
      for (let i = first; i < readings.length; i++) {
        const reading = readings[i] as RawReading;
        reading.timeMs = receivedAtMs;
        reading.untimedItem = index;
      }
      return;
    }
    const timeMs = Math.round(timestamp * 1000);
    for (let i = first; i < readings.length; i++) (readings[i] as RawReading).timeMs = timeMs;
  }
}

/**
 * The readings of a telemetry payload, exactly as JSON.parse and the telemetry checks would
 * make them, or undefined when the general path must decide.
 */
export function scanTelemetry(bytes: Buffer, receivedAtMs: number): RawReading[] | undefined {
  const scanner = new Scanner(bytes);
  const readings: RawReading[] = [];
  try {
    if (scanner.skipSpace() === OPEN_BRACKET) {
      scanner.at++;
      for (let items = 1; ; items++) {
        if (items > MAX_TELEMETRY_ITEMS) return undefined;
        scanner.item(readings, receivedAtMs, items - 1);
        const next = scanner.skipSpace();
        scanner.at++;
        if (next === CLOSE_BRACKET) break;
        if (next !== COMMA) return undefined;
      }
    } else {
      scanner.item(readings, receivedAtMs, 0);
    }
    if (scanner.skipSpace() !== -1) return undefined;
    return readings;
  } catch (error) {
    if (error === DECLINE) return undefined;
    throw error;
  }
}

/**
 * A state payload, `{"value": <number | true | false | "text">, "timestamp": <epoch s>}` (the
 * timestamp optional), read straight from its bytes, exactly as JSON.parse and the state
 * schema would read it; undefined when the general path must decide (another key, such as
 * `unit` or `command_id`, escapes, non-ASCII text, a value the schema refuses). JSON.parse
 * and the schema took a third of the ingest function's time per one-reading message.
 */
export function scanState(
  bytes: Buffer,
): { value: number | boolean | string; timestamp?: number } | undefined {
  const scanner = new Scanner(bytes);
  try {
    scanner.expect(OPEN_BRACE);
    let value: number | boolean | string | undefined;
    let timestamp: number | undefined;
    scanner.members((keyStart, keyEnd) => {
      if (scanner.equals(keyStart, keyEnd, 'value') && value === undefined) {
        value = scanner.value();
      } else if (scanner.equals(keyStart, keyEnd, 'timestamp') && timestamp === undefined) {
        timestamp = scanner.timestamp();
      } else {
        throw DECLINE;
      }
    });
    if (value === undefined || scanner.skipSpace() !== -1) return undefined;
    return timestamp === undefined ? { value } : { value, timestamp };
  } catch (error) {
    if (error === DECLINE) return undefined;
    throw error;
  }
}
