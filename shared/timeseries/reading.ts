import { DEVICE_ID_PATTERN, ENTITY_ID_PATTERN, type EntityType } from '../identifiers.ts';
import {
  type LinePoint,
  LineProtocolError,
  type LineSink,
  linePrefix,
  lineProblem,
  type Precision,
  toLine,
  writePrefixedLine,
} from './line-protocol.ts';

/**
 * The one internal shape every inbound payload (state message, telemetry batch, command
 * confirmation) is converted to before it reaches the time-series store.
 */
export interface Reading {
  tenantId: number;
  deviceId: string;
  entityId: string;
  entityType: EntityType;
  value: number | boolean | string;
  /** Epoch milliseconds; always written explicitly so a redelivery overwrites, not adds. */
  timeMs: number;
  /**
   * Nanoseconds within `timeMs` (0 to 999,999), for readings that share a millisecond and
   * must not overwrite each other (readings without a device timestamp). A batch holding any
   * is written with nanosecond precision.
   */
  subMsNs?: number;
  /** The tenant's plan policy (`free_plan`, ...), resolved from the registry, never the payload. */
  retentionPolicy: string;
  /** Switches only: who caused the change (`device`, `user_3`, ...). */
  triggeredBy?: string;
  unit?: string;
}

export const MEASUREMENTS = {
  sensor: 'sensor_data',
  relay: 'relay_states',
  predictions: 'ml_predictions',
} as const;

/** Field names, per entity type. `text` is its own field so it never clashes with float `value`. */
export const FIELDS = { value: 'value', text: 'text', state: 'state', triggeredBy: 'triggered_by' };

/** Where an entity type's readings live. */
export function storageOf(entityType: EntityType): { measurement: string; field: string } {
  switch (entityType) {
    case 'sensor':
    case 'number':
      return { measurement: MEASUREMENTS.sensor, field: FIELDS.value };
    case 'text':
      return { measurement: MEASUREMENTS.sensor, field: FIELDS.text };
    case 'switch':
      return { measurement: MEASUREMENTS.relay, field: FIELDS.state };
  }
}

/**
 * The largest magnitude a numeric reading may have: 10^38, about the range of the 32-bit
 * floats most sensors and PLCs produce. InfluxDB sums a window's values in a double; with
 * every value within this bound, a sum overflows (and InfluxDB 1.x then cannot serialise its
 * answer: `json: unsupported value: +Inf`) only past 10^270 readings in one window.
 */
export const MAX_NUMERIC_MAGNITUDE = 1e38;

// InfluxDB stores time as int64 nanoseconds: 1677-09-21 .. 2262-04-11.
const MIN_TIME_MS = -9_223_372_036_854;
const MAX_TIME_MS = 9_223_372_036_854;

export class InvalidReadingError extends Error {
  override readonly name = 'InvalidReadingError';
  constructor(readonly problems: Array<{ reading: Reading; problem: string }>) {
    const first = problems[0];
    super(
      `${problems.length} invalid reading(s)` +
        (first
          ? `; first: ${first.reading.deviceId}/${first.reading.entityId}: ${first.problem}`
          : ''),
    );
  }
}

function valueProblem(reading: Reading): string | undefined {
  const { entityType, value } = reading;
  switch (entityType) {
    case 'sensor':
    case 'number':
      if (typeof value !== 'number') return `a ${entityType} value must be a number`;
      if (!Number.isFinite(value)) return `a ${entityType} value must be finite`;
      if (Math.abs(value) > MAX_NUMERIC_MAGNITUDE) {
        return `a ${entityType} value must be within ±${MAX_NUMERIC_MAGNITUDE}`;
      }
      return undefined;
    case 'switch':
      return typeof value === 'boolean' ? undefined : 'a switch value must be a boolean';
    case 'text':
      return typeof value === 'string' ? undefined : 'a text value must be a string';
    default:
      return `unknown entity type ${String(entityType)}`;
  }
}

/**
 * What can be said about a reading without building its line; `kept` is its series' kept
 * line prefix, if it has one (`keptPrefix`).
 */
function fieldProblem(
  reading: Reading,
  kept: SeriesPrefix | undefined = keptPrefix(reading),
): string | undefined {
  if (!Number.isSafeInteger(reading.tenantId) || reading.tenantId <= 0) {
    return 'tenantId must be a positive integer';
  }
  // A series with a kept line prefix had its ids checked when the prefix was made.
  if (kept === undefined) {
    if (!DEVICE_ID_PATTERN.test(reading.deviceId)) return 'invalid deviceId';
    if (!ENTITY_ID_PATTERN.test(reading.entityId)) return 'invalid entityId';
  }
  if (
    !Number.isSafeInteger(reading.timeMs) ||
    reading.timeMs < MIN_TIME_MS ||
    reading.timeMs > MAX_TIME_MS
  ) {
    return 'timeMs must be an integer epoch in milliseconds within InfluxDB range';
  }
  if (typeof reading.retentionPolicy !== 'string' || reading.retentionPolicy === '') {
    return 'retentionPolicy is required';
  }
  return valueProblem(reading);
}

/** A reading whose line is its series prefix, a number or boolean, and its time. */
const isPlain = (reading: Reading) =>
  reading.entityType !== 'text' && reading.triggeredBy === undefined && reading.unit === undefined;

/** Why a reading cannot be stored exactly as given, or undefined if it can. */
export function readingProblem(reading: Reading): string | undefined {
  const problem = fieldProblem(reading);
  if (problem) return problem;
  // Once its fields check out, a reading with no string field has only plain names and a
  // finite number or boolean: its line cannot fail, so it is not built just to see.
  return isPlain(reading) ? undefined : lineProblem(pointOf(reading), 'ns');
}

/** The line-protocol point a reading becomes (not validated: see `readingProblem`). */
export function pointOf(reading: Reading): LinePoint {
  const storage = storageOf(reading.entityType);
  const fields: LinePoint['fields'] = { [storage.field]: reading.value };
  if (reading.entityType === 'switch' && reading.triggeredBy !== undefined) {
    fields[FIELDS.triggeredBy] = reading.triggeredBy;
  }
  if (reading.entityType !== 'switch' && reading.unit !== undefined) fields.unit = reading.unit;
  return {
    measurement: storage.measurement,
    tags: {
      tenant_id: String(reading.tenantId),
      device_id: reading.deviceId,
      entity_id: reading.entityId,
      entity_type: reading.entityType,
    },
    fields,
    timeMs: reading.timeMs,
    subMsNs: reading.subMsNs,
  };
}

interface SeriesPrefix {
  tenantId: number;
  entityType: EntityType;
  /** `linePrefix` of the series: its line up to the field value. */
  bytes: Buffer;
}

/**
 * Line prefixes of recent series, by device and entity. Each reading of a series starts its
 * line with the same bytes; made once, they are copied in one piece.
 */
const seriesPrefixes = new Map<string, Map<string, SeriesPrefix>>();
const MAX_PREFIX_DEVICES = 10_000;

/** The line prefix kept for the reading's device and entity, whatever its tenant and type. */
function keptPrefix(reading: Reading): SeriesPrefix | undefined {
  return seriesPrefixes.get(reading.deviceId)?.get(reading.entityId);
}

/** For a reading `fieldProblem` passed; `kept` as `keptPrefix` found it. */
function seriesPrefix(reading: Reading, kept: SeriesPrefix | undefined): SeriesPrefix {
  if (kept && kept.tenantId === reading.tenantId && kept.entityType === reading.entityType) {
    return kept;
  }
  let byEntity = seriesPrefixes.get(reading.deviceId);
  const point = pointOf(reading);
  if (!byEntity) {
    if (seriesPrefixes.size >= MAX_PREFIX_DEVICES) seriesPrefixes.clear();
    byEntity = new Map();
    seriesPrefixes.set(reading.deviceId, byEntity);
  }
  const prefix = {
    tenantId: reading.tenantId,
    entityType: reading.entityType,
    bytes: linePrefix(point.measurement, point.tags, storageOf(reading.entityType).field),
  };
  byEntity.set(reading.entityId, prefix);
  return prefix;
}

/**
 * Line protocol for a reading; throws `InvalidReadingError` rather than write a wrong point.
 * Ingestion writes lines with `writeReadingLine`; this string form serves the rarer writes.
 */
export function readingToLine(reading: Reading, precision: Precision = 'ms'): string {
  const problem = fieldProblem(reading);
  if (problem) throw new InvalidReadingError([{ reading, problem }]);
  try {
    return toLine(pointOf(reading), precision);
  } catch (error) {
    if (error instanceof LineProtocolError) {
      throw new InvalidReadingError([{ reading, problem: error.message }]);
    }
    throw error;
  }
}

/**
 * Writes the line `readingToLine` makes, byte for byte, into `sink`, and throws as it does.
 * A plain reading's line goes in as bytes, with no string made for it: its strings were most
 * of what the ingest function allocated per reading.
 */
export function writeReadingLine(
  reading: Reading,
  sink: LineSink,
  precision: Precision = 'ms',
): void {
  if (!isPlain(reading) || precision !== 'ms') {
    sink.line(readingToLine(reading, precision));
    return;
  }
  // Looked up once for both: two map look-ups a reading less on the ingest path.
  const kept = keptPrefix(reading);
  const problem = fieldProblem(reading, kept);
  if (problem) throw new InvalidReadingError([{ reading, problem }]);
  writePrefixedLine(
    sink,
    seriesPrefix(reading, kept).bytes,
    reading.value as number | boolean,
    reading.timeMs,
  );
}
