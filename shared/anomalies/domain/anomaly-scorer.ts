import type { Logger } from '../../logger.ts';
import { type CoEntityBuffers, pushAligned } from '../../ml/domain/co-entities.ts';
import {
  type AnomalyDetector,
  createDetector,
  DetectorStateError,
  restoreDetector,
} from '../../ml/domain/detector.ts';
import { MAX_CO_WINDOW } from '../../ml/domain/families.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import type { Prediction, PredictionStore } from '../../timeseries/domain/prediction-store.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type { DetectedAnomaly, ScoredDevice } from './model.ts';
import type {
  DetectorStateStore,
  DetectorStateUpdate,
  ModelRegistry,
  ModelStore,
  SavedDetectorState,
} from './ports.ts';

/** What a scored batch reports; ingestion takes it from here. */
export type { DetectedAnomaly } from './model.ts';

/** How often a batch is rescored when other invocations keep saving the same entities first. */
const MAX_SCORING_ATTEMPTS = 5;

export interface AnomalyScorerOptions {
  states: DetectorStateStore;
  registry: ModelRegistry;
  predictions: PredictionStore;
  models: ModelStore;
  logger: Logger;
}

/** Another invocation kept saving the same entities' states first; the batch is retried. */
export class ScoringContendedError extends Error {
  override readonly name = 'ScoringContendedError';
}

/**
 * Runs the plan's detector on every new numeric reading inside the ingestion path: each
 * entity's detector state is loaded, fed the readings in time order, and every score is
 * written to the prediction store before the new states are saved. The save is a
 * compare-and-set on the state each score started from, so an invocation that scored the
 * same entity concurrently makes this one score again from the newer state (rewriting the
 * same predictions, which replace the earlier ones), and no database transaction is held
 * open across the write to InfluxDB. Readings not newer than the last one scored
 * (redeliveries, a late flush) are stored but not scored again, so a retry never
 * double-counts. Uses no TensorFlow.js: trained models are evaluated in TypeScript.
 */
export class AnomalyScorer {
  /** Models are immutable per version: loaded once per function instance. */
  readonly #models = new Map<string, TrainedModel | null>();
  readonly #states: DetectorStateStore;
  readonly #registry: ModelRegistry;
  readonly #predictions: PredictionStore;
  readonly #modelStore: ModelStore;
  readonly #logger: Logger;

  constructor(options: AnomalyScorerOptions) {
    this.#states = options.states;
    this.#registry = options.registry;
    this.#predictions = options.predictions;
    this.#modelStore = options.models;
    this.#logger = options.logger;
  }

  async score(device: ScoredDevice, readings: Reading[]): Promise<DetectedAnomaly[]> {
    const level = device.anomalyDetection;
    if (level === 'none') return [];
    const byEntity = numericReadingsByEntity(readings);
    if (byEntity.size === 0) return [];
    for (let attempt = 1; attempt <= MAX_SCORING_ATTEMPTS; attempt += 1) {
      const scored = await this.#scoreOnce(device, level, byEntity);
      if (scored.predictions.length === 0) return [];
      // Scores first: if the store refuses them no state moves on and the retry rescores.
      await this.#predictions.write(scored.predictions);
      if (
        await this.#states.saveIfUnchanged(device.tenantId, device.devicePk, level, scored.updates)
      ) {
        return scored.anomalies;
      }
    }
    throw new ScoringContendedError(
      `device ${device.deviceId}: detector states kept changing under ${MAX_SCORING_ATTEMPTS} scoring attempts`,
    );
  }

  /** One pass: the saved states fed the new readings, nothing written yet. */
  async #scoreOnce(
    device: ScoredDevice,
    level: 'basic' | 'advanced',
    byEntity: Map<string, Reading[]>,
  ) {
    const entityIds = [...byEntity.keys()];
    const activeModels: Map<string, TrainedModel> =
      level === 'advanced' ? await this.#activeModels(device, entityIds) : new Map();
    // The other entities those models read: their latest reading before this batch is in
    // their saved states, whether or not they reported in it.
    const coIds = new Set<string>();
    for (const model of activeModels.values()) {
      for (const co of model.coEntities ?? []) coIds.add(co.entityId);
    }
    const saved = await this.#states.load(device.tenantId, device.devicePk, [
      ...new Set([...entityIds, ...coIds]),
    ]);
    const stateOf = new Map(saved.map((state) => [state.entityId, state]));
    const asOf = coIds.size > 0 ? latestAsOf(byEntity, stateOf) : null;

    const predictions: Prediction[] = [];
    const anomalies: DetectedAnomaly[] = [];
    const updates: DetectorStateUpdate[] = [];
    for (const [entityId, entityReadings] of byEntity) {
      const state = stateOf.get(entityId);
      const model = activeModels.get(entityId) ?? null;
      const detector = this.#detector(level, state, model, device, entityId);
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
          state: { ...detector.snapshot(), ...scoring },
          lastTimeMs,
          basedOn: state ? state.lastTimeMs : null,
        });
      }
    }
    return { predictions, anomalies, updates };
  }

  #detector(
    level: 'basic' | 'advanced',
    saved: SavedDetectorState | undefined,
    model: TrainedModel | null,
    device: ScoredDevice,
    entityId: string,
  ): AnomalyDetector {
    if (saved && saved.detector === level) {
      try {
        return restoreDetector(saved.state, { model });
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
      : createDetector({ kind: 'advanced', model });
  }

  async #activeModels(device: ScoredDevice, entityIds: string[]) {
    const active = await this.#registry.active(device.tenantId, device.devicePk, entityIds);
    const models = new Map<string, TrainedModel>();
    for (const { entityId, version, storageKey } of active) {
      if (!this.#models.has(version))
        this.#models.set(version, await this.#modelStore.load(storageKey));
      const model = this.#models.get(version);
      if (model) models.set(entityId, model);
    }
    return models;
  }
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
