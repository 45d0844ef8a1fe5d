import { createHash } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../../db/postgres.ts';
import {
  type Admission,
  admit,
  type ThrottledKey,
  type ThrottleStore,
} from '../domain/throttle.ts';

const hashed = (key: string) => createHash('sha256').update(key).digest('hex');
/** Rows untouched this long are deleted now and then, so unknown logins do not pile up. */
const STALE_AFTER_MS = 24 * 3_600_000;

/**
 * Throttle state in `auth_throttle`. The rows of one attempt are locked together (in key
 * order, so two attempts never deadlock), decided by the domain's `admit`, and written
 * before the lock is released: parallel attempts are counted strictly one after another.
 */
export class PostgresThrottleStore implements ThrottleStore {
  #sinceSweep = 0;

  constructor(private readonly pool: pg.Pool) {}

  async admit(keys: ThrottledKey[], nowMs: number) {
    const entries = keys
      .map((entry) => ({ ...entry, hash: hashed(entry.key) }))
      .sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    const hashes = entries.map((entry) => entry.hash);
    const result = await inTransaction(this.pool, async (client) => {
      await client.query(
        `INSERT INTO auth_throttle (key, attempts, updated_at)
         SELECT k, 0, to_timestamp($2::double precision / 1000) FROM unnest($1::text[]) AS k
         ORDER BY k ON CONFLICT (key) DO NOTHING`,
        [hashes, nowMs],
      );
      const { rows } = await client.query<{
        key: string;
        attempts: number;
        blocked_until_ms: number | null;
        updated_at_ms: number;
        fresh: boolean;
      }>(
        `SELECT key, attempts,
                (extract(epoch FROM blocked_until) * 1000)::float8 AS blocked_until_ms,
                (extract(epoch FROM updated_at) * 1000)::float8 AS updated_at_ms,
                attempts = 0 AND blocked_until IS NULL AS fresh
         FROM auth_throttle WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE`,
        [hashes],
      );
      const byKey = new Map(rows.map((row) => [row.key, row]));
      const decisions: Array<{ hash: string; admission: Admission }> = entries.map((entry) => {
        const row = byKey.get(entry.hash);
        const state =
          !row || row.fresh
            ? null
            : {
                attempts: row.attempts,
                blockedUntilMs: row.blocked_until_ms,
                updatedAtMs: row.updated_at_ms,
              };
        return { hash: entry.hash, admission: admit(state, entry.policy, nowMs) };
      });
      const refused = decisions.flatMap(({ admission }) =>
        admission.allowed ? [] : [admission.retryAfterMs],
      );
      if (refused.length > 0) {
        return { allowed: false as const, retryAfterMs: Math.max(...refused) };
      }
      for (const { hash, admission } of decisions) {
        if (!admission.allowed) continue;
        await client.query(
          `UPDATE auth_throttle SET attempts = $2,
             blocked_until = to_timestamp($3::double precision / 1000),
             updated_at = to_timestamp($4::double precision / 1000)
           WHERE key = $1`,
          [
            hash,
            admission.next.attempts,
            admission.next.blockedUntilMs,
            admission.next.updatedAtMs,
          ],
        );
      }
      return { allowed: true as const };
    });
    if (++this.#sinceSweep >= 1000) {
      this.#sinceSweep = 0;
      await this.pool.query(
        'DELETE FROM auth_throttle WHERE updated_at < to_timestamp($1::double precision / 1000)',
        [nowMs - STALE_AFTER_MS],
      );
    }
    return result;
  }

  async settle(reset: string[], refund: string[]): Promise<void> {
    await this.pool.query(
      `WITH gone AS (DELETE FROM auth_throttle WHERE key = ANY($1::text[]))
       UPDATE auth_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = ANY($2::text[])`,
      [reset.map(hashed), refund.map(hashed)],
    );
  }
}
