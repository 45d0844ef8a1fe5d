import { mulberry32 } from '../../ml/domain/seeded-random.ts';
import type {
  DiscoveredPattern,
  Discovery,
  EntityProfile,
  Recogniser,
  StepGrid,
  WindowMatch,
} from './model.ts';

/**
 * Operating modes by clustering windows.
 *
 * The history is cut into fixed, epoch-aligned windows of `windowSteps` steps. Each window
 * becomes three features per entity: its mean, its spread and its change across the window,
 * all divided by the entity's spread over the whole history, so every entity weighs the
 * same whatever its unit. k-means (k-means++ seeding, fixed seed) clusters the windows for
 * k = 2..maxPatterns. If the best mean silhouette shows real separation, the largest k
 * within `silhouetteTolerance` of it wins, unless its two largest clusters are not far
 * apart (Ashman's D); otherwise the history is one mode. Clusters that follow each other
 * back to back and change the same way are pieces of one ramp (a start-up) and are joined.
 * A window farther from its nearest centroid than that cluster's novelty distance (1.5 x
 * its 95th-percentile member distance, beyond its farthest member, at least
 * `minNoveltyDistance`) is novel: a mode never seen in the history.
 *
 * Why this and not matrix-profile motifs or change-point segmentation: an operating mode is
 * a level and a spread held for a while (idle, full load), which motifs (recurring shapes)
 * do not capture and which change points (boundaries) do not name across occurrences;
 * window clustering gives recurring, nameable modes directly, and recognising a new window
 * is one distance per pattern, cheap enough to answer on every read.
 */

export interface DiscoverySettings {
  windowSteps: number;
  maxPatterns: number;
  /** Below this mean silhouette the history is taken as one mode. */
  minSilhouette: number;
  /**
   * More than one mode needs the two largest clusters this far apart (Ashman's D along the
   * line through their centroids): k-means cuts a single Gaussian into neighbours at D of
   * about 2.7 and a uniform spread at 3.5, so a lower bar would find modes in noise.
   */
  minSeparation: number;
  /** The finest k whose silhouette is within this of the best one is chosen. */
  silhouetteTolerance: number;
  /** The novelty distance's floor, in units of the entities' history spread. */
  minNoveltyDistance: number;
  /** A window needs at least this share of its steps with a reading, per entity. */
  minCoverage: number;
  /**
   * Two clusters are one ramp when at least this share of the first's stretches end straight
   * in the second, and of the second's begin straight after the first...
   */
  rampFollowShare: number;
  /** ...and both change the same way, in some entity, by at least this (a trend feature). */
  rampMinTrend: number;
  restarts: number;
  seed: number;
}

export const DEFAULT_DISCOVERY_SETTINGS: DiscoverySettings = {
  windowSteps: 8,
  maxPatterns: 8,
  minSilhouette: 0.5,
  silhouetteTolerance: 0.1,
  minSeparation: 4,
  minNoveltyDistance: 0.5,
  minCoverage: 0.25,
  rampFollowShare: 0.6,
  rampMinTrend: 0.5,
  restarts: 4,
  seed: 1,
};

/** Features per entity: mean, spread, change across the window. */
const FEATURES_PER_ENTITY = 3;

/**
 * The change across one window is small beside the history's spread even in a ramp
 * (a start-up), so it weighs more: otherwise a ramp's windows join the levels they pass.
 */
export const TREND_WEIGHT = 3;

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Each entity's median and standard deviation over every step with a reading. */
export function entityScaling(rows: number[][], entities: number) {
  const centers: number[] = [];
  const scales: number[] = [];
  for (let e = 0; e < entities; e++) {
    const values = rows.map((row) => row[e] as number).filter(Number.isFinite);
    const mean = values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
    const sd = Math.sqrt(
      values.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, values.length),
    );
    centers.push(median(values));
    // A constant entity still has a scale, so its features stay finite (all zero).
    scales.push(sd > 1e-12 ? sd : Math.max(Math.abs(mean) * 1e-6, 1e-12));
  }
  return { centers, scales };
}

/**
 * A window's features (scaled), or null when an entity has too few readings in it. `rows`
 * holds the window's steps.
 */
export function windowFeatures(
  rows: number[][],
  scaling: { centers: number[]; scales: number[] },
  minCoverage: number,
): number[] | null {
  const features: number[] = [];
  const steps = rows.length;
  const needed = Math.max(2, Math.ceil(minCoverage * steps));
  for (let e = 0; e < scaling.centers.length; e++) {
    let n = 0;
    let sumX = 0;
    let sumY = 0;
    for (let s = 0; s < steps; s++) {
      const v = (rows[s] as number[])[e] as number;
      if (!Number.isFinite(v)) continue;
      n++;
      sumX += s;
      sumY += v;
    }
    if (n < needed) return null;
    const meanX = sumX / n;
    const meanY = sumY / n;
    let sxx = 0;
    let sxy = 0;
    let syy = 0;
    for (let s = 0; s < steps; s++) {
      const v = (rows[s] as number[])[e] as number;
      if (!Number.isFinite(v)) continue;
      sxx += (s - meanX) ** 2;
      sxy += (s - meanX) * (v - meanY);
      syy += (v - meanY) ** 2;
    }
    const slope = sxx > 0 ? sxy / sxx : 0;
    const scale = scaling.scales[e] as number;
    // The change across the window, less twice its standard error: noise alone is no trend.
    const residual = n > 2 ? Math.max(0, syy - slope * sxy) / (n - 2) : 0;
    const error = sxx > 0 ? Math.sqrt(residual / sxx) * (steps - 1) : 0;
    const change = slope * (steps - 1);
    const trend = Math.sign(change) * Math.max(0, Math.abs(change) - 2 * error);
    features.push(
      (meanY - (scaling.centers[e] as number)) / scale,
      Math.sqrt(syy / n) / scale,
      (TREND_WEIGHT * trend) / scale,
    );
  }
  return features;
}

function distance2(a: number[], b: number[]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += ((a[i] as number) - (b[i] as number)) ** 2;
  return d;
}

export function nearest(centroids: number[][], x: number[]): { index: number; distance: number } {
  let index = 0;
  let best = Number.POSITIVE_INFINITY;
  centroids.forEach((c, i) => {
    const d = distance2(c, x);
    if (d < best) {
      best = d;
      index = i;
    }
  });
  return { index, distance: Math.sqrt(best) };
}

/** k-means with k-means++ seeding; the best of `restarts` runs by within-cluster sum of squares. */
export function kMeans(points: number[][], k: number, restarts: number, random: () => number) {
  let best: { centroids: number[][]; labels: number[]; inertia: number } | null = null;
  for (let r = 0; r < restarts; r++) {
    const centroids: number[][] = [[...(points[Math.floor(random() * points.length)] as number[])]];
    const d2 = points.map((p) => distance2(p, centroids[0] as number[]));
    while (centroids.length < k) {
      const total = d2.reduce((s, v) => s + v, 0);
      let pick = 0;
      if (total > 0) {
        let target = random() * total;
        for (pick = 0; pick < d2.length - 1; pick++) {
          target -= d2[pick] as number;
          if (target <= 0) break;
        }
      }
      const chosen = [...(points[pick] as number[])];
      centroids.push(chosen);
      points.forEach((p, i) => {
        d2[i] = Math.min(d2[i] as number, distance2(p, chosen));
      });
    }
    const labels = new Array<number>(points.length).fill(0);
    for (let iteration = 0; iteration < 100; iteration++) {
      let moved = false;
      points.forEach((p, i) => {
        const { index } = nearest(centroids, p);
        if (labels[i] !== index || iteration === 0) {
          moved = moved || labels[i] !== index;
          labels[i] = index;
        }
      });
      const dims = (points[0] as number[]).length;
      const sums = centroids.map(() => new Array<number>(dims).fill(0));
      const counts = new Array<number>(k).fill(0);
      points.forEach((p, i) => {
        const c = labels[i] as number;
        counts[c] = (counts[c] as number) + 1;
        const sum = sums[c] as number[];
        for (let j = 0; j < dims; j++) sum[j] = (sum[j] as number) + (p[j] as number);
      });
      sums.forEach((sum, c) => {
        // An emptied cluster keeps its centroid: it may win points back next round.
        if ((counts[c] as number) > 0) centroids[c] = sum.map((v) => v / (counts[c] as number));
      });
      if (!moved && iteration > 0) break;
    }
    const inertia = points.reduce(
      (s, p, i) => s + distance2(p, centroids[labels[i] as number] as number[]),
      0,
    );
    if (!best || inertia < best.inertia) best = { centroids, labels, inertia };
  }
  return best as { centroids: number[][]; labels: number[]; inertia: number };
}

/** Mean silhouette of a labelling (Rousseeuw 1987); 0 when a cluster is empty. */
export function silhouette(points: number[][], labels: number[], k: number): number {
  const n = points.length;
  const sizes = new Array<number>(k).fill(0);
  for (const l of labels) sizes[l] = (sizes[l] as number) + 1;
  if (sizes.some((s) => s === 0)) return 0;
  let total = 0;
  const sums = new Array<number>(k);
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    const p = points[i] as number[];
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const l = labels[j] as number;
      sums[l] = (sums[l] as number) + Math.sqrt(distance2(p, points[j] as number[]));
    }
    const own = labels[i] as number;
    if ((sizes[own] as number) === 1) continue;
    const a = (sums[own] as number) / ((sizes[own] as number) - 1);
    let b = Number.POSITIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      if (c !== own) b = Math.min(b, (sums[c] as number) / (sizes[c] as number));
    }
    total += (b - a) / Math.max(a, b);
  }
  return total / n;
}

/**
 * Ashman's D of the two largest clusters: the distance between their means over their
 * pooled spread, both measured along the line through their centroids.
 */
export function separation(
  points: number[][],
  clustering: { centroids: number[][]; labels: number[] },
): number {
  const sizes = clustering.centroids.map((_, c) => clustering.labels.filter((l) => l === c).length);
  const [first, second] = sizes
    .map((size, c) => ({ size, c }))
    .sort((x, y) => y.size - x.size)
    .map((x) => x.c) as [number, number];
  const a = clustering.centroids[first] as number[];
  const b = clustering.centroids[second] as number[];
  const axis = a.map((v, i) => (b[i] as number) - v);
  const length = Math.sqrt(axis.reduce((s, v) => s + v * v, 0));
  if (length === 0) return 0;
  const sides: [number[], number[]] = [[], []];
  points.forEach((p, i) => {
    const label = clustering.labels[i];
    if (label !== first && label !== second) return;
    const along = p.reduce((s, v, j) => s + v * (axis[j] as number), 0) / length;
    sides[label === first ? 0 : 1].push(along);
  });
  const stats = sides.map((xs) => {
    const mean = xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    return { mean, variance: xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length) };
  }) as [{ mean: number; variance: number }, { mean: number; variance: number }];
  const pooled = Math.sqrt((stats[0].variance + stats[1].variance) / 2);
  return pooled > 0 ? Math.abs(stats[0].mean - stats[1].mean) / pooled : Number.POSITIVE_INFINITY;
}

/** The epoch-aligned windows of a grid with their features (null: too few readings). */
export function gridWindows(
  grid: StepGrid,
  windowSteps: number,
  scaling: { centers: number[]; scales: number[] },
  minCoverage: number,
): Array<{ fromMs: number; toMs: number; features: number[] | null; rows: number[][] }> {
  const windowMs = windowSteps * grid.stepMs;
  const first = Math.ceil(grid.fromMs / windowMs) * windowMs;
  const windows = [];
  for (let start = first; ; start += windowMs) {
    const s0 = Math.round((start - grid.fromMs) / grid.stepMs);
    if (s0 + windowSteps > grid.rows.length) break;
    const rows = grid.rows.slice(s0, s0 + windowSteps);
    windows.push({
      fromMs: start,
      toMs: start + windowMs,
      features: windowFeatures(rows, scaling, minCoverage),
      rows,
    });
  }
  return windows;
}

/**
 * The pattern a window lies deepest within: the smallest distance as a share of each
 * pattern's novelty distance. Not simply the nearest centroid: a joined ramp's centroid lies
 * between the levels it passes, so a ramp window can be nearer a steady mode's centroid yet
 * beyond that mode's reach while well within the ramp's own. Novel when the share is over 1.
 */
export function closestPattern(
  recogniser: Pick<Recogniser, 'centroids' | 'thresholds'>,
  features: number[],
): { index: number; ratio: number } {
  let index = 0;
  let ratio = Number.POSITIVE_INFINITY;
  recogniser.centroids.forEach((c, i) => {
    const r = Math.sqrt(distance2(c, features)) / (recogniser.thresholds[i] as number);
    if (r < ratio) {
      ratio = r;
      index = i;
    }
  });
  return { index, ratio };
}

/** The pattern of each window with features (null: novel), by `closestPattern`. */
export function recognise(
  recogniser: Recogniser,
  windows: ReturnType<typeof gridWindows>,
): WindowMatch[] {
  const matches: WindowMatch[] = [];
  for (const w of windows) {
    if (!w.features) continue;
    const { index, ratio } = closestPattern(recogniser, w.features);
    matches.push({
      fromMs: w.fromMs,
      toMs: w.toMs,
      cluster: ratio <= 1 ? index : null,
      distance: ratio,
    });
  }
  return smooth(matches);
}

/**
 * One window of another mode between two windows of the same mode, back to back, is taken as
 * that mode: a window straddling a short disturbance is not an occurrence of its own.
 */
export function smooth(matches: WindowMatch[]): WindowMatch[] {
  const out = matches.map((m) => ({ ...m }));
  for (let i = 1; i + 1 < out.length; i++) {
    const prev = out[i - 1] as WindowMatch;
    const here = out[i] as WindowMatch;
    const next = out[i + 1] as WindowMatch;
    if (
      here.cluster !== null &&
      prev.cluster !== null &&
      prev.cluster === next.cluster &&
      here.cluster !== prev.cluster &&
      prev.toMs === here.fromMs &&
      here.toMs === next.fromMs
    ) {
      here.cluster = prev.cluster;
    }
  }
  return out;
}

/** Runs of back-to-back windows with the same answer. */
export function runs(
  matches: WindowMatch[],
): Array<{ fromMs: number; toMs: number; cluster: number | null; windows: number }> {
  const out: Array<{ fromMs: number; toMs: number; cluster: number | null; windows: number }> = [];
  for (const m of matches) {
    const last = out[out.length - 1];
    if (last && last.cluster === m.cluster && last.toMs === m.fromMs) {
      last.toMs = m.toMs;
      last.windows += 1;
    } else out.push({ fromMs: m.fromMs, toMs: m.toMs, cluster: m.cluster, windows: 1 });
  }
  return out;
}

/** Discovers the operating modes of a history; null when it has fewer than `minWindows` windows. */
export function discoverPatterns(
  grid: StepGrid,
  entityIds: string[],
  options: Partial<DiscoverySettings> = {},
): Discovery | null {
  const settings = { ...DEFAULT_DISCOVERY_SETTINGS, ...options };
  const scaling = entityScaling(grid.rows, entityIds.length);
  const windows = gridWindows(grid, settings.windowSteps, scaling, settings.minCoverage);
  const usable = windows.filter((w) => w.features !== null);
  const points = usable.map((w) => w.features as number[]);
  if (points.length < 2 * 2) return null;
  // The same history always gives the same patterns.
  const random = mulberry32(settings.seed);
  let chosen = kMeans(points, 1, 1, random);
  let chosenSilhouette: number | null = null;
  const maxK = Math.min(settings.maxPatterns, Math.floor(points.length / 2));
  const candidates: Array<{ clustering: typeof chosen; score: number }> = [];
  for (let k = 2; k <= maxK; k++) {
    const clustering = kMeans(points, k, settings.restarts, random);
    candidates.push({ clustering, score: silhouette(points, clustering.labels, k) });
  }
  const best = Math.max(...candidates.map((c) => c.score));
  if (best >= settings.minSilhouette) {
    // Silhouette favours the coarsest split (idle against running), while a machine's modes
    // nest (running at full or part load): the finest k that separates nearly as well wins.
    const floor = Math.max(settings.minSilhouette, best - settings.silhouetteTolerance);
    for (const c of candidates) {
      if (c.score >= floor) {
        chosen = c.clustering;
        chosenSilhouette = c.score;
      }
    }
    if (separation(points, chosen) < settings.minSeparation) {
      chosen = kMeans(points, 1, 1, random);
      chosenSilhouette = null;
    }
  }
  if (chosen.centroids.length > 1)
    chosen = { ...chosen, ...joinRamps(chosen, points, usable, settings) };
  // Patterns are numbered in the order they first appear in the history.
  const order: number[] = [];
  for (const l of chosen.labels) if (!order.includes(l)) order.push(l);
  const renumber = new Map(order.map((old, i) => [old, i]));
  const labels = chosen.labels.map((l) => renumber.get(l) as number);
  const centroids = order.map((old) => chosen.centroids[old] as number[]);
  const thresholds = centroids.map((c, cluster) => {
    const distances = points
      .filter((_, i) => labels[i] === cluster)
      .map((p) => Math.sqrt(distance2(p, c)))
      .sort((a, b) => a - b);
    // Every window of the history is within reach of its own pattern: none of it is novel.
    return Math.max(
      1.5 * quantile(distances, 0.95),
      1.01 * (distances.at(-1) ?? 0),
      settings.minNoveltyDistance,
    );
  });
  const recogniser: Recogniser = {
    entityIds,
    stepMs: grid.stepMs,
    windowSteps: settings.windowSteps,
    centers: scaling.centers,
    scales: scaling.scales,
    centroids,
    thresholds,
  };
  // Every history window is one of the discovered patterns (novelty is for what comes later).
  const assigned: WindowMatch[] = usable.map((w, i) => ({
    fromMs: w.fromMs,
    toMs: w.toMs,
    cluster: labels[i] as number,
    distance:
      Math.sqrt(distance2(points[i] as number[], centroids[labels[i] as number] as number[])) /
      (thresholds[labels[i] as number] as number),
  }));
  const matches = smooth(assigned);
  const patterns: DiscoveredPattern[] = [];
  centroids.forEach((_, cluster) => {
    // A cluster whose every window smoothing gave to its neighbours is still a pattern (its
    // windows are recognised as it later): it is described by its own windows.
    const smoothed = matches.some((m) => m.cluster === cluster);
    const described = smoothed ? matches : assigned;
    const own = runs(described).filter((r) => r.cluster === cluster);
    const longest = own.reduce(
      (a, b) => (b.toMs - b.fromMs > a.toMs - a.fromMs ? b : a),
      own[0] as (typeof own)[number],
    );
    const windowsOf = usable.filter((_, i) => described[i]?.cluster === cluster);
    patterns.push({
      cluster,
      occurrences: own.length,
      example: { fromMs: longest.fromMs, toMs: longest.toMs },
      totalMs: own.reduce((s, r) => s + (r.toMs - r.fromMs), 0),
      share: windowsOf.length / usable.length,
      profile: profileOf(
        windowsOf.map((w) => w.rows),
        entityIds,
      ),
    });
  });
  return {
    recogniser,
    patterns,
    windows: matches,
    windowCount: usable.length,
    silhouette: chosenSilhouette,
  };
}

/**
 * k-means cuts a ramp (a start-up passing from one level to another) into pieces by level,
 * since its windows lie along a line in feature space. Clusters that follow one another back
 * to back (nearly always, in the same order) and change the same way are joined into one
 * mode, the largest pair first, until no pair qualifies; centroids are their members' means.
 */
function joinRamps(
  clustering: { centroids: number[][]; labels: number[] },
  points: number[][],
  windows: ReadonlyArray<{ fromMs: number; toMs: number }>,
  settings: DiscoverySettings,
): { centroids: number[][]; labels: number[] } {
  const labels = [...clustering.labels];
  const meanOf = (cluster: number) => {
    const members = points.filter((_, i) => labels[i] === cluster);
    return (members[0] as number[]).map(
      (_, f) => members.reduce((sum, p) => sum + (p[f] as number), 0) / members.length,
    );
  };
  for (;;) {
    const follows = new Map<string, { from: number; to: number; n: number }>();
    const exits = new Map<number, number>();
    const entries = new Map<number, number>();
    for (let i = 0; i + 1 < labels.length; i++) {
      const from = labels[i] as number;
      const to = labels[i + 1] as number;
      if (from === to || windows[i]?.toMs !== windows[i + 1]?.fromMs) continue;
      const key = `${from}>${to}`;
      const pair = follows.get(key) ?? { from, to, n: 0 };
      pair.n += 1;
      follows.set(key, pair);
      exits.set(from, (exits.get(from) ?? 0) + 1);
      entries.set(to, (entries.get(to) ?? 0) + 1);
    }
    const ramp = [...follows.values()]
      .sort((a, b) => b.n - a.n)
      .find(({ from, to, n }) => {
        if (n < 2) return false;
        const share = settings.rampFollowShare;
        if (n < share * (exits.get(from) ?? 0) || n < share * (entries.get(to) ?? 0)) return false;
        const a = meanOf(from);
        const b = meanOf(to);
        for (let f = FEATURES_PER_ENTITY - 1; f < a.length; f += FEATURES_PER_ENTITY) {
          const trendA = a[f] as number;
          const trendB = b[f] as number;
          if (
            Math.sign(trendA) === Math.sign(trendB) &&
            Math.min(Math.abs(trendA), Math.abs(trendB)) >= settings.rampMinTrend
          ) {
            return true;
          }
        }
        return false;
      });
    if (!ramp) break;
    for (let i = 0; i < labels.length; i++) if (labels[i] === ramp.to) labels[i] = ramp.from;
  }
  const kept = [...new Set(labels)].sort((a, b) => a - b);
  const index = new Map(kept.map((cluster, i) => [cluster, i]));
  return {
    centroids: kept.map(meanOf),
    labels: labels.map((cluster) => index.get(cluster) as number),
  };
}

/** Each entity's level and spread over the pattern's windows, in its own units. */
function profileOf(windows: number[][][], entityIds: string[]): EntityProfile[] {
  return entityIds.map((entityId, e) => {
    const values = windows
      .flatMap((rows) => rows.map((row) => row[e] as number))
      .filter(Number.isFinite);
    const mean = values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
    const std = Math.sqrt(
      values.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, values.length),
    );
    return {
      entity_id: entityId,
      mean: round(mean),
      std: round(std),
      min: round(values.reduce((m, v) => Math.min(m, v), Number.POSITIVE_INFINITY)),
      max: round(values.reduce((m, v) => Math.max(m, v), Number.NEGATIVE_INFINITY)),
    };
  });
}

const round = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)) : 0);

/**
 * Labels carried over to a new discovery: each earlier pattern (by its centroid, in the
 * entities' units) goes to the nearest new pattern within that pattern's novelty distance,
 * nearest pairs first, one to one. Returns new cluster index -> earlier label.
 */
export function carryLabels(
  earlier: { recogniser: Recogniser; labels: Array<string | null> },
  next: Recogniser,
): Map<number, string> {
  const carried = new Map<number, string>();
  if (earlier.recogniser.entityIds.join('\u0000') !== next.entityIds.join('\u0000')) return carried;
  const pairs: Array<{ from: number; to: number; d: number }> = [];
  earlier.recogniser.centroids.forEach((c, i) => {
    if (!earlier.labels[i]) return;
    const rescaled = c.map((v, f) => {
      const e = Math.floor(f / FEATURES_PER_ENTITY);
      const raw = v * (earlier.recogniser.scales[e] as number);
      // The mean is offset by the entity's median; spread and change are not.
      const level = f % FEATURES_PER_ENTITY === 0;
      return level
        ? (raw + (earlier.recogniser.centers[e] as number) - (next.centers[e] as number)) /
            (next.scales[e] as number)
        : raw / (next.scales[e] as number);
    });
    next.centroids.forEach((n, j) => {
      const d = Math.sqrt(distance2(rescaled, n));
      if (d <= (next.thresholds[j] as number)) pairs.push({ from: i, to: j, d });
    });
  });
  pairs.sort((a, b) => a.d - b.d);
  const used = new Set<number>();
  for (const p of pairs) {
    if (used.has(p.from) || carried.has(p.to)) continue;
    used.add(p.from);
    carried.set(p.to, earlier.labels[p.from] as string);
  }
  return carried;
}
