/**
 * Streaming statistics the detectors are built from. Each one is a plain JSON object plus
 * pure update functions, so a detector's whole state can be persisted between Lambda
 * invocations with `JSON.stringify` and restored bit for bit.
 */

/** Exponentially weighted mean and variance (West's incremental form). */
export interface EwmState {
  mean: number;
  variance: number;
  /** Readings seen, capped: only needed to tell a fresh estimate from a settled one. */
  count: number;
}

export function newEwm(): EwmState {
  return { mean: 0, variance: 0, count: 0 };
}

export function updateEwm(state: EwmState, value: number, alpha: number): void {
  if (state.count === 0) {
    state.mean = value;
    state.variance = 0;
  } else {
    // Early on, a plain running average: a slow EWMA started at the first reading would
    // otherwise remember it for thousands of readings.
    const a = Math.max(alpha, 1 / (state.count + 1));
    const delta = value - state.mean;
    state.mean += a * delta;
    state.variance = (1 - a) * (state.variance + a * delta * delta);
  }
  if (state.count < 1e9) state.count += 1;
}

/**
 * Tail calibration of a non-negative anomaly statistic, after SPOT (Siffer et al., KDD 2017):
 * a high quantile `u` is tracked by stochastic approximation and the excesses over it are
 * modelled as exponential with mean `beta`, so a value far beyond anything seen still gets a
 * finite, ordered tail probability. This turns statistics with very different distributions
 * (heavy-tailed, autocorrelated, discrete) into comparable probabilities.
 */
export interface TailState {
  threshold: number;
  meanExcess: number;
  count: number;
}

export interface TailConfig {
  /** Quantile tracked as the start of the tail, e.g. 0.98. */
  quantile: number;
  /** Step of the quantile tracker, in units of the statistic. */
  step: number;
  /** Smoothing of the mean excess over the threshold. */
  excessAlpha: number;
  /** Floor on the mean excess, so a series that never exceeds cannot make every excess infinite. */
  minExcess: number;
  initialThreshold: number;
  initialExcess: number;
}

export function newTail(config: TailConfig): TailState {
  return { threshold: config.initialThreshold, meanExcess: config.initialExcess, count: 0 };
}

/** Natural-log surprise `-ln P(X >= x)` under the current tail model (0 below the tail). */
export function tailSurprise(state: TailState, config: TailConfig, x: number): number {
  if (!(x > state.threshold)) return 0;
  const excess = Math.max(state.meanExcess, config.minExcess);
  return -Math.log(1 - config.quantile) + (x - state.threshold) / excess;
}

export function updateTail(state: TailState, config: TailConfig, x: number): void {
  if (!Number.isFinite(x)) return;
  const step = config.step * Math.max(state.meanExcess, config.minExcess);
  if (x > state.threshold) {
    const excess = x - state.threshold;
    // Huber-like clip: one enormous outlier must not inflate the tail for weeks.
    const clipped = Math.min(excess, 10 * Math.max(state.meanExcess, config.minExcess));
    state.meanExcess += config.excessAlpha * (clipped - state.meanExcess);
    state.threshold += step * config.quantile;
  } else {
    state.threshold -= step * (1 - config.quantile);
    if (state.threshold < 0) state.threshold = 0;
  }
  if (state.count < 1e9) state.count += 1;
}

/** A fixed-capacity FIFO of numbers kept as a plain array plus a write index. */
export interface RingState {
  values: number[];
  next: number;
}

export function newRing(): RingState {
  return { values: [], next: 0 };
}

export function pushRing(ring: RingState, capacity: number, value: number): void {
  if (ring.values.length < capacity) {
    ring.values.push(value);
    ring.next = ring.values.length % capacity;
  } else {
    ring.values[ring.next] = value;
    ring.next = (ring.next + 1) % capacity;
  }
}

/** Values oldest first. */
export function ringValues(ring: RingState): number[] {
  if (ring.values.length === 0 || ring.next === 0) return ring.values.slice();
  return ring.values.slice(ring.next).concat(ring.values.slice(0, ring.next));
}

export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const mid = n >> 1;
  return n % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Median and median absolute deviation of a small window (sorts a copy: the window is bounded). */
export function medianAndMad(values: readonly number[]): { median: number; mad: number } {
  const sorted = values.slice().sort((a, b) => a - b);
  const m = median(sorted);
  const deviations = sorted.map((v) => Math.abs(v - m)).sort((a, b) => a - b);
  return { median: m, mad: median(deviations) };
}
