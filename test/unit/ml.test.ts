import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatScoresCsv, parseReadingsCsv } from '../../shared/ml/adapters/csv.ts';
import {
  type AdvancedState,
  DEFAULT_ADVANCED_CONFIG,
} from '../../shared/ml/domain/advanced-detector.ts';
import { surpriseToScore } from '../../shared/ml/domain/basic-detector.ts';
import {
  ADVANCED_DETECTOR,
  type AnomalyDetector,
  createAdvancedDetector,
  createDetector,
  DetectorStateError,
  restoreDetector,
} from '../../shared/ml/domain/detector.ts';
import { Forecaster, parseTrainedModel, type TrainedModel } from '../../shared/ml/domain/model.ts';
import {
  heldBackStart,
  judgeModel,
  measureHeldBack,
  trainAndJudge,
} from '../../shared/ml/domain/quality-gate.ts';
import { scoreSeries } from '../../shared/ml/domain/score-series.ts';
import {
  type HistoryPoint,
  loadTfModel,
  TrainingDataError,
  trainModel,
} from '../../shared/ml/domain/training.ts';
import { main as scoreCli } from '../../shared/ml/score-cli.ts';
import { biasedModel } from '../support/models.ts';

const FIVE_MINUTES = 300_000;
const START = Date.UTC(2026, 0, 5);

/** Five-minute readings with a daily cycle and Gaussian-ish noise, from a fixed seed. */
function dailyCycle(points: number, seed = 1): HistoryPoint[] {
  let s = seed >>> 0;
  const random = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: points }, (_, i) => {
    const noise = (random() + random() + random() + random() - 2) * 0.6;
    return {
      timeMs: START + i * FIVE_MINUTES,
      value: 50 + 10 * Math.sin((2 * Math.PI * i) / 288) + noise,
    };
  });
}

type Injection = (series: HistoryPoint[], at: number) => void;
const injections: Record<string, Injection> = {
  spike: (series, at) => {
    (series[at] as HistoryPoint).value += 25;
  },
  'level shift': (series, at) => {
    for (let i = at; i < series.length; i++) (series[i] as HistoryPoint).value += 12;
  },
  'stuck value': (series, at) => {
    const stuck = (series[at] as HistoryPoint).value;
    for (let i = at; i < Math.min(series.length, at + 150); i++)
      (series[i] as HistoryPoint).value = stuck;
  },
};

function run(detector: AnomalyDetector, series: readonly HistoryPoint[]) {
  return series.map((p) => detector.score(p.timeMs, p.value));
}

const LENGTH = 2016; // one week
const INJECT_AT = 1500;

let model: TrainedModel;
const trainingHistory = dailyCycle(INJECT_AT, 3);

beforeAll(async () => {
  // Small on purpose: the tests check behaviour, the benchmark checks quality.
  model = await trainModel(trainingHistory.slice(0, 800), { epochs: 8, backend: 'wasm' });
}, 30_000);

const detectors: Record<string, () => AnomalyDetector> = {
  basic: () => createDetector({ kind: 'basic' }),
  advanced: () => createAdvancedDetector(model),
};

describe.each(Object.keys(detectors))('%s detector', (kind) => {
  const make = () => (detectors[kind] as () => AnomalyDetector)();

  it('scores in [0, 1] and is deterministic', () => {
    const series = dailyCycle(LENGTH);
    const first = run(make(), series);
    const second = run(make(), series);
    for (const r of first) {
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
    }
    expect(second).toEqual(first);
  });

  it('is strictly online: later readings never change earlier scores', () => {
    const series = dailyCycle(LENGTH);
    injections['level shift']?.(series, INJECT_AT);
    const full = run(make(), series).map((r) => r.score);
    const prefix = run(make(), series.slice(0, 1600)).map((r) => r.score);
    expect(full.slice(0, 1600)).toEqual(prefix);
  });

  it('stays quiet on clean noise with a daily cycle', () => {
    const series = dailyCycle(LENGTH * 2, 9);
    const alarms = run(make(), series).filter((r) => r.anomalous).length;
    // Two weeks of five-minute readings: at most a couple of alarms.
    expect(alarms).toBeLessThanOrEqual(2);
  });

  it.each(Object.keys(injections))('flags an injected %s', (name) => {
    const series = dailyCycle(LENGTH);
    injections[name]?.(series, INJECT_AT);
    const results = run(make(), series);
    const before = results.slice(300, INJECT_AT).filter((r) => r.anomalous).length;
    const hit = results.slice(INJECT_AT, INJECT_AT + 60).findIndex((r) => r.anomalous);
    expect(before).toBeLessThanOrEqual(1);
    expect(hit).toBeGreaterThanOrEqual(0);
    expect(results[INJECT_AT + hit]?.reason).toEqual(expect.any(String));
  });

  it('continues identically from a JSON snapshot', () => {
    const series = dailyCycle(LENGTH);
    injections.spike?.(series, INJECT_AT);
    const uninterrupted = run(make(), series).map((r) => r.score);
    const first = make();
    const head = run(first, series.slice(0, 1000)).map((r) => r.score);
    const stored = JSON.parse(JSON.stringify(first.snapshot()));
    const restored = restoreDetector(stored, { model });
    const tail = run(restored, series.slice(1000)).map((r) => r.score);
    expect([...head, ...tail]).toEqual(uninterrupted);
  });

  it('rejects non-finite readings without touching its state', () => {
    const detector = make();
    run(detector, dailyCycle(200));
    const before = JSON.stringify(detector.snapshot());
    expect(() => detector.score(START, Number.NaN)).toThrow(RangeError);
    expect(JSON.stringify(detector.snapshot())).toBe(before);
  });
});

describe('detector state', () => {
  it("continues an advanced state saved before the range was kept, with the model's range", () => {
    const series = dailyCycle(LENGTH);
    const detector = createAdvancedDetector(model);
    run(detector, series.slice(0, 1000));
    const { range: _dropped, ...older } = detector.snapshot().state as AdvancedState;
    const restored = restoreDetector(
      JSON.parse(JSON.stringify({ kind: 'advanced', version: '1.0.0', state: older })),
      { model },
    );
    expect(restored.version).toBe(ADVANCED_DETECTOR.version);
    expect((restored.snapshot().state as { range: unknown }).range).toEqual(model.range);
    for (const r of run(restored, series.slice(1000))) expect(r.score).toBeLessThanOrEqual(1);
    expect(restored.snapshot().version).toBe(ADVANCED_DETECTOR.version);
  });

  it('loads a stored model from before the training range was kept', () => {
    const { range: _dropped, ...older } = JSON.parse(JSON.stringify(model)) as TrainedModel;
    const loaded = parseTrainedModel(older);
    expect(loaded.range).toBeUndefined();
    const scores = run(createAdvancedDetector(loaded), dailyCycle(600));
    expect(scores.every((r) => r.score >= 0 && r.score <= 1)).toBe(true);
  });

  it('refuses a state from another version or kind', () => {
    const state = createDetector({ kind: 'basic' }).snapshot();
    expect(() => restoreDetector({ ...state, version: '0.0.1' })).toThrow(DetectorStateError);
    expect(() => restoreDetector({ kind: 'other' })).toThrow(DetectorStateError);
    expect(() => restoreDetector(null)).toThrow(DetectorStateError);
  });
});

describe('advanced detector range', () => {
  it('flags a reading clearly outside every value the entity has shown, and not one inside', () => {
    const series = dailyCycle(LENGTH);
    const values = series.slice(0, INJECT_AT).map((p) => p.value);
    const [top, bottom] = [Math.max(...values), Math.min(...values)];
    const detector = createAdvancedDetector(model);
    run(detector, series.slice(0, INJECT_AT));
    const saved = JSON.parse(JSON.stringify(detector.snapshot()));
    const at = (series[INJECT_AT] as HistoryPoint).timeMs;
    // A range hit scores at least what its surprise alone gives, whatever the other signals say.
    const rangeScore = surpriseToScore(DEFAULT_ADVANCED_CONFIG.rangeSurprise, 8);
    const inside = restoreDetector(saved, { model }).score(at, top - 0.01);
    expect(inside.score).toBeLessThan(rangeScore);
    const outside = restoreDetector(saved, { model }).score(at, top + 0.2 * (top - bottom));
    expect(outside.anomalous).toBe(true);
    expect(outside.score).toBeGreaterThanOrEqual(rangeScore);
  });
});

describe('advanced model training', () => {
  it('refuses histories it cannot learn from, with a typed error', async () => {
    const short = dailyCycle(50);
    const constant = dailyCycle(500).map((p) => ({ ...p, value: 7 }));
    const broken = dailyCycle(500);
    (broken[100] as HistoryPoint).value = Number.NaN;
    for (const [history, reason] of [
      [short, 'too-few-points'],
      [constant, 'constant'],
      [broken, 'non-finite'],
    ] as const) {
      const error = await trainModel(history, { epochs: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TrainingDataError);
      expect((error as TrainingDataError).reason).toBe(reason);
    }
  });

  it('stores version, threshold, normalisation and metrics, and beats repeating the last value', () => {
    expect(model.version).toMatch(/^dense-forecaster-1-[0-9a-f]{8}$/);
    expect(model.threshold).toBeGreaterThan(0);
    expect(model.normalisation.std).toBeGreaterThan(0);
    expect(model.metrics.trainingPoints).toBe(800);
    expect(model.metrics.backend).toBe('wasm');
    expect(model.metrics.validationLoss).toBeLessThan(model.metrics.naiveValidationLoss);
  });

  it('serialises and deserialises to identical scores', () => {
    const series = dailyCycle(LENGTH);
    injections.spike?.(series, INJECT_AT);
    const reloaded = parseTrainedModel(JSON.parse(JSON.stringify(model)));
    expect(reloaded).toEqual(model);
    const original = run(createAdvancedDetector(model), series);
    const roundTripped = run(createAdvancedDetector(reloaded), series);
    expect(roundTripped).toEqual(original);
  });

  it('evaluates the network exactly as TensorFlow.js does', async () => {
    const net = await loadTfModel(model);
    const forecaster = new Forecaster(model);
    const window = trainingHistory.slice(100, 100 + model.windowSize).map((p) => p.value);
    const timeMs = (trainingHistory[100 + model.windowSize] as HistoryPoint).timeMs;
    const ours = forecaster.predict(window, timeMs);
    const input = Float32Array.from(forecaster.input);
    const { tensor2d } = await import('@tensorflow/tfjs');
    const x = tensor2d(input, [1, input.length]);
    const y = net.predict(x) as { dataSync(): Float32Array; dispose(): void };
    const theirs =
      (window.at(-1) as number) + (y.dataSync()[0] as number) * model.normalisation.std;
    x.dispose();
    y.dispose();
    net.dispose();
    expect(ours).toBeCloseTo(theirs, 4);
  });
});

describe('model quality gate', () => {
  const history = dailyCycle(1000, 3);
  const from = heldBackStart(history.length);

  it('accepts a model that forecasts held-back readings better than both naive forecasts', () => {
    const metrics = measureHeldBack(model, history, from);
    expect(metrics.heldBackPoints).toBe(history.length - from);
    // Five-minute readings over three and a half days: yesterday's twin exists for all.
    expect(metrics.seasonalPoints).toBe(metrics.heldBackPoints);
    const verdict = judgeModel(metrics);
    expect(verdict).toMatchObject({ accepted: true, reason: null });
    expect(metrics.modelMae).toBeLessThan(metrics.repeatLastMae);
    expect(metrics.modelSeasonalMae).toBeLessThan(metrics.seasonalNaiveMae as number);
  });

  it('rejects a deliberately bad model and says which baseline beat it', () => {
    const verdict = judgeModel(measureHeldBack(biasedModel(model, 3), history, from));
    expect(verdict.accepted).toBe(false);
    expect(verdict.metrics.modelMae).toBeGreaterThan(verdict.metrics.repeatLastMae);
    expect(verdict.reason).toMatch(/not below repeating the last value .* held-back readings/);
  });

  it("rejects a model that only yesterday's value beats", () => {
    const verdict = judgeModel({
      heldBackPoints: 100,
      modelMae: 0.5,
      repeatLastMae: 0.8,
      seasonalPoints: 100,
      modelSeasonalMae: 0.5,
      seasonalNaiveMae: 0.2,
    });
    expect(verdict.accepted).toBe(false);
    expect(verdict.reason).toMatch(/repeating yesterday's value/);
  });

  it('trains on all but the held-back tail and judges on the tail only', async () => {
    const seen: number[] = [];
    const { verdict } = await trainAndJudge(history, async (training) => {
      seen.push(training.length);
      return model;
    });
    expect(seen).toEqual([from]);
    expect(verdict.metrics.heldBackPoints).toBe(history.length - from);
  });
});

describe('score CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ml-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const csv = (series: readonly HistoryPoint[]) =>
    `timestamp,value\n${series
      .map(
        (p) =>
          `${new Date(p.timeMs).toISOString().slice(0, 19).replace('T', ' ')},${p.value.toFixed(3)}`,
      )
      .join('\n')}\n`;

  it('keeps row count and order and matches the in-process scoring', async () => {
    const input = path.join(dir, 'in.csv');
    const output = path.join(dir, 'out.csv');
    const series = dailyCycle(1200);
    injections.spike?.(series, 1000);
    await writeFile(input, csv(series));
    expect(await scoreCli([input, output, '--detector', 'basic'])).toBe(0);
    const text = await readFile(output, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('timestamp,value,anomaly_score');
    expect(lines).toHaveLength(1201);
    const readings = parseReadingsCsv(await readFile(input, 'utf8'));
    lines.slice(1).forEach((line, i) => {
      expect(line.startsWith(`${readings[i]?.timestamp},${readings[i]?.value},`)).toBe(true);
    });
    const inProcess = await scoreSeries(
      readings.map((r) => ({ timeMs: r.timeMs, value: r.numericValue })),
      'basic',
    );
    expect(text).toBe(formatScoresCsv(readings, inProcess.scores));
  });

  it('rejects a malformed CSV naming the line', async () => {
    const output = path.join(dir, 'bad-out.csv');
    const cases: Array<[string, RegExp]> = [
      ['time,reading\n2014-04-01 00:00:00,1\n', /line 1: .*no timestamp and value column/],
      ['timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n', /line 3: value "abc"/],
      ['timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n', /line 3: invalid timestamp/],
      ['timestamp,value\n2014-04-01 00:00:00,1,9\n', /line 2: expected 2 columns/],
    ];
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      errors.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      for (const [text, expected] of cases) {
        const input = path.join(dir, 'bad.csv');
        await writeFile(input, text);
        errors.length = 0;
        expect(await scoreCli([input, output])).toBe(1);
        expect(errors.join('')).toMatch(expected);
      }
      expect(await scoreCli([path.join(dir, 'in.csv')])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
  });
});
