import { z } from 'zod';
import { DENSE_ACTIVATIONS, DenseNetwork } from './dense-network.ts';
import { MAX_CO_ENTITIES, MAX_CO_WINDOW } from './families.ts';

/**
 * A trained per-entity model as it is stored (PostgreSQL row, S3 object) and loaded for
 * inference. It is plain JSON: the weights are float32 tensors in TensorFlow.js's weight
 * format (specs plus one little-endian buffer, base64), so `loadTfModel` can rebuild the
 * tf.js model, and `forecast` evaluates the same network in plain TypeScript so the
 * ingestion path can score readings without loading TensorFlow.js at all.
 */

export const MODEL_KIND = 'dense-forecaster';
/** Format of the stored model; bump when inputs, layout or meaning change. */
export const MODEL_FORMAT = 1;

const finite = z.number().refine(Number.isFinite, 'must be finite');

export const trainedModelSchema = z.object({
  kind: z.literal(MODEL_KIND),
  format: z.literal(MODEL_FORMAT),
  /** Content-derived id: two models with the same weights and settings share it. */
  version: z.string().min(1),
  trainedAt: z.string(),
  windowSize: z.number().int().min(2).max(256),
  /**
   * How the window becomes the network's input and its output the forecast (absent: the
   * trained models' `relative`). `relative`: each reading minus the latest, over
   * normalisation.std, and the output is the change from the latest. `standardised`: each
   * reading minus normalisation.mean over normalisation.std, and the output is the next
   * reading standardised the same way (what an uploaded model may declare).
   */
  encoding: z.enum(['relative', 'standardised']).optional(),
  /** Whether the time of day (sine, cosine) follows the window in the input (absent: yes). */
  timeOfDay: z.boolean().optional(),
  /**
   * Other entities of the same device the model reads (absent: none), each standardised by
   * its training mean and std; after the time of day, per entity in this order, its values as
   * of the entity's last `coWindow` readings (`AlignedCoEntities` in co-entities.ts).
   */
  coEntities: z
    .array(
      z.object({
        entityId: z.string().min(1).max(100),
        normalisation: z.object({ mean: finite, std: finite.refine((s) => s > 0, 'must be > 0') }),
      }),
    )
    .min(1)
    .max(MAX_CO_ENTITIES)
    .optional(),
  coWindow: z.number().int().min(1).max(MAX_CO_WINDOW).optional(),
  normalisation: z.object({ mean: finite, std: finite.refine((s) => s > 0, 'must be > 0') }),
  /** Distribution of the training forecast residuals, in normalised units. */
  residual: z.object({ mean: finite, std: finite.refine((s) => s > 0, 'must be > 0') }),
  /** The lowest and highest training value (absent in models trained before it was kept). */
  range: z.object({ min: finite, max: finite, count: z.number().int().min(1) }).optional(),
  /** |standardised residual| above which a reading is in the tail, with the tail's mean excess. */
  threshold: finite,
  tailExcess: finite,
  layers: z
    .array(
      z.object({
        units: z.number().int().min(1),
        activation: z.enum(DENSE_ACTIVATIONS),
      }),
    )
    .min(1),
  metrics: z.object({
    trainingPoints: z.number().int(),
    windows: z.number().int(),
    epochs: z.number().int(),
    trainLoss: finite,
    validationLoss: finite,
    /** Validation loss of repeating the last value: the model should beat it. */
    naiveValidationLoss: finite,
    durationMs: finite,
    backend: z.string(),
  }),
  weights: z.object({
    specs: z.array(
      z.object({
        name: z.string(),
        shape: z.array(z.number().int().min(1)),
        dtype: z.literal('float32'),
      }),
    ),
    dataBase64: z.string(),
  }),
});

export type TrainedModel = z.infer<typeof trainedModelSchema>;

/** The metrics of a model not trained here (uploaded, decoded from the edge file): none measured. */
export function unmeasuredMetrics(backend: string): TrainedModel['metrics'] {
  return {
    trainingPoints: 0,
    windows: 0,
    epochs: 0,
    trainLoss: 0,
    validationLoss: 0,
    naiveValidationLoss: 0,
    durationMs: 0,
    backend,
  };
}

/** Extra inputs after the window: time of day as a point on the unit circle. */
export const TIME_FEATURES = 2;
const DAY_MS = 86_400_000;

/** How a model reads its window; the defaults are the trained models'. */
export interface InputEncoding {
  encoding?: 'relative' | 'standardised' | undefined;
  timeOfDay?: boolean | undefined;
  coEntities?: ReadonlyArray<{ entityId: string; normalisation: { mean: number; std: number } }>;
  coWindow?: number | undefined;
}

/**
 * The other entities' values a model reads with the reading at `timeMs`: per co-entity (in
 * the model's order) its values as of the entity's last `coWindow` readings, the last one as
 * of `timeMs` itself, oldest first; null where that entity had not reported yet.
 */
export type CoEntityWindows = ReadonlyArray<ReadonlyArray<number | null>>;

export function inputSize(windowSize: number, encoding: InputEncoding = {}): number {
  const window = encoding.encoding === 'standardised' ? windowSize : windowSize - 1;
  const co = (encoding.coEntities?.length ?? 0) * (encoding.coWindow ?? 0);
  return window + (encoding.timeOfDay === false ? 0 : TIME_FEATURES) + co;
}

/** Whether `co` holds every value the model reads of its other entities (always, if it reads none). */
export function coWindowsComplete(
  encoding: InputEncoding,
  co: CoEntityWindows | undefined,
): boolean {
  const entities = encoding.coEntities;
  if (!entities || entities.length === 0) return true;
  if (!co || co.length !== entities.length) return false;
  const k = encoding.coWindow ?? 0;
  return co.every((w) => w.length === k && w.every((v) => v !== null && Number.isFinite(v)));
}

/**
 * Network input for the reading at `timeMs` given the `windowSize` readings before it.
 * Values are taken relative to the latest one, so a level shift moves the input only as
 * long as it is inside the window: the model learns shapes, not absolute levels (the basic
 * signals watch levels).
 */
export function buildInput(
  window: readonly number[],
  timeMs: number,
  normalisation: { mean?: number; std: number },
  out: Float64Array | Float32Array,
  encoding: InputEncoding = {},
  co?: CoEntityWindows,
): void {
  const n = window.length;
  let filled: number;
  if (encoding.encoding === 'standardised') {
    const mean = normalisation.mean ?? 0;
    for (let i = 0; i < n; i++) out[i] = ((window[i] as number) - mean) / normalisation.std;
    filled = n;
  } else {
    const last = window[n - 1] as number;
    for (let i = 0; i < n - 1; i++) out[i] = ((window[i] as number) - last) / normalisation.std;
    filled = n - 1;
  }
  if (encoding.timeOfDay !== false) {
    const angle = ((((timeMs % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS) * 2 * Math.PI;
    out[filled] = Math.sin(angle);
    out[filled + 1] = Math.cos(angle);
    filled += TIME_FEATURES;
  }
  const entities = encoding.coEntities;
  if (!entities || entities.length === 0) return;
  if (!coWindowsComplete(encoding, co)) {
    throw new RangeError('the model needs a full window of each of its other entities');
  }
  entities.forEach(({ normalisation }, c) => {
    for (const value of (co as CoEntityWindows)[c] as ReadonlyArray<number>) {
      out[filled++] = (value - normalisation.mean) / normalisation.std;
    }
  });
}

/** The forecast in reading units from the network's output for `window`. */
export function outputToForecast(
  output: number,
  window: readonly number[],
  model: Pick<TrainedModel, 'encoding' | 'normalisation'>,
): number {
  const { mean, std } = model.normalisation;
  if (model.encoding === 'standardised') return mean + output * std;
  return (window[window.length - 1] as number) + output * std;
}

export function encodeFloat32(arrays: readonly Float32Array[]): string {
  const total = arrays.reduce((sum, a) => sum + a.length, 0);
  const joined = new Float32Array(total);
  let offset = 0;
  for (const a of arrays) {
    joined.set(a, offset);
    offset += a.length;
  }
  return bytesToBase64(new Uint8Array(joined.buffer));
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The weights as tf.js orders them: kernel then bias, layer by layer. */
export function decodeWeights(model: Pick<TrainedModel, 'weights'>): Float32Array[] {
  const bytes = base64ToBytes(model.weights.dataBase64);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const out: Float32Array[] = [];
  let offset = 0;
  for (const spec of model.weights.specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (offset + size > all.length) throw new RangeError('model weights are truncated');
    out.push(all.slice(offset, offset + size));
    offset += size;
  }
  if (offset !== all.length) throw new RangeError('model weights have trailing data');
  return out;
}

/** A stored model made ready for repeated inference. */
export class Forecaster {
  private readonly network: DenseNetwork;
  readonly input: Float64Array;

  constructor(readonly model: TrainedModel) {
    this.network = new DenseNetwork(
      model.layers,
      decodeWeights(model),
      inputSize(model.windowSize, model),
    );
    this.input = new Float64Array(inputSize(model.windowSize, model));
  }

  /** Whether the model can forecast given these windows of its other entities. */
  ready(co?: CoEntityWindows): boolean {
    return coWindowsComplete(this.model, co);
  }

  /**
   * Predicted value of the reading at `timeMs` from the `windowSize` readings before it (and,
   * for a model that reads other entities of the device, their aligned windows).
   */
  predict(window: readonly number[], timeMs: number, co?: CoEntityWindows): number {
    buildInput(window, timeMs, this.model.normalisation, this.input, this.model, co);
    return outputToForecast(this.network.evaluate(this.input), window, this.model);
  }
}

export function parseTrainedModel(json: unknown): TrainedModel {
  return trainedModelSchema.parse(json);
}
