import { describe, expect, it, vi } from 'vitest';
import {
  AnomalyScorer,
  ScoringContendedError,
} from '../../shared/anomalies/domain/anomaly-scorer.ts';
import type { ScoredDevice } from '../../shared/anomalies/domain/model.ts';
import type {
  DetectorStateStore,
  DetectorStateUpdate,
  SavedDetectorState,
} from '../../shared/anomalies/domain/ports.ts';
import { createLogger } from '../../shared/logger.ts';
import { AlignedCoEntities } from '../../shared/ml/domain/co-entities.ts';
import { createDetector } from '../../shared/ml/domain/detector.ts';
import {
  encodeFloat32,
  Forecaster,
  inputSize,
  parseTrainedModel,
  type TrainedModel,
  unmeasuredMetrics,
} from '../../shared/ml/domain/model.ts';
import { mulberry32 } from '../../shared/ml/domain/seeded-random.ts';
import type { Prediction } from '../../shared/timeseries/domain/prediction-store.ts';
import type { Reading } from '../../shared/timeseries/reading.ts';

const device: ScoredDevice = {
  devicePk: 7,
  deviceId: 'PUMP_1',
  tenantId: 3,
  retentionPolicy: 'professional_plan',
  anomalyDetection: 'basic',
};

const reading = (timeMs: number, value: number): Reading => ({
  tenantId: 3,
  deviceId: 'PUMP_1',
  entityId: 'pressure',
  entityType: 'sensor',
  value,
  timeMs,
  retentionPolicy: 'professional_plan',
});

/** The ports in memory: states keyed by entity, with a hook that runs before each save. */
function inMemory(
  options: {
    beforeSave?: (states: Map<string, SavedDetectorState>) => void;
    /** An entity's active model. */
    active?: { entityId: string; model: TrainedModel };
  } = {},
) {
  const states = new Map<string, SavedDetectorState>();
  const written: Prediction[][] = [];
  let saves = 0;
  const store: DetectorStateStore = {
    async load(_tenantId, _devicePk, entityIds) {
      return entityIds.flatMap((id) =>
        states.has(id) ? [structuredClone(states.get(id))] : [],
      ) as SavedDetectorState[];
    },
    async saveIfUnchanged(_tenantId, _devicePk, detector, updates: DetectorStateUpdate[]) {
      saves += 1;
      options.beforeSave?.(states);
      if (updates.some((u) => (states.get(u.entityId)?.lastTimeMs ?? null) !== u.basedOn))
        return false;
      for (const u of updates)
        states.set(u.entityId, {
          entityId: u.entityId,
          detector,
          state: u.state,
          lastTimeMs: u.lastTimeMs,
        });
      return true;
    },
  };
  const scorer = new AnomalyScorer({
    states: store,
    registry: {
      list: async () => [],
      active: async (_tenantId, _devicePk, entityIds) =>
        options.active && entityIds.includes(options.active.entityId)
          ? [
              {
                entityId: options.active.entityId,
                version: options.active.model.version,
                storageKey: 'model',
              },
            ]
          : [],
      find: async () => undefined,
      activate: async () => undefined,
      record: async () => {
        throw new Error('not used');
      },
      trainingCandidates: async () => [],
    },
    predictions: {
      write: async (predictions) => {
        written.push(predictions);
      },
      query: async () => [],
    },
    models: { save: async () => {}, load: async () => options.active?.model ?? null },
    logger: createLogger('error', { service: 'test' }),
  });
  return { scorer, states, written, saves: () => saves };
}

describe('anomaly scorer (ports in memory)', () => {
  it('saves the new state after writing the scores, and does not score a reading twice', async () => {
    const { scorer, states, written } = inMemory();
    await scorer.score(device, [reading(1000, 1), reading(2000, 2)]);
    expect(states.get('pressure')?.lastTimeMs).toBe(2000);
    await scorer.score(device, [reading(2000, 2), reading(3000, 3)]);
    expect(written.map((batch) => batch.map((p) => p.timeMs))).toEqual([[1000, 2000], [3000]]);
  });

  it('scores again from the newer state when another invocation saved first', async () => {
    let armed = false;
    const { scorer, states, written, saves } = inMemory({
      beforeSave: (current) => {
        if (!armed) return;
        armed = false;
        // Another invocation scored a reading of the same entity meanwhile and saved first.
        const saved = current.get('pressure') as SavedDetectorState;
        current.set('pressure', { ...saved, lastTimeMs: 4000 });
      },
    });
    await scorer.score(device, [reading(1000, 1)]);
    armed = true;
    await scorer.score(device, [reading(4000, 4), reading(5000, 5)]);
    expect(saves()).toBe(3);
    // The second attempt starts after 4000, so only 5000 is scored again and saved.
    expect(written.map((batch) => batch.map((p) => p.timeMs))).toEqual([
      [1000],
      [4000, 5000],
      [5000],
    ]);
    expect(states.get('pressure')?.lastTimeMs).toBe(5000);
  });

  it('gives up with ScoringContendedError when the state keeps moving, and never saves then', async () => {
    let bump = 10_000;
    const { scorer, states } = inMemory({
      beforeSave: (current) => {
        bump += 1;
        current.set('pressure', {
          entityId: 'pressure',
          detector: 'basic',
          state: null,
          lastTimeMs: bump,
        });
      },
    });
    await expect(scorer.score(device, [reading(1_000_000, 1)])).rejects.toBeInstanceOf(
      ScoringContendedError,
    );
    expect(states.get('pressure')?.lastTimeMs).toBe(bump);
  });

  it('leaves the state where it was when the prediction store refuses the scores', async () => {
    let saves = 0;
    const failing = new AnomalyScorer({
      states: {
        load: async () => [
          { entityId: 'pressure', detector: 'basic', state: null, lastTimeMs: 1000 },
        ],
        saveIfUnchanged: async () => {
          saves += 1;
          return true;
        },
      },
      registry: {
        list: async () => [],
        active: async () => [],
        find: async () => undefined,
        activate: async () => undefined,
        record: async () => {
          throw new Error('not used');
        },
        trainingCandidates: async () => [],
      },
      predictions: {
        write: async () => {
          throw new Error('InfluxDB unavailable');
        },
        query: async () => [],
      },
      models: { save: async () => {}, load: async () => null },
      logger: createLogger('error', { service: 'test' }),
    });
    await expect(failing.score(device, [reading(2000, 2)])).rejects.toThrow('InfluxDB unavailable');
    expect(saves).toBe(0);
  });

  it('gives a model that reads another entity its value as of each reading, whichever batch brought it', async () => {
    // A linear model over 4 temperatures and the current as of the last 3 of them.
    const shape = { windowSize: 4, coWindow: 3, timeOfDay: true };
    const coEntities = [{ entityId: 'current', normalisation: { mean: 5, std: 2 } }];
    const inputs = inputSize(shape.windowSize, { ...shape, coEntities });
    const random = mulberry32(5);
    const kernel = Float32Array.from({ length: inputs }, () => random() - 0.5);
    const model = parseTrainedModel({
      kind: 'dense-forecaster',
      format: 1,
      version: 'with-current',
      trainedAt: new Date(0).toISOString(),
      ...shape,
      coEntities,
      normalisation: { mean: 50, std: 5 },
      residual: { mean: 0, std: 1 },
      threshold: 2.5,
      tailExcess: 1,
      layers: [{ units: 1, activation: 'linear' }],
      metrics: unmeasuredMetrics('none'),
      weights: {
        specs: [
          { name: 'dense_0/kernel', shape: [inputs, 1], dtype: 'float32' },
          { name: 'dense_0/bias', shape: [1], dtype: 'float32' },
        ],
        dataBase64: encodeFloat32([kernel, Float32Array.of(0.1)]),
      },
    });
    // Separate state messages: the current on the minute, the temperature 20 s later.
    const at = (entityId: string, timeMs: number, value: number): Reading => ({
      ...reading(timeMs, value),
      entityId,
    });
    const temperatures: Array<{ timeMs: number; value: number }> = [];
    const currents: Array<{ timeMs: number; value: number }> = [];
    const arrivals: Reading[] = [];
    for (let n = 0; n < 120; n++) {
      const current = { timeMs: n * 60_000, value: 5 + 3 * Math.sin(n / 7) + random() };
      const temperature = { timeMs: n * 60_000 + 20_000, value: 50 + 4 * Math.sin(n / 7 - 0.5) };
      currents.push(current);
      temperatures.push(temperature);
      arrivals.push(at('current', current.timeMs, current.value));
      arrivals.push(at('temperature', temperature.timeMs, temperature.value));
    }
    const advanced = { ...device, anomalyDetection: 'advanced' as const };
    const { scorer, written } = inMemory({ active: { entityId: 'temperature', model } });
    const predict = vi.spyOn(Forecaster.prototype, 'predict');
    try {
      // Batches of 1 to 6 messages: some hold only a current, some a current after the temperature.
      for (let i = 0, size = 1; i < arrivals.length; i += size, size = (size % 6) + 1) {
        await scorer.score(advanced, arrivals.slice(i, i + size));
      }
      const scored = written.flat().filter((p) => p.entityId === 'temperature');
      expect(scored.map((p) => p.timeMs)).toEqual(temperatures.map((p) => p.timeMs));
      const given = predict.mock.calls.map(([, timeMs, co]) => [timeMs, co]);
      // From the fifth temperature on (its window full), each with the currents as of it.
      expect(given).toHaveLength(116);
      expect(given[6]).toEqual([
        (temperatures[10] as { timeMs: number }).timeMs,
        [currents.slice(8, 11).map((p) => p.value)],
      ]);

      // One detector over the whole series, the current aligned by the shared definition.
      predict.mockClear();
      const aligned = new AlignedCoEntities(temperatures, [
        { entityId: 'current', points: currents },
      ]);
      const reference = createDetector({ kind: 'advanced', model });
      const expected = temperatures.map(
        (p, t) => reference.score(p.timeMs, p.value, aligned.windowsAt(t, model)).score,
      );
      expect(predict.mock.calls.map(([, timeMs, co]) => [timeMs, co])).toEqual(given);
      expect(scored.map((p) => p.score)).toEqual(expected);
    } finally {
      predict.mockRestore();
    }
  });
});
