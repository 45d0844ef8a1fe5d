import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Series } from '../series.ts';

export interface AnomalyMark {
  /** Seconds since the epoch. */
  t: number;
  end?: number;
  v?: number;
  label: string;
}

/** A user-set limit and, when the trend crosses it, when (seconds since the epoch). */
export interface ThresholdMark {
  above: number | null;
  below: number | null;
  eta: { t: number; low: number; high: number } | null;
}

/** A span during which an alarm on this entity was open (seconds since the epoch). */
export interface AlarmBand {
  from: number;
  /** Null while the alarm is still open: the band reaches the right edge. */
  to: number | null;
  severity: 'critical' | 'major' | 'minor' | 'warning';
  label: string;
}

/** A stretch in one operating mode (seconds since the epoch), drawn as a strip under the plot. */
export interface PatternBand {
  from: number;
  to: number;
  colour: string;
  label: string;
  novel: boolean;
}

interface ChartProps {
  label: string;
  unit: string | null;
  series: Series;
  /** The visible window, seconds since the epoch; the right edge follows the clock. */
  fromSec: number;
  toSec: number;
  anomalies: AnomalyMark[];
  threshold?: ThresholdMark | undefined;
  /** Alarm periods of the entity, shaded across the chart. */
  alarms?: AlarmBand[];
  /** The limits of the threshold alarm rules on the entity, drawn as solid lines. */
  alarmLimits?: number[];
  /** The device's operating modes over the range (pattern recognition). */
  patterns?: PatternBand[];
}

const HEIGHT = 200;
const LINE = '#1769aa';
const FILL = 'rgba(23, 105, 170, 0.10)';
const ANOMALY = '#c62828';
const LIMIT = '#b26a00';
const ALARM_LIMIT = '#c62828';
const BAND: Record<AlarmBand['severity'], string> = {
  critical: 'rgba(198, 40, 40, 0.16)',
  major: 'rgba(239, 108, 0, 0.16)',
  minor: 'rgba(249, 168, 37, 0.18)',
  warning: 'rgba(249, 168, 37, 0.10)',
};
const NO_BANDS: AlarmBand[] = [];
const NO_LIMITS: number[] = [];
const NO_PATTERNS: PatternBand[] = [];
/** The mode strip's height (CSS pixels) at the bottom of the plot. */
const PATTERN_STRIP = 8;

/** Saves the canvas state and keeps what is drawn next inside the plotting area. */
function clipToPlot(u: uPlot): void {
  u.ctx.save();
  u.ctx.beginPath();
  u.ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  u.ctx.clip();
}

/**
 * One uPlot per sensor. uPlot draws on a canvas outside Preact's tree, so the instance is
 * created once and fed new data; Preact only owns the wrapper element.
 */
export function SensorChart({
  label,
  unit,
  series,
  fromSec,
  toSec,
  anomalies,
  threshold,
  alarms = NO_BANDS,
  alarmLimits = NO_LIMITS,
  patterns = NO_PATTERNS,
}: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const view = useRef({
    fromSec,
    toSec,
    anomalies,
    series,
    threshold,
    alarms,
    alarmLimits,
    patterns,
  });
  view.current = { fromSec, toSec, anomalies, series, threshold, alarms, alarmLimits, patterns };

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const drawAnomalies = (u: uPlot) => {
      const marks = view.current.anomalies;
      if (marks.length === 0) return;
      const { ctx } = u;
      const ratio = devicePixelRatio || 1;
      clipToPlot(u);
      for (const mark of marks) {
        const x = u.valToPos(mark.t, 'x', true);
        if (mark.end !== undefined || mark.v === undefined) {
          const x2 = mark.end !== undefined ? u.valToPos(mark.end, 'x', true) : x + 2 * ratio;
          ctx.fillStyle = 'rgba(198, 40, 40, 0.14)';
          ctx.fillRect(x, u.bbox.top, Math.max(2 * ratio, x2 - x), u.bbox.height);
        }
        if (mark.v !== undefined) {
          const y = u.valToPos(mark.v, 'y', true);
          ctx.beginPath();
          ctx.arc(x, y, 4.5 * ratio, 0, 2 * Math.PI);
          ctx.lineWidth = 2 * ratio;
          ctx.strokeStyle = ANOMALY;
          ctx.fillStyle = '#fff';
          ctx.fill();
          ctx.stroke();
        }
      }
      ctx.restore();
    };
    // The limits as dashed lines; a forecast crossing as the trend's path from the last
    // reading to the limit, with its 10-90% range shaded along the limit.
    const drawThreshold = (u: uPlot) => {
      const mark = view.current.threshold;
      if (!mark) return;
      const { ctx } = u;
      const ratio = devicePixelRatio || 1;
      clipToPlot(u);
      ctx.strokeStyle = LIMIT;
      ctx.lineWidth = 1.5 * ratio;
      ctx.setLineDash([6 * ratio, 4 * ratio]);
      for (const value of [mark.above, mark.below]) {
        if (value === null) continue;
        const y = u.valToPos(value, 'y', true);
        ctx.beginPath();
        ctx.moveTo(u.bbox.left, y);
        ctx.lineTo(u.bbox.left + u.bbox.width, y);
        ctx.stroke();
      }
      const data = view.current.series;
      const lastT = data.t[data.t.length - 1];
      const lastV = data.v[data.v.length - 1];
      const target = mark.above ?? mark.below;
      if (mark.eta && target !== null && lastT !== undefined && typeof lastV === 'number') {
        const limitValue =
          mark.above !== null && mark.below !== null
            ? Math.abs(mark.above - lastV) < Math.abs(lastV - mark.below)
              ? mark.above
              : mark.below
            : target;
        const y = u.valToPos(limitValue, 'y', true);
        const x1 = u.valToPos(mark.eta.low, 'x', true);
        const x2 = u.valToPos(mark.eta.high, 'x', true);
        ctx.fillStyle = 'rgba(178, 106, 0, 0.18)';
        ctx.fillRect(x1, y - 5 * ratio, Math.max(2 * ratio, x2 - x1), 10 * ratio);
        ctx.beginPath();
        ctx.moveTo(u.valToPos(lastT, 'x', true), u.valToPos(lastV, 'y', true));
        ctx.lineTo(u.valToPos(mark.eta.t, 'x', true), y);
        ctx.stroke();
      }
      ctx.restore();
    };
    // Alarm periods as bands across the plot, coloured by severity; rule limits as lines.
    const drawAlarms = (u: uPlot) => {
      const { alarms: bands, alarmLimits: limits, toSec: to } = view.current;
      if (bands.length === 0 && limits.length === 0) return;
      const { ctx } = u;
      const ratio = devicePixelRatio || 1;
      clipToPlot(u);
      for (const band of bands) {
        const x1 = u.valToPos(band.from, 'x', true);
        const x2 = u.valToPos(band.to ?? Math.max(to, Date.now() / 1000), 'x', true);
        ctx.fillStyle = BAND[band.severity];
        ctx.fillRect(x1, u.bbox.top, Math.max(2 * ratio, x2 - x1), u.bbox.height);
      }
      ctx.strokeStyle = ALARM_LIMIT;
      ctx.lineWidth = 1 * ratio;
      for (const value of limits) {
        const y = u.valToPos(value, 'y', true);
        ctx.beginPath();
        ctx.moveTo(u.bbox.left, y);
        ctx.lineTo(u.bbox.left + u.bbox.width, y);
        ctx.stroke();
      }
      ctx.restore();
    };
    // Operating modes as a coloured strip along the bottom of the plot, faint across it.
    const drawPatterns = (u: uPlot) => {
      const bands = view.current.patterns;
      if (bands.length === 0) return;
      const { ctx } = u;
      const ratio = devicePixelRatio || 1;
      const strip = PATTERN_STRIP * ratio;
      clipToPlot(u);
      for (const band of bands) {
        const x1 = u.valToPos(band.from, 'x', true);
        const x2 = u.valToPos(band.to, 'x', true);
        const width = Math.max(1 * ratio, x2 - x1);
        ctx.globalAlpha = band.novel ? 0.14 : 0.06;
        ctx.fillStyle = band.colour;
        ctx.fillRect(x1, u.bbox.top, width, u.bbox.height);
        ctx.globalAlpha = 0.85;
        ctx.fillRect(x1, u.bbox.top + u.bbox.height - strip, width, strip);
      }
      ctx.globalAlpha = 1;
      ctx.restore();
    };
    const formatValue = (_u: uPlot, value: number | null) =>
      value === null || value === undefined
        ? '—'
        : `${value.toLocaleString(undefined, { maximumFractionDigits: 2 })}${unit ? ` ${unit}` : ''}`;
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 200),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: {
        x: {
          time: true,
          // Always the chosen window, not the data's extent: uPlot widens a single point by
          // 1000 days when timestamps are in seconds, and a new device has one bucket per range.
          range: () => {
            const { fromSec: from, toSec: to, series: data } = view.current;
            const last = data.t[data.t.length - 1];
            // A forecast crossing within another window's span is drawn, so the axis reaches it.
            const eta = view.current.threshold?.eta;
            const ahead = eta && eta.high - to <= to - from ? eta.high : to;
            return [from, Math.max(to, last ?? to, ahead)];
          },
        },
        y: {
          range: (_u, dataMin, dataMax) => {
            if (dataMin === null || dataMax === null) return [0, 1];
            // Anomalies carry the reading that was flagged; the scale keeps them in view.
            const flagged = view.current.anomalies.flatMap((mark) =>
              mark.v === undefined ? [] : [mark.v],
            );
            // And the limits, so the distance to them is visible.
            const mark = view.current.threshold;
            const limits = [
              ...(mark ? [mark.above, mark.below].filter((v): v is number => v !== null) : []),
              ...view.current.alarmLimits,
            ];
            const min = Math.min(dataMin, ...flagged, ...limits);
            const max = Math.max(dataMax, ...flagged, ...limits);
            const pad = min === max ? Math.abs(min) * 0.1 || 1 : (max - min) * 0.12;
            return [min - pad, max + pad];
          },
        },
      },
      axes: [
        { stroke: '#5b6673', grid: { stroke: '#e6e9ed', width: 1 }, ticks: { stroke: '#d5dae0' } },
        {
          stroke: '#5b6673',
          grid: { stroke: '#e6e9ed', width: 1 },
          ticks: { stroke: '#d5dae0' },
          size: 56,
          values: (_u, splits) =>
            splits.map((s) => s.toLocaleString(undefined, { maximumFractionDigits: 2 })),
        },
      ],
      series: [
        {},
        {
          label,
          stroke: LINE,
          width: 2,
          fill: FILL,
          spanGaps: false,
          // uPlot's default shows dots only while the data is sparse: a lone bucket stays visible.
          points: { size: 6, fill: LINE },
          value: formatValue,
        },
      ],
      hooks: { draw: [drawPatterns, drawAlarms, drawAnomalies, drawThreshold] },
    };
    const instance = new uPlot(options, [series.t, series.v], element);
    plot.current = instance;
    const resize = new ResizeObserver(() => {
      const width = Math.max(element.clientWidth, 200);
      if (width !== instance.width) instance.setSize({ width, height: HEIGHT });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      instance.destroy();
      plot.current = null;
    };
    // The instance lives for the component; data and window updates go through setData below.
  }, []);

  useEffect(() => {
    plot.current?.setData([series.t, series.v]);
  }, [series, fromSec, toSec, anomalies, threshold, alarms, alarmLimits, patterns]);

  const latest = series.v.length > 0 ? series.v[series.v.length - 1] : null;
  const summary =
    series.t.length === 0
      ? `${label}: no readings in this range`
      : `${label}: ${series.t.length} points, latest ${latest ?? 'none'}${unit ? ` ${unit}` : ''}${
          anomalies.length ? `, ${anomalies.length} anomalies marked` : ''
        }${alarms.length ? `, ${alarms.length} alarm ${alarms.length === 1 ? 'period' : 'periods'} shaded` : ''}${
          alarmLimits.length ? `, alarm limits at ${alarmLimits.join(', ')}` : ''
        }${threshold ? thresholdSummary(threshold, unit) : ''}${patternSummary(patterns)}`;
  return (
    <div class="chart-wrap">
      <div class="chart" ref={host} role="img" aria-label={summary} />
      {series.t.length === 0 && <div class="chart-empty">No readings in this range yet</div>}
    </div>
  );
}

/** The limit lines and the forecast crossing, for the chart's text alternative. */
function thresholdSummary(mark: ThresholdMark, unit: string | null): string {
  const sides = [
    mark.above !== null ? `at most ${mark.above}` : null,
    mark.below !== null ? `at least ${mark.below}` : null,
  ].filter(Boolean);
  const iso = (sec: number) => new Date(sec * 1000).toISOString();
  return `, limit ${sides.join(' and ')}${unit ? ` ${unit}` : ''}${
    mark.eta
      ? `, forecast to cross it at ${iso(mark.eta.t)} (10-90%: ${iso(mark.eta.low)} to ${iso(mark.eta.high)})`
      : ', no crossing forecast'
  }`;
}

/** The modes over the range, for the chart's text alternative. */
function patternSummary(bands: PatternBand[]): string {
  if (bands.length === 0) return '';
  const names = [...new Set(bands.map((band) => band.label))];
  const novel = bands.filter((band) => band.novel).length;
  return `, operating modes shown: ${names.join(', ')}${novel ? ` (${novel} novel ${novel === 1 ? 'stretch' : 'stretches'})` : ''}`;
}
