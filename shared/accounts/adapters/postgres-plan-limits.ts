import type { Queryable } from '../../db/postgres.ts';
import { NotPermitted } from '../../domain-errors.ts';

const LIMITS = {
  devices: { column: 'max_devices', table: 'devices' },
  users: { column: 'max_users', table: 'users' },
} as const;

/**
 * Refuses to add `adding` (one unless said) more `what` than the tenant's plan allows. Runs inside the tenant's
 * transaction and locks the tenant row first, so concurrent additions queue behind it; the
 * count is a statement of its own, because in READ COMMITTED a statement that waited for
 * the lock would still count with the snapshot it started with.
 */
export async function assertWithinPlanLimit(
  client: Queryable,
  what: keyof typeof LIMITS,
  adding = 1,
): Promise<void> {
  const { column, table } = LIMITS[what];
  // NO KEY UPDATE: still one addition at a time, but inserts elsewhere that reference the
  // tenant (audit log, entities) take KEY SHARE and need not wait behind it.
  await client.query('SELECT 1 FROM tenants FOR NO KEY UPDATE');
  const { rows } = await client.query<{ limit: number | null; used: number }>(
    `SELECT p.${column} AS limit, (SELECT count(*) FROM ${table})::integer AS used
     FROM tenant_plan tp JOIN plans p ON p.name = tp.plan`,
  );
  const row = rows[0];
  if (row && row.limit !== null && row.used + adding > row.limit) {
    const room = Math.max(0, row.limit - row.used);
    throw new NotPermitted(
      'plan_limit_reached',
      adding === 1
        ? `Your plan allows ${row.limit} ${what}; upgrade to add more`
        : `Your plan allows ${row.limit} ${what} and ${row.used} exist: ${adding} more do not fit (room for ${room}); upgrade to add more`,
    );
  }
}
