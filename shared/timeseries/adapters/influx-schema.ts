import {
  DEFAULT_RETENTION_PLANS,
  type RetentionPlan,
  ROLLUPS,
  type Rollup,
  rollupPolicy,
} from '../domain/retention.ts';
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

export const DEFAULT_DATABASE = 'iot_data';

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
