import type { Value } from './types.ts';

/** A span of at least a minute, roughly: "12 min", "40 h", "3 days". */
function roughSpan(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}

export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return 'unknown';
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  return `${roughSpan(seconds)} ago`;
}

/** How far ahead a future time is, e.g. "in 40 h" (a past one reads "now"). */
export function timeUntil(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (Number.isNaN(seconds)) return 'unknown';
  if (seconds < 60) return 'now';
  return `in ${roughSpan(seconds)}`;
}

export function absoluteTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

export function formatValue(value: Value | null | undefined, unit?: string | null): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'On' : 'Off';
  if (typeof value === 'number') {
    const magnitude = Math.abs(value);
    const digits = magnitude >= 1000 ? 0 : magnitude >= 100 ? 1 : 2;
    const text = value.toLocaleString(undefined, { maximumFractionDigits: digits });
    return unit ? `${text} ${unit}` : text;
  }
  return value === '' ? '(empty)' : value;
}

export function limit(value: number | null | undefined): string {
  return value === null || value === undefined ? 'unlimited' : value.toLocaleString();
}
