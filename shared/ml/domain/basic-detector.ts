import {
  type EwmState,
  medianAndMad,
  newEwm,
  newRing,
  newTail,
  pushRing,
  type RingState,
  ringValues,
  type TailConfig,
  type TailState,
  tailSurprise,
  updateEwm,
  updateTail,
} from './stats.ts';

/**
 * The basic (Professional plan) detector: an ensemble of robust streaming statistics, each
 * calibrated into a tail probability against its own history, fused, and post-processed the
 * way an operator wants alarms (quiet while learning, one alarm per incident).
 *
 * Every reading costs O(window) with a small fixed window and the state is a few hundred
 * numbers, so it runs inline in the ingestion path.
 */

export const BASIC_FEATURES = [
  'spike',
  'shift',
  'change',
  'volatility',
  'seasonal',
  'seasonalShift',
  'stuck',
] as const;
export type BasicFeature = (typeof BASIC_FEATURES)[number];

export interface BasicConfig {
  /** Readings before any score is reported: the statistics are still settling. */
  warmup: number;
  /** Readings in the median/MAD window. */
  window: number;
  /** EWMA weights: `fast` is the current level, `slow` the long-run distribution. */
  fastAlpha: number;
  slowAlpha: number;
  /** Weight of the volatility estimate that is compared with the slow one. */
  volatilityAlpha: number;
  tail: TailConfig;
  /** Surprise (nats) mapped to score 1 - 1/e: sets the spread of scores in [0, 1]. */
  surpriseScale: number;
  /** Score at or above which a reading is reported as anomalous. */
  alarmScore: number;
  /** Readings after an alarm during which further scores are damped. */
  refractory: number;
  /** Factor applied to scores during the refractory period. */
  refractoryDamping: number;
  /** Time-of-day bins of the daily profile, and how fast each bin learns. */
  dailyBins: number;
  dailyAlpha: number;

  /** Fraction of the long-run repeat rate below which a run of equal values is suspicious. */
  minRepeatRate: number;
}

export const DEFAULT_BASIC_CONFIG: BasicConfig = {
  warmup: 150,
  window: 48,
  fastAlpha: 0.25,
  slowAlpha: 0.004,
  volatilityAlpha: 0.1,
  tail: {
    quantile: 0.98,
    step: 0.05,
    excessAlpha: 0.05,
    minExcess: 0.25,
    initialThreshold: 3,
    initialExcess: 1,
  },
  surpriseScale: 8,
  alarmScore: 0.48,
  refractory: 120,
  refractoryDamping: 0.1,
  minRepeatRate: 0.01,
  dailyBins: 96,
  dailyAlpha: 0.1,
};

export interface BasicState {
  count: number;
  last: number | null;
  /** Recent raw values for the median and MAD. */
  window: RingState;
  fast: EwmState;
  slow: EwmState;
  /** Absolute first differences: the typical step between readings. */
  diff: EwmState;
  /** Squared first differences at a fast and a slow rate: a change of volatility. */
  volFast: EwmState;
  volSlow: EwmState;
  /** Fraction of readings equal to the previous one, and the current run of equal values. */
  repeatRate: EwmState;
  run: number;
  /** Daily profile: the usual level at each time of day, and the residual around it. */
  daily: EwmState[];
  dailyResidual: EwmState;
  dailyResidualFast: number;
  tails: Record<Exclude<BasicFeature, 'stuck'>, TailState>;
  /** Readings left in the refractory period after the last alarm. */
  quiet: number;
}

export function newBasicState(config: BasicConfig): BasicState {
  return {
    count: 0,
    last: null,
    window: newRing(),
    fast: newEwm(),
    slow: newEwm(),
    diff: newEwm(),
    volFast: newEwm(),
    volSlow: newEwm(),
    repeatRate: newEwm(),
    run: 0,
    daily: Array.from({ length: config.dailyBins }, newEwm),
    dailyResidual: newEwm(),
    dailyResidualFast: 0,
    tails: {
      spike: newTail(config.tail),
      shift: newTail(config.tail),
      change: newTail(config.tail),
      volatility: newTail(config.tail),
      seasonal: newTail(config.tail),
      seasonalShift: newTail(config.tail),
    },
    quiet: 0,
  };
}

export interface BasicSignals {
  /** Fused surprise in nats, before warm-up and refractory treatment. */
  surprise: number;
  /** Per-feature surprise, for explanations and for the advanced detector's fusion. */
  features: Record<BasicFeature, number>;
}

const DAY_MS = 86_400_000;
const LN_FEATURES = Math.log(BASIC_FEATURES.length);

/** The time-of-day bin a reading falls in. */
export function dailyBin(timeMs: number, bins: number): number {
  const dayFraction = (((timeMs % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS;
  return Math.min(bins - 1, Math.floor(dayFraction * bins));
}

/** A scale that is never zero, so flat series do not divide by zero. */
export function floorScale(scale: number, level: number): number {
  return Math.max(scale, 1e-9 * Math.max(1, Math.abs(level)), 1e-12);
}

/**
 * Computes the signals for `value` from the state as it was before it, then folds `value`
 * into the state. Only earlier readings influence a reading's signals.
 */
export function observeBasic(
  state: BasicState,
  config: BasicConfig,
  timeMs: number,
  value: number,
): BasicSignals {
  const features: Record<BasicFeature, number> = {
    spike: 0,
    shift: 0,
    change: 0,
    volatility: 0,
    seasonal: 0,
    seasonalShift: 0,
    stuck: 0,
  };
  const stats: Record<Exclude<BasicFeature, 'stuck'>, number> = {
    spike: 0,
    shift: 0,
    change: 0,
    volatility: 0,
    seasonal: 0,
    seasonalShift: 0,
  };
  const bin = state.daily[dailyBin(timeMs, config.dailyBins)] as EwmState;
  const residual = bin.count > 0 ? value - bin.mean : 0;
  const residualFast =
    state.dailyResidualFast + config.fastAlpha * (residual - state.dailyResidualFast);
  const last = state.last;
  const step = last === null ? 0 : value - last;
  const slowStd = floorScale(Math.sqrt(state.slow.variance), state.slow.mean);

  if (state.count > 0 && last !== null) {
    const recent = ringValues(state.window);
    const { median, mad } = medianAndMad(recent);
    // MAD is zero on step-like series; the slow deviation keeps the scale meaningful there.
    const robustScale = floorScale(Math.max(1.4826 * mad, 0.25 * slowStd), median);
    stats.spike = Math.abs(value - median) / robustScale;

    const fastMean = state.fast.mean + config.fastAlpha * (value - state.fast.mean);
    stats.shift = Math.abs(fastMean - state.slow.mean) / slowStd;

    const typicalStep = floorScale(state.diff.mean, slowStd * 0.01);
    stats.change = Math.abs(step) / typicalStep;

    const volFast =
      state.volFast.mean + config.volatilityAlpha * (step * step - state.volFast.mean);
    const volSlow = floorScale(state.volSlow.mean, slowStd * slowStd * 1e-4);
    stats.volatility = Math.abs(Math.log((volFast + volSlow * 1e-3) / volSlow));

    if (bin.count > 0) {
      const residualScale = floorScale(
        Math.max(Math.sqrt(state.dailyResidual.variance), 0.05 * slowStd),
        state.slow.mean,
      );
      stats.seasonal = Math.abs(residual) / residualScale;
      stats.seasonalShift = Math.abs(residualFast) / residualScale;
    }

    for (const key of Object.keys(stats) as Array<keyof typeof stats>) {
      features[key] = tailSurprise(state.tails[key], config.tail, stats[key]);
    }

    if (step === 0) {
      // A run of k equal readings has probability ~ rate^k when repeats are independent.
      const rate = Math.max(state.repeatRate.mean, config.minRepeatRate);
      if (rate < 0.5) features.stuck = -(state.run + 1) * Math.log(rate) - Math.log(20);
      if (features.stuck < 0) features.stuck = 0;
    }
  }

  let surprise = 0;
  for (const key of BASIC_FEATURES) surprise = Math.max(surprise, features[key]);
  surprise = Math.max(0, surprise - LN_FEATURES);

  // Learn after scoring.
  if (state.count > 0) {
    for (const key of Object.keys(stats) as Array<keyof typeof stats>) {
      updateTail(state.tails[key], config.tail, stats[key]);
    }
    updateEwm(state.diff, Math.abs(step), config.slowAlpha);
    updateEwm(state.volFast, step * step, config.volatilityAlpha);
    updateEwm(state.volSlow, step * step, config.slowAlpha);
    updateEwm(state.repeatRate, step === 0 ? 1 : 0, config.slowAlpha);
    state.run = step === 0 ? state.run + 1 : 0;
  }
  // Clip what the slow statistics learn from an outlier so one spike does not blind them.
  const clipped =
    state.slow.count > 10
      ? Math.min(Math.max(value, state.slow.mean - 6 * slowStd), state.slow.mean + 6 * slowStd)
      : value;
  updateEwm(state.slow, clipped, config.slowAlpha);
  updateEwm(state.fast, value, config.fastAlpha);
  if (bin.count > 0) {
    updateEwm(state.dailyResidual, residual, config.slowAlpha);
    state.dailyResidualFast = residualFast;
  }
  updateEwm(bin, value, config.dailyAlpha);
  pushRing(state.window, config.window, value);
  state.last = value;
  state.count += 1;
  return { surprise, features };
}

/** Maps a surprise to a score in [0, 1), monotonically. */
export function surpriseToScore(surprise: number, scale: number): number {
  return 1 - Math.exp(-Math.max(0, surprise) / scale);
}

/**
 * Warm-up and refractory treatment shared by both detectors: no alarms while the statistics
 * settle, and after an alarm the same incident does not raise a stream of further alarms.
 */
export function postProcess(
  state: { count: number; quiet: number },
  config: Pick<BasicConfig, 'warmup' | 'alarmScore' | 'refractory' | 'refractoryDamping'>,
  rawScore: number,
): { score: number; anomalous: boolean } {
  if (state.count <= config.warmup) return { score: 0, anomalous: false };
  let score = rawScore;
  if (state.quiet > 0) {
    state.quiet -= 1;
    score *= config.refractoryDamping;
  }
  const anomalous = score >= config.alarmScore;
  if (anomalous) state.quiet = config.refractory;
  return { score, anomalous };
}
