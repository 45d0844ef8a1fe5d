import type { ModelSettings } from '../../ml/domain/families.ts';
import type { MeasuringRange } from '../../ml/domain/measuring-range.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import type { PriorTier } from '../../timeseries/domain/reading-store.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type {
  AnomalyLevel,
  DetectedAnomaly,
  ModelSummary,
  NewModel,
  TrainingCandidate,
  TypeSettings,
} from './model.ts';

/**
 * Where trained models are kept (a folder locally, S3 on AWS). One store per model
 * kind, each checking what it loads with that kind's schema.
 */
export interface ModelStore<M = TrainedModel> {
  save(key: string, model: M): Promise<void>;
  /** null when no model is stored under the key. */
  load(key: string): Promise<M | null>;
}

/** Checks a stored JSON document and returns it as a model, or throws. */
export type ModelParser<M> = (json: unknown) => M;

/** A device as anomaly results and training need it: its physical id, plan level and tiers. */
export interface AnomalyTarget {
  deviceId: string;
  level: AnomalyLevel;
  retentionPolicy: string;
  priorTier?: PriorTier;
  /** The asked-for entity's type; undefined when the device has no such entity. */
  entityType: string | undefined;
  /** Whether the tenant's plan lets it choose, train and upload its own models. */
  customModels: boolean;
}

export interface AnomalyTargets {
  /** undefined when the tenant has no such device. */
  find(tenantId: number, devicePk: number, entityId?: string): Promise<AnomalyTarget | undefined>;
  /** Whether the tenant's plan in force has the custom_models flag. */
  customModels(tenantId: number): Promise<boolean>;
}

/** The record of trained models (the models themselves are in the `ModelStore`). */
export interface ModelRegistry {
  list(tenantId: number): Promise<ModelSummary[]>;
  /**
   * The active model of each asked-for entity that has one, for many devices of one tenant
   * at once: its device, version and where it is stored.
   */
  active(tenantId: number, wanted: ReadonlyArray<DeviceEntities>): Promise<ActiveModel[]>;
  /** Records a trained model; an accepted one supersedes the entity's active model. */
  record(tenantId: number, model: NewModel): Promise<ModelSummary>;
  /** One of the tenant's models; undefined when it has no such model. */
  find(tenantId: number, modelId: number): Promise<ModelSummary | undefined>;
  /**
   * Makes an earlier accepted model of its entity the active one again (the active one is
   * superseded); undefined when the tenant has no such model.
   */
  activate(tenantId: number, modelId: number): Promise<ModelSummary | undefined>;
  /** Across tenants: Industrial entities whose model is missing or older than `maxAgeDays`. */
  trainingCandidates(maxAgeDays: number, maxModels: number): Promise<TrainingCandidate[]>;
}

/** The measuring ranges of a tenant's entities: the span each one's sensor measures. */
export interface MeasuringRangeSource {
  /** The range of each asked-for entity that has one, by device and entity. */
  rangesOf(
    tenantId: number,
    wanted: ReadonlyArray<DeviceEntities>,
  ): Promise<Map<number, Map<string, MeasuringRange>>>;
}

/** A detector's state after the last reading it scored. */
export interface SavedDetectorState {
  entityId: string;
  detector: 'basic' | 'advanced';
  state: unknown;
  lastTimeMs: number;
  /**
   * The store's own note of how the state is stored (opaque to the scorer), handed back with
   * the update computed from it so the store writes only what changed.
   */
  stored?: unknown;
}

export interface DetectorStateUpdate {
  entityId: string;
  state: unknown;
  lastTimeMs: number;
  /** The saved state's `lastTimeMs` this one was computed from; null when none was saved. */
  basedOn: number | null;
  /** The `stored` note of the saved state this one was computed from. */
  stored?: unknown;
}

/** Some entities of one device. */
export interface DeviceEntities {
  devicePk: number;
  entityIds: string[];
}

/**
 * The detector states wanted of some entities of one device. `scored`: the entities about to
 * be scored, with the time of their first and last reading, so the store may load only what
 * scoring those needs (of the others, only what the scorer reads besides); absent: all of
 * every state.
 */
export interface WantedStates extends DeviceEntities {
  scored?: Record<string, { fromMs: number; toMs: number }>;
}

export interface ActiveModel {
  devicePk: number;
  entityId: string;
  version: string;
  storageKey: string;
}

/** A device's new detector states, computed from the ones loaded. */
export interface DeviceStateSave {
  devicePk: number;
  detector: 'basic' | 'advanced';
  updates: DetectorStateUpdate[];
}

/**
 * Detector states of many devices of one tenant at a time: a batch of a large fleet is one
 * load and one save, not a few round trips per device.
 */
export interface DetectorStateStore {
  /** The saved states of the asked-for entities, by device (devices with none left out). */
  load(
    tenantId: number,
    wanted: ReadonlyArray<WantedStates>,
  ): Promise<Map<number, SavedDetectorState[]>>;
  /**
   * Saves each device's updates whole, or none of them when another invocation saved a state
   * for one of its entities since it was loaded (compare-and-set on `basedOn`); answers the
   * devices not saved for that reason. One device's refusal never holds back another's save.
   */
  saveIfUnchanged(tenantId: number, saves: ReadonlyArray<DeviceStateSave>): Promise<Set<number>>;
}

/** The families and settings chosen per device type and entity. */
export interface TypeSettingsStore {
  put(
    tenantId: number,
    deviceType: string,
    entityId: string,
    settings: ModelSettings,
  ): Promise<TypeSettings>;
  list(tenantId: number): Promise<TypeSettings[]>;
  /** The settings chosen for the entity on the device's type; undefined when none. */
  forDevice(
    tenantId: number,
    devicePk: number,
    entityId: string,
  ): Promise<ModelSettings | undefined>;
}

/** A device the scheduled pass scores, and how far its stored readings have been read. */
export interface ScoringDevice {
  devicePk: number;
  deviceId: string;
  /**
   * Its stored readings from this time on (epoch ms) are still to be read by a pass: moved
   * on by each pass, moved back by ingestion when it stores readings older than that.
   */
  readFromMs: number;
  /** The store's version of `readFromMs`, handed back so a move never undoes ingestion's. */
  generation: number;
}

/** What a pass needs of one tenant: its plan's level, where its readings are, its devices. */
export interface ScoringTenant {
  tenantId: number;
  level: AnomalyLevel;
  retentionPolicy: string;
  priorTier?: PriorTier;
  devices: ScoringDevice[];
}

/** How far each device's stored readings have been read by the scheduled scoring passes. */
export interface ScoringLedger {
  /** Tenants whose plan has anomaly detection, the one whose devices are most behind first. */
  tenants(): Promise<number[]>;
  /** The tenant's devices, the most behind first; undefined when its plan no longer scores. */
  tenant(tenantId: number): Promise<ScoringTenant | undefined>;
  /**
   * Moves devices' `readFromMs` forward, each only if its generation is still the one read
   * (ingestion did not move it back meanwhile).
   */
  advance(
    tenantId: number,
    moves: ReadonlyArray<{ devicePk: number; readFromMs: number; generation: number }>,
  ): Promise<void>;
}

/** The numeric (sensor and number) readings stored for some devices of one tenant. */
export interface StoredReadingSource {
  /**
   * Each device's readings with times in [fromMs, toMs) (no end without `toMs`), by physical
   * device id, each entity's in time order.
   */
  numericReadings(query: StoredReadingsQuery): Promise<Map<string, Reading[]>>;
}

export interface StoredReadingsQuery {
  tenantId: number;
  retentionPolicy: string;
  priorTier?: PriorTier;
  deviceIds: readonly string[];
  fromMs: number;
  toMs?: number;
}

/** Takes the anomalies a pass found (alarm rules with an anomaly condition judge them). */
export interface AnomalyListener {
  anomaliesFound(
    nowMs: number,
    devices: ReadonlyArray<{ devicePk: number; tenantId: number; anomalies: DetectedAnomaly[] }>,
  ): Promise<void>;
}

/** An anomaly as dashboards are told of it live. */
export interface AnomalyEvent {
  type: 'anomaly';
  device_id: number;
  entity_id: string;
  time: string;
  score: number;
  value: number;
  reason: string | null;
}

/** Pushes to the tenant's connected dashboards. */
export interface AnomalyAudience {
  publish(tenantId: number, events: () => AnomalyEvent[]): Promise<void>;
}
