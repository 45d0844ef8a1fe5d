import { z } from 'zod';
import { DenseNetwork } from '../../ml/domain/dense-network.ts';
import { decodeWeights } from '../../ml/domain/model.ts';

/**
 * A trained fleet model of remaining useful life (RUL), as it is stored and loaded. Like the
 * anomaly models it is plain JSON with float32 weights in TensorFlow.js's layout, and it is
 * evaluated here in plain TypeScript, so predicting needs no TensorFlow.js: only training does.
 *
 * The input is the last `windowSize` steps of a machine's selected sensor entities (a step is
 * a cycle, or an hour of rollups), each feature standardised with the fleet's training
 * statistics, the mean of its first steps (its own healthy state: machines start with
 * different wear) and its age in steps. The output is the RUL in steps, capped at
 * `cap` (a healthy machine's life is not predictable from its sensors, so it is learned as
 * "at least `cap`"). The ensemble's mean is the prediction; the interval comes from the
 * members' errors on units they did not see in training.
 */

export const RUL_MODEL_KIND = 'fleet-rul';
/** Format of the stored model; bump when inputs, layout or meaning change. */
export const RUL_MODEL_FORMAT = 1;

const finite = z.number().refine(Number.isFinite, 'must be finite');
const weightsSchema = z.object({
  specs: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int().min(1)),
      dtype: z.literal('float32'),
    }),
  ),
  dataBase64: z.string(),
});

export const rulModelSchema = z.object({
  kind: z.literal(RUL_MODEL_KIND),
  format: z.literal(RUL_MODEL_FORMAT),
  /** Content-derived id: two models with the same weights and settings share it. */
  version: z.string().min(1),
  trainedAt: z.string(),
  /** What one step is; RUL values are in these units. */
  stepUnit: z.enum(['cycles', 'hours']),
  /** Every entity of the fleet's rows, in row order, as training received them. */
  entities: z.array(z.string()).min(1),
  /** Indexes into `entities` of the features the model reads, in input order. */
  features: z.array(z.number().int().min(0)).min(1),
  normalisation: z.object({
    mean: z.array(finite),
    std: z.array(finite.refine((s) => s > 0, 'must be > 0')),
  }),
  windowSize: z.number().int().min(1).max(512),
  /**
   * Steps from the machine's start (new or replaced) averaged into a reference of its own
   * healthy state, which the network compares the window with; 0 for none.
   */
  baselineSteps: z.number().int().min(0).max(512),
  /** Consecutive steps averaged into one network input step (divides `windowSize`). */
  blockSize: z.number().int().min(1).max(512),
  cap: finite.refine((c) => c > 0, 'must be > 0'),
  layers: z
    .array(
      z.object({
        units: z.number().int().min(1),
        activation: z.enum(['relu', 'tanh', 'linear']),
      }),
    )
    .min(1),
  /** One set of weights per ensemble member. */
  members: z.array(weightsSchema).min(1),
  /**
   * Offsets from the prediction to the 10th and 90th percentiles of the true (uncapped) RUL,
   * by range of the prediction: the first band whose `upTo` is at or above the prediction
   * applies, the last one beyond.
   */
  interval: z
    .array(z.object({ upTo: finite, low: finite, high: finite, windows: z.number().int().min(1) }))
    .min(1),
  evaluation: z.object({
    /** Units held back once each (cross-validation folds). */
    folds: z.number().int().min(2),
    units: z.number().int().min(2),
    windows: z.number().int().min(1),
    /** RMSE against the capped target on held-back units, every step of every unit. */
    rmse: finite,
    /** Same for the naive baseline: the fleet's mean life minus the machine's age, capped. */
    baselineRmse: finite,
    meanLife: finite,
    /** Share of held-back steps whose true RUL lies inside the interval. */
    coverage: finite,
    /** The model is used only if it beats the baseline on the held-back units. */
    activate: z.boolean(),
  }),
  metrics: z.object({
    trainingSteps: z.number().int(),
    epochs: z.number().int(),
    trainLoss: finite,
    durationMs: finite,
    backend: z.string(),
  }),
});

export type RulModel = z.infer<typeof rulModelSchema>;

export function parseRulModel(json: unknown): RulModel {
  return rulModelSchema.parse(json);
}

export function rulInputSize(
  spec: { windowSize: number; blockSize: number; baselineSteps: number },
  features: number,
): number {
  return (spec.windowSize / spec.blockSize + (spec.baselineSteps > 0 ? 1 : 0)) * features + 1;
}

/** What the model needs to turn a machine's raw rows into network inputs. */
export interface RulInputSpec {
  features: readonly number[];
  normalisation: { mean: readonly number[]; std: readonly number[] };
  windowSize: number;
  blockSize: number;
  baselineSteps: number;
  cap: number;
}

/**
 * Standardised selected features of every row. A missing reading (NaN) repeats the previous
 * step's value; before the first reading it is the fleet's mean (0 once standardised).
 */
export function standardise(
  rows: readonly (readonly number[])[],
  spec: RulInputSpec,
): Float32Array[] {
  const f = spec.features.length;
  const out: Float32Array[] = [];
  let previous = new Float32Array(f);
  for (const row of rows) {
    const next = new Float32Array(f);
    for (let k = 0; k < f; k++) {
      const raw = row[spec.features[k] as number];
      next[k] =
        raw !== undefined && Number.isFinite(raw)
          ? (raw - (spec.normalisation.mean[k] as number)) / (spec.normalisation.std[k] as number)
          : (previous[k] as number);
    }
    out.push(next);
    previous = next;
  }
  return out;
}

/**
 * Network input for the step `end` (inclusive) of a standardised history: the `windowSize`
 * steps up to it, the oldest first (a history shorter than the window repeats its first step),
 * averaged in blocks of `blockSize` steps (which takes out most of the sensor noise), then the
 * mean of the history's first `baselineSteps` steps, then the age at that step relative to
 * the cap.
 */
export function buildRulInput(
  standardised: readonly Float32Array[],
  end: number,
  age: number,
  spec: RulInputSpec,
  out: Float32Array,
  offset = 0,
): void {
  const f = spec.features.length;
  const w = spec.windowSize;
  const b = spec.blockSize;
  const blocks = w / b;
  out.fill(0, offset, offset + blocks * f);
  for (let t = 0; t < w; t++) {
    const source = standardised[Math.max(0, end - w + 1 + t)] as Float32Array;
    const base = offset + Math.floor(t / b) * f;
    for (let k = 0; k < f; k++)
      out[base + k] = (out[base + k] as number) + (source[k] as number) / b;
  }
  let next = offset + blocks * f;
  if (spec.baselineSteps > 0) {
    // The history's first steps (those seen so far, early in life): the machine's own reference.
    const n = Math.min(spec.baselineSteps, end + 1);
    out.fill(0, next, next + f);
    for (let t = 0; t < n; t++) {
      const source = standardised[t] as Float32Array;
      for (let k = 0; k < f; k++)
        out[next + k] = (out[next + k] as number) + (source[k] as number) / n;
    }
    next += f;
  }
  out[next] = age / spec.cap;
}

export interface RulEstimate {
  /** Predicted remaining life in steps (at most the model's cap). */
  value: number;
  /** 10th and 90th percentiles of the true remaining life. */
  low: number;
  high: number;
}

/** A stored model made ready for repeated prediction. */
export class RulPredictor {
  private readonly members: DenseNetwork[];
  private readonly input: Float32Array;

  constructor(readonly model: RulModel) {
    const f = model.features.length;
    if (model.normalisation.mean.length !== f || model.normalisation.std.length !== f) {
      throw new RangeError('model normalisation does not match its features');
    }
    if (model.features.some((i) => i >= model.entities.length)) {
      throw new RangeError('model features point past its entities');
    }
    if (model.windowSize % model.blockSize !== 0) {
      throw new RangeError('model block size does not divide its window');
    }
    const inputs = rulInputSize(model, f);
    this.members = model.members.map(
      (weights) => new DenseNetwork(model.layers, decodeWeights({ weights }), inputs),
    );
    this.input = new Float32Array(inputs);
  }

  /** Mean of the members' outputs, in steps, clamped to [0, cap]. */
  pointAt(standardised: readonly Float32Array[], end: number, age: number): number {
    buildRulInput(standardised, end, age, this.model, this.input);
    let sum = 0;
    for (const member of this.members) sum += member.evaluate(this.input);
    return clamp((sum / this.members.length) * this.model.cap, 0, this.model.cap);
  }

  /**
   * RUL after the last of `rows`: a machine's readings since it was new or last replaced,
   * oldest first, in `entities` order, one row per step. `age` is its age in steps at the
   * last row, when that is more than the rows (readings lost or not kept).
   */
  predict(rows: readonly (readonly number[])[], age = rows.length): RulEstimate {
    if (rows.length === 0) throw new RangeError('at least one row is needed');
    const value = this.pointAt(standardise(rows, this.model), rows.length - 1, age);
    return { value, ...intervalAround(value, this.model.interval) };
  }
}

export function intervalAround(
  value: number,
  bands: RulModel['interval'],
): { low: number; high: number } {
  const band =
    bands.find((b) => value <= b.upTo) ?? (bands[bands.length - 1] as RulModel['interval'][number]);
  return { low: Math.max(0, value + band.low), high: Math.max(0, value + band.high) };
}

function clamp(x: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, x));
}
