import { z } from 'zod';
import {
  DEVICE_ID_PATTERN,
  ENTITY_ID_PATTERN,
  ENTITY_TYPES,
  RESERVED_ENTITY_IDS,
} from '../devices/model.ts';

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
export type RuleEvent = z.infer<typeof ruleEventSchema>;

/** AWS IoT's own limit; anything larger cannot be a legitimate message. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
export const MAX_TEXT_VALUE_LENGTH = 1024;
export const MAX_TELEMETRY_READINGS = 5000;

export type RejectionReason =
  | 'invalid_event'
  | 'unknown_topic'
  | 'payload_too_large'
  | 'malformed_json'
  | 'invalid_payload'
  | 'client_mismatch'
  | 'unknown_device'
  | 'unknown_entity'
  | 'reserved_entity'
  | 'wrong_value_type'
  | 'invalid_timestamp'
  | 'timestamp_in_future'
  | 'beyond_retention';

export class Rejection extends Error {
  override readonly name = 'Rejection';
  constructor(
    readonly reason: RejectionReason,
    detail: string,
  ) {
    super(detail);
  }
}

export type ReadingValue = number | boolean | string;

/** A reading as the device sent it, before the registry has vouched for its entity. */
export interface RawReading {
  entityId: string;
  value: ReadingValue;
  /** Epoch ms: the device's timestamp, else the rule's receive time. */
  timeMs: number;
  commandId?: string;
}

export type InboundMessage =
  | { kind: 'status'; deviceId: string; online: boolean; receivedAtMs: number }
  | { kind: 'discovery'; deviceId: string; discovery: Discovery; receivedAtMs: number }
  | { kind: 'readings'; deviceId: string; readings: RawReading[]; receivedAtMs: number };

const value = z.union([
  z.number().refine(Number.isFinite, 'must be finite'),
  z.boolean(),
  z.string().max(MAX_TEXT_VALUE_LENGTH),
]);
// Epoch seconds; anything before 2000 is an unsynchronised clock (uptime), not a date.
const timestamp = z.number().finite().min(946_684_800).max(32_503_680_000);

const statePayload = z.object({
  value,
  unit: z.string().max(50).optional(),
  timestamp: timestamp.optional(),
  command_id: z.string().max(64).optional(),
});

const entityIdKey = z
  .string()
  .regex(ENTITY_ID_PATTERN)
  .refine((id) => !(RESERVED_ENTITY_IDS as readonly string[]).includes(id), 'reserved entity id');

const telemetryItem = z.object({
  timestamp: timestamp.optional(),
  values: z.record(entityIdKey, value),
});
const telemetryPayload = z.union([telemetryItem, z.array(telemetryItem).min(1).max(1000)]);

const discoveryEntity = z.object({
  entity_id: entityIdKey,
  entity_type: z.enum(ENTITY_TYPES),
  name: z.string().trim().min(1).max(255),
  unit: z.string().max(50).optional(),
  icon: z.string().max(50).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
});
export const discoveryPayload = z.object({
  name: z.string().trim().min(1).max(255).optional(),
  type: z.string().trim().min(1).max(100).optional(),
  firmware: z.string().max(100).optional(),
  entities: z.array(discoveryEntity).max(200),
});
export type Discovery = z.infer<typeof discoveryPayload>;

const TOPIC = /^devices\/([^/]+)\/(?:(status|discovery|telemetry)|([^/]+)\/state)$/;

/** The device id in a topic, when the topic is one of ours; used to attribute rejections. */
export function topicDeviceId(topic: string): string | undefined {
  const match = TOPIC.exec(topic);
  return match?.[1] && DEVICE_ID_PATTERN.test(match[1]) ? match[1] : undefined;
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

/**
 * Converts one rule event into the platform's inbound message, or throws a Rejection that
 * says why not. Nothing here consults the registry; that comes next, with the tenant.
 */
export function decodeRuleEvent(input: unknown): InboundMessage {
  const event = ruleEventSchema.safeParse(input);
  if (!event.success) throw new Rejection('invalid_event', 'not an IoT rule event');
  const { topic, received_at: receivedAtMs } = event.data;
  const match = TOPIC.exec(topic);
  const deviceId = match?.[1];
  if (!match || !deviceId || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new Rejection('unknown_topic', `not a device topic: ${topic.slice(0, 200)}`);
  }
  if (event.data.client_id !== undefined && event.data.client_id !== deviceId) {
    throw new Rejection(
      'client_mismatch',
      `client ${event.data.client_id} published as ${deviceId}`,
    );
  }
  const bytes = Buffer.from(event.data.payload, 'base64');
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new Rejection('payload_too_large', `payload of ${bytes.length} bytes`);
  }
  const text = bytes.toString('utf8');
  const [, , special, stateEntity] = match;

  if (special === 'status') {
    const status = text.trim().replace(/^"(.*)"$/, '$1');
    if (status !== 'online' && status !== 'offline') {
      throw new Rejection('invalid_payload', 'status must be "online" or "offline"');
    }
    return { kind: 'status', deviceId, online: status === 'online', receivedAtMs };
  }
  if (special === 'discovery') {
    const discovery = check(discoveryPayload, parseJson(text));
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
    const payload = check(telemetryPayload, parseJson(text));
    const items = Array.isArray(payload) ? payload : [payload];
    const readings: RawReading[] = [];
    for (const item of items) {
      const timeMs = toMs(item.timestamp, receivedAtMs);
      for (const [entityId, reading] of Object.entries(item.values)) {
        readings.push({ entityId, value: reading, timeMs });
      }
    }
    if (readings.length > MAX_TELEMETRY_READINGS) {
      throw new Rejection('invalid_payload', `more than ${MAX_TELEMETRY_READINGS} readings`);
    }
    return { kind: 'readings', deviceId, readings, receivedAtMs };
  }
  const entityId = stateEntity as string;
  if ((RESERVED_ENTITY_IDS as readonly string[]).includes(entityId)) {
    throw new Rejection('reserved_entity', `${entityId} is reserved`);
  }
  if (!ENTITY_ID_PATTERN.test(entityId)) {
    throw new Rejection('unknown_entity', 'entity id has characters no entity may have');
  }
  const state = check(statePayload, parseJson(text));
  return {
    kind: 'readings',
    deviceId,
    receivedAtMs,
    readings: [
      {
        entityId,
        value: state.value,
        timeMs: toMs(state.timestamp, receivedAtMs),
        ...(state.command_id ? { commandId: state.command_id } : {}),
      },
    ],
  };
}
