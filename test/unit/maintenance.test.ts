import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCmapss, parseCmapssTruth, phm08Score } from '../../bench/cmapss.ts';
import { FileModelStore } from '../../shared/anomalies/adapters/model-stores.ts';
import {
  parseRulModel,
  type RulModel,
  RulPredictor,
} from '../../shared/maintenance/domain/rul-model.ts';
import {
  RulTrainingDataError,
  type RulTrainingOptions,
  type RunToFailure,
  trainRulModel,
} from '../../shared/maintenance/domain/rul-training.ts';
import {
  forecastThresholdCrossing,
  type ThresholdPoint,
} from '../../shared/maintenance/domain/time-to-threshold.ts';

import { FLEET_ENTITIES as ENTITIES, fleet, gaussian, seeded } from '../support/rul-fleet.ts';

const HOUR = 3_600_000;
const START = Date.UTC(2026, 0, 5);

const FAST: RulTrainingOptions = {
  backend: 'wasm',
  windowSize: 10,
  blockSize: 5,
  hidden: [16],
  epochs: 20,
  batchSize: 128,
  learningRate: 0.02,
  folds: 4,
  now: () => new Date('2026-01-05T00:00:00Z'),
};

function rmse(pairs: Array<[number, number]>): number {
  return Math.sqrt(pairs.reduce((s, [a, b]) => s + (a - b) ** 2, 0) / pairs.length);
}

describe('fleet remaining-useful-life model', () => {
  let model: RulModel;
  const training = fleet(16, 11);

  // About 3 s of CPU; a machine loaded by other work stretches it well past the default.
  beforeAll(async () => {
    model = await trainRulModel(
      { entities: ENTITIES, stepUnit: 'cycles', histories: training },
      FAST,
    );
  }, 180_000);

  it('reads only the entities that move with the remaining life', () => {
    expect(model.features.map((i) => ENTITIES[i])).toEqual(['temperature', 'vibration']);
    expect(model.members).toHaveLength(4);
    expect(model.version).toMatch(/^fleet-rul-1-[0-9a-f]{8}$/);
  });

  it('beats the fleet-mean-life baseline on held-back units and on a new fleet, so it is activated', () => {
    expect(model.evaluation.activate).toBe(true);
    expect(model.evaluation.rmse).toBeLessThan(model.evaluation.baselineRmse * 0.8);

    const predictor = new RulPredictor(model);
    const meanLife = model.evaluation.meanLife;
    const modelPairs: Array<[number, number]> = [];
    const baselinePairs: Array<[number, number]> = [];
    // New machines, cut off part-way like C-MAPSS test units.
    for (const unit of fleet(12, 99)) {
      for (const cut of [0.3, 0.6, 0.85, 0.97]) {
        const seen = Math.max(1, Math.floor(unit.rows.length * cut));
        const truth = Math.min(model.cap, unit.rows.length - seen);
        modelPairs.push([predictor.predict(unit.rows.slice(0, seen)).value, truth]);
        baselinePairs.push([Math.min(model.cap, Math.max(0, meanLife - seen)), truth]);
      }
    }
    expect(rmse(modelPairs)).toBeLessThan(rmse(baselinePairs) * 0.8);
  });

  it('gives an interval that holds the true remaining life for most held-back steps', () => {
    expect(model.evaluation.coverage).toBeGreaterThan(0.7);
    const predictor = new RulPredictor(model);
    let inside = 0;
    let total = 0;
    for (const unit of fleet(10, 123)) {
      for (let seen = 10; seen <= unit.rows.length; seen += 10) {
        const estimate = predictor.predict(unit.rows.slice(0, seen));
        const truth = unit.rows.length - seen;
        expect(estimate.low).toBeLessThanOrEqual(estimate.value);
        expect(estimate.high).toBeGreaterThanOrEqual(estimate.value);
        if (truth >= estimate.low && truth <= estimate.high) inside++;
        total++;
      }
    }
    expect(inside / total).toBeGreaterThan(0.65);
  });

  it('predicts identically after a JSON round trip and from the model store, and refuses a damaged model', async () => {
    const restored = parseRulModel(JSON.parse(JSON.stringify(model)));
    expect(restored.version).toBe(model.version);
    const before = new RulPredictor(model);
    const after = new RulPredictor(restored);
    for (const unit of training.slice(0, 3)) {
      for (const seen of [1, 7, 40, unit.rows.length]) {
        expect(after.predict(unit.rows.slice(0, seen))).toEqual(
          before.predict(unit.rows.slice(0, seen)),
        );
      }
    }

    const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-rul-'));
    try {
      const store = new FileModelStore(dir, parseRulModel);
      await store.save(`tenant-1/fleet-pump/${model.version}`, model);
      const loaded = await store.load(`tenant-1/fleet-pump/${model.version}`);
      if (loaded === null) throw new Error('stored model not found');
      const unit = training[4] as RunToFailure;
      expect(new RulPredictor(loaded).predict(unit.rows)).toEqual(before.predict(unit.rows));
      expect(await store.load('tenant-1/fleet-pump/missing')).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const damaged = structuredClone(model);
    damaged.normalisation.std = damaged.normalisation.std.slice(1);
    expect(() => new RulPredictor(parseRulModel(damaged))).toThrow(/normalisation/);
    expect(() => parseRulModel({ ...model, cap: 0 })).toThrow();
  });

  it('carries a missing reading forward instead of reading it as a value', () => {
    const predictor = new RulPredictor(model);
    const rows = (training[0] as RunToFailure).rows.slice(0, 60).map((r) => [...r]);
    const withGap = rows.map((r, i) =>
      i === 59 ? [Number.NaN, r[1] as number, r[2] as number, r[3] as number] : r,
    );
    const repeated = rows.map((r, i) =>
      i === 59
        ? [(rows[58] as number[])[0] as number, r[1] as number, r[2] as number, r[3] as number]
        : r,
    );
    expect(predictor.predict(withGap)).toEqual(predictor.predict(repeated));
  });
});

describe('fleet model activation and training data', () => {
  it('is not activated when the fleet mean life already predicts every machine', async () => {
    // Every machine lives exactly 150 steps: "mean life minus age" is the truth itself.
    const histories = fleet(8, 5, () => 150);
    const model = await trainRulModel(
      { entities: ENTITIES, stepUnit: 'hours', histories },
      { ...FAST, epochs: 5 },
    );
    expect(model.evaluation.baselineRmse).toBeLessThan(1e-3);
    expect(model.evaluation.activate).toBe(false);
    expect(model.stepUnit).toBe('hours');
  });

  it('refuses too few histories, ragged rows and entities that say nothing, with typed errors', async () => {
    const two = fleet(2, 3);
    await expect(
      trainRulModel({ entities: ENTITIES, stepUnit: 'cycles', histories: two }, FAST),
    ).rejects.toMatchObject({ name: 'RulTrainingDataError', reason: 'too-few-histories' });
    const ragged = fleet(5, 3);
    ragged[2] = { id: 'ragged', rows: [...(ragged[2] as RunToFailure).rows.slice(0, 4), [1, 2]] };
    await expect(
      trainRulModel({ entities: ENTITIES, stepUnit: 'cycles', histories: ragged }, FAST),
    ).rejects.toMatchObject({ reason: 'bad-row' });
    const noise = fleet(5, 3).map((h) => ({ ...h, rows: h.rows.map((r) => [21, r[2] as number]) }));
    await expect(
      trainRulModel(
        { entities: ['setpoint', 'humidity'], stepUnit: 'cycles', histories: noise },
        FAST,
      ),
    ).rejects.toBeInstanceOf(RulTrainingDataError);
  });
});

describe('C-MAPSS reader', () => {
  const row = (unit: number, cycle: number) =>
    `${unit} ${cycle} -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 14.62 21.61 554.36 2388.06 9046.19 1.30 47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.00 39.06 23.4190 `;

  it('groups rows by unit in cycle order with 24 features each', () => {
    const units = parseCmapss(`${row(1, 1)}\n${row(1, 2)}\n${row(2, 1)}\r\n\n`);
    expect(units.map((u) => [u.unit, u.cycles])).toEqual([
      [1, [1, 2]],
      [2, [1]],
    ]);
    expect(units[0]?.rows[0]).toHaveLength(24);
    expect(units[0]?.rows[0]?.[3]).toBe(518.67);
    expect(units[0]?.rows[0]?.[23]).toBe(23.419);
  });

  it('names the line of a short row or a skipped cycle', () => {
    expect(() => parseCmapss(`${row(1, 1)}\n1 2 0.1`)).toThrow(/line 2/);
    expect(() => parseCmapss(`${row(1, 1)}\n${row(1, 3)}`)).toThrow(/line 2: unit 1 jumps/);
    expect(parseCmapssTruth('112\n98\n\n69\n')).toEqual([112, 98, 69]);
    expect(() => parseCmapssTruth('112\nx')).toThrow(/truth line 2/);
  });

  it('scores late predictions harder than early ones (PHM08)', () => {
    expect(phm08Score(50, 50)).toBe(0);
    expect(phm08Score(60, 50)).toBeCloseTo(Math.E - 1, 12);
    expect(phm08Score(37, 50)).toBeCloseTo(Math.E - 1, 12);
    expect(phm08Score(60, 50)).toBeGreaterThan(phm08Score(40, 50));
  });
});

/** Hourly readings: level + drift per hour + daily swing + noise, optional spikes. */
function series(
  hours: number,
  shape: { level: number; drift: number; swing?: number; noise: number; spikes?: boolean },
  seed = 1,
): ThresholdPoint[] {
  const random = seeded(seed);
  return Array.from({ length: hours }, (_, i) => {
    const spike = shape.spikes && i % 37 === 5 ? 40 : 0;
    return {
      timeMs: START + i * HOUR,
      value:
        shape.level +
        shape.drift * i +
        (shape.swing ?? 0) * Math.sin((2 * Math.PI * i) / 24) +
        gaussian(random) * shape.noise +
        spike,
    };
  });
}

describe('time to threshold', () => {
  // 14 days of hourly rollups of oil temperature rising 0.05 °C/h from 70 °C: crosses 90 °C
  // at hour 400, i.e. 65 hours after the last reading (hour 335).
  const trueCrossing = START + 400 * HOUR;
  const last = START + 335 * HOUR;

  it('puts a known linear drift within 5% of the true crossing time, inside its interval', () => {
    const forecast = forecastThresholdCrossing(
      series(336, { level: 70, drift: 0.05, noise: 0.8 }),
      { above: 90 },
    );
    expect(forecast.trend).toBe('rising');
    expect(forecast.slopePerHour).toBeCloseTo(0.05, 2);
    const eta = forecast.eta;
    if (eta === null) throw new Error('expected a crossing');
    expect(Math.abs(eta.timeMs - trueCrossing)).toBeLessThan(0.05 * (trueCrossing - last));
    expect(eta.lowMs).toBeLessThanOrEqual(trueCrossing);
    expect(eta.highMs).toBeGreaterThanOrEqual(trueCrossing);
    expect(eta.lowMs).toBeGreaterThan(last);
  });

  it('sees through a daily cycle larger than the drift and through spikes', () => {
    const forecast = forecastThresholdCrossing(
      series(336, { level: 70, drift: 0.05, swing: 6, noise: 0.8, spikes: true }, 2),
      { above: 90 },
    );
    const eta = forecast.eta;
    if (eta === null) throw new Error('expected a crossing');
    expect(Math.abs(eta.timeMs - trueCrossing)).toBeLessThan(0.05 * (trueCrossing - last));
    expect(eta.lowMs).toBeLessThanOrEqual(trueCrossing);
    expect(eta.highMs).toBeGreaterThanOrEqual(trueCrossing);
  });

  it('forecasts a falling value towards a lower limit', () => {
    // Pressure falling 0.02 bar/h from 6 bar, limit 4 bar: crossing at hour 100.
    const forecast = forecastThresholdCrossing(
      series(72, { level: 6, drift: -0.02, noise: 0.03 }, 3),
      { above: 9, below: 4 },
    );
    expect(forecast.trend).toBe('falling');
    expect(forecast.limit).toEqual({ side: 'below', value: 4 });
    const eta = forecast.eta;
    if (eta === null) throw new Error('expected a crossing');
    const truth = START + 100 * HOUR;
    expect(Math.abs(eta.timeMs - truth)).toBeLessThan(0.05 * (truth - START - 71 * HOUR));
  });

  it.each([
    ['noise only', { level: 80, drift: 0, noise: 2 }],
    ['a daily cycle without drift', { level: 80, drift: 0, swing: 8, noise: 1 }],
    ['a flat line', { level: 80, drift: 0, noise: 0 }],
    ['a drift away from the limit', { level: 80, drift: -0.05, noise: 0.8 }],
    [
      'a drift too slow to reach the limit within the horizon',
      { level: 80, drift: 0.0005, noise: 0.01 },
    ],
  ])('gives no crossing for %s', (_, shape) => {
    const forecast = forecastThresholdCrossing(series(336, shape, 4), { above: 90 });
    expect(forecast.eta).toBeNull();
    expect(forecast.crossed).toBe(false);
  });

  it('says when the trend is already past the limit, and when the history is too short', () => {
    const past = forecastThresholdCrossing(series(48, { level: 95, drift: 0.01, noise: 0.5 }), {
      above: 90,
    });
    expect(past.crossed).toBe(true);
    expect(past.eta?.timeMs).toBe(START + 47 * HOUR);
    const short = forecastThresholdCrossing(series(5, { level: 70, drift: 1, noise: 0 }), {
      above: 90,
    });
    expect(short.trend).toBe('insufficient-data');
    expect(short.eta).toBeNull();
  });

  it('thins a long history without moving the forecast', () => {
    const points = series(24 * 45, { level: 50, drift: 0.03, noise: 0.5 }, 6);
    const full = forecastThresholdCrossing(points, { above: 90 }, { maxPoints: 2000 });
    const thinned = forecastThresholdCrossing(points, { above: 90 });
    const eta = full.eta?.timeMs ?? 0;
    const ahead = eta - (START + 1079 * HOUR);
    expect(ahead).toBeGreaterThan(0);
    expect(thinned.eta?.timeMs).toBeGreaterThan(eta - 0.02 * ahead);
    expect(thinned.eta?.timeMs).toBeLessThan(eta + 0.02 * ahead);
  });
});
