import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ADVANCED_CONFIG,
  EDGE_ADVANCED_CONFIG,
} from '../../shared/ml/domain/advanced-detector.ts';
import {
  DEFAULT_BAND_CONFIG,
  declaredRangeOf,
  newBandState,
  observeBand,
} from '../../shared/ml/domain/declared-range.ts';
import {
  ADVANCED_DETECTOR,
  createAdvancedDetector,
  restoreDetector,
} from '../../shared/ml/domain/detector.ts';

const FIVE_MINUTES = 300_000;
const START = Date.UTC(2026, 0, 5);
const PER_DAY = 288;

/**
 * Five-minute readings of a machine that starts at 08:00 and stops at 18:00 every day (a
 * step up and a step down at the same times), with a little noise; `extra` adds a step of
 * the same size at another time of day.
 */
function shifts(days: number, extra?: number): Array<{ timeMs: number; value: number }> {
  let s = 5;
  const random = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: days * PER_DAY }, (_, i) => {
    const slot = i % PER_DAY;
    const running = slot >= 96 && slot < 216;
    const moved = extra !== undefined && i >= extra && i < extra + 6;
    return {
      timeMs: START + i * FIVE_MINUTES,
      value: 20 + (running ? 30 : 0) + (moved ? 30 : 0) + (random() - 0.5) * 0.4,
    };
  });
}

describe('advanced detector: steps judged by time of day', () => {
  it('does not alarm at a step that happens every day at the same time; the edge signals do', () => {
    const series = shifts(10);
    const alarmsAfterDay3 = (config: typeof DEFAULT_ADVANCED_CONFIG) => {
      const detector = createAdvancedDetector(null, config);
      return series
        .map((p) => detector.score(p.timeMs, p.value))
        .filter((r, i) => i >= 3 * PER_DAY && r.anomalous).length;
    };
    expect(alarmsAfterDay3(DEFAULT_ADVANCED_CONFIG)).toBe(0);
    expect(alarmsAfterDay3(EDGE_ADVANCED_CONFIG)).toBeGreaterThan(0);
  });

  it('still alarms at the same step at a time of day it never happens', () => {
    const at = 8 * PER_DAY + 30; // 02:30 on day 9
    const detector = createAdvancedDetector(null);
    const results = shifts(10, at).map((p) => detector.score(p.timeMs, p.value));
    expect(results.slice(at, at + 3).some((r) => r.anomalous)).toBe(true);
    expect(results.slice(3 * PER_DAY, at).filter((r) => r.anomalous)).toHaveLength(0);
  });

  it('continues a 1.1.0 state: statistics and range carry over, daily steps start afresh', () => {
    const series = shifts(4);
    const old = createAdvancedDetector(null, EDGE_ADVANCED_CONFIG);
    for (const p of series.slice(0, 3 * PER_DAY)) old.score(p.timeMs, p.value);
    const saved = JSON.parse(JSON.stringify({ ...old.snapshot(), version: '1.1.0' }));
    const restored = restoreDetector(saved);
    expect(restored.version).toBe(ADVANCED_DETECTOR.version);
    const snapshot = restored.snapshot();
    if (snapshot.kind !== 'advanced') throw new Error('advanced expected');
    expect(snapshot.state.range).toEqual(saved.state.range);
    expect(snapshot.state.basic.count).toBe(3 * PER_DAY);
    expect(snapshot.state.dailySteps).toHaveLength(DEFAULT_ADVANCED_CONFIG.basic.dailyBins);
    for (const p of series.slice(3 * PER_DAY)) {
      const r = restored.score(p.timeMs, p.value);
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
    }
  });
});

describe("advanced detector: bands of the entity's declared range", () => {
  it('reads the declared range from the entity configuration, and only a usable one', () => {
    expect(declaredRangeOf({ min: 0, max: 40, step: 1 })).toEqual({ min: 0, max: 40 });
    for (const config of [
      null,
      {},
      { min: 0 },
      { min: 10, max: 10 },
      { min: 10, max: 0 },
      { min: '0', max: 40 },
      { min: 0, max: Number.POSITIVE_INFINITY },
    ]) {
      expect(declaredRangeOf(config)).toBeNull();
    }
  });

  it('flags a transition never seen before once per incident, and knows the usual bands', () => {
    const config = { ...DEFAULT_BAND_CONFIG, bands: 4, rest: 3 };
    const state = newBandState({ min: 0, max: 40 }, config);
    // Bands of 10: 5 -> band 0, 15 -> band 1, 35 -> band 3.
    const observe = (values: number[]) => values.map((v) => observeBand(state, config, v));
    observe([5, 15, 5, 15, 5, 15, 5, 15, 5, 15, 5, 15]);
    const [toKnown, toNew, closeBehind, later] = [
      observe([5])[0],
      observe([35])[0],
      observe([15])[0],
      observe([5, 15, 5, 35, 5])[4],
    ];
    expect(toKnown).toEqual({ usual: true, newTransition: false });
    expect(toNew).toEqual({ usual: false, newTransition: true });
    // 3 -> 1 is new too, but it is the same incident.
    expect(closeBehind?.newTransition).toBe(false);
    // 3 -> 0 after the rest period is a new incident.
    expect(later?.newTransition).toBe(true);
    // A value outside the declared range counts in the nearest band.
    expect(observe([-100, 1e9]).map((b) => b.newTransition)).toEqual([false, false]);
    expect(state.counts).toEqual([11, 8, 0, 3]);
  });

  it('damps a slow drift at a usual level, and alarms as a transition where it enters a band never visited', () => {
    const series = shifts(10);
    const at = 8 * PER_DAY + 144; // 12:00 on day 9, while the machine runs at 50
    for (let k = 0; k < 40; k++) (series[at + k] as { value: number }).value += 0.5 * (k + 1);
    const firstAlarm = (range: { min: number; max: number } | null) => {
      const detector = createAdvancedDetector(null, DEFAULT_ADVANCED_CONFIG, range);
      const results = series.map((p) => detector.score(p.timeMs, p.value));
      const i = results.findIndex((r, n) => n >= 3 * PER_DAY && r.anomalous);
      return { offset: i - at, reason: results[i]?.reason };
    };
    // The statistics alone alarm early in the drift (the level is unusual for noon).
    expect(firstAlarm(null)).toEqual({ offset: 4, reason: 'seasonal' });
    // With a range of 0-100 (bands of 12.5), the drift alarms where it first passes 62.5.
    expect(firstAlarm({ min: 0, max: 100 })).toEqual({ offset: 25, reason: 'transition' });
  });

  it('keeps its bands across a snapshot, restarts them for a new range, and drops them without one', () => {
    const series = shifts(4);
    const range = { min: 0, max: 100 };
    const whole = createAdvancedDetector(null, DEFAULT_ADVANCED_CONFIG, range);
    const first = createAdvancedDetector(null, DEFAULT_ADVANCED_CONFIG, range);
    const half = 2 * PER_DAY;
    for (const p of series.slice(0, half)) {
      whole.score(p.timeMs, p.value);
      first.score(p.timeMs, p.value);
    }
    const saved = JSON.parse(JSON.stringify(first.snapshot()));
    const restored = restoreDetector(saved, { declaredRange: range });
    for (const p of series.slice(half)) {
      expect(restored.score(p.timeMs, p.value)).toEqual(whole.score(p.timeMs, p.value));
    }
    const bandsOf = (snapshot: ReturnType<typeof restored.snapshot>) =>
      snapshot.kind === 'advanced' ? snapshot.state.bands : 'not advanced';
    expect(bandsOf(restored.snapshot())).toMatchObject({ min: 0, max: 100, total: 4 * PER_DAY });
    const widened = restoreDetector(saved, { declaredRange: { min: 0, max: 200 } });
    expect(bandsOf(widened.snapshot())).toMatchObject({ min: 0, max: 200, total: 0 });
    expect(bandsOf(restoreDetector(saved).snapshot())).toBeUndefined();
    // A 1.2.0 state (no bands) continues, its bands starting with the next reading; they learn
    // as long as a new detector warms up before a transition alarms, though the statistics
    // are long warm: every transition is new to them.
    const old = JSON.parse(JSON.stringify({ ...first.snapshot(), version: '1.2.0' }));
    delete old.state.bands;
    const upgraded = restoreDetector(old, { declaredRange: { min: 0, max: 50 } });
    expect(bandsOf(upgraded.snapshot())).toMatchObject({ total: 0 });
    const warmup = DEFAULT_ADVANCED_CONFIG.basic.warmup;
    const after = series.slice(half, half + PER_DAY).map((p) => upgraded.score(p.timeMs, p.value));
    expect(after.slice(0, warmup).filter((r) => r.reason === 'transition')).toHaveLength(0);
  });
});
