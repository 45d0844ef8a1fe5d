/**
 * Pattern recognition's model: a device's operating modes, found by clustering fixed windows
 * of its numeric entities' readings, named by its users and recognised live.
 */

/** Entity types whose readings have a level and a spread (a switch or a text has neither). */
export const PATTERN_ENTITY_TYPES: readonly string[] = ['sensor', 'number'];

/** At most this many entities take part in one discovery (each adds three features). */
export const MAX_PATTERN_ENTITIES = 8;

/**
 * A device's readings on a regular grid: `rows[s][e]` is entity `e`'s mean over step `s`
 * (which starts at `fromMs + s * stepMs`), NaN where the step has no reading.
 */
export interface StepGrid {
  fromMs: number;
  stepMs: number;
  rows: number[][];
}

/** What a discovery keeps to recognise windows later: the features' scaling and the clusters. */
export interface Recogniser {
  entityIds: string[];
  stepMs: number;
  windowSteps: number;
  /** Per entity: the median and the spread its features are scaled by. */
  centers: number[];
  scales: number[];
  /** Per pattern, in discovery order: its centroid (scaled features) and novelty distance. */
  centroids: number[][];
  thresholds: number[];
}

/** One window's answer: the pattern it lies deepest within, or none within its reach (a novel window). */
export interface WindowMatch {
  fromMs: number;
  toMs: number;
  /** Index into the recogniser's centroids; null when the window is novel. */
  cluster: number | null;
  distance: number;
}

/** One entity's level and spread in a pattern, in the entity's own units. */
export interface EntityProfile {
  entity_id: string;
  mean: number;
  std: number;
  min: number;
  max: number;
}

export interface DiscoveredPattern {
  /** Index of its centroid in the recogniser. */
  cluster: number;
  occurrences: number;
  /** The longest occurrence. */
  example: { fromMs: number; toMs: number };
  totalMs: number;
  /** Its share of the windows that had readings. */
  share: number;
  profile: EntityProfile[];
}

export interface Discovery {
  recogniser: Recogniser;
  patterns: DiscoveredPattern[];
  /** Every window's pattern over the history, in time order. */
  windows: WindowMatch[];
  /** Windows with readings, and the clustering's mean silhouette (null with one pattern). */
  windowCount: number;
  silhouette: number | null;
}

/** A pattern as the API shows it. */
export interface PatternView {
  pattern_id: number;
  label: string | null;
  entity_ids: string[];
  occurrences: number;
  example: { from: string; to: string };
  total_seconds: number;
  share: number;
  profile: EntityProfile[];
  discovered_at: string;
}

/** The device's mode over its latest complete window. */
export interface CurrentPattern {
  pattern_id: number | null;
  label: string | null;
  /** True when the window is like none of the discovered patterns. */
  novel: boolean;
  /** The smallest distance to a pattern as a multiple of that pattern's novelty distance. */
  distance_ratio: number;
  window: { from: string; to: string };
}

export interface TimelineSegment {
  from: string;
  to: string;
  pattern_id: number | null;
  label: string | null;
  novel: boolean;
}

export type JobStatus = 'pending' | 'running' | 'done' | 'failed';

export interface DiscoveryRequest {
  entity_ids: string[] | null;
  from: string | null;
  to: string | null;
}

export interface DiscoveryResult {
  patterns: number;
  windows: number;
  silhouette: number | null;
  /** The entities the patterns were learnt from. */
  entity_ids: string[];
  /** Sensors a default discovery left out as too sparse for the windows, with their readings. */
  left_out: Array<{ entity_id: string; readings: number }>;
  step_seconds: number;
  window_seconds: number;
  from: string;
  to: string;
}

export interface PatternJob {
  job_id: number;
  device_id: number;
  status: JobStatus;
  request: DiscoveryRequest;
  result: DiscoveryResult | null;
  error: { code: string; message: string } | null;
  /** Workers that have taken it (a lost worker's job is taken over by a retried invocation). */
  attempts: number;
  created_at: string;
  started_at: string | null;
  /** When the worker that has it is certainly ended: past it, a running job was lost. */
  deadline_at: string | null;
  finished_at: string | null;
}
