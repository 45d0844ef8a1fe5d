/**
 * How long each plan keeps raw readings and how they are rolled up: the tiers every store
 * and the ingestion path agree on, whatever database holds them.
 */

/** A plan's raw retention policy; its rollups live in `<policy>_5m` and `<policy>_1h`. */
export interface RetentionPlan {
  policy: string;
  /** `30d` style or `INF`. */
  duration: string;
  /** The database's default policy (what a write without `rp` lands in). */
  isDefault?: boolean;
}

/** The plans table's `influx_retention_policy` / `retention_days` (migrations/…_foundation.sql). */
export const DEFAULT_RETENTION_PLANS: readonly RetentionPlan[] = [
  { policy: 'free_plan', duration: '30d', isDefault: true },
  { policy: 'starter_plan', duration: '90d' },
  { policy: 'professional_plan', duration: '365d' },
  { policy: 'industrial_plan', duration: 'INF' },
];

export interface Rollup {
  /** Suffix of the policy and the `source` name in telemetry answers. */
  name: '5m' | '1h';
  interval: string;
  /**
   * Buckets older than this are final: the rollup function (every ROLLUP_RUN_EVERY_MS,
   * recomputing ROLLUP_RECENT_MS back) has written them; reads take younger ones from raw
   * points. Readings that arrive later still are folded in by the function's backlog.
   */
  settledMs: number;
}

export const ROLLUPS: readonly Rollup[] = [
  { name: '5m', interval: '5m', settledMs: 25 * 60_000 },
  { name: '1h', interval: '1h', settledMs: 90 * 60_000 },
];

/** How often the rollup function runs (its schedule in serverless.yml says the same). */
export const ROLLUP_RUN_EVERY_MS = 5 * 60_000;
/** How far back each run recomputes the 5-minute windows of recently active tenants. */
export const ROLLUP_RECENT_MS = 15 * 60_000;
/**
 * A reading older than this when it arrives may fall before the next run's recent window
 * (ROLLUP_RECENT_MS - ROLLUP_RUN_EVERY_MS): ingestion marks its hour for the backlog.
 */
export const LATE_READING_MS = ROLLUP_RECENT_MS - ROLLUP_RUN_EVERY_MS;

export function rollupPolicy(plan: string, rollup: Rollup): string {
  return `${plan}_${rollup.name}`;
}
