/**
 * History ranges offered on the device page. Each asks for about 240–370 buckets: enough
 * for a smooth line at any screen width, and small enough to load fast from the rollups.
 */
export interface HistoryRange {
  key: string;
  label: string;
  ms: number;
  every: string;
  everyMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const RANGES: readonly HistoryRange[] = [
  { key: '1h', label: '1 h', ms: HOUR, every: '10s', everyMs: 10_000 },
  { key: '24h', label: '24 h', ms: DAY, every: '5m', everyMs: 5 * MINUTE },
  { key: '7d', label: '7 d', ms: 7 * DAY, every: '30m', everyMs: 30 * MINUTE },
  { key: '30d', label: '30 d', ms: 30 * DAY, every: '2h', everyMs: 2 * HOUR },
  { key: '1y', label: '1 y', ms: 365 * DAY, every: '1d', everyMs: DAY },
];

export const DEFAULT_RANGE = RANGES[0] as HistoryRange;

export function describeSource(source: string): string {
  return source === 'raw' ? 'raw' : `${source} rollup`;
}
