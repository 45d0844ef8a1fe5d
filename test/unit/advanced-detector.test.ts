import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ADVANCED_CONFIG,
  EDGE_ADVANCED_CONFIG,
} from '../../shared/ml/domain/advanced-detector.ts';
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
