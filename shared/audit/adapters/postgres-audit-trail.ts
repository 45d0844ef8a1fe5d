import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { AuditEntry, AuditQuery, AuditRecord, AuditTrail } from '../domain/audit.ts';

/**
 * The trail in `audit_log`, which the application role may only read and append to. The
 * request's address is the column's default, taken from the transaction's context.
 */
export class PostgresAuditTrail implements AuditTrail {
  constructor(private readonly pool: pg.Pool) {}

  async record(entry: AuditRecord): Promise<void> {
    await inTenantTransaction(this.pool, entry.tenantId, (client) =>
      client.query(
        `INSERT INTO audit_log (tenant_id, user_id, action, target, details, changes)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [
          entry.tenantId,
          entry.userId,
          entry.action,
          entry.target,
          entry.details ? JSON.stringify(entry.details) : null,
          entry.changes ? JSON.stringify(entry.changes) : null,
        ],
      ),
    );
  }

  async list(tenantId: number, query: AuditQuery): Promise<AuditEntry[]> {
    const actorId = query.actor && /^\d{1,10}$/.test(query.actor) ? Number(query.actor) : null;
    const actorName = query.actor && actorId === null ? query.actor : null;
    const prefix = query.action?.endsWith('.') ? query.action : null;
    const action = query.action && !prefix ? query.action : null;
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<Omit<AuditEntry, 'at'> & { at: Date }>(
        `SELECT a.id, a.created_at AS at, a.user_id, u.username, a.action, a.target, a.source,
                a.details, a.changes
         FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant_id = $1
           AND ($2::integer IS NULL OR a.user_id = $2)
           AND ($3::text IS NULL OR lower(u.username) = lower($3))
           AND ($4::text IS NULL OR a.action = $4)
           AND ($5::text IS NULL OR starts_with(a.action, $5))
           AND ($6::timestamptz IS NULL OR a.created_at >= $6)
           AND ($7::timestamptz IS NULL OR a.created_at < $7)
           AND ($8::bigint IS NULL OR a.id < $8)
         ORDER BY a.id DESC
         LIMIT $9`,
        [
          tenantId,
          actorId,
          actorName,
          action,
          prefix,
          query.from ?? null,
          query.to ?? null,
          query.before ?? null,
          query.limit,
        ],
      );
      return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
    });
  }
}
