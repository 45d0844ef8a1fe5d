import type {
  Discovery,
  DiscoveryRequest,
  DiscoveryResult,
  PatternJob,
  PatternView,
  Recogniser,
  StepGrid,
} from './model.ts';

/** Where a tenant's readings are kept (its plan's tier, and the prior one during a move). */
export interface ReadingTier {
  retentionPolicy: string;
  priorTier?: { policy: string; before: number };
}

/** A device as pattern recognition sees it. */
export interface PatternDevice {
  /** The database id (`{id}` in the API). */
  id: number;
  /** The physical id. */
  deviceId: string;
  entities: Array<{ entityId: string; entityType: string }>;
  tier: ReadingTier;
}

/** A device's stored recogniser: pattern i of it has id patternIds[i] and label labels[i]. */
export interface StoredRecogniser {
  recogniser: Recogniser;
  patternIds: number[];
  labels: Array<string | null>;
}

/** Port: pattern recognition's records in PostgreSQL, each call within one tenant. */
export interface PatternStore {
  /** Whether the tenant's plan (an expired trial counts as free) has pattern recognition. */
  planAllows(tenantId: number): Promise<boolean>;
  device(tenantId: number, devicePk: number): Promise<PatternDevice | null>;
  createJob(
    tenantId: number,
    devicePk: number,
    request: DiscoveryRequest,
    requestedBy: number,
    nowMs: number,
  ): Promise<PatternJob>;
  /** The job; of the given device only, when one is given. */
  job(tenantId: number, devicePk: number | null, jobId: number): Promise<PatternJob | null>;
  /**
   * Gives the job to a worker (running, one more attempt, until `deadlineMs`) if it is still
   * as `seen` (status and attempts); null when it changed (another worker took it).
   */
  startJob(
    tenantId: number,
    seen: PatternJob,
    times: { nowMs: number; deadlineMs: number },
  ): Promise<PatternJob | null>;
  /**
   * Ends the job as done or failed, if it is still as `seen` (running for that attempt, or
   * as read when a read fails a lost job); false when it changed meanwhile.
   */
  finishJob(
    tenantId: number,
    seen: PatternJob,
    outcome: { result: DiscoveryResult } | { error: { code: string; message: string } },
    nowMs: number,
  ): Promise<boolean>;
  recogniser(tenantId: number, devicePk: number): Promise<StoredRecogniser | null>;
  /**
   * Replaces the device's patterns with a discovery's, with the labels carried over (by
   * cluster), if the job is still running for the worker's attempt; false when it is not.
   */
  saveDiscovery(
    tenantId: number,
    devicePk: number,
    job: PatternJob,
    discovery: Discovery,
    labels: Map<number, string>,
  ): Promise<boolean>;
  patterns(tenantId: number, devicePk: number): Promise<PatternView[]>;
  /** Null when the device has no such pattern. */
  setLabel(
    tenantId: number,
    devicePk: number,
    patternId: number,
    label: string | null,
  ): Promise<{ before: string | null; pattern: PatternView } | null>;
}

export interface GridQuery {
  tenantId: number;
  device: PatternDevice;
  entityIds: readonly string[];
  /** Both multiples of stepMs; steps start at fromMs and end before toMs. */
  fromMs: number;
  toMs: number;
  stepMs: number;
}

/** One entity's readings per bucket (only buckets that have any). */
export type ReadingCounts = Array<{ timeMs: number; readings: number }>;

/** Port: a device's readings (InfluxDB), as step means or as counts. */
export interface PatternHistory {
  grid(query: GridQuery): Promise<StepGrid>;
  /**
   * Over [fromMs, toMs), per entity in the order asked: its buckets of `bucketMs` that have
   * readings, oldest first, each with its start and its number of readings.
   */
  counts(query: Omit<GridQuery, 'stepMs'> & { bucketMs: number }): Promise<ReadingCounts[]>;
}

/** Port: runs a discovery job away from the request (an asynchronous invocation on AWS). */
export interface DiscoveryDispatcher {
  dispatch(tenantId: number, jobId: number): Promise<void>;
}
