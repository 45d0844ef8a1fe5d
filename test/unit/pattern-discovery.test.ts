import { describe, expect, it } from 'vitest';
import {
  adjustedRandIndex,
  f1PerLabel,
  REGIME_ENTITIES,
  regimeHistory,
} from '../../bench/patterns-regimes.ts';
import { mulberry32 } from '../../shared/ml/domain/seeded-random.ts';
import {
  carryLabels,
  discoverPatterns,
  gridWindows,
  recognise,
} from '../../shared/patterns/domain/discovery.ts';
import type { StepGrid } from '../../shared/patterns/domain/model.ts';

/**
 * Pattern discovery on a labelled history with known modes (the benchmark's generator):
 * the modes are found reading by reading, one mode is one pattern, a mode never seen is
 * novel, and names carry over to a rediscovery.
 */
const STEP = 10_000;
const START = 1_800_000_000_000;

function generated(seed: number, steps: number) {
  const history = regimeHistory({ seed, steps, stepMs: STEP, startMs: START });
  const grid: StepGrid = { fromMs: START, stepMs: STEP, rows: history.rows };
  return { history, grid };
}

/** Each reading's found pattern (readings outside every window are left out). */
function readingLabels(
  grid: StepGrid,
  windows: Array<{ fromMs: number; toMs: number; cluster: number | null }>,
  truth: string[],
) {
  const t: string[] = [];
  const f: Array<number | null> = [];
  for (const w of windows) {
    for (let s = (w.fromMs - grid.fromMs) / STEP; s < (w.toMs - grid.fromMs) / STEP; s++) {
      t.push(truth[s] as string);
      f.push(w.cluster);
    }
  }
  return { t, f };
}

describe('pattern discovery', () => {
  it('finds the four modes of a generated machine history (ARI and F1 per mode)', () => {
    const { history, grid } = generated(11, 4000);
    const discovery = discoverPatterns(grid, [...REGIME_ENTITIES]);
    expect(discovery).not.toBeNull();
    if (!discovery) return;
    const { t, f } = readingLabels(grid, discovery.windows, history.labels);
    expect(t.length).toBeGreaterThan(0.95 * history.labels.length);
    expect(adjustedRandIndex(t, f)).toBeGreaterThan(0.85);
    for (const [mode, score] of f1PerLabel(t, f)) {
      expect(score, mode).toBeGreaterThan(mode === 'start-up' ? 0.6 : 0.9);
    }
    expect(discovery.patterns.length).toBeGreaterThanOrEqual(4);
    // Occurrences are the stretches in the mode; the example is the longest of them.
    for (const p of discovery.patterns) {
      expect(p.occurrences).toBeGreaterThan(0);
      expect(p.example.toMs - p.example.fromMs).toBeLessThanOrEqual(p.totalMs);
    }
  });

  it('a start-up ramp is one pattern, not cut into pieces by level', () => {
    // In this history k-means cuts the ramp in two (its windows lie along a line).
    const { history, grid } = generated(1, 8000);
    const startUp = (options: Parameters<typeof discoverPatterns>[2]) => {
      const discovery = discoverPatterns(grid, [...REGIME_ENTITIES], options);
      if (!discovery) throw new Error('no discovery');
      const { t, f } = readingLabels(grid, discovery.windows, history.labels);
      return f1PerLabel(t, f).get('start-up') as number;
    };
    expect(startUp({})).toBeGreaterThan(0.85);
    expect(startUp({ rampFollowShare: Number.POSITIVE_INFINITY })).toBeLessThan(0.7);
  });

  it('a history in one mode is one pattern (k-means would cut it in two), and noise alone is never novel', () => {
    const random = mulberry32(3);
    const rows = Array.from({ length: 2000 }, () => [20 + random(), 5 + 0.3 * random()]);
    const discovery = discoverPatterns({ fromMs: START, stepMs: STEP, rows }, ['a', 'b']);
    expect(discovery?.patterns).toHaveLength(1);
    const later = Array.from({ length: 400 }, () => [20 + random(), 5 + 0.3 * random()]);
    const recogniser = discovery?.recogniser;
    if (!recogniser) return;
    const matches = recognise(
      recogniser,
      gridWindows({ fromMs: START, stepMs: STEP, rows: later }, 8, recogniser, 0.25),
    );
    expect(matches.filter((m) => m.cluster === null)).toHaveLength(0);
  });

  it('no window of the history it was found in is novel, wherever the windows fall against the mode changes', () => {
    // The windows are epoch-aligned, so where a history begins against them moves which
    // windows straddle a change; a joined ramp's windows may be nearer a steady mode's centroid.
    for (let phase = 0; phase < 8; phase++) {
      const startMs = START + phase * STEP;
      const history = regimeHistory({ seed: 21, steps: 1600, stepMs: STEP, startMs: 0 });
      const grid: StepGrid = { fromMs: startMs, stepMs: STEP, rows: history.rows };
      const discovery = discoverPatterns(grid, [...REGIME_ENTITIES]);
      if (!discovery) throw new Error('no discovery');
      const matches = recognise(
        discovery.recogniser,
        gridWindows(grid, 8, discovery.recogniser, 0.25),
      );
      expect(matches.length).toBeGreaterThan(150);
      expect(
        matches.filter((m) => m.cluster === null).map((m) => new Date(m.fromMs).toISOString()),
        `phase ${phase}`,
      ).toEqual([]);
    }
  });

  it('flags a mode never seen in the history as novel, and only that', () => {
    const { grid } = generated(12, 3000);
    const discovery = discoverPatterns(grid, [...REGIME_ENTITIES]);
    if (!discovery) throw new Error('no discovery');
    const random = mulberry32(5);
    // Overheating: full load's current with a temperature far beyond any mode's.
    const overheat = Array.from({ length: 80 }, () => [120 + random(), 12 + 0.3 * random(), 3.5]);
    const known = grid.rows.slice(0, 80);
    const matches = recognise(
      discovery.recogniser,
      gridWindows(
        { fromMs: START, stepMs: STEP, rows: [...known, ...overheat] },
        8,
        discovery.recogniser,
        0.25,
      ),
    );
    expect(matches.slice(0, 10).every((m) => m.cluster !== null)).toBe(true);
    expect(matches.slice(10).every((m) => m.cluster === null)).toBe(true);
  });

  it('windows without enough readings are left out, not guessed', () => {
    const { grid } = generated(13, 2000);
    const gappy = grid.rows.map((row, i) =>
      i >= 800 && i < 1200 ? row.map(() => Number.NaN) : row,
    );
    const discovery = discoverPatterns({ ...grid, rows: gappy }, [...REGIME_ENTITIES]);
    if (!discovery) throw new Error('no discovery');
    const gapFrom = START + 800 * STEP;
    const gapTo = START + 1200 * STEP;
    expect(discovery.windows.some((w) => w.fromMs >= gapFrom && w.toMs <= gapTo)).toBe(false);
    expect(
      discoverPatterns({ ...grid, rows: grid.rows.slice(0, 24) }, [...REGIME_ENTITIES]),
    ).toBeNull();
  });

  it('is deterministic, and carries names over to a rediscovery of the same modes', () => {
    const { history, grid } = generated(14, 3000);
    const first = discoverPatterns(grid, [...REGIME_ENTITIES]);
    const again = discoverPatterns(grid, [...REGIME_ENTITIES]);
    expect(again).toEqual(first);
    if (!first) return;
    // The next discovery sees another, longer history (other scaling, other order of modes).
    const later = generated(15, 5000);
    const next = discoverPatterns(later.grid, [...REGIME_ENTITIES]);
    if (!next) throw new Error('no discovery');
    const firstModes = dominantModes(first.windows, history.labels);
    const nextModes = dominantModes(next.windows, later.history.labels);
    // A user names each mode's main pattern (the short transitions between modes stay unnamed).
    const main = new Map<string, number>();
    for (const p of [...first.patterns].sort((a, b) => a.share - b.share)) {
      main.set(firstModes.get(p.cluster) as string, p.cluster);
    }
    const labels = first.recogniser.centroids.map((_, i) =>
      main.get(firstModes.get(i) as string) === i ? (firstModes.get(i) as string) : null,
    );
    const carried = carryLabels({ recogniser: first.recogniser, labels }, next.recogniser);
    // Every mode's name lands on a new pattern of that same mode.
    expect(new Set(carried.values())).toEqual(
      new Set(['idle', 'start-up', 'full load', 'part load']),
    );
    for (const [cluster, label] of carried) expect(nextModes.get(cluster), label).toBe(label);
    const otherEntities = { ...next.recogniser, entityIds: ['temperature'] };
    expect(carryLabels({ recogniser: first.recogniser, labels }, otherEntities).size).toBe(0);
  });
});

/** Each cluster's most frequent true mode over its windows. */
function dominantModes(
  windows: Array<{ fromMs: number; toMs: number; cluster: number | null }>,
  truth: string[],
): Map<number, string> {
  const counts = new Map<number, Map<string, number>>();
  for (const w of windows) {
    if (w.cluster === null) continue;
    const row = counts.get(w.cluster) ?? new Map<string, number>();
    for (let s = (w.fromMs - START) / STEP; s < (w.toMs - START) / STEP; s++) {
      row.set(truth[s] as string, (row.get(truth[s] as string) ?? 0) + 1);
    }
    counts.set(w.cluster, row);
  }
  return new Map(
    [...counts].map(([cluster, row]) => [
      cluster,
      [...row].sort((a, b) => b[1] - a[1])[0]?.[0] as string,
    ]),
  );
}
