import type * as TF from '@tensorflow/tfjs';
import { DenseNetwork } from '../../ml/domain/dense-network.ts';
import { decodeWeights, encodeFloat32 } from '../../ml/domain/model.ts';
import { mulberry32 } from '../../ml/domain/seeded-random.ts';
import { type TfRuntimeOptions, useTfBackend } from '../../ml/domain/tf-runtime.ts';
import { fnv1a } from '../../ml/domain/training.ts';
import {
  buildRulInput,
  intervalAround,
  parseRulModel,
  RUL_MODEL_FORMAT,
  RUL_MODEL_KIND,
  type RulInputSpec,
  type RulModel,
  rulInputSize,
  standardise,
} from './rul-model.ts';

/**
 * Trains the fleet RUL model with TensorFlow.js from run-to-failure histories. The units are
 * split into folds; each ensemble member learns from all folds but one, and its predictions
 * on the fold it never saw are what the model is judged by (against the naive baseline, the
 * fleet's mean life) and what its interval is calibrated on. So every figure in the model's
 * `evaluation` comes from machines the predicting member had not seen.
 */

/** One machine's readings from new (or last replacement) to failure, oldest first. */
export interface RunToFailure {
  id: string;
  /** One row per step in the fleet's entity order; NaN marks a missing reading. */
  rows: readonly (readonly number[])[];
}

export interface RulTrainingData {
  entities: readonly string[];
  stepUnit: RulModel['stepUnit'];
  /** Each history ends at the last step before its failure (its RUL there is 0). */
  histories: readonly RunToFailure[];
}

export type RulTrainingFailure = 'too-few-histories' | 'no-informative-entity' | 'bad-row';

/** The histories cannot produce a model; the fleet keeps the time-to-threshold forecasts only. */
export class RulTrainingDataError extends Error {
  override readonly name = 'RulTrainingDataError';
  constructor(
    readonly reason: RulTrainingFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface RulTrainingOptions extends TfRuntimeOptions {
  /** Steps the network sees at once. */
  windowSize?: number;
  /** Steps averaged into one input step; must divide `windowSize`. */
  blockSize?: number;
  /** First steps of each history averaged as its own healthy reference; 0 for none. */
  baselineSteps?: number;
  /** Training target cap in steps: a younger machine is learned as "at least this". */
  cap?: number;
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Cross-validation folds, one ensemble member (or `membersPerFold`) per fold. */
  folds?: number;
  membersPerFold?: number;
  /** Entities whose |correlation| with the capped RUL is below this are not used. */
  minCorrelation?: number;
  seed?: number;
  now?: () => Date;
}

export const DEFAULT_RUL_TRAINING = {
  windowSize: 30,
  blockSize: 5,
  baselineSteps: 30,
  cap: 125,
  hidden: [64, 32],
  epochs: 40,
  batchSize: 512,
  learningRate: 0.002,
  folds: 5,
  membersPerFold: 1,
  minCorrelation: 0.1,
  seed: 7,
} as const;

/** Fewest run-to-failure histories a model is trained from. */
export const MIN_RUL_HISTORIES = 4;
const INTERVAL_BANDS = 5;

interface Settings {
  windowSize: number;
  blockSize: number;
  baselineSteps: number;
  cap: number;
  hidden: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  folds: number;
  membersPerFold: number;
  minCorrelation: number;
  seed: number;
}

function settingsOf(options: RulTrainingOptions, units: number): Settings {
  const d = DEFAULT_RUL_TRAINING;
  return {
    windowSize: options.windowSize ?? d.windowSize,
    blockSize: options.blockSize ?? d.blockSize,
    baselineSteps: options.baselineSteps ?? d.baselineSteps,
    cap: options.cap ?? d.cap,
    hidden: options.hidden ?? [...d.hidden],
    epochs: options.epochs ?? d.epochs,
    batchSize: options.batchSize ?? d.batchSize,
    learningRate: options.learningRate ?? d.learningRate,
    folds: Math.min(options.folds ?? d.folds, units),
    membersPerFold: options.membersPerFold ?? d.membersPerFold,
    minCorrelation: options.minCorrelation ?? d.minCorrelation,
    seed: options.seed ?? d.seed,
  };
}

function validate(data: RulTrainingData): void {
  if (data.histories.length < MIN_RUL_HISTORIES) {
    throw new RulTrainingDataError(
      'too-few-histories',
      `a fleet model needs at least ${MIN_RUL_HISTORIES} run-to-failure histories, got ${data.histories.length}`,
    );
  }
  for (const history of data.histories) {
    if (history.rows.length === 0) {
      throw new RulTrainingDataError('bad-row', `history ${history.id} has no rows`);
    }
    for (const row of history.rows) {
      if (row.length !== data.entities.length) {
        throw new RulTrainingDataError(
          'bad-row',
          `history ${history.id} has a row of ${row.length} values for ${data.entities.length} entities`,
        );
      }
    }
  }
}

/** Remaining life in steps at each row of a run-to-failure history. */
function trueRul(history: RunToFailure, index: number): number {
  return history.rows.length - 1 - index;
}

/**
 * Entities that vary and move with the remaining life (Pearson correlation with the capped
 * RUL over every step of every history), with their mean and standard deviation.
 */
function selectFeatures(
  data: RulTrainingData,
  cap: number,
  minCorrelation: number,
): { features: number[]; mean: number[]; std: number[] } {
  const features: number[] = [];
  const mean: number[] = [];
  const std: number[] = [];
  for (let e = 0; e < data.entities.length; e++) {
    let n = 0;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    for (const history of data.histories) {
      history.rows.forEach((row, i) => {
        const x = row[e] as number;
        if (!Number.isFinite(x)) return;
        const y = Math.min(cap, trueRul(history, i));
        n++;
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
      });
    }
    if (n < 2) continue;
    const mx = sx / n;
    const vx = sxx / n - mx * mx;
    const vy = syy / n - (sy / n) ** 2;
    // Relative to the mean's size, so a constant entity with rounding noise counts as constant.
    if (!(vx > 1e-12 * Math.max(1, mx * mx)) || !(vy > 0)) continue;
    const correlation = (sxy / n - mx * (sy / n)) / Math.sqrt(vx * vy);
    if (Math.abs(correlation) < minCorrelation) continue;
    features.push(e);
    mean.push(mx);
    std.push(Math.sqrt(vx));
  }
  if (features.length === 0) {
    throw new RulTrainingDataError(
      'no-informative-entity',
      'no entity varies with the remaining life in these histories',
    );
  }
  return { features, mean, std };
}

/** Every step of every history as a network input, with its capped and true RUL. */
interface WindowSet {
  inputs: Float32Array;
  targets: Float32Array;
  truth: Float32Array;
  ages: Float32Array;
  /** Index of the history each window comes from. */
  unit: Int32Array;
  count: number;
  width: number;
}

function buildWindows(data: RulTrainingData, spec: RulInputSpec): WindowSet {
  const width = rulInputSize(spec, spec.features.length);
  const count = data.histories.reduce((s, h) => s + h.rows.length, 0);
  const set: WindowSet = {
    inputs: new Float32Array(count * width),
    targets: new Float32Array(count),
    truth: new Float32Array(count),
    ages: new Float32Array(count),
    unit: new Int32Array(count),
    count,
    width,
  };
  let k = 0;
  data.histories.forEach((history, u) => {
    const standardised = standardise(history.rows, spec);
    for (let i = 0; i < history.rows.length; i++) {
      buildRulInput(standardised, i, i + 1, spec, set.inputs, k * width);
      set.truth[k] = trueRul(history, i);
      set.targets[k] = Math.min(spec.cap, trueRul(history, i)) / spec.cap;
      set.ages[k] = i + 1;
      set.unit[k] = u;
      k++;
    }
  });
  return set;
}

function shuffled(count: number, random: () => number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

async function trainMember(
  tf: typeof TF,
  windows: WindowSet,
  rows: readonly number[],
  layers: RulModel['layers'],
  settings: Settings,
  seed: number,
): Promise<{ weights: Float32Array[]; loss: number }> {
  const width = windows.width;
  const net = tf.sequential();
  layers.forEach((layer, i) => {
    net.add(
      tf.layers.dense({
        ...(i === 0 ? { inputShape: [width] } : {}),
        units: layer.units,
        activation: layer.activation,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 31 + i }),
        biasInitializer: 'zeros',
      }),
    );
  });
  net.compile({ optimizer: tf.train.adam(settings.learningRate), loss: 'meanSquaredError' });
  const xs = new Float32Array(rows.length * width);
  const ys = new Float32Array(rows.length);
  rows.forEach((src, dst) => {
    xs.set(windows.inputs.subarray(src * width, (src + 1) * width), dst * width);
    ys[dst] = windows.targets[src] as number;
  });
  const x = tf.tensor2d(xs, [rows.length, width]);
  const y = tf.tensor2d(ys, [rows.length, 1]);
  const random = mulberry32(seed);
  let loss = Number.NaN;
  try {
    for (let epoch = 0; epoch < settings.epochs; epoch++) {
      // A fresh seeded order each epoch: the same histories always train the same model.
      const order = tf.tensor1d(shuffled(rows.length, random), 'int32');
      const xe = tf.gather(x, order);
      const ye = tf.gather(y, order);
      try {
        const fitted = await net.fit(xe, ye, {
          epochs: 1,
          batchSize: settings.batchSize,
          shuffle: false,
          verbose: 0,
        });
        loss = (fitted.history.loss as number[])[0] ?? Number.NaN;
      } finally {
        order.dispose();
        xe.dispose();
        ye.dispose();
      }
    }
    const weights = net.getWeights().map((w: TF.Tensor) => Float32Array.from(w.dataSync()));
    return { weights, loss };
  } finally {
    x.dispose();
    y.dispose();
    net.dispose();
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  const lo = sorted[below] as number;
  return lo + ((sorted[above] as number) - lo) * (position - below);
}

/** 10-90% offsets of the true RUL from the prediction, in bands of equally many windows. */
function intervalBands(predictions: Float64Array, truth: Float32Array): RulModel['interval'] {
  const order = Array.from(predictions.keys()).sort(
    (a, b) => (predictions[a] as number) - (predictions[b] as number),
  );
  const bands: RulModel['interval'] = [];
  const size = Math.ceil(order.length / INTERVAL_BANDS);
  for (let start = 0; start < order.length; start += size) {
    const members = order.slice(start, start + size);
    const errors = members
      .map((k) => (truth[k] as number) - (predictions[k] as number))
      .sort((a, b) => a - b);
    bands.push({
      upTo: predictions[members[members.length - 1] as number] as number,
      low: quantile(errors, 0.1),
      high: quantile(errors, 0.9),
      windows: members.length,
    });
  }
  return bands;
}

export async function trainRulModel(
  data: RulTrainingData,
  options: RulTrainingOptions = {},
): Promise<RulModel> {
  const started = performance.now();
  validate(data);
  const settings = settingsOf(options, data.histories.length);
  if (settings.windowSize % settings.blockSize !== 0) {
    throw new RangeError('the block size must divide the window');
  }
  const tf = await useTfBackend(options);
  const selection = selectFeatures(data, settings.cap, settings.minCorrelation);
  const spec: RulInputSpec = {
    features: selection.features,
    normalisation: { mean: selection.mean, std: selection.std },
    windowSize: settings.windowSize,
    blockSize: settings.blockSize,
    baselineSteps: settings.baselineSteps,
    cap: settings.cap,
  };
  const windows = buildWindows(data, spec);
  const layers: RulModel['layers'] = [
    ...settings.hidden.map((units) => ({ units, activation: 'relu' as const })),
    { units: 1, activation: 'linear' as const },
  ];
  const specs = layers.flatMap((layer, i) => [
    {
      name: `dense_${i}/kernel`,
      shape: [i === 0 ? windows.width : (layers[i - 1] as { units: number }).units, layer.units],
      dtype: 'float32' as const,
    },
    { name: `dense_${i}/bias`, shape: [layer.units], dtype: 'float32' as const },
  ]);

  // Units, not windows, are split: windows of one machine are too alike to test one another.
  const foldOf = new Int32Array(data.histories.length);
  shuffled(data.histories.length, mulberry32(settings.seed)).forEach((u, i) => {
    foldOf[u] = i % settings.folds;
  });
  const outOfFold = new Float64Array(windows.count);
  const baseline = new Float64Array(windows.count);
  const members: RulModel['members'] = [];
  let lossSum = 0;
  for (let fold = 0; fold < settings.folds; fold++) {
    const trainRows: number[] = [];
    const heldBack: number[] = [];
    for (let k = 0; k < windows.count; k++) {
      (foldOf[windows.unit[k] as number] === fold ? heldBack : trainRows).push(k);
    }
    const lives = data.histories.filter((_, u) => foldOf[u] !== fold).map((h) => h.rows.length);
    const meanLife = lives.reduce((s, n) => s + n, 0) / lives.length;
    for (const k of heldBack) outOfFold[k] = 0;
    for (let m = 0; m < settings.membersPerFold; m++) {
      const trained = await trainMember(
        tf,
        windows,
        trainRows,
        layers,
        settings,
        settings.seed + 1000 * fold + m,
      );
      lossSum += trained.loss;
      const member = { specs, dataBase64: encodeFloat32(trained.weights) };
      members.push(member);
      // Judged with the same plain-TypeScript evaluation that serves predictions.
      const network = new DenseNetwork(layers, decodeWeights({ weights: member }), windows.width);
      for (const k of heldBack) {
        outOfFold[k] =
          (outOfFold[k] as number) +
          network.evaluate(windows.inputs, k * windows.width) / settings.membersPerFold;
      }
    }
    for (const k of heldBack) {
      outOfFold[k] = Math.min(settings.cap, Math.max(0, (outOfFold[k] as number) * settings.cap));
      baseline[k] = Math.min(settings.cap, Math.max(0, meanLife - (windows.ages[k] as number)));
    }
  }

  let sq = 0;
  let baselineSq = 0;
  for (let k = 0; k < windows.count; k++) {
    const target = (windows.targets[k] as number) * settings.cap;
    sq += ((outOfFold[k] as number) - target) ** 2;
    baselineSq += ((baseline[k] as number) - target) ** 2;
  }
  const interval = intervalBands(outOfFold, windows.truth);
  let covered = 0;
  for (let k = 0; k < windows.count; k++) {
    const { low, high } = intervalAround(outOfFold[k] as number, interval);
    const t = windows.truth[k] as number;
    if (t >= low && t <= high) covered++;
  }
  const rmse = Math.sqrt(sq / windows.count);
  const baselineRmse = Math.sqrt(baselineSq / windows.count);
  const lives = data.histories.map((h) => h.rows.length);

  const model: RulModel = {
    kind: RUL_MODEL_KIND,
    format: RUL_MODEL_FORMAT,
    version: '',
    trainedAt: (options.now?.() ?? new Date()).toISOString(),
    stepUnit: data.stepUnit,
    entities: [...data.entities],
    features: spec.features as number[],
    normalisation: { mean: selection.mean, std: selection.std },
    windowSize: settings.windowSize,
    blockSize: settings.blockSize,
    baselineSteps: settings.baselineSteps,
    cap: settings.cap,
    layers,
    members,
    interval,
    evaluation: {
      folds: settings.folds,
      units: data.histories.length,
      windows: windows.count,
      rmse,
      baselineRmse,
      meanLife: lives.reduce((s, n) => s + n, 0) / lives.length,
      coverage: covered / windows.count,
      activate: rmse < baselineRmse,
    },
    metrics: {
      trainingSteps: windows.count,
      epochs: settings.epochs,
      trainLoss: lossSum / members.length,
      durationMs: Math.round(performance.now() - started),
      backend: tf.getBackend(),
    },
  };
  model.version = `${RUL_MODEL_KIND}-${RUL_MODEL_FORMAT}-${fnv1a(
    members.map((m) => m.dataBase64).join('') +
      JSON.stringify([
        model.entities,
        model.features,
        model.normalisation,
        model.windowSize,
        model.blockSize,
        model.baselineSteps,
        model.cap,
      ]),
  )}`;
  return parseRulModel(model);
}
