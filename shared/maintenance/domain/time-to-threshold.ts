/**
 * When will a sensor's trend cross the limit its operator set? A forecast from the entity's
 * history (typically its 1-hour rollups), needing no failure history:
 *
 * 1. a robust trend (Theil-Sen: the median of the slopes between every pair of points, so a
 *    few spikes or a stuck stretch do not tilt it) fitted together with a daily profile (the
 *    median residual at each time of day, when the history covers two days or more), each
 *    re-estimated once from the other;
 * 2. the 10-90% range of the slope from Sen's rank-based interval, with the sample size
 *    reduced for the residuals' autocorrelation (neighbouring rollups are not independent
 *    evidence), and the current level's uncertainty from the residuals' spread;
 * 3. the crossing of the limit by the trend line, and the earliest and latest crossings that
 *    those ranges allow. No crossing (flat within the slope's range, moving away from the
 *    limit, or beyond the horizon) is `null`, never a guess.
 */

export interface ThresholdPoint {
  timeMs: number;
  value: number;
}

export interface Limit {
  /** The reading must stay at or below this. */
  above?: number;
  /** The reading must stay at or above this. */
  below?: number;
}

export interface ThresholdForecast {
  trend: 'rising' | 'falling' | 'flat' | 'insufficient-data';
  /** Trend slope per hour (seasonal profile removed); 0 when the history is too short. */
  slopePerHour: number;
  /** Trend level at `nowMs`. */
  level: number;
  /** Which side of the limit the forecast is about, when there is a crossing. */
  limit: { side: 'above' | 'below'; value: number } | null;
  /** Already past the limit now (the trend level, not one reading). */
  crossed: boolean;
  /** Estimated crossing time with its 10th and 90th percentiles, epoch ms. */
  eta: { timeMs: number; lowMs: number; highMs: number } | null;
}

export interface ThresholdOptions {
  /** Forecast origin, epoch ms; defaults to the last point's time. */
  nowMs?: number;
  /** Fewest points a forecast is made from. */
  minPoints?: number;
  /** No forecast further ahead than this many times the history's span. */
  horizonFactor?: number;
  /** Period of the seasonal profile; 0 turns it off. */
  seasonMs?: number;
  /** Most points the trend is fitted from (longer histories are averaged down to this). */
  maxPoints?: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Standard normal quantile of 0.9: the 10-90% range is +-Z standard errors. */
const Z = 1.2815515655446004;

export const DEFAULT_THRESHOLD_OPTIONS = {
  minPoints: 12,
  horizonFactor: 3,
  seasonMs: DAY_MS,
  maxPoints: 1000,
} as const;

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Averages consecutive points in groups so that at most `max` remain. */
function thin(points: readonly ThresholdPoint[], max: number): ThresholdPoint[] {
  if (points.length <= max) return points.slice();
  const group = Math.ceil(points.length / max);
  const out: ThresholdPoint[] = [];
  for (let i = 0; i < points.length; i += group) {
    const slice = points.slice(i, i + group);
    out.push({
      timeMs: slice.reduce((s, p) => s + p.timeMs, 0) / slice.length,
      value: slice.reduce((s, p) => s + p.value, 0) / slice.length,
    });
  }
  return out;
}

/** Every pairwise slope (value per ms), sorted. */
function pairwiseSlopes(t: readonly number[], y: readonly number[]): Float64Array {
  const n = t.length;
  const slopes = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dt = (t[j] as number) - (t[i] as number);
      if (dt > 0) slopes[k++] = ((y[j] as number) - (y[i] as number)) / dt;
    }
  }
  return slopes.subarray(0, k).sort();
}

function at(sorted: Float64Array, rank: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(rank)));
  return sorted[i] as number;
}

/** Median residual per time-of-day bin, centred on zero. */
function seasonalProfile(
  t: readonly number[],
  residuals: readonly number[],
  seasonMs: number,
  bins: number,
): number[] {
  const groups: number[][] = Array.from({ length: bins }, () => []);
  t.forEach((time, i) => {
    const phase = (((time % seasonMs) + seasonMs) % seasonMs) / seasonMs;
    groups[Math.min(bins - 1, Math.floor(phase * bins))]?.push(residuals[i] as number);
  });
  const profile = groups.map((g) => (g.length > 0 ? median(g) : 0));
  // Centred on its mean: the median of a sampled cycle sits on its steepest part.
  const centre = profile.reduce((sum, p) => sum + p, 0) / bins;
  return profile.map((p) => p - centre);
}

function binOf(time: number, seasonMs: number, bins: number): number {
  const phase = (((time % seasonMs) + seasonMs) % seasonMs) / seasonMs;
  return Math.min(bins - 1, Math.floor(phase * bins));
}

export function forecastThresholdCrossing(
  history: readonly ThresholdPoint[],
  limit: Limit,
  options: ThresholdOptions = {},
): ThresholdForecast {
  const o = { ...DEFAULT_THRESHOLD_OPTIONS, ...options };
  const clean = history
    .filter((p) => Number.isFinite(p.timeMs) && Number.isFinite(p.value))
    .sort((a, b) => a.timeMs - b.timeMs);
  const nowMs = options.nowMs ?? clean[clean.length - 1]?.timeMs ?? 0;
  const points = thin(clean, o.maxPoints);
  const n = points.length;
  const span =
    n > 0 ? (points[n - 1] as ThresholdPoint).timeMs - (points[0] as ThresholdPoint).timeMs : 0;
  if (n < o.minPoints || !(span > 0)) {
    const last = clean[clean.length - 1]?.value ?? Number.NaN;
    return {
      trend: 'insufficient-data',
      slopePerHour: 0,
      level: last,
      limit: null,
      crossed: crossedNow(last, limit),
      eta: null,
    };
  }

  // Times relative to the origin keep the products well inside double precision.
  const t = points.map((p) => p.timeMs - nowMs);
  const y = points.map((p) => p.value);
  const spacing = span / (n - 1);
  const seasonal = o.seasonMs > 0 && span >= 2 * o.seasonMs && spacing <= o.seasonMs / 8;
  const bins = seasonal ? Math.min(24, Math.floor(o.seasonMs / spacing)) : 1;
  let profile = new Array<number>(bins).fill(0);
  let slopes = pairwiseSlopes(t, y);
  let slope = at(slopes, (slopes.length - 1) / 2);
  let intercept = median(y.map((v, i) => v - slope * (t[i] as number)));
  if (seasonal) {
    for (let pass = 0; pass < 2; pass++) {
      profile = seasonalProfile(
        t.map((time) => time + nowMs),
        y.map((v, i) => v - intercept - slope * (t[i] as number)),
        o.seasonMs,
        bins,
      );
      const adjusted = y.map(
        (v, i) => v - (profile[binOf((t[i] as number) + nowMs, o.seasonMs, bins)] as number),
      );
      slopes = pairwiseSlopes(t, adjusted);
      slope = at(slopes, (slopes.length - 1) / 2);
      intercept = median(adjusted.map((v, i) => v - slope * (t[i] as number)));
    }
  }
  const residuals = y.map(
    (v, i) =>
      v -
      intercept -
      slope * (t[i] as number) -
      (seasonal ? (profile[binOf((t[i] as number) + nowMs, o.seasonMs, bins)] as number) : 0),
  );

  // Effective sample size under AR(1) residuals: n (1 - r) / (1 + r).
  const meanResidual = residuals.reduce((s, r) => s + r, 0) / n;
  let c0 = 0;
  let c1 = 0;
  for (let i = 0; i < n; i++) {
    const d = (residuals[i] as number) - meanResidual;
    c0 += d * d;
    if (i > 0) c1 += d * ((residuals[i - 1] as number) - meanResidual);
  }
  const r1 = c0 > 0 ? Math.max(0, Math.min(0.95, c1 / c0)) : 0;
  const nEff = Math.max(3, (n * (1 - r1)) / (1 + r1));
  // Sen's interval: Mann-Kendall's variance gives how many of the ordered slopes lie between
  // the estimate and each bound; as a share of the pairs it carries over to all n points.
  const pairsEff = (nEff * (nEff - 1)) / 2;
  const share = Math.min(1, (Z * Math.sqrt((nEff * (nEff - 1) * (2 * nEff + 5)) / 18)) / pairsEff);
  const slopeLow = at(slopes, ((1 - share) / 2) * (slopes.length - 1));
  const slopeHigh = at(slopes, ((1 + share) / 2) * (slopes.length - 1));
  // The line is pinned at the history's middle, where its level does not depend on the slope:
  // a median's standard error is 1.253 sigma / sqrt(n), sigma from the residuals' MAD.
  const sigma = median(residuals.map((r) => Math.abs(r - meanResidual))) * 1.4826;
  const levelError = (Z * 1.2533 * sigma) / Math.sqrt(nEff);
  const centreT = median(t);
  const centreLevel = intercept + slope * centreT;

  const level = intercept; // t = 0 is now
  const trend = slopeLow > 0 ? 'rising' : slopeHigh < 0 ? 'falling' : 'flat';
  const slopePerHour = slope * HOUR_MS;
  const base = { trend, slopePerHour, level } as const;

  const crossedSide: 'above' | 'below' | null =
    limit.above !== undefined && level > limit.above
      ? 'above'
      : limit.below !== undefined && level < limit.below
        ? 'below'
        : null;
  if (crossedSide !== null) {
    const value = (crossedSide === 'above' ? limit.above : limit.below) as number;
    return {
      ...base,
      limit: { side: crossedSide, value },
      crossed: true,
      eta: { timeMs: nowMs, lowMs: nowMs, highMs: nowMs },
    };
  }
  // The limit the trend is heading for; with both set and no trend, the nearer one.
  const side: 'above' | 'below' | null =
    limit.above !== undefined && limit.below !== undefined
      ? trend === 'rising' || (trend === 'flat' && limit.above - level < level - limit.below)
        ? 'above'
        : 'below'
      : limit.above !== undefined
        ? 'above'
        : limit.below !== undefined
          ? 'below'
          : null;
  if (side === null) return { ...base, limit: null, crossed: false, eta: null };
  const value = side === 'above' ? (limit.above as number) : (limit.below as number);
  const crossed = false;
  const towards = side === 'above' ? trend === 'rising' : trend === 'falling';
  if (!towards) return { ...base, limit: { side, value }, crossed, eta: null };

  // Distances and slopes as positive numbers in the direction of the limit.
  const sign = side === 'above' ? 1 : -1;
  const distance = sign * (value - centreLevel);
  const fastest = Math.max(sign * slopeLow, sign * slopeHigh);
  const slowest = Math.min(sign * slopeLow, sign * slopeHigh);
  const central = sign * slope;
  const origin = nowMs + centreT;
  const eta = origin + distance / central;
  const lowMs = Math.max(nowMs, origin + Math.max(0, distance - levelError) / fastest);
  const highMs = Math.max(eta, origin + (distance + levelError) / slowest);
  if (eta - nowMs > o.horizonFactor * span)
    return { ...base, limit: { side, value }, crossed, eta: null };
  return { ...base, limit: { side, value }, crossed, eta: { timeMs: eta, lowMs, highMs } };
}

function crossedNow(value: number, limit: Limit): boolean {
  if (!Number.isFinite(value)) return false;
  return (
    (limit.above !== undefined && value > limit.above) ||
    (limit.below !== undefined && value < limit.below)
  );
}
