import { createAdvancedDetector, createDetector, type DetectorKind } from './detector.ts';
import type { MeasuringRange } from './measuring-range.ts';
import type { TrainedModel } from './model.ts';
import { type GateVerdict, trainAndJudge } from './quality-gate.ts';
import {
  type HistoryPoint,
  TrainingDataError,
  type TrainingOptions,
  trainModel,
} from './training.ts';

/**
 * Scores a whole recorded series the way the live path would have scored it reading by
 * reading. The advanced detector learns its model from the opening readings only (NAB's
 * probationary period: 15% of the series, at most 750 readings) and uses it from the next
 * reading on, so every score still depends only on the past.
 */

export interface SeriesScores {
  scores: number[];
  /** The model the advanced detector trained, when it could train one (even if rejected). */
  model: TrainedModel | null;
  /** The quality gate's verdict on that model. */
  verdict: GateVerdict | null;
  /** Why no model was trained, when training was refused. */
  trainingError: TrainingDataError | null;
  trainingMs: number;
  scoringMs: number;
  /** Size of the detector's state after the last reading, as JSON. */
  stateBytes: number;
}

export function trainingLength(readings: number): number {
  return Math.min(Math.floor(readings * 0.15), 750);
}

export async function scoreSeries(
  points: readonly HistoryPoint[],
  detector: DetectorKind,
  training: TrainingOptions = {},
  /** The entity's measuring range (advanced only), when it has one. */
  measuringRange: MeasuringRange | null = null,
): Promise<SeriesScores> {
  const scores = new Array<number>(points.length);
  if (detector === 'basic') {
    const started = performance.now();
    const d = createDetector({ kind: 'basic' });
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as HistoryPoint;
      scores[i] = d.score(p.timeMs, p.value).score;
    }
    return {
      scores,
      model: null,
      verdict: null,
      trainingError: null,
      trainingMs: 0,
      scoringMs: performance.now() - started,
      stateBytes: JSON.stringify(d.snapshot({ shared: true })).length,
    };
  }
  const d = createAdvancedDetector(null, undefined, measuringRange);
  const trainAt = trainingLength(points.length);
  let model: TrainedModel | null = null;
  let verdict: GateVerdict | null = null;
  let trainingError: TrainingDataError | null = null;
  let trainingMs = 0;
  let scoringMs = 0;
  let started = performance.now();
  for (let i = 0; i < points.length; i++) {
    if (i === trainAt) {
      scoringMs += performance.now() - started;
      const trainStarted = performance.now();
      try {
        ({ model, verdict } = await trainAndJudge(points.slice(0, trainAt), (history) =>
          trainModel(history, training),
        ));
        if (verdict.accepted) d.useModel(model);
      } catch (error) {
        if (!(error instanceof TrainingDataError)) throw error;
        trainingError = error;
      }
      trainingMs = performance.now() - trainStarted;
      started = performance.now();
    }
    const p = points[i] as HistoryPoint;
    scores[i] = d.score(p.timeMs, p.value).score;
  }
  scoringMs += performance.now() - started;
  const stateBytes = JSON.stringify(d.snapshot({ shared: true })).length;
  return { scores, model, verdict, trainingError, trainingMs, scoringMs, stateBytes };
}
