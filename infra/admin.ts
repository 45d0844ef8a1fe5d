/**
 * Operator commands, run with the schema owner's connection (DATABASE_ADMIN_URL, or the
 * database of the local stack running in this folder, found through its stack.json, when
 * that is unset):
 *
 *   npm run admin -- set-plan TENANT PLAN [--trial-days N]
 *   npm run admin -- list-tenants
 *   npm run admin -- migrate
 *
 * TENANT is a tenant id or name. Limits apply at once: every request reads the plan afresh,
 * and ingestion's next batch writes to the new plan's retention tier. set-plan then moves the
 * tenant's history to that tier, printing its progress (readings stay readable meanwhile).
 */
import pg from 'pg';
import { NoRunningStack, readRunningStack } from '../local/stack-file.ts';
import { PLAN_NAMES, type PlanName } from '../shared/accounts/domain/model.ts';
import { config } from '../shared/config.ts';
import { migrate } from '../shared/db/migrate.ts';
import { InfluxClient, influxAuth } from '../shared/timeseries/adapters/influx-client.ts';
import { tierMoves } from '../shared/timeseries/composition.ts';
import {
  moveProgress,
  type TierMove,
  type TierMoveRef,
  type TierMoveService,
} from '../shared/timeseries/domain/tier-moves.ts';

class UsageError extends Error {}

async function adminUrl(): Promise<string> {
  const { database, localDataDir } = config();
  if (database.adminUrl) return database.adminUrl;
  try {
    return (await readRunningStack(localDataDir)).databaseAdminUrl;
  } catch (error) {
    if (!(error instanceof NoRunningStack)) throw error;
    throw new UsageError(`${error.message}, or set DATABASE_ADMIN_URL`);
  }
}

async function influxClient(): Promise<InfluxClient> {
  const { influx, localDataDir } = config();
  let url = influx.url;
  if (!url) {
    try {
      url = (await readRunningStack(localDataDir)).influxUrl;
    } catch (error) {
      if (!(error instanceof NoRunningStack)) throw error;
      throw new UsageError(`${error.message}, or set INFLUX_URL`);
    }
  }
  const auth = influxAuth(influx);
  return new InfluxClient({ url, database: influx.db, ...(auth ? { auth } : {}) });
}

export interface PlanChange {
  tenant: { id: number; name: string };
  from: string;
  to: PlanName;
  trial_ends_at: string | null;
  /** The move of the tenant's history to the new plan's tier, when the tier changed. */
  tier_move: TierMoveRef | null;
}

export async function setPlan(
  client: pg.ClientBase,
  tenantRef: string,
  plan: string,
  trialDays?: number,
): Promise<PlanChange> {
  if (!PLAN_NAMES.includes(plan as PlanName)) {
    throw new UsageError(`unknown plan '${plan}': use one of ${PLAN_NAMES.join(', ')}`);
  }
  const byId = /^[0-9]+$/.test(tenantRef);
  await client.query('BEGIN');
  try {
    const found = await client.query<{ id: number; name: string; plan: string }>(
      `SELECT id, name, plan FROM tenants WHERE ${byId ? 'id = $1::integer' : 'lower(name) = lower($1)'} FOR UPDATE`,
      [tenantRef],
    );
    const tenant = found.rows[0];
    if (!tenant) throw new UsageError(`no tenant with ${byId ? 'id' : 'name'} '${tenantRef}'`);
    const updated = await client.query<{ trial_ends_at: string | null }>(
      `UPDATE tenants SET plan = $2,
         trial_ends_at = CASE WHEN $3::integer IS NULL THEN NULL ELSE now() + make_interval(days => $3::integer) END
       WHERE id = $1 RETURNING to_json(trial_ends_at) #>> '{}' AS trial_ends_at`,
      [tenant.id, plan, trialDays ?? null],
    );
    // Writes switch to the new tier with ingestion's next batch (plan_version), and reads
    // follow the move as it copies the history (tier_moves).
    const moved = await client.query<{ id: number | null }>('SELECT start_tier_move($1) AS id', [
      tenant.id,
    ]);
    const moveId = moved.rows[0]?.id ?? null;
    await client.query(
      `INSERT INTO audit_log (tenant_id, user_id, action, target, details)
       VALUES ($1, NULL, 'tenant.plan', $2, $3)`,
      [
        tenant.id,
        `tenant:${tenant.id}`,
        JSON.stringify({ from: tenant.plan, to: plan, trial_days: trialDays ?? null }),
      ],
    );
    await client.query('COMMIT');
    return {
      tenant: { id: tenant.id, name: tenant.name },
      from: tenant.plan,
      to: plan as PlanName,
      trial_ends_at: updated.rows[0]?.trial_ends_at ?? null,
      tier_move: moveId === null ? null : { id: Number(moveId), tenantId: tenant.id },
    };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/**
 * `set-plan`: finishes a move an earlier change left unfinished, changes the plan, then
 * drives the tenant's history to the new tier, reporting progress. Interrupted, the move
 * is resumed by the scheduled timeseries function once its lease lapses.
 */
export async function changePlan(
  client: pg.ClientBase,
  moves: TierMoveService,
  tenantRef: string,
  plan: string,
  trialDays?: number,
  report: (line: string) => void = () => {},
): Promise<PlanChange> {
  const progress = (move: TierMove) =>
    report(
      `moving history ${move.fromPolicy} -> ${move.toPolicy}: ${Math.round(moveProgress(move) * 100)}%, ` +
        `${move.pointsCopied} points copied`,
    );
  const tenantId = await tenantIdOf(client, tenantRef);
  const unfinished = await moves.log.running(tenantId);
  if (unfinished && !(await moves.run(unfinished, progress))) {
    throw new UsageError(
      'an earlier move of this tenant is still running elsewhere; try again shortly',
    );
  }
  const change = await setPlan(client, String(tenantId), plan, trialDays);
  report(
    `tenant ${change.tenant.id} (${change.tenant.name}): ${change.from} -> ${change.to}` +
      (change.trial_ends_at ? `, trial ends ${change.trial_ends_at}` : ''),
  );
  if (change.tier_move && !(await moves.run(change.tier_move, progress))) {
    report('the move continues in the scheduled timeseries function');
  }
  return change;
}

async function tenantIdOf(client: pg.ClientBase, tenantRef: string): Promise<number> {
  const byId = /^[0-9]+$/.test(tenantRef);
  const { rows } = await client.query<{ id: number }>(
    `SELECT id FROM tenants WHERE ${byId ? 'id = $1::integer' : 'lower(name) = lower($1)'}`,
    [tenantRef],
  );
  if (!rows[0]) throw new UsageError(`no tenant with ${byId ? 'id' : 'name'} '${tenantRef}'`);
  return rows[0].id;
}

function parseTrialDays(args: string[]): number | undefined {
  const at = args.indexOf('--trial-days');
  if (at === -1) return undefined;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1 || value > 3650) {
    throw new UsageError('--trial-days takes a whole number of days between 1 and 3650');
  }
  args.splice(at, 2);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  const command = args.shift();
  const url = await adminUrl();
  if (command === 'migrate') {
    const flag = args.indexOf('--app-password');
    const appPassword = flag === -1 ? undefined : args[flag + 1];
    if (!appPassword)
      throw new UsageError('migrate needs --app-password PASSWORD for the application role');
    await migrate({ adminUrl: url, appPassword, log: (line) => console.log(line) });
    console.log('migrations applied');
    return;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    if (command === 'set-plan') {
      const trialDays = parseTrialDays(args);
      const [tenantRef, plan] = args;
      if (!tenantRef || !plan) throw new UsageError('usage: set-plan TENANT PLAN [--trial-days N]');
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      try {
        const moves = tierMoves(pool, await influxClient());
        await changePlan(client, moves, tenantRef, plan, trialDays, (line) => console.log(line));
      } finally {
        await pool.end();
      }
    } else if (command === 'list-tenants') {
      const { rows } = await client.query(
        `SELECT t.id, t.name, t.plan, t.status, t.trial_ends_at,
                (SELECT count(*) FROM devices d WHERE d.tenant_id = t.id)::integer AS devices
         FROM tenants t ORDER BY t.id`,
      );
      console.table(rows);
    } else {
      throw new UsageError(
        'commands: set-plan TENANT PLAN [--trial-days N] | list-tenants | migrate --app-password P',
      );
    }
  } finally {
    await client.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    // One line for the operator's terminal: what failed, never a stack trace.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`admin: ${message.replace(/\s*\n\s*/g, ' ')}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  });
}
