import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDetectorState,
  encodeDetectorState,
  joinDetectorState,
  MAX_CHANGED_BLOCKS,
  type StoredProfile,
  splitDetectorState,
} from '../../shared/anomalies/adapters/detector-state-codec.ts';
import { dailyBin } from '../../shared/ml/domain/basic-detector.ts';
import { createDetector, restoreDetector } from '../../shared/ml/domain/detector.ts';

/** What the store gives back: the encoded text through PostgreSQL's jsonb, i.e. JSON. */
const roundTrip = (state: unknown) => decodeDetectorState(JSON.parse(encodeDetectorState(state)));

describe('detector state codec', () => {
  it('gives back exactly what a JSON round trip gives, for real detector states, in less space', () => {
    for (const kind of ['basic', 'advanced'] as const) {
      const detector = createDetector(kind === 'basic' ? { kind } : { kind, model: null });
      let t = Date.UTC(2026, 0, 1);
      for (let i = 0; i < 3000; i++) {
        t += 60_000;
        detector.score(t, 20 + Math.sin(i / 10) * 3);
      }
      const snapshot = detector.snapshot();
      expect(roundTrip(snapshot)).toEqual(JSON.parse(JSON.stringify(snapshot)));
      expect(encodeDetectorState(snapshot).length).toBeLessThan(
        JSON.stringify(snapshot).length * 0.8,
      );
      // The restored detector scores the next readings exactly as the one saved plainly.
      const plain = restoreDetector(JSON.parse(JSON.stringify(snapshot)));
      const packed = restoreDetector(roundTrip(snapshot));
      for (let i = 0; i < 50; i++) {
        const value = 20 + (i === 25 ? 40 : Math.cos(i));
        t += 60_000;
        expect(packed.score(t, value)).toEqual(plain.score(t, value));
      }
    }
  });

  it('property: any JSON document decodes to what JSON alone would give', () => {
    const number = fc.oneof(
      fc.double(),
      fc.constantFrom(-0, 0, Number.NaN, Number.POSITIVE_INFINITY, 1e-310),
    );
    const record = fc.record({ mean: number, variance: number, count: fc.nat() });
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        number,
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.array(number, { maxLength: 40 }),
        fc.array(record, { maxLength: 20 }),
        fc.array(tie('node'), { maxLength: 5 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 5 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (state) => {
        expect(roundTrip(state)).toEqual(JSON.parse(JSON.stringify(state)));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('reads a state stored before packing as it was', () => {
    const old = { kind: 'basic', state: { window: { values: [1, 2, 3, 4, 5, 6, 7, 8, 9] } } };
    expect(decodeDetectorState(JSON.parse(JSON.stringify(old)))).toEqual(old);
  });
});

/**
 * What the store keeps of a state saved in two parts: the state's text through jsonb, and the
 * stored profile (written whole, or changed blocks written into it); a load takes the blocks
 * asked for (all, none, or a run from `first` to `last`), as PostgresDetectorStates does.
 */
function twoPartStore() {
  let text: string | null = null;
  let profile: Buffer | null = null;
  let records = 0;
  let stored: StoredProfile | null = null;
  let profileWrites = 0;
  let blockWrites = 0;
  return {
    save(state: unknown) {
      const split = splitDetectorState(state, stored);
      text = split.state;
      if (split.profile) {
        profile = Buffer.from(split.profile);
        records = split.records;
        profileWrites += 1;
      }
      for (const { at, bytes } of split.blocks ?? []) {
        bytes.copy(profile as Buffer, at);
        blockWrites += 1;
      }
    },
    load(part: 'whole' | 'none' | { first: number; last: number } = 'whole'): unknown {
      let bytes: Buffer | null = profile;
      if (profile && typeof part === 'object') {
        const block = profile.length / records;
        bytes = profile.subarray(part.first * block, (part.last + 1) * block);
      }
      const joined = joinDetectorState(
        JSON.parse(text as string),
        part === 'none' ? null : bytes,
        typeof part === 'object' ? { first: part.first } : part,
      );
      stored = joined.stored;
      return joined.state;
    },
    stateLength: () => (text as string).length,
    profileWrites: () => profileWrites,
    blockWrites: () => blockWrites,
  };
}

describe('detector state codec, in two parts', () => {
  it('property: a detector saved after every batch and restored with only its readings’ bins scores exactly as one never saved, and its profile is written rarely', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('basic', 'advanced'),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 40, maxLength: 120 }),
        fc.integer({ min: 0, max: 1000 }),
        (kind, batchSizes, seed) => {
          const make = () => createDetector(kind === 'basic' ? { kind } : { kind, model: null });
          const reference = make();
          const store = twoPartStore();
          let t = Date.UTC(2026, 0, 1) + seed * 60_000;
          let i = seed;
          let readings = 0;
          store.save(make().snapshot());
          for (const size of batchSizes) {
            // The bins of the batch's readings, one more on each side (as the store loads).
            const first = dailyBin(t + 60_000, 96) - 1;
            const last = dailyBin(t + size * 60_000, 96) + 1;
            const part = first >= 0 && last < 96 && first <= last ? { first, last } : 'whole';
            const persisted = restoreDetector(store.load(part), { adopt: true });
            for (let k = 0; k < size; k++) {
              t += 60_000;
              i += 1;
              const value = 20 + Math.sin(i / 30) * 4 + (i % 97 === 0 ? 30 : (i * 7919) % 13) / 10;
              expect(persisted.score(t, value)).toEqual(reference.score(t, value));
              readings += 1;
            }
            store.save(persisted.snapshot({ shared: true }));
          }
          expect(JSON.parse(JSON.stringify(restoreDetector(store.load()).snapshot()))).toEqual(
            JSON.parse(JSON.stringify(reference.snapshot())),
          );
          // A reading a minute moves one 15-minute bin: the whole profile is written once,
          // and changed bins go into it only once the state carries more than a few.
          expect(store.profileWrites()).toBe(1);
          expect(store.blockWrites()).toBeLessThanOrEqual(1 + readings / 15 / MAX_CHANGED_BLOCKS);
        },
      ),
      { numRuns: 20, seed: 11 },
    );
  });

  it('keeps the part written with every batch a third of the state packed whole', () => {
    const detector = createDetector({ kind: 'advanced', model: null });
    let t = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 20_000; i++) {
      t += 10_000;
      detector.score(t, 20 + Math.sin(i / 10) * 3 + ((i * 7919) % 13) / 10);
    }
    const store = twoPartStore();
    store.save(detector.snapshot());
    store.load();
    detector.score(t + 10_000, 21);
    store.save(detector.snapshot());
    expect(store.stateLength()).toBeLessThan(encodeDetectorState(detector.snapshot()).length / 2.5);
  });

  it('property: any JSON document, changed between saves, reads back as JSON alone would give it', () => {
    const number = fc.oneof(fc.double(), fc.constantFrom(-0, 0, Number.NaN, 1e-310));
    const record = fc.record({ mean: fc.double({ noNaN: true }), count: fc.nat() });
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        number,
        fc.string(),
        fc.constant(null),
        fc.array(number, { maxLength: 40 }),
        fc.array(record, { minLength: 30, maxLength: 40 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 4 }), (versions) => {
        const store = twoPartStore();
        for (const version of versions) {
          store.save(version);
          expect(store.load()).toEqual(JSON.parse(JSON.stringify(version)));
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  it('carries a few changed blocks in the state, writes them into the profile past that, and leaves blocks not loaded as holes', () => {
    const records = () => Array.from({ length: 96 }, (_, i) => ({ mean: i, count: 1 }));
    const state = { daily: records(), steps: records() };
    const store = twoPartStore();
    store.save(state);
    const loaded = store.load({ first: 10, last: 20 }) as typeof state;
    expect(loaded.daily[9]).toBeUndefined();
    expect(loaded.steps[15]).toEqual({ mean: 15, count: 1 });
    for (let i = 10; i < 10 + MAX_CHANGED_BLOCKS; i++)
      (loaded.daily[i] as { mean: number }).mean = -i;
    store.save(loaded);
    expect(store.blockWrites()).toBe(0);
    const again = store.load({ first: 30, last: 31 }) as typeof state;
    // The carried blocks come with the state whichever bins are loaded.
    expect(again.daily[10]).toEqual({ mean: -10, count: 1 });
    (again.steps[30] as { mean: number }).mean = -30;
    store.save(again);
    expect(store.blockWrites()).toBeGreaterThan(0);
    expect(store.profileWrites()).toBe(1);
    const whole = store.load() as typeof state;
    expect(whole.daily.slice(9, 15).map((r) => r.mean)).toEqual([9, -10, -11, -12, -13, 14]);
    expect(whole.steps[30]).toEqual({ mean: -30, count: 1 });
    // A block that was not loaded cannot be filled in behind the store's back.
    const part = store.load({ first: 40, last: 41 }) as typeof state;
    part.daily[50] = { mean: 1, count: 1 };
    expect(() => store.save(part)).toThrow(/not loaded/);
  });

  it('refuses a state whose profile is missing', () => {
    const split = splitDetectorState({ daily: Array.from({ length: 40 }, () => ({ m: 1 })) }, null);
    expect(() => joinDetectorState(JSON.parse(split.state), null)).toThrow(/profile/);
  });
});
