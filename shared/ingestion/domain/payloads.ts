import { z } from 'zod';
import {
  DEVICE_ID_PATTERN,
  ENTITY_ID_PATTERN,
  ENTITY_TYPES,
  RESERVED_ENTITY_IDS,
} from '../../identifiers.ts';
import type { RawReading } from './model.ts';
import {
  MAX_PAYLOAD_BYTES,
  MAX_TELEMETRY_ITEMS,
  MAX_TELEMETRY_READINGS,
  MAX_TEXT_VALUE_LENGTH,
  MAX_TIMESTAMP_S,
  MIN_TIMESTAMP_S,
} from './payload-limits.ts';
import { Rejection } from './rejection.ts';
import { scanState, scanTelemetry } from './telemetry-scanner.ts';

/**
 * What an IoT rule hands the ingestion function: the SELECT output of
 * `SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS client_id,
 *  timestamp() AS received_at FROM ...`. The payload stays raw so that this module, not
 * the rules engine, decides what is malformed, and counts it.
 */
export const ruleEventSchema = z.object({
  payload: z.string(),
  topic: z.string().min(1).max(512),
  client_id: z.string().max(128).optional(),
  received_at: z.number().finite().positive(),
});

type RuleEvent = z.output<typeof ruleEventSchema>;

/**
 * The rule event's fields if `ruleEventSchema` takes it, else undefined: checked by hand, as
 * it is for every message (the schema's parse cost about 1.2 us a message in pipeline
 * benchmark (a)). A unit property test holds it to the schema.
 */
export function ruleEventOf(input: unknown): RuleEvent | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return undefined;
  const {
    payload,
    topic,
    client_id: clientId,
    received_at: receivedAt,
  } = input as Record<string, unknown>;
  if (typeof payload !== 'string') return undefined;
  if (typeof topic !== 'string' || topic.length < 1 || topic.length > 512) return undefined;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length > 128))
    return undefined;
  if (typeof receivedAt !== 'number' || !Number.isFinite(receivedAt) || receivedAt <= 0)
    return undefined;
  return clientId === undefined
    ? { payload, topic, received_at: receivedAt }
    : { payload, topic, client_id: clientId, received_at: receivedAt };
}

export type InboundMessage =
  | { kind: 'status'; deviceId: string; online: boolean; receivedAtMs: number }
  | { kind: 'discovery'; deviceId: string; discovery: Discovery; receivedAtMs: number }
  | { kind: 'readings'; deviceId: string; readings: RawReading[]; receivedAtMs: number }
  /** devices/<id>/model/state: an edge model's confirmation or refusal, and its anomalies. */
  | { kind: 'edge-model'; deviceId: string; report: unknown; receivedAtMs: number };

const storableString = (max: number) =>
  z.string().max(max).refine(isStorableText, 'holds a NUL character or a lone surrogate');
const value = z.union([
  z.number().refine(Number.isFinite, 'must be finite'),
  z.boolean(),
  storableString(MAX_TEXT_VALUE_LENGTH),
]);
const timestamp = z.number().finite().min(MIN_TIMESTAMP_S).max(MAX_TIMESTAMP_S);

export const statePayload = z.object({
  value,
  unit: storableString(50).optional(),
  timestamp: timestamp.optional(),
  command_id: storableString(64).optional(),
});

const entityIdKey = z
  .string()
  .regex(ENTITY_ID_PATTERN)
  .refine((id) => !(RESERVED_ENTITY_IDS as readonly string[]).includes(id), 'reserved entity id');

const telemetryItem = z.object({
  timestamp: timestamp.optional(),
  values: z.record(entityIdKey, value),
});
export const telemetryPayload = z.union([
  telemetryItem,
  z.array(telemetryItem).min(1).max(MAX_TELEMETRY_ITEMS),
]);

/**
 * A numeric entity's measuring range: the span its sensor measures (a transmitter's span,
 * OPC UA's `EURange`), in the entity's unit. The advanced anomaly detector uses it.
 */
export const measuringRange = z
  .strictObject({
    min: z.number().refine(Number.isFinite, 'must be finite').describe('Lowest value measured'),
    max: z.number().refine(Number.isFinite, 'must be finite').describe('Highest value measured'),
  })
  .refine((range) => range.min < range.max, 'min must be below max');
export type MeasuringRangeField = z.infer<typeof measuringRange>;

const discoveryEntity = z
  .object({
    entity_id: entityIdKey,
    entity_type: z.enum(ENTITY_TYPES),
    name: z.string().trim().min(1).max(255),
    unit: z.string().max(50).optional(),
    icon: z.string().max(50).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    measuring_range: measuringRange.optional(),
  })
  .refine(
    (entity) =>
      entity.measuring_range === undefined ||
      entity.entity_type === 'sensor' ||
      entity.entity_type === 'number',
    'only sensor and number entities have a measuring range',
  );
export const discoveryPayload = z.object({
  name: z.string().trim().min(1).max(255).optional(),
  type: z.string().trim().min(1).max(100).optional(),
  firmware: z.string().max(100).optional(),
  /** How often the device reports, in seconds: how long a silence means it is gone. */
  report_interval_s: z.number().int().min(1).max(86_400).optional(),
  entities: z.array(discoveryEntity).max(200),
});
export type Discovery = z.infer<typeof discoveryPayload>;

const TOPIC = /^devices\/([^/]+)\/(?:(status|discovery|telemetry)|([^/]+)\/state)$/;

/** The device id in a topic, when the topic is one of ours; used to attribute rejections. */
export function topicDeviceId(topic: string): string | undefined {
  const match = TOPIC.exec(topic);
  return match?.[1] && DEVICE_ID_PATTERN.test(match[1]) ? match[1] : undefined;
}

/**
 * Text PostgreSQL and InfluxDB cannot store exactly: a NUL character (refused by `text` and
 * `jsonb`) or a lone UTF-16 surrogate (refused by `jsonb`, and not text in UTF-8 at all).
 */
const UNSTORABLE_TEXT =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what it looks for
  /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function isStorableText(text: string): boolean {
  return !UNSTORABLE_TEXT.test(text);
}

/** The text with what `isStorableText` refuses replaced by U+FFFD, for logs and counts. */
export function storableText(text: string): string {
  return isStorableText(text) ? text : text.replace(new RegExp(UNSTORABLE_TEXT, 'g'), '\ufffd');
}

/** Refuses a message holding unstorable text anywhere (keys included), so it fails alone. */
function checkStorable(input: unknown, where: string): void {
  if (typeof input === 'string') {
    if (!isStorableText(input)) {
      throw new Rejection('invalid_payload', `${where}: holds a NUL character or a lone surrogate`);
    }
  } else if (Array.isArray(input)) {
    for (const [index, item] of input.entries()) checkStorable(item, `${where}.${index}`);
  } else if (input !== null && typeof input === 'object') {
    for (const [key, value] of Object.entries(input)) {
      checkStorable(key, where);
      checkStorable(value, `${where}.${key.slice(0, 100)}`);
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Rejection('malformed_json', 'payload is not valid JSON');
  }
}

function check<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.join('.') || 'payload';
  throw new Rejection('invalid_payload', `${where}: ${issue?.message ?? 'invalid'}`);
}

const toMs = (seconds: number | undefined, fallbackMs: number) =>
  seconds === undefined ? fallbackMs : Math.round(seconds * 1000);

/** The readings of a telemetry payload, by its schema; the scanner's answer must equal it. */
export function telemetryReadings(input: unknown, receivedAtMs: number): RawReading[] {
  const payload = check(telemetryPayload, input);
  const items = Array.isArray(payload) ? payload : [payload];
  const readings: RawReading[] = [];
  for (let index = 0; index < items.length; index++) {
    const { timestamp, values } = items[index] as (typeof items)[number];
    const timeMs = toMs(timestamp, receivedAtMs);
    for (const [entityId, value] of Object.entries(values)) {
      readings.push({
        entityId,
        value,
        timeMs,
        ...(timestamp === undefined ? { untimedItem: index } : {}),
      });
    }
  }
  return readings;
}

// Base64 decodes to at most 3 bytes per 4 characters; a payload that could be within the
// limit is decoded into this buffer, kept for the purpose: a Buffer per message took a new
// 8 KB pool (an ArrayBuffer) every three 50-reading messages. What is read from it is
// copied out before the next message is decoded.
const payloadScratch = Buffer.allocUnsafe(MAX_PAYLOAD_BYTES + 3);

function payloadBytes(base64: string): Buffer {
  if (Math.floor((base64.length * 3) / 4) <= payloadScratch.length) {
    const size = payloadScratch.write(base64, 0, 'base64');
    if (size <= MAX_PAYLOAD_BYTES) return payloadScratch.subarray(0, size);
  }
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new Rejection('payload_too_large', `payload of ${bytes.length} bytes`);
  }
  return bytes;
}

/**
 * Converts one rule event into the platform's inbound message, or throws a Rejection that
 * says why not. Nothing here consults the registry; that comes next, with the tenant.
 */
export function decodeRuleEvent(input: unknown): InboundMessage {
  const event = ruleEventOf(input);
  if (!event) throw new Rejection('invalid_event', 'not an IoT rule event');
  const { topic, received_at: receivedAtMs, client_id: clientId } = event;
  const match = TOPIC.exec(topic);
  const deviceId = match?.[1];
  if (!match || !deviceId || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new Rejection('unknown_topic', `not a device topic: ${topic.slice(0, 200)}`);
  }
  if (clientId !== undefined && clientId !== deviceId) {
    throw new Rejection('client_mismatch', `client ${clientId} published as ${deviceId}`);
  }
  const bytes = payloadBytes(event.payload);
  const [, , special, stateEntity] = match;

  if (special === 'status') {
    const status = bytes
      .toString('utf8')
      .trim()
      .replace(/^"(.*)"$/, '$1');
    if (status !== 'online' && status !== 'offline') {
      throw new Rejection('invalid_payload', 'status must be "online" or "offline"');
    }
    return { kind: 'status', deviceId, online: status === 'online', receivedAtMs };
  }
  if (special === 'discovery') {
    const discovery = check(discoveryPayload, parseJson(bytes.toString('utf8')));
    checkStorable(discovery, 'discovery');
    const ids = new Set<string>();
    for (const entity of discovery.entities) {
      if (ids.has(entity.entity_id)) {
        throw new Rejection('invalid_payload', `entity ${entity.entity_id} listed twice`);
      }
      ids.add(entity.entity_id);
    }
    return { kind: 'discovery', deviceId, discovery, receivedAtMs };
  }
  if (special === 'telemetry') {
    const readings =
      scanTelemetry(bytes, receivedAtMs) ??
      telemetryReadings(parseJson(bytes.toString('utf8')), receivedAtMs);
    if (readings.length > MAX_TELEMETRY_READINGS) {
      throw new Rejection('invalid_payload', `more than ${MAX_TELEMETRY_READINGS} readings`);
    }
    return { kind: 'readings', deviceId, readings, receivedAtMs };
  }
  const entityId = stateEntity as string;
  if (entityId === 'model') {
    return {
      kind: 'edge-model',
      deviceId,
      report: parseJson(bytes.toString('utf8')),
      receivedAtMs,
    };
  }
  if ((RESERVED_ENTITY_IDS as readonly string[]).includes(entityId)) {
    throw new Rejection('reserved_entity', `${entityId} is reserved`);
  }
  if (!ENTITY_ID_PATTERN.test(entityId)) {
    throw new Rejection('unknown_entity', 'entity id has characters no entity may have');
  }
  const state: z.output<typeof statePayload> =
    scanState(bytes) ?? check(statePayload, parseJson(bytes.toString('utf8')));
  // Fields set only when present (spreading `{}` or `{...}` in made two objects a message).
  const reading: RawReading = {
    entityId,
    value: state.value,
    timeMs: toMs(state.timestamp, receivedAtMs),
  };
  if (state.timestamp === undefined) reading.untimedItem = 0;
  if (state.command_id) reading.commandId = state.command_id;
  return { kind: 'readings', deviceId, receivedAtMs, readings: [reading] };
}
