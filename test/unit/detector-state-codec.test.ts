import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDetectorState,
  encodeDetectorState,
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
