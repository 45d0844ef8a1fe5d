import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { discoverPatterns } from '../shared/patterns/domain/discovery.ts';
import type { Discovery, StepGrid } from '../shared/patterns/domain/model.ts';
import { datasetBesideCheckout } from './datasets.ts';
import {
  adjustedRandIndex,
  f1PerLabel,
  REGIME_ENTITIES,
  regimeHistory,
} from './patterns-regimes.ts';

/**
 * Pattern discovery's segmentation quality against known modes: `npm run bench:patterns`.
 *
 * 1. Generated machine histories (bench/patterns-regimes.ts: idle, start-up, full load,
 *    part load; three entities) over several seeds: adjusted Rand index of the found
 *    patterns against the true modes, reading by reading, and F1 per mode.
 * 2. One real series: NAB's nyc_taxi (New York taxi passengers per half hour, Jul 2014 -
 *    Jan 2015), whose modes are the parts of the day; truth is night (00-06), morning
 *    (06-12), afternoon (12-18), evening (18-24) by the clock. Skipped when the NAB corpus
 *    (NAB_DIR, by default beside the checkout) is absent.
 *
 * Discovery runs exactly as the platform's job runs it (same function, default settings).
 */
const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3,4,5,6,7,8,9,10' },
    steps: { type: 'string', default: '8000' },
    nab: { type: 'string', default: process.env.NAB_DIR ?? datasetBesideCheckout('nab') },
  },
});

/** Step-level labels: each reading takes its window's pattern; readings in no window are left out. */
function stepLabels<T>(discovery: Discovery, grid: StepGrid, truth: T[]) {
  const t: T[] = [];
  const f: Array<number | null> = [];
  for (const w of discovery.windows) {
    const s0 = Math.round((w.fromMs - grid.fromMs) / grid.stepMs);
    const s1 = Math.round((w.toMs - grid.fromMs) / grid.stepMs);
    for (let s = s0; s < s1; s++) {
      t.push(truth[s] as T);
      f.push(w.cluster);
    }
  }
  return { truth: t, found: f };
}

const fmt = (x: number) => x.toFixed(3);

function generated() {
  const seeds = (values.seeds ?? '1').split(',').map(Number);
  const steps = Number(values.steps);
  const aris: number[] = [];
  const f1s = new Map<string, number[]>();
  console.log(`generated set: ${steps} readings 10 s apart per seed, 3 entities, 4 modes`);
  for (const seed of seeds) {
    const history = regimeHistory({ seed, steps, stepMs: 10_000, startMs: 1_800_000_000_000 });
    const grid: StepGrid = {
      fromMs: history.times[0] as number,
      stepMs: 10_000,
      rows: history.rows,
    };
    const started = performance.now();
    const discovery = discoverPatterns(grid, [...REGIME_ENTITIES]);
    const ms = performance.now() - started;
    if (!discovery) throw new Error('no discovery');
    const { truth, found } = stepLabels(discovery, grid, history.labels);
    const ari = adjustedRandIndex(truth, found);
    aris.push(ari);
    const f1 = f1PerLabel(truth, found);
    for (const [label, score] of f1) f1s.set(label, [...(f1s.get(label) ?? []), score]);
    const shares = discovery.patterns.map((p) => p.share).sort((a, b) => b - a);
    const main = shares.slice(0, 4).reduce((sum, share) => sum + share, 0);
    console.log(
      `seed ${seed}: ${discovery.patterns.length} patterns (largest 4: ${(100 * main).toFixed(1)}% of windows), silhouette ${fmt(discovery.silhouette ?? 0)}, ARI ${fmt(ari)}, ` +
        [...f1].map(([l, s]) => `F1 ${l} ${fmt(s)}`).join(', ') +
        `, ${discovery.windowCount} windows in ${ms.toFixed(0)} ms`,
    );
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
  console.log(
    `generated: ARI mean ${fmt(mean(aris))} sd ${fmt(sd(aris))} over ${aris.length} seeds`,
  );
  for (const [label, scores] of f1s)
    console.log(`  F1 ${label}: mean ${fmt(mean(scores))} min ${fmt(Math.min(...scores))}`);
}

function partOfDay(ms: number): string {
  const hour = new Date(ms).getUTCHours();
  return hour < 6 ? 'night' : hour < 12 ? 'morning' : hour < 18 ? 'afternoon' : 'evening';
}

function taxi() {
  let text: string;
  try {
    text = readFileSync(`${values.nab}/data/realKnownCause/nyc_taxi.csv`, 'utf8');
  } catch {
    console.log(`nyc_taxi: skipped (no NAB corpus at ${values.nab})`);
    return;
  }
  const points = text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [time, value] = line.split(',');
      // NAB's times are New York local time without a zone: read as UTC, the clock is what matters.
      return { ms: Date.parse(`${(time as string).replace(' ', 'T')}Z`), value: Number(value) };
    });
  const stepMs = 30 * 60_000;
  const fromMs = points[0]?.ms as number;
  const rows = points.map((p) => [p.value]);
  const grid: StepGrid = { fromMs, stepMs, rows };
  // A window of 4 half hours: six hours would equal the truth's parts and flatter the score.
  const discovery = discoverPatterns(grid, ['passengers'], { windowSteps: 4 });
  if (!discovery) throw new Error('no discovery');
  const truth = points.map((p) => partOfDay(p.ms));
  const { truth: t, found } = stepLabels(discovery, grid, truth);
  const f1 = f1PerLabel(t, found);
  console.log(
    `nyc_taxi: ${points.length} half hours, ${discovery.patterns.length} patterns, ARI ${fmt(adjustedRandIndex(t, found))}, ` +
      [...f1].map(([l, s]) => `F1 ${l} ${fmt(s)}`).join(', '),
  );
}

generated();
taxi();
