import { describe, expect, it } from 'vitest';
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
  options: { beforeSave?: (states: Map<string, SavedDetectorState>) => void } = {},
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
      active: async () => [],
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
    models: { save: async () => {}, load: async () => null },
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
});
