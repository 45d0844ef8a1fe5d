import {
  BASIC_FEATURES,
  type BasicConfig,
  type BasicFeature,
  type BasicState,
  DEFAULT_BASIC_CONFIG,
  dailyBin,
  floorScale,
  newBasicState,
  observeBasic,
} from './basic-detector.ts';
import {
  DEFAULT_MEASURING_RANGE_CONFIG,
  type MeasuringRangeConfig,
  type MeasuringRangeState,
  observeMeasuringRange,
} from './measuring-range.ts';
import type { CoEntityWindows, Forecaster } from './model.ts';
import {
  type EwmState,
  newEwm,
  newTail,
  type TailConfig,
  type TailState,
  tailSurprise,
  updateEwm,
  updateTail,
} from './stats.ts';

/**
 * The advanced (Industrial plan) detector: the basic ensemble (with a step judged against the
 * steps usually seen at that time of day, too), plus the forecast error of the
 * entity's trained model (when it passed the quality gate), plus the entity's range. The
 * forecast error is standardised by the model's own training residuals, so "unusual" means
 * unusual for this entity, and then tail-calibrated online like the basic statistics, so a
 * model that drifts out of date degrades to basic-like behaviour instead of alarming
 * forever. The range is every value the entity has shown (its training history included): a
 * reading clearly outside it is alarming by itself, however the statistics of the recent
 * past are spread (the "spatial anomaly" of Numenta's HTM detector). When the entity has a
 * measuring range, a level never shown before on its span alarms and the statistics are
 * damped at its usual levels (`measuring-range.ts`).
 */

export const MODEL_FEATURES = ['forecast', 'forecastShift'] as const;
export type ModelFeature = (typeof MODEL_FEATURES)[number];
export type AdvancedFeature = BasicFeature | ModelFeature | 'range' | 'newLevel';

export interface AdvancedConfig {
  basic: BasicConfig;
  tail: TailConfig;
  /** Weight of the running mean of standardised residuals (a sustained bias). */
  shiftAlpha: number;
  /**
   * Judge a step against the steps usually seen at that time of day as well as against the
   * typical step, so a change that happens every day at the same time (a shift starting, a
   * nightly job) is not a surprise.
   */
  seasonalSteps: boolean;
  /** Extra weight on the model's surprise relative to the basic statistics. */
  modelWeight: number;
  /** Recent readings kept for the model's input window. */
  recentCapacity: number;
  /** A reading beyond the range by this fraction of its width is out of range. */
  rangeMargin: number;
  /** Surprise (nats) of an out-of-range reading: enough to alarm on its own. */
  rangeSurprise: number;
  /** How an entity's measuring range is used; null where none is ever used (the edge). */
  measuringRange: MeasuringRangeConfig | null;
}

export const DEFAULT_ADVANCED_CONFIG: AdvancedConfig = {
  basic: DEFAULT_BASIC_CONFIG,
  tail: DEFAULT_BASIC_CONFIG.tail,
  seasonalSteps: true,
  shiftAlpha: 0.1,
  modelWeight: 1,
  recentCapacity: 64,
  // Numenta's HTM detector uses the same 5% tolerance.
  rangeMargin: 0.05,
  rangeSurprise: 24,
  measuringRange: DEFAULT_MEASURING_RANGE_CONFIG,
};

/**
 * The advanced detector as a device runs it (`shared/edge`, `firmware/core`): steps judged
 * against the typical step only, so its state fits the device.
 */
export const EDGE_ADVANCED_CONFIG: AdvancedConfig = {
  ...DEFAULT_ADVANCED_CONFIG,
  seasonalSteps: false,
  measuringRange: null,
};

/** The lowest and highest value seen, and over how many readings. */
export interface RangeState {
  min: number;
  max: number;
  count: number;
}

export interface AdvancedState {
  basic: BasicState;
  /** The last readings, as many as the model's window, oldest first. */
  recent: number[];
  modelVersion: string | null;
  forecastTail: TailState;
  shiftTail: TailState;
  residualFast: number;
  range: RangeState;
  /**
   * Size of the step usually seen in each time-of-day bin, and the tail of steps judged
   * against it; absent when the configuration does not judge steps by time of day.
   */
  dailySteps?: EwmState[];
  stepTail?: TailState;
  /** What the entity's measuring range has shown; absent while it has none. */
  measuring?: MeasuringRangeState;
}

export function newRange(): RangeState {
  return { min: 0, max: 0, count: 0 };
}

export function newAdvancedState(config: AdvancedConfig): AdvancedState {
  return {
    basic: newBasicState(config.basic),
    recent: [],
    modelVersion: null,
    forecastTail: newTail(config.tail),
    shiftTail: newTail(config.tail),
    residualFast: 0,
    range: newRange(),
    ...(config.seasonalSteps ? newDailySteps(config) : {}),
  };
}

export function newDailySteps(config: AdvancedConfig): {
  dailySteps: EwmState[];
  stepTail: TailState;
} {
  return {
    dailySteps: Array.from({ length: config.basic.dailyBins }, newEwm),
    stepTail: newTail(config.basic.tail),
  };
}

function widenRange(range: RangeState, min: number, max: number, count: number): void {
  if (range.count === 0) {
    range.min = min;
    range.max = max;
  } else {
    range.min = Math.min(range.min, min);
    range.max = Math.max(range.max, max);
  }
  range.count = Math.min(1e9, range.count + count);
}

/**
 * Points the state at a (new) model. The model-specific calibration restarts from the
 * model's training distribution; the basic statistics and the recent readings carry over.
 */
export function attachModel(
  state: AdvancedState,
  config: AdvancedConfig,
  forecaster: Forecaster,
): void {
  const model = forecaster.model;
  if (state.modelVersion === model.version) return;
  state.modelVersion = model.version;
  state.forecastTail = {
    threshold: model.threshold,
    meanExcess: model.tailExcess,
    count: 0,
  };
  state.shiftTail = newTail(config.tail);
  state.residualFast = 0;
  // What the model was trained on is part of the entity's range, even if it was never scored.
  if (model.range) widenRange(state.range, model.range.min, model.range.max, model.range.count);
}

const LN_BASIC = Math.log(BASIC_FEATURES.length);
const LN_ALL = Math.log(BASIC_FEATURES.length + MODEL_FEATURES.length);

export interface AdvancedSignals {
  surprise: number;
  features: Record<AdvancedFeature, number>;
  /** A level never shown before on the measuring range: alarms by itself. */
  newLevel: boolean;
}

export function observeAdvanced(
  state: AdvancedState,
  config: AdvancedConfig,
  forecaster: Forecaster | null,
  timeMs: number,
  value: number,
  co?: CoEntityWindows,
): AdvancedSignals {
  // The step, judged before the basic statistics learn this reading.
  const before = state.basic;
  const bin = dailyBin(timeMs, config.basic.dailyBins);
  let seasonalStep: number | null = null;
  const step = before.last === null ? 0 : Math.abs(value - before.last);
  if (config.seasonalSteps && state.dailySteps && before.count > 0 && before.last !== null) {
    const slowStd = floorScale(Math.sqrt(before.slow.variance), before.slow.mean);
    const typical = floorScale(before.diff.mean, slowStd * 0.01);
    const usualHere = state.dailySteps[bin] as EwmState;
    seasonalStep = step / Math.max(typical, usualHere.count > 0 ? usualHere.mean : 0);
  }
  const hadLast = before.last !== null;
  const basic = observeBasic(state.basic, config.basic, timeMs, value);
  const features: Record<AdvancedFeature, number> = {
    ...basic.features,
    forecast: 0,
    forecastShift: 0,
    range: 0,
    newLevel: 0,
  };
  const model = forecaster?.model;
  const usable =
    forecaster !== null &&
    model !== undefined &&
    state.modelVersion === model.version &&
    state.recent.length >= model.windowSize &&
    forecaster.ready(co);
  if (config.seasonalSteps && state.dailySteps && state.stepTail) {
    if (seasonalStep !== null) {
      features.change = tailSurprise(state.stepTail, config.basic.tail, seasonalStep);
      updateTail(state.stepTail, config.basic.tail, seasonalStep);
    }
    if (hadLast) updateEwm(state.dailySteps[bin] as EwmState, step, config.basic.dailyAlpha);
  }
  // Fused as basic fuses, with the step judged by time of day where it is.
  let best = 0;
  for (const key of BASIC_FEATURES) best = Math.max(best, features[key]);
  let surprise = Math.max(0, best - LN_BASIC);
  if (usable) {
    const window =
      state.recent.length === model.windowSize
        ? state.recent
        : state.recent.slice(-model.windowSize);
    const predicted = forecaster.predict(window, timeMs, co);
    const standardised =
      ((value - predicted) / model.normalisation.std - model.residual.mean) / model.residual.std;
    const deviation = Math.abs(standardised);
    const fast = state.residualFast + config.shiftAlpha * (standardised - state.residualFast);
    // A running mean of k independent residuals has a standard deviation shrunk by sqrt(k_eff).
    const shift = Math.abs(fast) / Math.sqrt(config.shiftAlpha / (2 - config.shiftAlpha));
    features.forecast =
      config.modelWeight * tailSurprise(state.forecastTail, config.tail, deviation);
    features.forecastShift = config.modelWeight * tailSurprise(state.shiftTail, config.tail, shift);
    updateTail(state.forecastTail, config.tail, Math.min(deviation, 1e6));
    updateTail(state.shiftTail, config.tail, Math.min(shift, 1e6));
    state.residualFast = Math.max(-1e6, Math.min(1e6, fast));
    for (const key of MODEL_FEATURES) best = Math.max(best, features[key]);
    surprise = Math.max(0, best - LN_ALL);
  }
  const range = state.range;
  if (range.count >= config.basic.warmup && range.max > range.min) {
    const margin = config.rangeMargin * (range.max - range.min);
    if (value > range.max + margin || value < range.min - margin) {
      features.range = config.rangeSurprise;
      surprise = Math.max(surprise, config.rangeSurprise);
    }
  }
  let newLevel = false;
  if (config.measuringRange && state.measuring) {
    const measured = observeMeasuringRange(state.measuring, config.measuringRange, value);
    if (measured.usual) surprise *= config.measuringRange.usualDamping;
    if (measured.newLevel) {
      newLevel = true;
      features.newLevel = config.measuringRange.newLevelSurprise;
    }
  }
  widenRange(range, value, value, 1);
  state.recent.push(value);
  // Kept even without a model, so a newly trained model scores from its first reading.
  const keep = Math.max(model?.windowSize ?? 0, config.recentCapacity);
  while (state.recent.length > keep) state.recent.shift();
  return { surprise, features, newLevel };
}
