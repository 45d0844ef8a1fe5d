import { AlignedCoEntities, type CoEntitySeries } from './co-entities.ts';
import { Forecaster, type TrainedModel } from './model.ts';
import type { HistoryPoint } from './training.ts';

/**
 * The model quality gate: a trained model is only worth activating if it forecasts the
 * readings it never saw better than the naive forecasts an operator gets for free, repeating
 * the last value and (where the history has the reading one day earlier) repeating
 * yesterday's value. Otherwise its forecast errors would measure the model's weakness rather
 * than the machine's behaviour, and the entity is better served by its previous model or by
 * the basic statistics.
 */

/** The most recent tenth of the history is held back from training to judge the model. */
export const HELD_BACK_FRACTION = 0.1;
/** Fewer held-back readings than this cannot tell a model from noise. */
export const MIN_HELD_BACK = 20;
/** Seasonal naive is a baseline only where most held-back readings have yesterday's twin. */
const MIN_SEASONAL_SHARE = 0.5;
const DAY_MS = 86_400_000;

/**
 * Mean absolute forecast errors on the held-back readings, in the model's normalised units.
 * Absolute rather than squared errors (as in Hyndman and Koehler's mean absolute scaled error)
 * so that one fault among the held-back readings, which every forecast misses by about the
 * same amount, cannot decide the verdict.
 */
export interface HeldBackMetrics {
  heldBackPoints: number;
  modelMae: number;
  repeatLastMae: number;
  /** Held-back readings with a reading exactly one day earlier, and the errors on those. */
  seasonalPoints: number;
  modelSeasonalMae: number | null;
  seasonalNaiveMae: number | null;
}

export interface GateVerdict {
  accepted: boolean;
  /** Why the model was rejected, in words an operator can act on; null when accepted. */
  reason: string | null;
  metrics: HeldBackMetrics;
}

/** Where the held-back part of a history starts: its last tenth, at least MIN_HELD_BACK. */
export function heldBackStart(length: number): number {
  return Math.max(0, length - Math.max(MIN_HELD_BACK, Math.floor(length * HELD_BACK_FRACTION)));
}

/**
 * Forecasts every reading from `from` on with the model (each from the readings before it)
 * and with the naive baselines, and compares the errors. A model that reads other entities
 * is judged on the readings it can forecast (a full window of each), the baselines on the same.
 */
export function measureHeldBack(
  model: TrainedModel,
  history: readonly HistoryPoint[],
  from: number,
  co?: AlignedCoEntities,
): HeldBackMetrics {
  const forecaster = new Forecaster(model);
  const values = history.map((p) => p.value);
  const valueAt = new Map<number, number>();
  for (const p of history) valueAt.set(p.timeMs, p.value);
  const scale = model.normalisation.std;
  const start = Math.max(from, model.windowSize);
  let points = 0;
  let modelSum = 0;
  let lastSum = 0;
  let seasonalPoints = 0;
  let modelSeasonalSum = 0;
  let seasonalSum = 0;
  for (let t = start; t < history.length; t++) {
    const { timeMs, value } = history[t] as HistoryPoint;
    const windows = co?.windowsAt(t, model);
    if (!forecaster.ready(windows)) continue;
    const predicted = forecaster.predict(values.slice(t - model.windowSize, t), timeMs, windows);
    const modelError = Math.abs(value - predicted) / scale;
    points += 1;
    modelSum += modelError;
    lastSum += Math.abs(value - (values[t - 1] as number)) / scale;
    const yesterday = valueAt.get(timeMs - DAY_MS);
    if (yesterday !== undefined) {
      seasonalPoints += 1;
      modelSeasonalSum += modelError;
      seasonalSum += Math.abs(value - yesterday) / scale;
    }
  }
  const seasonal = points > 0 && seasonalPoints >= MIN_SEASONAL_SHARE * points;
  return {
    heldBackPoints: points,
    modelMae: points > 0 ? modelSum / points : Number.NaN,
    repeatLastMae: points > 0 ? lastSum / points : Number.NaN,
    seasonalPoints,
    modelSeasonalMae: seasonal ? modelSeasonalSum / seasonalPoints : null,
    seasonalNaiveMae: seasonal ? seasonalSum / seasonalPoints : null,
  };
}

const fixed = (x: number) => x.toPrecision(3);

/** Accepts the model only if it beats every naive baseline available on the held-back data. */
export function judgeModel(metrics: HeldBackMetrics): GateVerdict {
  const reject = (reason: string): GateVerdict => ({ accepted: false, reason, metrics });
  if (metrics.heldBackPoints < MIN_HELD_BACK) {
    return reject(
      `only ${metrics.heldBackPoints} held-back readings to judge the model (need ${MIN_HELD_BACK})`,
    );
  }
  if (!(metrics.modelMae < metrics.repeatLastMae)) {
    return reject(
      `mean absolute forecast error ${fixed(metrics.modelMae)} is not below repeating the last value ` +
        `(${fixed(metrics.repeatLastMae)}) on ${metrics.heldBackPoints} held-back readings`,
    );
  }
  if (
    metrics.modelSeasonalMae !== null &&
    metrics.seasonalNaiveMae !== null &&
    !(metrics.modelSeasonalMae < metrics.seasonalNaiveMae)
  ) {
    return reject(
      `mean absolute forecast error ${fixed(metrics.modelSeasonalMae)} is not below repeating yesterday's ` +
        `value (${fixed(metrics.seasonalNaiveMae)}) on ${metrics.seasonalPoints} held-back readings`,
    );
  }
  return { accepted: true, reason: null, metrics };
}

/**
 * Trains on all but the held-back part of `history` and judges the model on that part. The
 * model is returned either way, so a rejection can be recorded with its metrics. `co`: the
 * other entities' readings, for a model that reads them (as-of alignment never looks ahead,
 * so training sees none of the held-back readings through them).
 */
export async function trainAndJudge(
  history: readonly HistoryPoint[],
  train: (history: HistoryPoint[]) => Promise<TrainedModel>,
  co: readonly CoEntitySeries[] = [],
): Promise<{ model: TrainedModel; verdict: GateVerdict }> {
  const from = heldBackStart(history.length);
  const model = await train(history.slice(0, from));
  const aligned = co.length > 0 ? new AlignedCoEntities(history, co) : undefined;
  return { model, verdict: judgeModel(measureHeldBack(model, history, from, aligned)) };
}
