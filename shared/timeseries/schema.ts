import { type InfluxClient, InfluxQueryError, rowsOf } from './influx-client.ts';
import {
  alterRetentionPolicy,
  createContinuousQuery,
  createDatabase,
  createRetentionPolicy,
  dropContinuousQuery,
  durationMs,
  goDurationMs,
  type InfluxQL,
  policyDuration,
  policyDurationMs,
  rollupSelect,
  showRetentionPolicies,
  statements,
  type TagFilter,
} from './influxql.ts';
import { FIELDS, MEASUREMENTS } from './reading.ts';

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
   * How far back each CQ run recomputes, so that it takes in readings that arrive up to
   * LATE_READING_MS late: their bucket must still be in the window at the next run, which
   * needs more than LATE_READING_MS + interval + the run interval (5m: 20 min, 1h: 2 h 10 min).
   * Later readings are refreshed by the writer itself (`InfluxReadingStore.writeReadings`).
   * Every run reads the whole window again, so it is kept short: with 2 h, each raw point was
   * aggregated 24 times by the 5m CQ alone, more InfluxDB CPU than writing it.
   */
  resampleFor: string;
}

export const ROLLUPS: readonly Rollup[] = [
  { name: '5m', interval: '5m', resampleFor: '30m' },
  { name: '1h', interval: '1h', resampleFor: '3h' },
];

/**
 * Readings older than this (relative to arrival) are past the CQs' reach (see `Rollup`);
 * the writer refreshes their rollup buckets itself, device by device.
 */
export const LATE_READING_MS = 10 * 60 * 1000;

export function rollupPolicy(plan: string, rollup: Rollup): string {
  return `${plan}_${rollup.name}`;
}

export function continuousQueryName(plan: string, rollup: Rollup): string {
  return `cq_${plan}_${rollup.name}`;
}

export interface SchemaOptions {
  database?: string;
  plans?: readonly RetentionPlan[];
}

function rollupBody(
  database: string,
  plan: string,
  rollup: Rollup,
  scope?: BackfillScope,
): InfluxQL {
  return rollupSelect({
    from: { database, retentionPolicy: plan, measurement: MEASUREMENTS.sensor },
    into: {
      database,
      retentionPolicy: rollupPolicy(plan, rollup),
      measurement: MEASUREMENTS.sensor,
    },
    field: FIELDS.value,
    interval: rollup.interval,
    ...(scope?.tenantId !== undefined ? { tenantId: scope.tenantId } : {}),
    ...(scope?.tags ? { tags: scope.tags } : {}),
    ...(scope?.time ? { time: scope.time } : {}),
  });
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
 * Creates or corrects the database, each plan's raw and rollup retention policies and the
 * rollup continuous queries. Safe to run at every start: it only changes what differs.
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

  for (const plan of plans) {
    for (const rollup of ROLLUPS) {
      const name = continuousQueryName(plan.policy, rollup);
      const create = createContinuousQuery({
        database,
        name,
        resampleEvery: rollup.interval,
        resampleFor: rollup.resampleFor,
        body: rollupBody(database, plan.policy, rollup),
      });
      try {
        // Same text as the existing CQ: the server accepts it as a no-op.
        await client.query(create);
      } catch (error) {
        if (!(error instanceof InfluxQueryError) || !/already exists/.test(error.message))
          throw error;
        // Another definition under this name (an older version of this code): replace it.
        await client.query(statements([dropContinuousQuery(database, name), create]));
      }
    }
  }
}

export interface BackfillScope {
  tenantId?: number;
  tags?: TagFilter;
  time?: { from: number; to: number };
}

export interface BackfillOptions extends SchemaOptions {
  from: Date | number;
  to: Date | number;
  /** Only this tenant's (and these tags') series; all tenants when absent. */
  tenantId?: number;
  tags?: TagFilter;
  /** Only these plans' policies. */
  policies?: readonly string[];
  timeoutMs?: number;
  now?: () => number;
}

const DAY_MS = 86_400_000;

/**
 * Recomputes the 5m and 1h rollups for a past range with the CQs' own SELECT ... INTO (CQs
 * only ever look at recent intervals): after a restore, for late readings, in tests. The range
 * is widened to whole intervals, kept inside each policy's retention, and cut into days so
 * no single statement runs for long.
 */
export async function backfillRollups(
  client: InfluxClient,
  options: BackfillOptions,
): Promise<void> {
  const database = options.database ?? DEFAULT_DATABASE;
  const plans = (options.plans ?? DEFAULT_RETENTION_PLANS).filter(
    (plan) => !options.policies || options.policies.includes(plan.policy),
  );
  const now = (options.now ?? Date.now)();
  const fromMs = typeof options.from === 'number' ? options.from : options.from.getTime();
  const toMs = typeof options.to === 'number' ? options.to : options.to.getTime();
  for (const plan of plans) {
    for (const rollup of ROLLUPS) {
      const interval = durationMs(rollup.interval);
      // The first whole interval still inside the policy: older points would be refused.
      const oldest = now - policyDurationMs(plan.duration);
      const start = Math.max(
        Math.floor(fromMs / interval) * interval,
        Number.isFinite(oldest) ? Math.ceil(oldest / interval) * interval + interval : -Infinity,
      );
      const end = Math.ceil(toMs / interval) * interval;
      const bodies: InfluxQL[] = [];
      for (let windowStart = start; windowStart < end; windowStart += DAY_MS) {
        bodies.push(
          rollupBody(database, plan.policy, rollup, {
            ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
            ...(options.tags ? { tags: options.tags } : {}),
            time: { from: windowStart, to: Math.min(windowStart + DAY_MS, end) },
          }),
        );
      }
      for (const body of bodies) {
        await client.query(body, { timeoutMs: options.timeoutMs ?? 120_000 });
      }
    }
  }
}
