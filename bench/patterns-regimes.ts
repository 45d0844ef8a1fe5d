import { mulberry32 } from '../shared/ml/domain/seeded-random.ts';

/**
 * A labelled machine history with known operating modes, for pattern discovery: three
 * entities (temperature, motor current, vibration) of a machine that goes through idle,
 * start-up (a ramp), full load and part load in a random order, each held for a random
 * time, with Gaussian noise. Every reading carries the mode it was generated in.
 */
export const REGIMES = ['idle', 'start-up', 'full load', 'part load'] as const;
export type Regime = (typeof REGIMES)[number];

export const REGIME_ENTITIES = ['temperature', 'current', 'vibration'] as const;

/** Each mode's level per entity (start-up ramps from idle's to full load's). */
const LEVELS: Record<Exclude<Regime, 'start-up'>, [number, number, number]> = {
  idle: [25, 0.5, 0.2],
  'full load': [70, 12, 3.5],
  'part load': [50, 6, 1.6],
};
const NOISE: [number, number, number] = [0.8, 0.3, 0.15];

export interface RegimeHistory {
  /** Reading times (epoch ms), one step apart. */
  times: number[];
  /** rows[i][e]: entity e at times[i]. */
  rows: number[][];
  labels: Regime[];
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/**
 * `steps` readings `stepMs` apart from `startMs`. Modes last 60-240 steps (start-up 30-60);
 * a start-up always follows idle and leads to full load, as on a real machine.
 */
export function regimeHistory(options: {
  seed: number;
  steps: number;
  stepMs: number;
  startMs: number;
}): RegimeHistory {
  const random = mulberry32(options.seed);
  const times: number[] = [];
  const rows: number[][] = [];
  const labels: Regime[] = [];
  let regime: Regime = 'idle';
  while (times.length < options.steps) {
    const length =
      regime === 'start-up' ? 30 + Math.floor(random() * 31) : 60 + Math.floor(random() * 181);
    for (let i = 0; i < length && times.length < options.steps; i++) {
      const level =
        regime === 'start-up'
          ? LEVELS.idle.map(
              (from, e) => from + ((LEVELS['full load'][e] as number) - from) * (i / length),
            )
          : LEVELS[regime];
      times.push(options.startMs + times.length * options.stepMs);
      rows.push(level.map((v, e) => v + (NOISE[e] as number) * gaussian(random)));
      labels.push(regime);
    }
    regime = nextRegime(regime, random);
  }
  return { times, rows, labels };
}

function nextRegime(regime: Regime, random: () => number): Regime {
  if (regime === 'idle') return random() < 0.6 ? 'start-up' : 'part load';
  if (regime === 'start-up') return 'full load';
  if (regime === 'full load') return random() < 0.5 ? 'part load' : 'idle';
  return random() < 0.5 ? 'full load' : 'idle';
}

/** Adjusted Rand index of two labellings of the same items (Hubert & Arabie 1985). */
export function adjustedRandIndex(truth: readonly unknown[], found: readonly unknown[]): number {
  const table = new Map<unknown, Map<unknown, number>>();
  const rowSums = new Map<unknown, number>();
  const colSums = new Map<unknown, number>();
  truth.forEach((t, i) => {
    const f = found[i];
    const row = table.get(t) ?? new Map<unknown, number>();
    row.set(f, (row.get(f) ?? 0) + 1);
    table.set(t, row);
    rowSums.set(t, (rowSums.get(t) ?? 0) + 1);
    colSums.set(f, (colSums.get(f) ?? 0) + 1);
  });
  const pairs = (n: number) => (n * (n - 1)) / 2;
  let index = 0;
  for (const row of table.values()) for (const n of row.values()) index += pairs(n);
  const a = [...rowSums.values()].reduce((s, n) => s + pairs(n), 0);
  const b = [...colSums.values()].reduce((s, n) => s + pairs(n), 0);
  const expected = (a * b) / pairs(truth.length);
  const max = (a + b) / 2;
  return max === expected ? 1 : (index - expected) / (max - expected);
}

/**
 * F1 of each true label against the found label that covers most of it (each found label
 * may serve one true label; the rest score 0).
 */
export function f1PerLabel(
  truth: readonly string[],
  found: readonly unknown[],
): Map<string, number> {
  const counts = new Map<string, Map<unknown, number>>();
  const foundTotals = new Map<unknown, number>();
  truth.forEach((t, i) => {
    const row = counts.get(t) ?? new Map<unknown, number>();
    row.set(found[i], (row.get(found[i]) ?? 0) + 1);
    counts.set(t, row);
    foundTotals.set(found[i], (foundTotals.get(found[i]) ?? 0) + 1);
  });
  const pairs: Array<{ t: string; f: unknown; n: number }> = [];
  for (const [t, row] of counts) for (const [f, n] of row) pairs.push({ t, f, n });
  pairs.sort((x, y) => y.n - x.n);
  const matched = new Map<string, unknown>();
  const taken = new Set<unknown>();
  for (const p of pairs) {
    if (matched.has(p.t) || taken.has(p.f) || p.f === null) continue;
    matched.set(p.t, p.f);
    taken.add(p.f);
  }
  const scores = new Map<string, number>();
  for (const [t, row] of counts) {
    const f = matched.get(t);
    const tp = f === undefined ? 0 : (row.get(f) ?? 0);
    const truthTotal = [...row.values()].reduce((s, n) => s + n, 0);
    const foundTotal = f === undefined ? 0 : (foundTotals.get(f) ?? 0);
    scores.set(t, tp === 0 ? 0 : (2 * tp) / (truthTotal + foundTotal));
  }
  return scores;
}
