/**
 * Training time and scoring throughput of the anomaly detectors on synthetic data, no NAB
 * needed: `npx tsx bench/ml-throughput.ts [--points 43200] [--backend wasm|cpu]`.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createAdvancedDetector, createDetector } from '../shared/ml/domain/detector.ts';
import type { TrainedModel } from '../shared/ml/domain/model.ts';
import { type HistoryPoint, trainModel } from '../shared/ml/domain/training.ts';

/** One-minute readings with a daily cycle, a slow drift and noise, from a fixed seed. */
export function syntheticMonth(points: number, startMs = Date.UTC(2026, 0, 1)): HistoryPoint[] {
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const out: HistoryPoint[] = [];
  for (let i = 0; i < points; i++) {
    const timeMs = startMs + i * 60_000;
    const day = (i % 1440) / 1440;
    const noise = (random() + random() + random() - 1.5) * 0.8;
    out.push({ timeMs, value: 20 + 5 * Math.sin(2 * Math.PI * day) + i * 1e-5 + noise });
  }
  return out;
}

export async function measureTraining(points: number, backend = 'wasm') {
  const history = syntheticMonth(points);
  const started = performance.now();
  const model = await trainModel(history, { backend });
  return {
    model,
    durationMs: performance.now() - started,
    epochs: model.metrics.epochs,
    backend: model.metrics.backend,
  };
}

/**
 * Readings scored per second by basic, advanced, and advanced with a measuring range (the
 * series' span, 0-50), each a fresh detector on the same series; three alternating rounds,
 * the median of each, so a load change on the machine touches all three alike.
 */
export async function measureThroughput(model: TrainedModel, points = 200_000) {
  const series = syntheticMonth(points, Date.UTC(2026, 1, 1));
  const rate = (score: (t: number, v: number) => unknown) => {
    const started = performance.now();
    for (const p of series) score(p.timeMs, p.value);
    return Math.round((series.length / (performance.now() - started)) * 1000);
  };
  const rounds = { basic: [] as number[], advanced: [] as number[], withRange: [] as number[] };
  for (let round = 0; round < 3; round++) {
    const basic = createDetector({ kind: 'basic' });
    const advanced = createAdvancedDetector(model);
    const withRange = createAdvancedDetector(model, undefined, { min: 0, max: 50 });
    rounds.basic.push(rate((t, v) => basic.score(t, v)));
    rounds.advanced.push(rate((t, v) => advanced.score(t, v)));
    rounds.withRange.push(rate((t, v) => withRange.score(t, v)));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number;
  return {
    basic: median(rounds.basic),
    advanced: median(rounds.advanced),
    advancedWithRange: median(rounds.withRange),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      points: { type: 'string', default: '43200' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const training = await measureTraining(Number(values.points), values.backend);
  console.log(
    `training on ${values.points} points: ${(training.durationMs / 1000).toFixed(2)} s, ` +
      `${training.epochs} epochs, backend ${training.backend}, ` +
      `validation MSE ${training.model.metrics.validationLoss.toFixed(4)} ` +
      `(repeat-last baseline ${training.model.metrics.naiveValidationLoss.toFixed(4)})`,
  );
  const throughput = await measureThroughput(training.model);
  console.log(`basic: ${throughput.basic.toLocaleString('en')} readings/s`);
  console.log(`advanced: ${throughput.advanced.toLocaleString('en')} readings/s`);
  console.log(
    `advanced with a measuring range: ${throughput.advancedWithRange.toLocaleString('en')} readings/s`,
  );
}
