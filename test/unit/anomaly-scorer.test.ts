import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  AnomalyScorer,
  ScoringContendedError,
} from '../../shared/anomalies/domain/anomaly-scorer.ts';
import type { DetectedAnomaly, ScoredDevice } from '../../shared/anomalies/domain/model.ts';
import type {
  DetectorStateStore,
  DetectorStateUpdate,
  ModelRegistry,
  SavedDetectorState,
  ScoringLedger,
  StoredReadingSource,
} from '../../shared/anomalies/domain/ports.ts';
import {
  AnomalyScoringPass,
  LATE_FOR_SCORING_MS,
  POSITION_LAG_MS,
} from '../../shared/anomalies/domain/scoring-pass.ts';
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

/** A registry without trained models. */
const noModels: ModelRegistry = {
  list: async () => [],
  active: async () => [],
  find: async () => undefined,
  activate: async () => undefined,
  record: async () => {
    throw new Error('not used');
  },
  trainingCandidates: async () => [],
};

/** A saved state's key in memory: device and entity. */
const keyOf = (devicePk: number, entityId: string) => `${devicePk}/${entityId}`;

/**
 * The ports in memory: states keyed by device and entity, with a hook that runs before each
 * save and a log of what each store call was asked.
 */
function inMemory(
  options: {
    beforeSave?: (states: Map<string, SavedDetectorState>) => void;
    /** An entity's active model (on every device). */
    active?: { entityId: string; model: TrainedModel };
    /** Whether the prediction store refuses this write (a store unavailable). */
    refuseWrite?: () => boolean;
  } = {},
) {
  const states = new Map<string, SavedDetectorState>();
  const written: Prediction[][] = [];
  const calls: string[] = [];
  let saves = 0;
  const store: DetectorStateStore = {
    async load(tenantId, wanted) {
      calls.push(`load ${tenantId}`);
      const found = new Map<number, SavedDetectorState[]>();
      for (const { devicePk, entityIds } of wanted) {
        const saved = entityIds.flatMap((id) => {
          const state = states.get(keyOf(devicePk, id));
          return state ? [structuredClone(state)] : [];
        });
        if (saved.length > 0) found.set(devicePk, saved);
      }
      return found;
    },
    async saveIfUnchanged(tenantId, deviceSaves) {
      calls.push(`save ${tenantId}`);
      saves += 1;
      options.beforeSave?.(states);
      const moved = new Set<number>();
      for (const { devicePk, detector, updates } of deviceSaves) {
        const unchanged = updates.every(
          (u: DetectorStateUpdate) =>
            (states.get(keyOf(devicePk, u.entityId))?.lastTimeMs ?? null) === u.basedOn,
        );
        if (!unchanged) {
          moved.add(devicePk);
          continue;
        }
        for (const u of updates)
          states.set(keyOf(devicePk, u.entityId), {
            entityId: u.entityId,
            detector,
            state: structuredClone(u.state),
            lastTimeMs: u.lastTimeMs,
          });
      }
      return moved;
    },
  };
  const scorer = new AnomalyScorer({
    states: store,
    registry: {
      list: async () => [],
      active: async (tenantId, wanted) => {
        calls.push(`active ${tenantId}`);
        const { active } = options;
        return active
          ? wanted
              .filter(({ entityIds }) => entityIds.includes(active.entityId))
              .map(({ devicePk }) => ({
                devicePk,
                entityId: active.entityId,
                version: active.model.version,
                storageKey: 'model',
              }))
          : [];
      },
      find: async () => undefined,
      activate: async () => undefined,
      record: async () => {
        throw new Error('not used');
      },
      trainingCandidates: async () => [],
    },
    predictions: {
      write: async (predictions) => {
        calls.push('write');
        if (options.refuseWrite?.()) throw new Error('prediction store unavailable');
        written.push(predictions);
      },
      query: async () => [],
    },
    models: { save: async () => {}, load: async () => options.active?.model ?? null },
    logger: createLogger('error', { service: 'test' }),
  });
  return { scorer, states, written, calls, saves: () => saves };
}

/** A linear model over 4 temperatures and the current as of the last 3 of them. */
function temperatureModel(random: () => number): TrainedModel {
  const shape = { windowSize: 4, coWindow: 3, timeOfDay: true };
  const coEntities = [{ entityId: 'current', normalisation: { mean: 5, std: 2 } }];
  const inputs = inputSize(shape.windowSize, { ...shape, coEntities });
  const kernel = Float32Array.from({ length: inputs }, () => random() - 0.5);
  return parseTrainedModel({
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
}

describe('anomaly scorer (ports in memory)', () => {
  it('saves the new state after writing the scores, and does not score a reading twice', async () => {
    const { scorer, states, written } = inMemory();
    await scorer.score(device, [reading(1000, 1), reading(2000, 2)]);
    expect(states.get(keyOf(7, 'pressure'))?.lastTimeMs).toBe(2000);
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
        const saved = current.get(keyOf(7, 'pressure')) as SavedDetectorState;
        current.set(keyOf(7, 'pressure'), { ...saved, lastTimeMs: 4000 });
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
    expect(states.get(keyOf(7, 'pressure'))?.lastTimeMs).toBe(5000);
  });

  it('gives up with ScoringContendedError when the state keeps moving, and never saves then', async () => {
    let bump = 10_000;
    const { scorer, states } = inMemory({
      beforeSave: (current) => {
        bump += 1;
        current.set(keyOf(7, 'pressure'), {
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
    expect(states.get(keyOf(7, 'pressure'))?.lastTimeMs).toBe(bump);
  });

  it('leaves the state where it was when the prediction store refuses the scores', async () => {
    let saves = 0;
    const failing = new AnomalyScorer({
      states: {
        load: async () =>
          new Map([
            [7, [{ entityId: 'pressure', detector: 'basic', state: null, lastTimeMs: 1000 }]],
          ]),
        saveIfUnchanged: async () => {
          saves += 1;
          return new Set<number>();
        },
      },
      registry: noModels,
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
    const random = mulberry32(5);
    const model = temperatureModel(random);
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

const ENTITIES = ['temperature', 'current', 'pressure'] as const;
/**
 * A reading of one of six devices' entities at minute `minute` (up to `maxMinute`, plus
 * `second`) of its batch, the value drawn.
 */
const arrivalUpTo = (maxMinute: number) =>
  fc.record({
    device: fc.nat({ max: 5 }),
    entity: fc.constantFrom(...ENTITIES),
    minute: fc.nat({ max: maxMinute }),
    second: fc.nat({ max: 59 }),
    value: fc.oneof(
      { weight: 9, arbitrary: fc.double({ min: 40, max: 60, noNaN: true }) },
      // Spikes, so that some readings are anomalies.
      { weight: 1, arbitrary: fc.double({ min: 500, max: 1000, noNaN: true }) },
    ),
  });

describe('anomaly scorer, a batch at once against device by device (property)', () => {
  const arrival = arrivalUpTo(40);
  const scenario = fc.record({
    /** Each device's tenant (1-3) and plan level. */
    devices: fc.array(
      fc.record({
        tenant: fc.integer({ min: 1, max: 3 }),
        level: fc.constantFrom('none', 'basic', 'advanced'),
      }),
      { minLength: 6, maxLength: 6 },
    ),
    /** Batches in stream order; minutes go forward batch by batch, with repeats and late ones. */
    batches: fc.array(fc.array(arrival, { maxLength: 30 }), { minLength: 1, maxLength: 8 }),
  });

  it('gives the same predictions, anomalies and saved states, bit for bit, in one load and one save per tenant', async () => {
    const model = temperatureModel(mulberry32(11));
    await fc.assert(
      fc.asyncProperty(scenario, async ({ devices, batches }) => {
        const scored = devices.map(
          ({ tenant, level }, i): ScoredDevice => ({
            devicePk: 100 + i,
            deviceId: `D${i}`,
            tenantId: tenant,
            retentionPolicy: `plan_${tenant}`,
            anomalyDetection: level as ScoredDevice['anomalyDetection'],
          }),
        );
        const alone = inMemory({ active: { entityId: 'temperature', model } });
        const together = inMemory({ active: { entityId: 'temperature', model } });
        for (const [b, batch] of batches.entries()) {
          const groups = scored
            .map((device, i) => ({
              device,
              readings: batch
                .filter((a) => a.device === i)
                .map(
                  (a): Reading => ({
                    tenantId: device.tenantId,
                    deviceId: device.deviceId,
                    entityId: a.entity,
                    entityType: a.entity === 'pressure' ? 'number' : 'sensor',
                    value: a.value,
                    timeMs: (b * 20 + a.minute) * 60_000 + a.second * 1000,
                    retentionPolicy: device.retentionPolicy,
                  }),
                ),
            }))
            .filter((group) => group.readings.length > 0);
          const oneByOne: DetectedAnomaly[][] = [];
          for (const { device, readings } of groups) {
            oneByOne.push(await alone.scorer.score(device, readings));
          }
          together.calls.length = 0;
          const outcomes = await together.scorer.scoreBatch(groups);
          expect(outcomes).toEqual(oneByOne.map((anomalies) => ({ anomalies })));
          const tenants = new Set(
            groups
              .filter(({ device }) => device.anomalyDetection !== 'none')
              .map(({ device }) => device.tenantId),
          );
          // At most: models and states loaded, and states saved, once per tenant; one write.
          expect(together.calls.filter((c) => c.startsWith('load'))).toHaveLength(tenants.size);
          expect(together.calls.filter((c) => c === 'write').length).toBeLessThanOrEqual(1);
          expect(together.calls.filter((c) => c.startsWith('save')).length).toBeLessThanOrEqual(
            tenants.size,
          );
        }
        const byKey = (p: Prediction) => `${p.deviceId}/${p.entityId}/${p.timeMs}`;
        const sorted = (written: Prediction[][]) =>
          written.flat().sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1));
        expect(sorted(together.written)).toEqual(sorted(alone.written));
        expect(together.states).toEqual(alone.states);
      }),
      { numRuns: 60, seed: 23 },
    );
  });

  it('splits a large tenant in four groups loaded and saved side by side, with the same scores', async () => {
    const fleet = Array.from({ length: 1000 }, (_, i) => ({
      device: { ...device, devicePk: 1000 + i, deviceId: `P${i}` },
      readings: [1, 2, 3].map((n) => ({ ...reading(n * 60_000, (i % 13) * n), deviceId: `P${i}` })),
    }));
    const alone = inMemory();
    const together = inMemory();
    const oneByOne = [];
    for (const { device: d, readings } of fleet)
      oneByOne.push(await alone.scorer.score(d, readings));
    const outcomes = await together.scorer.scoreBatch(fleet);
    expect(outcomes).toEqual(oneByOne.map((anomalies) => ({ anomalies })));
    expect(together.states).toEqual(alone.states);
    expect(together.calls.filter((c) => c.startsWith('load'))).toHaveLength(4);
    expect(together.calls.filter((c) => c.startsWith('save'))).toHaveLength(4);
    expect(together.calls.filter((c) => c === 'write')).toHaveLength(1);
  });

  it('scores again only the devices whose states moved, and fails only a tenant whose store failed', async () => {
    let armed = true;
    const { scorer, written, states } = inMemory({
      beforeSave: (current) => {
        if (!armed) return;
        armed = false;
        // Another invocation saved device 8's pressure meanwhile.
        current.set(keyOf(8, 'pressure'), {
          entityId: 'pressure',
          detector: 'basic',
          state: null,
          lastTimeMs: 1500,
        });
      },
    });
    const other = { ...device, devicePk: 8, deviceId: 'PUMP_2' };
    const outcomes = await scorer.scoreBatch([
      { device, readings: [reading(1000, 1), reading(2000, 2)] },
      { device: other, readings: [reading(1000, 1), reading(2000, 2)] },
    ]);
    expect(outcomes).toEqual([{ anomalies: [] }, { anomalies: [] }]);
    // The second pass scored only device 8, from its newer state: only 2000 is after 1500.
    expect(written.map((batch) => batch.map((p) => `${p.deviceId}@${p.timeMs}`))).toEqual([
      ['PUMP_1@1000', 'PUMP_1@2000', 'PUMP_2@1000', 'PUMP_2@2000'],
      ['PUMP_2@2000'],
    ]);
    expect(states.get(keyOf(8, 'pressure'))?.lastTimeMs).toBe(2000);

    const broken = new AnomalyScorer({
      states: {
        load: async (tenantId) => {
          if (tenantId === 4) throw new Error('tenant 4 unavailable');
          return new Map();
        },
        saveIfUnchanged: async () => new Set<number>(),
      },
      registry: noModels,
      predictions: { write: async () => {}, query: async () => [] },
      models: { save: async () => {}, load: async () => null },
      logger: createLogger('error', { service: 'test' }),
    });
    const failed = await broken.scoreBatch([
      { device, readings: [reading(1000, 1)] },
      { device: { ...device, devicePk: 9, tenantId: 4 }, readings: [reading(1000, 1)] },
    ]);
    expect(failed[0]).toEqual({ anomalies: [] });
    expect((failed[1] as { failed: Error }).failed.message).toBe('tenant 4 unavailable');
  });
});

describe('the scheduled scoring pass against scoring in ingestion (property)', () => {
  const MINUTE = 60_000;
  /** Minutes within the batch's 20: devices report in time order, some stored long after. */
  const arrival = arrivalUpTo(19);
  const scenario = fc.record({
    /** Each tenant's plan level (tenants 1-3). */
    levels: fc.array(fc.constantFrom('none', 'basic', 'advanced'), {
      minLength: 3,
      maxLength: 3,
    }),
    /** Each device's tenant. */
    devices: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 6, maxLength: 6 }),
    /** Each batch with whether a pass runs after it, and whether that pass's writes fail. */
    batches: fc.array(
      fc.record({
        arrivals: fc.array(arrival, { maxLength: 30 }),
        pass: fc.boolean(),
        failing: fc.boolean(),
        /** Minutes between the batch's readings and the batch being stored. */
        delay: fc.constantFrom(0, 0, 1, 30, 600),
      }),
      { minLength: 1, maxLength: 8 },
    ),
  });

  it('scores every stored reading once, in order: the same predictions, anomalies and states; a failed pass is redone and reports no anomaly twice', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ levels, devices, batches }) => {
        const scored = devices.map(
          (tenant, i): ScoredDevice => ({
            devicePk: 100 + i,
            deviceId: `D${i}`,
            tenantId: tenant,
            retentionPolicy: `plan_${tenant}`,
            anomalyDetection: levels[tenant - 1] as ScoredDevice['anomalyDetection'],
          }),
        );
        let clock = 0;
        let failing = false;
        const inIngestion = inMemory();
        const onSchedule = inMemory({ refuseWrite: () => failing });
        // The store's side: what is stored, and each device's read position (as in SQL).
        const stored: Reading[] = [];
        const positions = new Map<number, { readFromMs: number; generation: number }>();
        const ledger: ScoringLedger = {
          tenants: async () => [1, 2, 3],
          tenant: async (tenantId) => {
            const own = scored.filter((d) => d.tenantId === tenantId);
            const level = levels[tenantId - 1] as ScoredDevice['anomalyDetection'];
            if (level === 'none') return undefined;
            return {
              tenantId,
              level,
              retentionPolicy: `plan_${tenantId}`,
              devices: own.map((d) => ({
                devicePk: d.devicePk,
                deviceId: d.deviceId,
                readFromMs: positions.get(d.devicePk)?.readFromMs ?? -POSITION_LAG_MS,
                generation: positions.get(d.devicePk)?.generation ?? -1,
              })),
            };
          },
          advance: async (_tenantId, moves) => {
            for (const move of moves) {
              const known = positions.get(move.devicePk);
              if (!known && move.generation < 0)
                positions.set(move.devicePk, { readFromMs: move.readFromMs, generation: 0 });
              else if (known && known.generation === move.generation)
                known.readFromMs = Math.max(known.readFromMs, move.readFromMs);
            }
          },
        };
        const source: StoredReadingSource = {
          numericReadings: async ({ tenantId, deviceIds, fromMs, toMs }) => {
            const found = new Map<string, Reading[]>();
            for (const r of stored) {
              if (r.tenantId !== tenantId || !deviceIds.includes(r.deviceId)) continue;
              if (r.timeMs < fromMs || (toMs !== undefined && r.timeMs >= toMs)) continue;
              found.set(r.deviceId, [...(found.get(r.deviceId) ?? []), r]);
            }
            return found;
          },
        };
        const handedOver: string[] = [];
        const pushed: string[] = [];
        const key = (devicePk: number, a: DetectedAnomaly) =>
          `${devicePk}/${a.entityId}/${a.timeMs}`;
        const pass = new AnomalyScoringPass({
          ledger,
          readings: source,
          scorer: onSchedule.scorer,
          anomalies: {
            anomaliesFound: async (_now, found) => {
              for (const { devicePk, anomalies } of found)
                for (const a of anomalies) handedOver.push(key(devicePk, a));
            },
          },
          live: {
            publish: async (_tenantId, events) => {
              for (const e of events())
                pushed.push(`${e.device_id}/${e.entity_id}/${Date.parse(e.time)}`);
            },
          },
          logger: createLogger('error', { service: 'test' }),
          now: () => clock,
        });
        const expected: string[] = [];
        let newest = 0;
        let scoredTotal = 0;
        for (const [b, batch] of batches.entries()) {
          const groups = scored
            .map((device, i) => ({
              device,
              readings: batch.arrivals
                .filter((a) => a.device === i)
                .map(
                  (a): Reading => ({
                    tenantId: device.tenantId,
                    deviceId: device.deviceId,
                    entityId: a.entity,
                    entityType: a.entity === 'pressure' ? 'number' : 'sensor',
                    value: a.value,
                    timeMs: (b * 20 + a.minute) * MINUTE + a.second * 1000,
                    retentionPolicy: device.retentionPolicy,
                  }),
                )
                // One reading per entity and time: the store keeps the last written.
                .filter(
                  (r, n, all) =>
                    all.findIndex((o) => o.entityId === r.entityId && o.timeMs === r.timeMs) === n,
                ),
            }))
            .filter((group) => group.readings.length > 0);
          // Stored `delay` minutes after the batch's last minute (a buffer flushed late).
          clock = Math.max(clock, (b * 20 + 20 + batch.delay) * MINUTE);
          for (const [position, outcome] of (
            await inIngestion.scorer.scoreBatch(groups)
          ).entries()) {
            const { device } = groups[position] as (typeof groups)[number];
            if ('anomalies' in outcome)
              for (const a of outcome.anomalies) expected.push(key(device.devicePk, a));
          }
          for (const { device, readings } of groups) {
            stored.push(...readings);
            // What ingestion marks: a device's readings older than LATE_FOR_SCORING_MS.
            const late = readings.filter((r) => r.timeMs < clock - LATE_FOR_SCORING_MS);
            if (device.anomalyDetection === 'none' || late.length === 0) continue;
            const fromMs = Math.min(...late.map((r) => r.timeMs));
            const known = positions.get(device.devicePk);
            positions.set(device.devicePk, {
              readFromMs: Math.min(known?.readFromMs ?? fromMs, fromMs),
              generation: (known?.generation ?? 0) + 1,
            });
          }
          newest = clock;
          if (batch.pass) {
            failing = batch.failing;
            scoredTotal += (await pass.run()).scored;
            failing = false;
          }
        }
        clock = newest + MINUTE;
        let passes = 0;
        for (;;) {
          passes += 1;
          const summary = await pass.run();
          scoredTotal += summary.scored;
          if (summary.caughtUp) break;
        }
        // A device far behind is caught up over a few passes, not one unbounded read.
        expect(passes).toBeLessThan(20);
        const byKey = (p: Prediction) => `${p.deviceId}/${p.entityId}/${p.timeMs}`;
        const last = (written: Prediction[][]) => {
          const kept = new Map<string, Prediction>();
          for (const p of written.flat()) kept.set(byKey(p), p);
          return [...kept.values()].sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1));
        };
        expect(last(onSchedule.written)).toEqual(last(inIngestion.written));
        expect(onSchedule.states).toEqual(inIngestion.states);
        // Each reading counted once as scored, however often it was read.
        expect(scoredTotal).toBe(inIngestion.written.flat().length);
        expect([...new Set(handedOver)].sort()).toEqual([...expected].sort());
        // Dashboards hear of each anomaly once: only after its state is saved.
        expect([...pushed].sort()).toEqual([...expected].sort());
      }),
      { numRuns: 60, seed: 29 },
    );
  });
});
