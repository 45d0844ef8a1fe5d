import { describe, expect, it } from 'vitest';
import { DEFAULT_ADVANCED_CONFIG } from '../../shared/ml/domain/advanced-detector.ts';
import {
  type AdvancedDetectorState,
  createAdvancedDetector,
  restoreDetector,
} from '../../shared/ml/domain/detector.ts';
import {
  DEFAULT_MEASURING_RANGE_CONFIG,
  isMeasuringRange,
} from '../../shared/ml/domain/measuring-range.ts';

const MINUTE = 60_000;
const START = Date.UTC(2026, 0, 5);
const SPAN = { min: 0, max: 100 };

/** One-minute readings spread evenly over 0-10 (a busy signal low in a 0-100 span). */
function busy(count: number, from = 0): Array<{ timeMs: number; value: number }> {
  let s = 11;
  const random = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: count }, (_, i) => ({
    timeMs: START + (from + i) * MINUTE,
    value: 10 * random(),
  }));
}

const scoreAll = (
  detector: ReturnType<typeof createAdvancedDetector>,
  readings: Array<{ timeMs: number; value: number }>,
) => readings.map((r) => detector.score(r.timeMs, r.value));

describe('advanced detector with a measuring range', () => {
  it('without a range it is the detector without the feature, bit for bit', () => {
    const readings = [...busy(600), { timeMs: START + 600 * MINUTE, value: 40 }, ...busy(50, 601)];
    const plain = createAdvancedDetector(null);
    const without = createAdvancedDetector(null, {
      ...DEFAULT_ADVANCED_CONFIG,
      measuringRange: null,
    });
    expect(scoreAll(plain, readings)).toEqual(scoreAll(without, readings));
    expect(plain.snapshot().state).not.toHaveProperty('measuring');
  });

  it('a reading at a level never shown on the span alarms as a new level, once per incident', () => {
    const withRange = createAdvancedDetector(null, undefined, SPAN);
    const without = createAdvancedDetector(null);
    scoreAll(withRange, busy(400));
    scoreAll(without, busy(400));
    // 13.5: 3.5 above anything shown (cells of 100/128), a step the busy signal nearly makes.
    const at = START + 400 * MINUTE;
    const found = withRange.score(at, 13.5);
    expect(found).toMatchObject({ anomalous: true, reason: 'newLevel' });
    expect(found.score).toBeGreaterThan(0.99);
    expect(without.score(at, 13.5).score).toBeLessThan(found.score);
    // Another new level right behind it is the same incident.
    expect(withRange.score(at + MINUTE, 17).reason).not.toBe('newLevel');
    // A level next to one shown is not new.
    const again = createAdvancedDetector(null, undefined, SPAN);
    scoreAll(again, busy(400));
    expect(again.score(at, 10.4).reason).not.toBe('newLevel');
  });

  it('a snapshot continues exactly; a changed range starts its levels afresh and waits for them to learn', () => {
    const readings = busy(500);
    const whole = createAdvancedDetector(null, undefined, SPAN);
    const wholeScores = scoreAll(whole, readings);
    const first = createAdvancedDetector(null, undefined, SPAN);
    scoreAll(first, readings.slice(0, 250));
    const saved = JSON.parse(JSON.stringify(first.snapshot())) as AdvancedDetectorState;
    const continued = restoreDetector(saved, { measuringRange: SPAN });
    expect(readings.slice(250).map((r) => continued.score(r.timeMs, r.value))).toEqual(
      wholeScores.slice(250),
    );

    const moved = restoreDetector(JSON.parse(JSON.stringify(whole.snapshot())), {
      measuringRange: { min: 0, max: 50 },
    });
    const state = () => (moved.snapshot().state as AdvancedDetectorState['state']).measuring;
    expect(state()).toMatchObject({ min: 0, max: 50, total: 0 });
    // Levels that know nothing yet raise no new level, even far from everything.
    expect(moved.score(START + 500 * MINUTE, 45).reason).not.toBe('newLevel');
    expect(state()?.total).toBe(1);

    const dropped = restoreDetector(JSON.parse(JSON.stringify(whole.snapshot())), {});
    expect(dropped.snapshot().state).not.toHaveProperty('measuring');
  });

  it('continues a 1.2.0 state, and its state stays small', () => {
    const old = createAdvancedDetector(null);
    scoreAll(old, busy(200));
    const snapshot = { ...old.snapshot(), version: '1.2.0' };
    const upgraded = restoreDetector(JSON.parse(JSON.stringify(snapshot)), {
      measuringRange: SPAN,
    });
    expect(upgraded.version).toBe('1.4.0');
    expect(upgraded.snapshot().state).toMatchObject({ measuring: { min: 0, max: 100, total: 0 } });
    const measuring = upgraded.snapshot().state as AdvancedDetectorState['state'];
    expect(JSON.stringify(measuring.measuring).length).toBeLessThan(200);
    expect(measuring.measuring?.shown).toHaveLength(DEFAULT_MEASURING_RANGE_CONFIG.cells / 32);
  });

  it('takes only finite ranges with min below max', () => {
    expect(isMeasuringRange({ min: 0, max: 1 })).toBe(true);
    for (const bad of [
      { min: 1, max: 1 },
      { min: 2, max: 1 },
      { min: 0, max: Number.NaN },
      { min: 0 },
      null,
    ]) {
      expect(isMeasuringRange(bad)).toBe(false);
    }
  });
});
