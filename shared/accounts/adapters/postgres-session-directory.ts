import type pg from 'pg';
import type { Role } from '../domain/caller.ts';
import type { SessionDirectory } from '../domain/sessions.ts';

/** One primary-key read through `auth_session`, outside a transaction: one round trip. */
export class PostgresSessionDirectory implements SessionDirectory {
  constructor(private readonly pool: pg.Pool) {}

  async current(userId: number, tenantId: number) {
    const { rows } = await this.pool.query<{ role: Role; token_version: number }>(
      'SELECT role, token_version FROM auth_session($1, $2)',
      [userId, tenantId],
    );
    const row = rows[0];
    return row ? { role: row.role, tokenVersion: row.token_version } : null;
  }
}
