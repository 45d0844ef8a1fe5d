import type { EntityType } from '../../identifiers.ts';
import type { Reading } from '../reading.ts';

export type SeriesFunction = 'mean' | 'min' | 'max' | 'count' | 'last';
export const SERIES_FUNCTIONS: readonly SeriesFunction[] = ['mean', 'min', 'max', 'count', 'last'];

/** Where a series was read from: raw points or one of the rollups. */
export type SeriesSource = 'raw' | '5m' | '1h';

export interface EntityRef {
  entityId: string;
  entityType: EntityType;
}

export interface WriteResult {
  written: number;
  /** Readings the plan's policy refused as older than it keeps; everything else was stored. */
  beyondRetention: Reading[];
}

export interface LatestValue {
  value: Reading['value'];
  /** ISO 8601 UTC */
  time: string;
}

export interface SeriesQuery {
  tenantId: number;
  deviceId: string;
  /** Entities with their types (only their measurements are read). */
  entities?: EntityRef[];
  /** Entity ids when the types are not at hand; every measurement is read. */
  entityIds?: string[];
  from: Date;
  to: Date;
  /** Bucket width, e.g. `5m`; without it raw points (or the rollup's own points) come back. */
  every?: string | undefined;
  /** Default `mean`. */
  fn?: SeriesFunction | undefined;
  /** Read this source whatever the span (an export asks for raw points or a rollup). */
  source?: SeriesSource | undefined;
  /**
   * Raw points whatever the span (the count guard still refuses a huge answer): readings
   * that each stand for a whole operating cycle, which no rollup may merge.
   */
  raw?: boolean;
  retentionPolicy: string;
  /** While the tenant's history moves to `retentionPolicy` (a plan change). */
  priorTier?: PriorTier | undefined;
}

/**
 * During a tier move: times before `before` (epoch ms) are still read from `policy`, the
 * tier the tenant's history is being copied from.
 */
export interface PriorTier {
  policy: string;
  before: number;
}

export interface SeriesPoint {
  /** ISO 8601 UTC; the bucket's start for aggregates. */
  time: string;
  value: Reading['value'];
}

export interface SeriesResult {
  /** The source of numeric series; switch and text series are always read raw. */
  source: SeriesSource;
  series: Array<{ entity_id: string; points: SeriesPoint[] }>;
}

/** Telemetry storage, as the ingestion and API functions see it. */
export interface ReadingStore {
  writeReadings(readings: Reading[]): Promise<WriteResult>;
  latest(
    tenantId: number,
    deviceId: string,
    entities: EntityRef[],
    retentionPolicy: string,
    priorTier?: PriorTier,
  ): Promise<Map<string, LatestValue>>;
  series(query: SeriesQuery): Promise<SeriesResult>;
}

/** A series query the store will not run as asked (bad `every`, too many points, ...). */
/**
 * The store refused what it was given (a field type conflict, a line it cannot parse), as
 * opposed to being unavailable: writing the same readings again would fail the same way.
 */
export class ReadingsRefusedError extends Error {
  override readonly name = 'ReadingsRefusedError';
}

export class SeriesQueryError extends Error {
  override readonly name: string = 'SeriesQueryError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class TooManyPointsError extends SeriesQueryError {
  override readonly name = 'TooManyPointsError';
  constructor(
    readonly points: number,
    readonly limit: number,
  ) {
    super(
      'too_many_points',
      `the range holds ${points} points, more than the ${limit} returned at once: ` +
        'narrow it or aggregate with `every` (e.g. every=5m)',
    );
  }
}
