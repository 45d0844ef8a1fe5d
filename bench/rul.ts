/**
 * Remaining-useful-life benchmark on NASA's C-MAPSS turbofan data: trains the platform's fleet
 * RUL model (`shared/maintenance/domain/`) on the training engines, predicts each test engine's
 * RUL from its last cycles, and prints the test RMSE, the PHM08 score and the interval
 * coverage, ending with `rmse=<n> score=<n> units=<n>`.
 *
 *   npm run bench:rul -- --train train_FD001.txt --test test_FD001.txt --truth RUL_FD001.txt
 *
 * The settings flags exist for cross-validation on the training engines; the defaults are the
 * configuration chosen that way (see bench/README.md).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RulPredictor } from '../shared/maintenance/domain/rul-model.ts';
import {
  DEFAULT_RUL_TRAINING,
  type RulTrainingOptions,
  trainRulModel,
} from '../shared/maintenance/domain/rul-training.ts';
import { CMAPSS_FEATURES, parseCmapss, parseCmapssTruth, phm08Score } from './cmapss.ts';
import { datasetBesideCheckout } from './datasets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = datasetBesideCheckout('cmapss');
const { values } = parseArgs({
  options: {
    train: { type: 'string', default: path.join(shared, 'train_FD001.txt') },
    test: { type: 'string', default: path.join(shared, 'test_FD001.txt') },
    truth: { type: 'string', default: path.join(shared, 'RUL_FD001.txt') },
    window: { type: 'string' },
    block: { type: 'string' },
    baseline: { type: 'string' },
    hidden: { type: 'string' },
    epochs: { type: 'string' },
    batch: { type: 'string' },
    'learning-rate': { type: 'string' },
    folds: { type: 'string' },
    members: { type: 'string' },
    'min-correlation': { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    'cv-only': { type: 'boolean', default: false },
  },
});

for (const file of [values.train, values.test, values.truth]) {
  if (!existsSync(file)) {
    console.error(
      `C-MAPSS file not found: ${file}\n` +
        'Download "Turbofan Engine Degradation Simulation" (C-MAPSS) from NASA\'s Prognostics Center of' +
        ' Excellence data repository\n(https://www.nasa.gov/intelligent-systems-division/discovery-and-systems-health/pcoe/pcoe-data-set-repository/),\n' +
        'unzip it and pass --train train_FD001.txt --test test_FD001.txt --truth RUL_FD001.txt.',
    );
    process.exit(2);
  }
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) {
    console.error(`--${name} must be a number`);
    process.exit(2);
  }
  return value;
}

const options: RulTrainingOptions = {
  backend: values.backend,
  ...(values.window ? { windowSize: number('window', values.window) } : {}),
  ...(values.baseline ? { baselineSteps: number('baseline', values.baseline) } : {}),
  ...(values.block ? { blockSize: number('block', values.block) } : {}),
  ...(values.hidden
    ? { hidden: values.hidden.split(',').map((h) => number('hidden', h) as number) }
    : {}),
  ...(values.epochs ? { epochs: number('epochs', values.epochs) } : {}),
  ...(values.batch ? { batchSize: number('batch', values.batch) } : {}),
  ...(values['learning-rate']
    ? { learningRate: number('learning-rate', values['learning-rate']) }
    : {}),
  ...(values.folds ? { folds: number('folds', values.folds) } : {}),
  ...(values.members ? { membersPerFold: number('members', values.members) } : {}),
  ...(values['min-correlation']
    ? { minCorrelation: number('min-correlation', values['min-correlation']) }
    : {}),
  ...(values.seed ? { seed: number('seed', values.seed) } : {}),
};

const started = performance.now();
const cpuStart = process.cpuUsage();
const loadStart = os.loadavg()[0] ?? 0;
const train = parseCmapss(await readFile(values.train, 'utf8'));
const test = parseCmapss(await readFile(values.test, 'utf8'));
const truth = parseCmapssTruth(await readFile(values.truth, 'utf8'));
if (truth.length !== test.length) {
  console.error(`the truth file has ${truth.length} values for ${test.length} test units`);
  process.exit(2);
}

// The naive baseline the model must beat: the training fleet's mean life minus the age, capped.
const cap = options.cap ?? DEFAULT_RUL_TRAINING.cap;
const meanLife = train.reduce((sum, u) => sum + u.rows.length, 0) / train.length;
let baselineSq = 0;
let baselineScore = 0;
test.forEach((unit, i) => {
  const age = unit.cycles[unit.cycles.length - 1] as number;
  const predicted = Math.min(cap, Math.max(0, meanLife - age));
  baselineSq += (predicted - (truth[i] as number)) ** 2;
  baselineScore += phm08Score(predicted, truth[i] as number);
});
console.log(
  `naive baseline on the test units (mean life ${meanLife.toFixed(1)} minus age, capped at ${cap}): rmse=${Math.sqrt(baselineSq / test.length).toFixed(2)} score=${baselineScore.toFixed(1)}`,
);

const model = await trainRulModel(
  {
    entities: CMAPSS_FEATURES,
    stepUnit: 'cycles',
    histories: train.map((u) => ({ id: String(u.unit), rows: u.rows })),
  },
  options,
);
const trainedMs = performance.now() - started;
const settings = { ...DEFAULT_RUL_TRAINING, ...options };
const e = model.evaluation;
console.log(
  `settings: window=${model.windowSize} block=${model.blockSize} baseline=${model.baselineSteps} cap=${model.cap} hidden=${model.layers
    .slice(0, -1)
    .map((l) => l.units)
    .join(
      ',',
    )} epochs=${model.metrics.epochs} batch=${settings.batchSize} lr=${settings.learningRate}` +
    ` folds=${e.folds} members=${model.members.length} features=${model.features
      .map((i) => model.entities[i])
      .join(',')}`,
);
console.log(
  `cross-validation on ${e.units} training units (${e.windows} windows, each predicted by a member that never saw its unit):` +
    ` rmse=${e.rmse.toFixed(2)} baseline_rmse=${e.baselineRmse.toFixed(2)} (mean life ${e.meanLife.toFixed(1)})` +
    ` coverage=${(e.coverage * 100).toFixed(1)}% activate=${e.activate}`,
);
console.log(
  `interval bands (prediction up to: 10%..90% offsets): ${model.interval
    .map((b) => `${b.upTo.toFixed(0)}: ${b.low.toFixed(0)}..+${b.high.toFixed(0)}`)
    .join(', ')}`,
);
console.log(`training: ${(trainedMs / 1000).toFixed(1)} s (${model.metrics.backend})`);
if (values['cv-only']) process.exit(0);

const predictor = new RulPredictor(model);
let sq = 0;
let score = 0;
let covered = 0;
let width = 0;
test.forEach((unit, i) => {
  const estimate = predictor.predict(unit.rows, unit.cycles[unit.cycles.length - 1]);
  const actual = truth[i] as number;
  sq += (estimate.value - actual) ** 2;
  score += phm08Score(estimate.value, actual);
  if (actual >= estimate.low && actual <= estimate.high) covered++;
  width += estimate.high - estimate.low;
});
const units = test.length;
const elapsed = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
console.log(
  `test: ${units} units, interval coverage ${((covered / units) * 100).toFixed(0)}% (true RUL inside the 10-90% interval), mean width ${(width / units).toFixed(1)} cycles`,
);
console.log(
  `run: ${(elapsed / 1000).toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, load average ${loadStart.toFixed(2)} at start, ${(os.loadavg()[0] ?? 0).toFixed(2)} at end (${os.cpus().length} cores)`,
);
console.log(`rmse=${Math.sqrt(sq / units).toFixed(2)} score=${score.toFixed(1)} units=${units}`);
