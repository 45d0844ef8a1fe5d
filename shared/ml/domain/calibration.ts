import type { AlignedCoEntities } from './co-entities.ts';
import { Forecaster, type TrainedModel } from './model.ts';
import { type HistoryPoint, TrainingDataError } from './training.ts';

/**
 * What "normal" means for one model on one entity: the distribution of its forecast
 * residuals over a history, and the tail the advanced detector starts its online calibration
 * from. Trained and uploaded models are both measured here, with the same TypeScript forward
 * pass that scores live readings, so calibration and scoring can never disagree.
 */
export interface Calibration {
  /**
   * Each reading's residual from `firstTarget` on, in normalised units (only readings the
   * model can forecast: with a full window of each other entity it reads).
   */
  residuals: Float64Array;
  residual: { mean: number; std: number };
  /** |standardised residual| above which a reading is in the tail, and the tail's mean excess. */
  threshold: number;
  tailExcess: number;
  range: { min: number; max: number; count: number };
}

function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  const mean = sum / values.length;
  let sq = 0;
  for (let i = 0; i < values.length; i++) sq += ((values[i] as number) - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

export { meanStd };

/**
 * Forecasts every reading from `firstTarget` on and summarises the residuals; `co` aligns the
 * other entities a model reads with `history`.
 */
export function calibrate(
  model: TrainedModel,
  history: readonly HistoryPoint[],
  firstTarget: number,
  co?: AlignedCoEntities,
): Calibration {
  const forecaster = new Forecaster(model);
  const values = history.map((p) => p.value);
  const windowSize = model.windowSize;
  const start = Math.max(firstTarget, windowSize);
  const found: number[] = [];
  for (let t = start; t < history.length; t++) {
    const windows = co?.windowsAt(t, model);
    if (!forecaster.ready(windows)) continue;
    const predicted = forecaster.predict(
      values.slice(t - windowSize, t),
      (history[t] as HistoryPoint).timeMs,
      windows,
    );
    found.push(((values[t] as number) - predicted) / model.normalisation.std);
  }
  if (found.length === 0) {
    throw new TrainingDataError(
      'too-few-points',
      'no reading has a full window of every other entity the model reads',
    );
  }
  const residuals = Float64Array.from(found);
  const residual = meanStd(residuals);
  residual.std = Math.max(residual.std, 1e-3);
  const deviations = Array.from(residuals, (r) => Math.abs(r - residual.mean) / residual.std).sort(
    (a, b) => a - b,
  );
  const threshold = deviations[Math.floor(0.98 * (deviations.length - 1))] as number;
  const tail = deviations.filter((d) => d > threshold);
  const tailExcess = Math.max(
    0.25,
    tail.length > 0 ? tail.reduce((s, d) => s + d - threshold, 0) / tail.length : 1,
  );
  return {
    residuals,
    residual,
    threshold,
    tailExcess,
    range: {
      min: values.reduce((a, b) => Math.min(a, b)),
      max: values.reduce((a, b) => Math.max(a, b)),
      count: values.length,
    },
  };
}
