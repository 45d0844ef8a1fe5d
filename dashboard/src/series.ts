import type { HistoryRange } from './ranges.ts';
import type { Point, Value } from './types.ts';

/** A chart series in uPlot's layout: seconds since the epoch, and values. */
export interface Series {
  t: number[];
  v: Array<number | null>;
  /** Readings folded into the newest bucket since it was loaded, for a running mean. */
  lastCount: number;
}

export const EMPTY_SERIES: Series = { t: [], v: [], lastCount: 0 };

export function numeric(value: Value | null | undefined): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return null;
}

export function fromPoints(points: Point[]): Series {
  const sorted = [...points].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  return {
    t: sorted.map((p) => Date.parse(p.time) / 1000),
    v: sorted.map((p) => numeric(p.value)),
    lastCount: 1,
  };
}

/**
 * Folds a live reading into the series the way the API aggregates it (a mean per `every`
 * bucket), so the newest bucket moves with each reading instead of the line growing a dense
 * raw tail on a 7-day chart. Points that slid out of the window are dropped.
 */
export function appendReading(
  series: Series,
  timeMs: number,
  value: Value,
  range: HistoryRange,
  nowMs: number,
): Series {
  const v = numeric(value);
  if (v === null) return series;
  const bucket = (Math.floor(timeMs / range.everyMs) * range.everyMs) / 1000;
  const lastIndex = series.t.length - 1;
  const lastTime = series.t[lastIndex];
  let t = series.t;
  let values = series.v;
  let lastCount = series.lastCount;
  if (lastTime !== undefined && bucket < lastTime) return series;
  if (lastTime === bucket) {
    const previous = values[lastIndex];
    const mean =
      previous === null || previous === undefined
        ? v
        : (previous * lastCount + v) / (lastCount + 1);
    values = [...values.slice(0, lastIndex), mean];
    lastCount += 1;
  } else {
    t = [...t, bucket];
    values = [...values, v];
    lastCount = 1;
  }
  const start = (nowMs - range.ms) / 1000;
  let drop = 0;
  while (drop < t.length && (t[drop] as number) < start) drop += 1;
  if (drop > 0) {
    t = t.slice(drop);
    values = values.slice(drop);
  }
  return { t, v: values, lastCount };
}
