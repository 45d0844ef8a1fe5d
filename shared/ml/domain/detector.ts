import {
  type AdvancedConfig,
  type AdvancedState,
  attachModel,
  DEFAULT_ADVANCED_CONFIG,
  newAdvancedState,
  newDailySteps,
  newRange,
  observeAdvanced,
} from './advanced-detector.ts';
import {
  type BasicConfig,
  type BasicState,
  DEFAULT_BASIC_CONFIG,
  newBasicState,
  observeBasic,
  postProcess,
  surpriseToScore,
} from './basic-detector.ts';
import {
  type MeasuringRange,
  measuringRangeStateFits,
  newMeasuringRangeState,
} from './measuring-range.ts';
import { type CoEntityWindows, Forecaster, type TrainedModel } from './model.ts';

/**
 * The anomaly detection port. Both detectors are strictly online: a reading's score depends
 * only on that reading and the ones before it, with one fixed configuration for every
 * series. Their whole state is JSON, so the ingestion path can keep one detector per entity
 * across Lambda invocations: restore, score the new readings, snapshot, store.
 *
 * This module does not import TensorFlow.js: the advanced detector evaluates its trained
 * network in TypeScript, and only training (`training.ts`) needs tf.js.
 */

export type DetectorKind = 'basic' | 'advanced';

export interface DetectorResult {
  /** In [0, 1]; higher is more anomalous. Comparable across entities. */
  score: number;
  /** Whether the score reaches the detector's alarm level (after warm-up and de-duplication). */
  anomalous: boolean;
  /** The signal that contributed most, for explanations; null when nothing stood out. */
  reason: string | null;
}

export interface AnomalyDetector {
  readonly name: string;
  readonly version: string;
  readonly kind: DetectorKind;
  /** `co`: the windows of other entities the entity's model reads (see co-entities.ts). */
  score(timeMs: number, value: number, co?: CoEntityWindows): DetectorResult;
  /**
   * The state to continue from. `shared`: the live state itself, not a copy, for a caller
   * that serialises it before the detector scores again (the copy was most of the ingestion
   * scorer's time per reading).
   */
  snapshot(options?: { shared?: boolean }): DetectorState;
}

export interface AdvancedAnomalyDetector extends AnomalyDetector {
  readonly kind: 'advanced';
  /** Version of the model in use; null while the entity has no trained model yet. */
  readonly modelVersion: string | null;
  /** Switches to a newly trained model; earlier scores are unaffected. */
  useModel(model: TrainedModel): void;
}

export const BASIC_DETECTOR = { name: 'easysmart-basic', version: '1.0.0' } as const;
export const ADVANCED_DETECTOR = { name: 'easysmart-advanced', version: '1.4.0' } as const;
/**
 * Advanced states this version continues from: 1.0.0 had no range, 1.1.0 no daily steps,
 * 1.2.0 no measuring range (a 1.2.0 state is a 1.4.0 state of an entity without one).
 */
const UPGRADABLE_ADVANCED_VERSIONS = ['1.0.0', '1.1.0', '1.2.0'];

export interface BasicDetectorState {
  kind: 'basic';
  version: string;
  state: BasicState;
}

export interface AdvancedDetectorState {
  kind: 'advanced';
  version: string;
  state: AdvancedState;
}

export type DetectorState = BasicDetectorState | AdvancedDetectorState;

/** A persisted state this code cannot continue from; start a fresh detector instead. */
export class DetectorStateError extends Error {
  override readonly name = 'DetectorStateError';
}

/** Readings must be finite: a NaN folded into the statistics would poison them for good. */
function checkReading(timeMs: number, value: number): void {
  if (!Number.isFinite(timeMs)) throw new RangeError(`reading time ${timeMs} is not finite`);
  if (!Number.isFinite(value)) throw new RangeError(`reading value ${value} is not finite`);
}

function strongest(features: Record<string, number>): string | null {
  let best: string | null = null;
  let bestValue = 0;
  for (const [key, value] of Object.entries(features)) {
    if (value > bestValue) {
      best = key;
      bestValue = value;
    }
  }
  return best;
}

class BasicDetector implements AnomalyDetector {
  readonly name = BASIC_DETECTOR.name;
  readonly version = BASIC_DETECTOR.version;
  readonly kind = 'basic' as const;

  constructor(
    private readonly state: BasicState,
    private readonly config: BasicConfig,
  ) {}

  score(timeMs: number, value: number): DetectorResult {
    checkReading(timeMs, value);
    const signals = observeBasic(this.state, this.config, timeMs, value);
    const result = postProcess(
      this.state,
      this.config,
      surpriseToScore(signals.surprise, this.config.surpriseScale),
    );
    return { ...result, reason: result.anomalous ? strongest(signals.features) : null };
  }

  snapshot(options: { shared?: boolean } = {}): BasicDetectorState {
    const state = options.shared ? this.state : structuredClone(this.state);
    return { kind: 'basic', version: this.version, state };
  }
}

class AdvancedDetector implements AdvancedAnomalyDetector {
  readonly name = ADVANCED_DETECTOR.name;
  readonly version = ADVANCED_DETECTOR.version;
  readonly kind = 'advanced' as const;
  private forecaster: Forecaster | null = null;

  constructor(
    private readonly state: AdvancedState,
    private readonly config: AdvancedConfig,
    model: TrainedModel | null,
    measuringRange: MeasuringRange | null,
  ) {
    const measuring = config.measuringRange;
    if (measuring && measuringRange) {
      // A new or changed range starts its levels afresh: the cells mean other values now.
      if (!measuringRangeStateFits(state.measuring, measuringRange, measuring))
        state.measuring = newMeasuringRangeState(measuringRange, measuring);
    } else {
      delete state.measuring;
    }
    if (config.seasonalSteps) {
      const bins = config.basic.dailyBins;
      if (state.dailySteps?.length !== bins || !state.stepTail)
        Object.assign(state, newDailySteps(config));
    } else {
      delete state.dailySteps;
      delete state.stepTail;
    }
    if (model) this.useModel(model);
  }

  get modelVersion(): string | null {
    return this.forecaster?.model.version ?? null;
  }

  useModel(model: TrainedModel): void {
    this.forecaster = new Forecaster(model);
    attachModel(this.state, this.config, this.forecaster);
  }

  score(timeMs: number, value: number, co?: CoEntityWindows): DetectorResult {
    checkReading(timeMs, value);
    const signals = observeAdvanced(this.state, this.config, this.forecaster, timeMs, value, co);
    const basic = this.config.basic;
    const result = postProcess(
      this.state.basic,
      basic,
      surpriseToScore(signals.surprise, basic.surpriseScale),
    );
    // A new level alarms by itself (its own rest makes it one alarm per incident), once the
    // levels have learnt as long as the statistics warm up: levels started afresh on an
    // entity with a long history (a range set later, or changed) know nothing yet.
    const measuring = this.config.measuringRange;
    const levelsWarm = (this.state.measuring?.total ?? 0) > basic.warmup;
    if (measuring && signals.newLevel && levelsWarm && this.state.basic.count > basic.warmup) {
      result.score = Math.max(
        result.score,
        surpriseToScore(measuring.newLevelSurprise, basic.surpriseScale),
      );
      result.anomalous = true;
    }
    return { ...result, reason: result.anomalous ? strongest(signals.features) : null };
  }

  snapshot(options: { shared?: boolean } = {}): AdvancedDetectorState {
    const state = options.shared ? this.state : structuredClone(this.state);
    return { kind: 'advanced', version: this.version, state };
  }
}

export type DetectorOptions =
  | { kind: 'basic'; config?: BasicConfig }
  | {
      kind: 'advanced';
      /** The entity's trained model; without one the detector runs on the basic signals. */
      model?: TrainedModel | null;
      config?: AdvancedConfig;
      /** The entity's measuring range, when it has one. */
      measuringRange?: MeasuringRange | null;
    };

export function createDetector(options: DetectorOptions): AnomalyDetector {
  if (options.kind === 'basic') {
    const config = options.config ?? DEFAULT_BASIC_CONFIG;
    return new BasicDetector(newBasicState(config), config);
  }
  const config = options.config ?? DEFAULT_ADVANCED_CONFIG;
  return new AdvancedDetector(
    newAdvancedState(config),
    config,
    options.model ?? null,
    options.measuringRange ?? null,
  );
}

export function createAdvancedDetector(
  model: TrainedModel | null,
  config: AdvancedConfig = DEFAULT_ADVANCED_CONFIG,
  measuringRange: MeasuringRange | null = null,
): AdvancedAnomalyDetector {
  return new AdvancedDetector(newAdvancedState(config), config, model, measuringRange);
}

/**
 * Continues a detector from `snapshot()` output (after a JSON round trip). An advanced
 * detector takes the entity's current model; if it differs from the one the state was
 * scoring with, the model calibration restarts while the basic statistics carry over.
 * `adopt`: the snapshot's state becomes the detector's own, not copied (for a snapshot just
 * parsed that nothing else reads).
 */
export function restoreDetector(
  snapshot: unknown,
  options: {
    model?: TrainedModel | null;
    basicConfig?: BasicConfig;
    advancedConfig?: AdvancedConfig;
    /** The entity's measuring range now; a state cut from another one starts its levels afresh. */
    measuringRange?: MeasuringRange | null;
    adopt?: boolean;
  } = {},
): AnomalyDetector {
  const own = <T>(state: T): T => (options.adopt ? state : structuredClone(state));
  if (typeof snapshot !== 'object' || snapshot === null) {
    throw new DetectorStateError('detector state must be an object');
  }
  const { kind, version, state } = snapshot as Partial<DetectorState>;
  if (kind === 'basic') {
    if (version !== BASIC_DETECTOR.version) {
      throw new DetectorStateError(
        `basic detector state version ${String(version)} is not ${BASIC_DETECTOR.version}`,
      );
    }
    if (!isBasicState(state)) throw new DetectorStateError('basic detector state is malformed');
    return new BasicDetector(own(state), options.basicConfig ?? DEFAULT_BASIC_CONFIG);
  }
  if (kind === 'advanced') {
    const upgrade = UPGRADABLE_ADVANCED_VERSIONS.includes(String(version));
    if (version !== ADVANCED_DETECTOR.version && !upgrade) {
      throw new DetectorStateError(
        `advanced detector state version ${String(version)} is not ${ADVANCED_DETECTOR.version}`,
      );
    }
    const advanced = own(state) as AdvancedState | undefined;
    if (!advanced || !isBasicState(advanced.basic) || !Array.isArray(advanced.recent)) {
      throw new DetectorStateError('advanced detector state is malformed');
    }
    if (version === '1.0.0') {
      // The statistics carry over; the range starts from the model's training range if the
      // state was scoring with that model, and otherwise from the readings to come. (A 1.1.0
      // state only lacks the daily steps, which start afresh.)
      advanced.range = newRange();
      const range = options.model?.range;
      if (range && advanced.modelVersion === options.model?.version) advanced.range = { ...range };
    }
    const stepsValid =
      advanced.dailySteps === undefined ||
      (Array.isArray(advanced.dailySteps) && typeof advanced.stepTail === 'object');
    if (!isRange(advanced.range) || !stepsValid) {
      throw new DetectorStateError('advanced detector state is malformed');
    }
    return new AdvancedDetector(
      advanced,
      options.advancedConfig ?? DEFAULT_ADVANCED_CONFIG,
      options.model ?? null,
      options.measuringRange ?? null,
    );
  }
  throw new DetectorStateError(`unknown detector kind ${String(kind)}`);
}

function isRange(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.min === 'number' && typeof r.max === 'number' && typeof r.count === 'number';
}

function isBasicState(value: unknown): value is BasicState {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<BasicState>;
  return (
    typeof s.count === 'number' &&
    typeof s.quiet === 'number' &&
    Array.isArray(s.daily) &&
    typeof s.tails === 'object' &&
    s.window !== undefined &&
    Array.isArray(s.window.values)
  );
}
