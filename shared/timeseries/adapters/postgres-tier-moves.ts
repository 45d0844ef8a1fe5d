import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { DueWork, TierMove, TierMoveLog, TierMoveRef } from '../domain/tier-moves.ts';

interface MoveRow {
  id: number;
  tenant_id: number;
  from_policy: string;
  to_policy: string;
  keep_from: Date | null;
  copied_from: Date | null;
  oldest: Date | null;
  points_copied: number;
  started_at: Date;
  finished_at: Date | null;
}

const ms = (value: Date | null) => (value === null ? null : value.getTime());
const at = (value: number | null) => (value === null ? null : new Date(value));

function toMove(row: MoveRow): TierMove {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    fromPolicy: row.from_policy,
    toPolicy: row.to_policy,
    keepFrom: ms(row.keep_from),
    copiedFrom: ms(row.copied_from),
    oldest: ms(row.oldest),
    pointsCopied: row.points_copied,
    startedAt: row.started_at.getTime(),
    finishedAt: ms(row.finished_at),
  };
}

/** `tier_moves` (migrations/…_storage_tiers.sql), each change in the tenant's own transaction. */
export class PostgresTierMoveLog implements TierMoveLog {
  constructor(private readonly pool: pg.Pool) {}

  #one(ref: TierMoveRef, sql: string, params: unknown[]): Promise<TierMove | null> {
    return inTenantTransaction(this.pool, ref.tenantId, async (client) => {
      const { rows } = await client.query<MoveRow>(sql, [ref.id, ...params]);
      return rows[0] ? toMove(rows[0]) : null;
    });
  }

  claim(ref: TierMoveRef, owner: string, leaseMs: number) {
    return this.#one(
      ref,
      `UPDATE tier_moves SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
       WHERE id = $1 AND finished_at IS NULL
         AND (lease_owner = $2 OR lease_until IS NULL OR lease_until < now())
       RETURNING *`,
      [owner, leaseMs / 1000],
    );
  }

  async progress(
    move: TierMove,
    owner: string,
    step: { copiedFrom: number; oldest: number | null; pointsAdded: number },
  ): Promise<TierMove> {
    const updated = await this.#one(
      move,
      `UPDATE tier_moves SET copied_from = $3, oldest = $4, points_copied = points_copied + $5
       WHERE id = $1 AND lease_owner = $2 RETURNING *`,
      [owner, at(step.copiedFrom), at(step.oldest), step.pointsAdded],
    );
    if (!updated) throw new Error(`tier move ${move.id} was taken over by another driver`);
    return updated;
  }

  async finish(move: TierMove, owner: string): Promise<TierMove> {
    const updated = await this.#one(
      move,
      `UPDATE tier_moves SET finished_at = now(), purged_at = now(), lease_owner = NULL, lease_until = NULL
       WHERE id = $1 AND lease_owner = $2 RETURNING *`,
      [owner],
    );
    if (!updated) throw new Error(`tier move ${move.id} was taken over by another driver`);
    return updated;
  }

  async due(): Promise<DueWork[]> {
    const { rows } = await this.pool.query<{
      id: number;
      tenant_id: number;
      kind: DueWork['kind'];
    }>('SELECT * FROM tier_moves_due()');
    return rows.map((row) => ({ id: row.id, tenantId: row.tenant_id, kind: row.kind }));
  }

  running(tenantId: number): Promise<TierMoveRef | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ id: number }>(
        'SELECT id FROM tier_moves WHERE tenant_id = $1 AND finished_at IS NULL',
        [tenantId],
      );
      return rows[0] ? { id: rows[0].id, tenantId } : null;
    });
  }

  get(ref: TierMoveRef) {
    return this.#one(ref, 'SELECT * FROM tier_moves WHERE id = $1', []);
  }

  async purged(ref: TierMoveRef): Promise<void> {
    await this.#one(ref, 'UPDATE tier_moves SET purged_at = now() WHERE id = $1 RETURNING *', []);
  }
}
