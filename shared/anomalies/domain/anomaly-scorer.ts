import type { Logger } from '../../logger.ts';
import { type CoEntityBuffers, pushAligned } from '../../ml/domain/co-entities.ts';
import {
  type AnomalyDetector,
  createDetector,
  DetectorStateError,
  restoreDetector,
} from '../../ml/domain/detector.ts';
import { MAX_CO_WINDOW } from '../../ml/domain/families.ts';
import type { MeasuringRange } from '../../ml/domain/measuring-range.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import { TimeSlices } from '../../time-slices.ts';
import type { Prediction, PredictionStore } from '../../timeseries/domain/prediction-store.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type { DetectedAnomaly, ScoredDevice } from './model.ts';
import type {
  DetectorStateStore,
  DetectorStateUpdate,
  MeasuringRangeSource,
  ModelRegistry,
  ModelStore,
  SavedDetectorState,
} from './ports.ts';

/** What a scored batch reports; the scoring pass takes it from here. */
export type { DetectedAnomaly } from './model.ts';

/** How often a batch is rescored when other invocations keep saving the same entities first. */
const MAX_SCORING_ATTEMPTS = 5;

export interface ScoreBatchOptions {
  /**
   * Told of the anomalies found, after their scores are written and before the states are
   * saved; if it fails, the devices fail (nothing saved) and scoring them again hands the
   * same anomalies over, so it must tolerate seeing an anomaly twice.
   */
  handOver?: (
    found: ReadonlyArray<{ device: ScoredDevice; anomalies: DetectedAnomaly[] }>,
  ) => Promise<void>;
  /** Told how many readings were scored (and their states saved), each time some were. */
  onScored?: (readings: number) => void;
}

export interface AnomalyScorerOptions {
  states: DetectorStateStore;
  registry: ModelRegistry;
  predictions: PredictionStore;
  models: ModelStore;
  /** Entities' measuring ranges, which the advanced detector uses; none without it. */
  ranges?: MeasuringRangeSource;
  logger: Logger;
}

/** Another invocation kept saving the same entities' states first; the batch is retried. */
export class ScoringContendedError extends Error {
  override readonly name = 'ScoringContendedError';
}

/** A device's stored readings, to be scored. */
export interface DeviceReadings {
  device: ScoredDevice;
  readings: Reading[];
}

/** What became of one device's readings: the anomalies found, or why they were not scored. */
export type ScoringOutcome = { anomalies: DetectedAnomaly[] } | { failed: unknown };

/** One device being scored: its numeric readings by entity and the pass computed last. */
interface PendingDevice {
  position: number;
  device: ScoredDevice;
  level: 'basic' | 'advanced';
  byEntity: Map<string, Reading[]>;
}

/** What one scoring pass computed for a device, nothing written yet. */
interface DevicePass {
  predictions: Prediction[];
  anomalies: DetectedAnomaly[];
  updates: DetectorStateUpdate[];
}

/**
 * Runs the plan's detector on stored numeric readings (the scheduled scoring pass hands it a
 * chunk of devices' readings since their read positions), a whole batch at a time: per tenant (a large tenant's devices in a few groups side by side), the
 * batch's detector states are loaded in one query (and active models in another), each
 * entity's detector is fed its readings in time order, every score of the batch is written
 * to the prediction store in one write, and then each tenant's new states are saved in one
 * transaction. The save is a compare-and-set per device on the
 * states each score started from, so a device that another invocation scored concurrently is
 * scored again from the newer state (rewriting the same predictions, which replace the
 * earlier ones), and no database transaction is held open across the write to InfluxDB.
 * Readings not newer than the last one scored (redeliveries, a late flush) are stored but not
 * scored again, so a retry never double-counts. A device's scores do not depend on which
 * other devices share its batch. Uses no TensorFlow.js: trained models are evaluated in
 * TypeScript.
 */
export class AnomalyScorer {
  /** Models are immutable per version: loaded once per function instance. */
  readonly #models = new Map<string, TrainedModel | null>();
  readonly #states: DetectorStateStore;
  readonly #registry: ModelRegistry;
  readonly #predictions: PredictionStore;
  readonly #modelStore: ModelStore;
  readonly #ranges: MeasuringRangeSource | undefined;
  readonly #logger: Logger;

  constructor(options: AnomalyScorerOptions) {
    this.#states = options.states;
    this.#registry = options.registry;
    this.#predictions = options.predictions;
    this.#modelStore = options.models;
    this.#ranges = options.ranges;
    this.#logger = options.logger;
  }

  /** One device's readings: `scoreBatch` of one, its failure thrown. */
  async score(device: ScoredDevice, readings: Reading[]): Promise<DetectedAnomaly[]> {
    const [outcome] = await this.scoreBatch([{ device, readings }]);
    if (outcome && 'failed' in outcome) throw outcome.failed;
    return outcome?.anomalies ?? [];
  }

  /**
   * Scores every device's readings (each device once); answers each device's outcome, in
   * order. A failure (a store unavailable, states that kept moving) fails the devices it
   * touched: those of its group, or of the whole batch when the prediction store refuses the
   * write.
   */
  async scoreBatch(
    batch: ReadonlyArray<DeviceReadings>,
    options: ScoreBatchOptions = {},
  ): Promise<ScoringOutcome[]> {
    const devices = new Set(batch.map(({ device }) => device.devicePk));
    if (devices.size !== batch.length) throw new Error('a device appears twice in a scored batch');
    const outcomes: ScoringOutcome[] = batch.map(() => ({ anomalies: [] }));
    let pending: PendingDevice[] = [];
    for (const [position, { device, readings }] of batch.entries()) {
      const level = device.anomalyDetection;
      if (level === 'none') continue;
      const byEntity = numericReadingsByEntity(readings);
      if (byEntity.size > 0) pending.push({ position, device, level, byEntity });
    }
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      if (attempt > MAX_SCORING_ATTEMPTS) {
        for (const { position, device } of pending) {
          outcomes[position] = {
            failed: new ScoringContendedError(
              `device ${device.deviceId}: detector states kept changing under ${MAX_SCORING_ATTEMPTS} scoring attempts`,
            ),
          };
        }
        break;
      }
      pending = await this.#attempt(groupsOf(pending), outcomes, options);
    }
    return outcomes;
  }

  /**
   * One pass over the pending devices: load, score, write the scores, save. Answers the
   * devices whose states moved meanwhile (to score again); failed devices get their outcome.
   */
  async #attempt(
    groups: DeviceGroup[],
    outcomes: ScoringOutcome[],
    { handOver, onScored }: ScoreBatchOptions,
  ): Promise<PendingDevice[]> {
    const fail = (devices: PendingDevice[], error: unknown) => {
      for (const { position } of devices) outcomes[position] = { failed: error };
    };
    const failAll = (error: unknown) => {
      for (const scored of passes.values())
        fail(
          scored.map(({ pending }) => pending),
          error,
        );
    };
    const passes = new Map<DeviceGroup, Array<{ pending: PendingDevice; pass: DevicePass }>>();
    await Promise.all(
      groups.map(async (group) => {
        try {
          passes.set(group, await this.#scoreGroup(group));
        } catch (error) {
          fail(group.devices, error);
        }
      }),
    );
    const predictions: Prediction[] = [];
    for (const scored of passes.values()) {
      for (const { pass } of scored) for (const p of pass.predictions) predictions.push(p);
    }
    if (predictions.length > 0) {
      try {
        // Scores first: if the store refuses them no state moves on and the retry rescores.
        await this.#predictions.write(predictions);
      } catch (error) {
        failAll(error);
        return [];
      }
    }
    if (handOver) {
      const found: Array<{ device: ScoredDevice; anomalies: DetectedAnomaly[] }> = [];
      for (const scored of passes.values()) {
        for (const { pending, pass } of scored) {
          if (pass.anomalies.length > 0)
            found.push({ device: pending.device, anomalies: pass.anomalies });
        }
      }
      if (found.length > 0) {
        try {
          // Before the states move on: if it fails, the devices are scored again, the same.
          await handOver(found);
        } catch (error) {
          failAll(error);
          return [];
        }
      }
    }
    const again: PendingDevice[] = [];
    await Promise.all(
      [...passes].map(async ([{ tenantId }, scored]) => {
        const saves = scored
          .filter(({ pass }) => pass.updates.length > 0)
          .map(({ pending, pass }) => ({
            devicePk: pending.device.devicePk,
            detector: pending.level,
            updates: pass.updates,
          }));
        let moved: Set<number>;
        try {
          moved =
            saves.length > 0 ? await this.#states.saveIfUnchanged(tenantId, saves) : new Set();
        } catch (error) {
          fail(
            scored.map(({ pending }) => pending),
            error,
          );
          return;
        }
        for (const { pending, pass } of scored) {
          if (moved.has(pending.device.devicePk)) again.push(pending);
          else {
            outcomes[pending.position] = { anomalies: pass.anomalies };
            if (pass.predictions.length > 0) onScored?.(pass.predictions.length);
          }
        }
      }),
    );
    return again.sort((a, b) => a.position - b.position);
  }

  /** A group of one tenant's devices: their states and models loaded at once, each scored. */
  async #scoreGroup({ tenantId, devices }: DeviceGroup) {
    const advanced = devices.filter((pending) => pending.level === 'advanced');
    const [models, ranges] =
      advanced.length > 0
        ? await Promise.all([
            this.#activeModels(tenantId, advanced),
            this.#ranges?.rangesOf(
              tenantId,
              advanced.map(({ device, byEntity }) => ({
                devicePk: device.devicePk,
                entityIds: [...byEntity.keys()],
              })),
            ),
          ])
        : [new Map<number, Map<string, TrainedModel>>(), undefined];
    const wanted = devices.map((pending) => {
      // The other entities its models read: their latest reading before this batch is in
      // their saved states, whether or not they reported in it.
      const ids = new Set(pending.byEntity.keys());
      for (const model of models.get(pending.device.devicePk)?.values() ?? []) {
        for (const co of model.coEntities ?? []) ids.add(co.entityId);
      }
      const scored: Record<string, { fromMs: number; toMs: number }> = {};
      for (const [entityId, readings] of pending.byEntity) {
        scored[entityId] = {
          fromMs: (readings[0] as Reading).timeMs,
          toMs: (readings[readings.length - 1] as Reading).timeMs,
        };
      }
      return { devicePk: pending.device.devicePk, entityIds: [...ids], scored };
    });
    const saved = await this.#states.load(tenantId, wanted);
    const scored: Array<{ pending: PendingDevice; pass: DevicePass }> = [];
    const slices = new TimeSlices();
    for (const pending of devices) {
      // A pass scores many readings a device: the CPU is given back now and then, so that
      // other work of the same process (locally every function shares one) is not held up.
      if (slices.due()) await slices.turn();
      scored.push({
        pending,
        pass: this.#scoreDevice(
          pending,
          saved.get(pending.device.devicePk) ?? [],
          models.get(pending.device.devicePk) ?? new Map(),
          ranges?.get(pending.device.devicePk) ?? new Map(),
        ),
      });
    }
    return scored;
  }

  /** One device's pass: its saved states fed the new readings, nothing written yet. */
  #scoreDevice(
    { device, level, byEntity }: PendingDevice,
    saved: SavedDetectorState[],
    activeModels: Map<string, TrainedModel>,
    ranges: Map<string, MeasuringRange>,
  ): DevicePass {
    const stateOf = new Map(saved.map((state) => [state.entityId, state]));
    const hasCo = [...activeModels.values()].some((model) => (model.coEntities ?? []).length > 0);
    const asOf = hasCo ? latestAsOf(byEntity, stateOf) : null;

    const predictions: Prediction[] = [];
    const anomalies: DetectedAnomaly[] = [];
    const updates: DetectorStateUpdate[] = [];
    for (const [entityId, entityReadings] of byEntity) {
      const state = stateOf.get(entityId);
      const model = activeModels.get(entityId) ?? null;
      const range = ranges.get(entityId) ?? null;
      const detector = this.#detector(level, state, model, range, device, entityId);
      let lastTimeMs = state && state.detector === level ? state.lastTimeMs : -Infinity;
      let lastValue: number | undefined;
      const modelCo = model?.coEntities ?? [];
      const buffers = modelCo.length > 0 ? coBuffersOf(state, modelCo) : null;
      for (const reading of entityReadings) {
        if (reading.timeMs <= lastTimeMs) continue;
        lastTimeMs = reading.timeMs;
        const value = reading.value as number;
        lastValue = value;
        const co =
          buffers && model && asOf
            ? pushAligned(
                buffers,
                new Map(modelCo.map(({ entityId: id }) => [id, asOf(id, reading.timeMs)])),
                model,
                MAX_CO_WINDOW,
              )
            : undefined;
        const result = detector.score(reading.timeMs, value, co);
        predictions.push({
          tenantId: device.tenantId,
          deviceId: device.deviceId,
          entityId,
          timeMs: reading.timeMs,
          retentionPolicy: device.retentionPolicy,
          detector: level,
          model: detector.name,
          modelVersion: model ? model.version : detector.version,
          score: result.score,
          anomalous: result.anomalous,
          value,
          reason: result.reason,
        });
        if (result.anomalous) {
          anomalies.push({
            entityId,
            timeMs: reading.timeMs,
            score: result.score,
            value,
            reason: result.reason,
          });
        }
      }
      if (Number.isFinite(lastTimeMs) && lastValue !== undefined) {
        const scoring: ScoringState = { lastValue, ...(buffers ? { coBuffers: buffers } : {}) };
        updates.push({
          entityId,
          // Serialised when saved, before anything scores with this detector again.
          state: { ...detector.snapshot({ shared: true }), ...scoring },
          lastTimeMs,
          basedOn: state ? state.lastTimeMs : null,
          ...(state?.stored !== undefined ? { stored: state.stored } : {}),
        });
      }
    }
    return { predictions, anomalies, updates };
  }

  #detector(
    level: 'basic' | 'advanced',
    saved: SavedDetectorState | undefined,
    model: TrainedModel | null,
    measuringRange: MeasuringRange | null,
    device: ScoredDevice,
    entityId: string,
  ): AnomalyDetector {
    if (saved && saved.detector === level) {
      try {
        // The loaded state is this pass's alone (the store parsed it for the pass).
        return restoreDetector(saved.state, { model, measuringRange, adopt: true });
      } catch (error) {
        if (!(error instanceof DetectorStateError)) throw error;
        // A state from another detector version: start over rather than stop scoring.
        this.#logger.warn('detector state discarded', {
          deviceId: device.deviceId,
          entityId,
          error,
        });
      }
    }
    return level === 'basic'
      ? createDetector({ kind: 'basic' })
      : createDetector({ kind: 'advanced', model, measuringRange });
  }

  /** Each advanced device's active models, by entity. */
  async #activeModels(tenantId: number, devices: PendingDevice[]) {
    const active = await this.#registry.active(
      tenantId,
      devices.map(({ device, byEntity }) => ({
        devicePk: device.devicePk,
        entityIds: [...byEntity.keys()],
      })),
    );
    const models = new Map<number, Map<string, TrainedModel>>();
    for (const { devicePk, entityId, version, storageKey } of active) {
      if (!this.#models.has(version))
        this.#models.set(version, await this.#modelStore.load(storageKey));
      const model = this.#models.get(version);
      if (!model) continue;
      const ofDevice = models.get(devicePk) ?? new Map<string, TrainedModel>();
      ofDevice.set(entityId, model);
      models.set(devicePk, ofDevice);
    }
    return models;
  }
}

/** Devices of one tenant whose states are loaded and saved together. */
interface DeviceGroup {
  tenantId: number;
  devices: PendingDevice[];
}

/**
 * A large tenant's devices are split in up to this many groups, loaded and saved side by side
 * on the function's pool: the detector states are ~9-17 KB of JSON per entity, and a save of
 * a whole batch's is work for PostgreSQL on one core, which the groups spread over several.
 */
const PARALLEL_GROUPS = 4;
/** Below this many devices a tenant's batch stays one group (one load, one save). */
const MIN_GROUP_DEVICES = 250;

/** The pending devices by tenant, a large tenant's in up to PARALLEL_GROUPS groups. */
function groupsOf(devices: PendingDevice[]): DeviceGroup[] {
  const tenants = new Map<number, PendingDevice[]>();
  for (const pending of devices) {
    const list = tenants.get(pending.device.tenantId) ?? [];
    list.push(pending);
    tenants.set(pending.device.tenantId, list);
  }
  const groups: DeviceGroup[] = [];
  for (const [tenantId, list] of tenants) {
    const parts = Math.max(
      1,
      Math.min(PARALLEL_GROUPS, Math.floor(list.length / MIN_GROUP_DEVICES)),
    );
    const size = Math.ceil(list.length / parts);
    for (let from = 0; from < list.length; from += size) {
      groups.push({ tenantId, devices: list.slice(from, from + size) });
    }
  }
  return groups;
}

/**
 * What the scorer keeps beside the detector's own state, in the same saved document (a
 * detector restores from its `kind`, `version` and `state` and ignores these): the value of
 * the last reading scored (at the saved `lastTimeMs`), which models of other entities read
 * as of later times, and for an entity whose model reads other entities, their values aligned
 * with its recent readings.
 */
interface ScoringState {
  lastValue: number;
  coBuffers?: CoEntityBuffers;
}

/** The saved aligned values of the other entities the model reads (none yet: empty). */
function coBuffersOf(
  saved: SavedDetectorState | undefined,
  entities: ReadonlyArray<{ entityId: string }>,
): CoEntityBuffers {
  const stored = (saved?.state as Partial<ScoringState> | undefined)?.coBuffers ?? {};
  const buffers: CoEntityBuffers = {};
  for (const { entityId } of entities) {
    const values = stored[entityId];
    buffers[entityId] = Array.isArray(values)
      ? values.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null))
      : [];
  }
  return buffers;
}

/**
 * Each other entity's value as of a time: its latest reading at or before it, from this
 * batch or from its saved state (the last reading scored before); null when none is known.
 */
function latestAsOf(
  byEntity: ReadonlyMap<string, Reading[]>,
  stateOf: ReadonlyMap<string, SavedDetectorState>,
): (entityId: string, timeMs: number) => number | null {
  return (entityId, timeMs) => {
    let found: { timeMs: number; value: number } | null = null;
    const saved = stateOf.get(entityId);
    const savedValue = (saved?.state as Partial<ScoringState> | undefined)?.lastValue;
    if (saved && typeof savedValue === 'number' && saved.lastTimeMs <= timeMs) {
      found = { timeMs: saved.lastTimeMs, value: savedValue };
    }
    // The batch's readings are in time order: the last one at or before `timeMs`.
    const readings = byEntity.get(entityId) ?? [];
    let lo = 0;
    let hi = readings.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((readings[mid] as Reading).timeMs <= timeMs) lo = mid + 1;
      else hi = mid;
    }
    const reading = readings[lo - 1];
    if (reading && (!found || reading.timeMs >= found.timeMs)) {
      found = { timeMs: reading.timeMs, value: reading.value as number };
    }
    return found ? found.value : null;
  };
}

/** The sensor and number readings of each entity, in time order: what a detector scores. */
function numericReadingsByEntity(readings: Reading[]): Map<string, Reading[]> {
  const byEntity = new Map<string, Reading[]>();
  for (const reading of readings) {
    if (reading.entityType !== 'sensor' && reading.entityType !== 'number') continue;
    const list = byEntity.get(reading.entityId) ?? [];
    list.push(reading);
    byEntity.set(reading.entityId, list);
  }
  for (const list of byEntity.values()) list.sort((a, b) => a.timeMs - b.timeMs);
  return byEntity;
}
