import type * as TF from '@tensorflow/tfjs';
import { calibrate, meanStd } from './calibration.ts';
import { AlignedCoEntities, type CoEntitySeries } from './co-entities.ts';
import { DEFAULT_CO_WINDOW, MAX_CO_ENTITIES, MAX_CO_WINDOW } from './families.ts';
import {
  buildInput,
  coWindowsComplete,
  decodeWeights,
  encodeFloat32,
  inputSize,
  MODEL_FORMAT,
  MODEL_KIND,
  parseTrainedModel,
  type TrainedModel,
} from './model.ts';
import { mulberry32 } from './seeded-random.ts';
import { type TfRuntimeOptions, useTfBackend } from './tf-runtime.ts';

/**
 * Trains the advanced detector's per-entity model with TensorFlow.js: a small dense network
 * that forecasts the next reading from the previous `windowSize` readings and the time of
 * day. Its residuals on the training history become the reference distribution that new
 * readings' forecast errors are compared with.
 */

export interface HistoryPoint {
  timeMs: number;
  value: number;
}

export type TrainingFailure = 'too-few-points' | 'non-finite' | 'constant';

/** The history cannot produce a useful model; the entity stays on the basic detector. */
export class TrainingDataError extends Error {
  override readonly name = 'TrainingDataError';
  constructor(
    readonly reason: TrainingFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface TrainingOptions extends TfRuntimeOptions {
  windowSize?: number;
  hidden?: number[];
  /** Gradient steps to aim for; epochs follow from it and the history's length. */
  targetSteps?: number;
  /** Fixed epoch count, overriding `targetSteps`. */
  epochs?: number;
  learningRate?: number;
  seed?: number;
  /** Most recent windows used at most, which bounds training time on long histories. */
  maxWindows?: number;
  /** Clock for `trainedAt`, so tests can pin it. */
  now?: () => Date;
  /** Other entities of the device the model also reads, with their readings over the history. */
  coEntities?: readonly CoEntitySeries[];
  /** How many aligned values of each other entity the model reads. */
  coWindow?: number;
}

export const DEFAULT_TRAINING = {
  windowSize: 24,
  hidden: [16, 8],
  targetSteps: 300,
  learningRate: 0.005,
  seed: 7,
  maxWindows: 50_000,
} as const;

export function minimumTrainingPoints(windowSize: number): number {
  return windowSize + 100;
}

export function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Throws `TrainingDataError` when the history cannot teach or calibrate a model of `windowSize`. */
export function checkHistory(history: readonly HistoryPoint[], windowSize: number): void {
  const needed = minimumTrainingPoints(windowSize);
  if (history.length < needed) {
    throw new TrainingDataError(
      'too-few-points',
      `training needs at least ${needed} readings, got ${history.length}`,
    );
  }
  for (let i = 0; i < history.length; i++) {
    const p = history[i] as HistoryPoint;
    if (!Number.isFinite(p.value) || !Number.isFinite(p.timeMs)) {
      throw new TrainingDataError('non-finite', `reading ${i} has a non-finite time or value`);
    }
  }
  const first = (history[0] as HistoryPoint).value;
  if (history.every((p) => p.value === first)) {
    throw new TrainingDataError(
      'constant',
      `every reading has the value ${first}: nothing to learn`,
    );
  }
}

/** Training windows needed at least, besides the held-back readings. */
const MIN_TRAINING_WINDOWS = 50;

/**
 * The other entities' part of the model (their order and normalisation, from their readings up
 * to the history's end), or undefined when it reads none.
 */
function coEntityInputs(
  history: readonly HistoryPoint[],
  options: TrainingOptions,
): { coEntities: NonNullable<TrainedModel['coEntities']>; coWindow: number } | undefined {
  const series = options.coEntities ?? [];
  if (series.length === 0) return undefined;
  if (series.length > MAX_CO_ENTITIES) {
    throw new RangeError(`a model reads at most ${MAX_CO_ENTITIES} other entities`);
  }
  const coWindow = options.coWindow ?? DEFAULT_CO_WINDOW;
  if (!Number.isInteger(coWindow) || coWindow < 1 || coWindow > MAX_CO_WINDOW) {
    throw new RangeError(`the other entities' window must be 1 to ${MAX_CO_WINDOW} readings`);
  }
  const end = (history[history.length - 1] as HistoryPoint).timeMs;
  const coEntities = series.map(({ entityId, points }) => {
    const known = points.filter((p) => p.timeMs <= end).map((p) => p.value);
    if (known.length === 0 || known.some((v) => !Number.isFinite(v))) {
      throw new TrainingDataError(
        known.length === 0 ? 'too-few-points' : 'non-finite',
        known.length === 0
          ? `${entityId} has no readings over the history`
          : `${entityId} has a non-finite reading`,
      );
    }
    const normalisation = meanStd(known);
    if (!(normalisation.std > 0)) {
      throw new TrainingDataError(
        'constant',
        `every reading of ${entityId} has the value ${known[0]}: it tells the model nothing`,
      );
    }
    return { entityId, normalisation };
  });
  return { coEntities, coWindow };
}

export async function trainModel(
  history: readonly HistoryPoint[],
  options: TrainingOptions = {},
): Promise<TrainedModel> {
  const started = performance.now();
  const windowSize = options.windowSize ?? DEFAULT_TRAINING.windowSize;
  const hidden = options.hidden ?? [...DEFAULT_TRAINING.hidden];
  checkHistory(history, windowSize);
  const tf = await useTfBackend(options);

  const values = history.map((p) => p.value);
  const normalisation = meanStd(values);
  if (!(normalisation.std > 0)) {
    throw new TrainingDataError('constant', 'the readings have no spread: nothing to learn');
  }

  const firstTarget = Math.max(
    windowSize,
    history.length - (options.maxWindows ?? DEFAULT_TRAINING.maxWindows),
  );
  const coInputs = coEntityInputs(history, options);
  const aligned = coInputs ? new AlignedCoEntities(history, options.coEntities ?? []) : undefined;
  const encoding = coInputs ?? {};
  const features = inputSize(windowSize, encoding);
  // Readings without a full window of every other entity (before one reported) teach nothing.
  const targets: number[] = [];
  for (let t = firstTarget; t < history.length; t++) {
    const windows = aligned?.windowsAt(t, encoding);
    if (coWindowsComplete(encoding, windows)) targets.push(t);
  }
  const count = targets.length;
  if (count < MIN_TRAINING_WINDOWS) {
    throw new TrainingDataError(
      'too-few-points',
      `only ${count} readings have a full window of every other entity (need ${MIN_TRAINING_WINDOWS})`,
    );
  }
  const xs = new Float32Array(count * features);
  const ys = new Float32Array(count);
  const row = new Float32Array(features);
  targets.forEach((t, k) => {
    const window = values.slice(t - windowSize, t);
    const windows = aligned?.windowsAt(t, encoding);
    buildInput(window, (history[t] as HistoryPoint).timeMs, normalisation, row, encoding, windows);
    xs.set(row, k * features);
    ys[k] = ((values[t] as number) - (values[t - 1] as number)) / normalisation.std;
  });

  // Chronological split: validation is the most recent tenth, as it would be in production.
  const validationCount = Math.max(1, Math.floor(count * 0.1));
  const trainCount = count - validationCount;
  const random = mulberry32(options.seed ?? DEFAULT_TRAINING.seed);
  const order = Array.from({ length: trainCount }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const trainXs = new Float32Array(trainCount * features);
  const trainYs = new Float32Array(trainCount);
  order.forEach((src, dst) => {
    trainXs.set(xs.subarray(src * features, (src + 1) * features), dst * features);
    trainYs[dst] = ys[src] as number;
  });

  const batchSize = Math.min(
    512,
    Math.max(32, 2 ** Math.round(Math.log2(Math.max(1, trainCount / 50)))),
  );
  const batches = Math.ceil(trainCount / batchSize);
  const epochs =
    options.epochs ??
    Math.min(
      60,
      Math.max(3, Math.ceil((options.targetSteps ?? DEFAULT_TRAINING.targetSteps) / batches)),
    );

  const seed = options.seed ?? DEFAULT_TRAINING.seed;
  const layers = [
    ...hidden.map((units) => ({ units, activation: 'relu' as const })),
    { units: 1, activation: 'linear' as const },
  ];
  const net = tf.sequential();
  layers.forEach((layer, i) => {
    net.add(
      tf.layers.dense({
        ...(i === 0 ? { inputShape: [features] } : {}),
        units: layer.units,
        activation: layer.activation,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
        biasInitializer: 'zeros',
      }),
    );
  });
  net.compile({
    optimizer: tf.train.adam(options.learningRate ?? DEFAULT_TRAINING.learningRate),
    loss: 'meanSquaredError',
  });

  let trainLoss = Number.NaN;
  let weights: Float32Array[];
  const xTrain = tf.tensor2d(trainXs, [trainCount, features]);
  const yTrain = tf.tensor2d(trainYs, [trainCount, 1]);
  try {
    const fitted = await net.fit(xTrain, yTrain, { epochs, batchSize, shuffle: false, verbose: 0 });
    const losses = fitted.history.loss as number[];
    trainLoss = losses[losses.length - 1] ?? Number.NaN;
    weights = net
      .getWeights()
      .map((w: TF.Tensor) => w.dataSync() as Float32Array)
      .map((w) => Float32Array.from(w));
  } finally {
    xTrain.dispose();
    yTrain.dispose();
    net.dispose();
  }

  const specs = layers.flatMap((layer, i) => [
    {
      name: `dense_${i}/kernel`,
      shape: [i === 0 ? features : (layers[i - 1] as { units: number }).units, layer.units],
      dtype: 'float32' as const,
    },
    { name: `dense_${i}/bias`, shape: [layer.units], dtype: 'float32' as const },
  ]);
  const draft: TrainedModel = {
    kind: MODEL_KIND,
    format: MODEL_FORMAT,
    version: '',
    trainedAt: (options.now?.() ?? new Date()).toISOString(),
    windowSize,
    ...(coInputs ?? {}),
    normalisation,
    residual: { mean: 0, std: 1 },
    range: {
      min: values.reduce((a, b) => Math.min(a, b)),
      max: values.reduce((a, b) => Math.max(a, b)),
      count: values.length,
    },
    threshold: 0,
    tailExcess: 1,
    layers,
    metrics: {
      trainingPoints: history.length,
      windows: count,
      epochs,
      trainLoss: Number.isFinite(trainLoss) ? trainLoss : 0,
      validationLoss: 0,
      naiveValidationLoss: 0,
      durationMs: 0,
      backend: tf.getBackend(),
    },
    weights: { specs, dataBase64: encodeFloat32(weights) },
  };

  // The reference distribution is measured with the same TypeScript forward pass that scores
  // live readings, so training and inference can never disagree about what "normal" is.
  const { residuals, residual, threshold, tailExcess } = calibrate(
    draft,
    history,
    firstTarget,
    aligned,
  );
  let validationSq = 0;
  let naiveSq = 0;
  for (let k = trainCount; k < count; k++) {
    validationSq += (residuals[k] as number) ** 2;
    naiveSq += (ys[k] as number) ** 2;
  }

  const model: TrainedModel = {
    ...draft,
    residual,
    threshold,
    tailExcess,
    metrics: {
      ...draft.metrics,
      validationLoss: validationSq / validationCount,
      naiveValidationLoss: naiveSq / validationCount,
      durationMs: Math.round(performance.now() - started),
    },
  };
  model.version = `${MODEL_KIND}-${MODEL_FORMAT}-${fnv1a(model.weights.dataBase64 + JSON.stringify([windowSize, normalisation, residual, threshold, coInputs ?? null]))}`;
  return parseTrainedModel(model);
}

/** Rebuilds the tf.js network of a stored model, for batch inference or export. */
export async function loadTfModel(
  model: TrainedModel,
  options: TfRuntimeOptions = {},
): Promise<TF.Sequential> {
  const tf = await useTfBackend(options);
  const net = tf.sequential();
  model.layers.forEach((layer, i) => {
    net.add(
      tf.layers.dense({
        ...(i === 0 ? { inputShape: [inputSize(model.windowSize, model)] } : {}),
        units: layer.units,
        activation: layer.activation,
      }),
    );
  });
  const weights = decodeWeights(model);
  const tensors = weights.map((w, i) => tf.tensor(w, model.weights.specs[i]?.shape));
  net.setWeights(tensors);
  for (const t of tensors) t.dispose();
  return net;
}
