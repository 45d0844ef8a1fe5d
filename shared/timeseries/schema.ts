import { type InfluxClient, rowsOf } from './influx-client.ts';
import {
  alterRetentionPolicy,
  createDatabase,
  createRetentionPolicy,
  dropContinuousQuery,
  durationMs,
  goDurationMs,
  type InfluxQL,
  policyDuration,
  showContinuousQueries,
  showRetentionPolicies,
  statements,
} from './influxql.ts';

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

export const DEFAULT_DATABASE = 'iot_data';

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

/** The name earlier versions gave each rollup's continuous query; they are dropped now. */
function legacyContinuousQueryName(plan: string, rollup: Rollup): string {
  return `cq_${plan}_${rollup.name}`;
}

export interface SchemaOptions {
  database?: string;
  plans?: readonly RetentionPlan[];
}

interface ExistingPolicy {
  durationMs: number;
  isDefault: boolean;
}

async function existingPolicies(client: InfluxClient, database: string) {
  const [result] = await client.query(showRetentionPolicies(database));
  const policies = new Map<string, ExistingPolicy>();
  for (const series of result?.series ?? []) {
    for (const row of rowsOf(series)) {
      policies.set(String(row.name), {
        durationMs: goDurationMs(String(row.duration)),
        isDefault: row.default === true,
      });
    }
  }
  return policies;
}

function wantedPolicies(plans: readonly RetentionPlan[]): RetentionPlan[] {
  return plans.flatMap((plan) => [
    plan,
    ...ROLLUPS.map((rollup) => ({
      policy: rollupPolicy(plan.policy, rollup),
      duration: plan.duration,
    })),
  ]);
}

/**
 * Creates or corrects the database and each plan's raw and rollup retention policies, and
 * drops the rollup continuous queries of earlier versions. Safe to run at every start: it
 * only changes what differs.
 */
export async function ensureTimeseriesSchema(
  client: InfluxClient,
  options: SchemaOptions = {},
): Promise<void> {
  const database = options.database ?? DEFAULT_DATABASE;
  const plans = options.plans ?? DEFAULT_RETENTION_PLANS;
  await client.query(createDatabase(database));

  const existing = await existingPolicies(client, database);
  const changes: InfluxQL[] = [];
  for (const wanted of wantedPolicies(plans)) {
    const spec = { database, name: wanted.policy, duration: policyDuration(wanted.duration) };
    const current = existing.get(wanted.policy);
    // InfluxDB reports INF as 0s.
    const wantedMs = wanted.duration === 'INF' ? 0 : durationMs(wanted.duration);
    const makeDefault = wanted.isDefault === true && current?.isDefault !== true;
    if (!current)
      changes.push(createRetentionPolicy({ ...spec, isDefault: wanted.isDefault === true }));
    else if (current.durationMs !== wantedMs || makeDefault) {
      changes.push(alterRetentionPolicy({ ...spec, isDefault: makeDefault }));
    }
  }
  if (changes.length > 0) await client.query(statements(changes));

  // Rollups are the platform's own (the rollup function): continuous queries that an
  // earlier version created would compute them a second time.
  const legacy = new Set(
    plans.flatMap((plan) =>
      ROLLUPS.map((rollup) => legacyContinuousQueryName(plan.policy, rollup)),
    ),
  );
  const [cqs] = await client.query(showContinuousQueries());
  const drops: InfluxQL[] = [];
  for (const series of cqs?.series ?? []) {
    if (series.name !== database) continue;
    for (const row of rowsOf(series)) {
      if (legacy.has(String(row.name))) drops.push(dropContinuousQuery(database, String(row.name)));
    }
  }
  if (drops.length > 0) await client.query(statements(drops));
}
