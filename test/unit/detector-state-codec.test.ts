import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDetectorState,
  encodeDetectorState,
  joinDetectorState,
  MAX_CHANGED_RECORDS,
  type StoredProfile,
  splitDetectorState,
} from '../../shared/anomalies/adapters/detector-state-codec.ts';
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
 * What the store keeps of a state saved in two parts: the state's text through jsonb, and
 * the last profile written (a save that writes none leaves the stored one).
 */
function twoPartStore() {
  let text: string | null = null;
  let profile: Buffer | null = null;
  let stored: StoredProfile | null = null;
  let profileWrites = 0;
  return {
    save(state: unknown) {
      const { split } = splitDetectorState(state, stored);
      text = split.state;
      if (split.profile) {
        profile = split.profile;
        profileWrites += 1;
      }
    },
    load(): unknown {
      const joined = joinDetectorState(JSON.parse(text as string), profile);
      stored = joined.stored;
      return joined.state;
    },
    stateLength: () => (text as string).length,
    profileWrites: () => profileWrites,
  };
}

describe('detector state codec, in two parts', () => {
  it('property: a detector saved and restored after every batch scores exactly as one never saved, and its profile is rewritten rarely', () => {
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
            const persisted = restoreDetector(store.load());
            for (let k = 0; k < size; k++) {
              t += 60_000;
              i += 1;
              const value = 20 + Math.sin(i / 30) * 4 + (i % 97 === 0 ? 30 : (i * 7919) % 13) / 10;
              expect(persisted.score(t, value)).toEqual(reference.score(t, value));
              readings += 1;
            }
            store.save(persisted.snapshot());
          }
          expect(JSON.parse(JSON.stringify(restoreDetector(store.load()).snapshot()))).toEqual(
            JSON.parse(JSON.stringify(reference.snapshot())),
          );
          // A reading a minute moves one 15-minute bin of each profile: the stored profile
          // is rewritten once the state carries more than a few changed records.
          const bins = readings / 15;
          expect(store.profileWrites()).toBeLessThanOrEqual(
            2 + bins / (MAX_CHANGED_RECORDS / 2 - 1),
          );
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

  it('carries a few changed records in the state, and rewrites the profile past that', () => {
    const records = (n: number) =>
      Array.from({ length: 96 }, (_, i) => ({ mean: i + n, count: 1 }));
    const state = { daily: records(0) };
    const first = splitDetectorState(state, null);
    expect(first.split.profile?.length).toBe(96 * 2 * 8);
    for (let i = 0; i < MAX_CHANGED_RECORDS; i++) (state.daily[i] as { mean: number }).mean = -1;
    const few = splitDetectorState(state, first.stored);
    expect(few.split.profile).toBeNull();
    expect(Object.keys(JSON.parse(few.split.state).daily.$profile.changed)).toHaveLength(
      MAX_CHANGED_RECORDS,
    );
    (state.daily[MAX_CHANGED_RECORDS] as { mean: number }).mean = -1;
    const many = splitDetectorState(state, first.stored);
    expect(many.split.profile).not.toBeNull();
    expect(JSON.parse(many.split.state).daily.$profile.changed).toBeUndefined();
    expect(joinDetectorState(JSON.parse(few.split.state), first.split.profile).state).toEqual(
      JSON.parse(
        JSON.stringify({
          daily: [
            ...state.daily.slice(0, MAX_CHANGED_RECORDS),
            ...records(0).slice(MAX_CHANGED_RECORDS),
          ],
        }),
      ),
    );
  });

  it('refuses a state whose profile is missing', () => {
    const { split } = splitDetectorState(
      { daily: Array.from({ length: 40 }, () => ({ m: 1 })) },
      null,
    );
    expect(() => joinDetectorState(JSON.parse(split.state), null)).toThrow(/profile/);
  });
});
