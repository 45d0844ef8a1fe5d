import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { ExportJob, ExportJobStore } from '../domain/export.ts';

type JobRow = Omit<ExportJob, 'created_at' | 'finished_at'> & {
  created_at: Date;
  finished_at: Date | null;
};

const COLUMNS =
  'id, tenant_id, status, request, rows, bytes, error, created_at, finished_at, object_key';

function jobOf(row: JobRow): ExportJob {
  return {
    ...row,
    created_at: row.created_at.toISOString(),
    finished_at: row.finished_at ? row.finished_at.toISOString() : null,
  };
}

export class PostgresExportJobStore implements ExportJobStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(tenantId: number, requestedBy: number, request: ExportJob['request']) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ id: number }>(
        'INSERT INTO export_jobs (tenant_id, requested_by, request) VALUES ($1, $2, $3) RETURNING id',
        [tenantId, requestedBy, JSON.stringify(request)],
      );
      return (rows[0] as { id: number }).id;
    });
  }

  async get(tenantId: number, id: number): Promise<ExportJob | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<JobRow>(
        `SELECT ${COLUMNS} FROM export_jobs WHERE tenant_id = $1 AND id = $2`,
        [tenantId, id],
      );
      return rows[0] ? jobOf(rows[0]) : null;
    });
  }

  async start(tenantId: number, id: number): Promise<ExportJob | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<JobRow>(
        `UPDATE export_jobs SET status = 'running' WHERE tenant_id = $1 AND id = $2 AND status = 'pending'
         RETURNING ${COLUMNS}`,
        [tenantId, id],
      );
      return rows[0] ? jobOf(rows[0]) : null;
    });
  }

  async finish(
    tenantId: number,
    id: number,
    outcome:
      | { status: 'done'; objectKey: string; rows: number; bytes: number }
      | { status: 'failed'; error: string },
  ) {
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(
        `UPDATE export_jobs SET status = $3, object_key = $4, rows = $5, bytes = $6, error = $7, finished_at = now()
         WHERE tenant_id = $1 AND id = $2`,
        outcome.status === 'done'
          ? [tenantId, id, 'done', outcome.objectKey, outcome.rows, outcome.bytes, null]
          : [tenantId, id, 'failed', null, null, null, outcome.error],
      ),
    );
  }
}
