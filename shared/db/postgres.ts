import pg from 'pg';
import { requestOrigin } from '../request-context.ts';

// int8 (counts, bigserial ids) as numbers: every value we store fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * A pool for `connectionString`. With `password`, the password comes from it (a secret read
 * once per process) instead of the URL: pg asks for it before each new connection.
 */
export function createPool(
  connectionString: string,
  max: number,
  password?: () => Promise<string>,
): pg.Pool {
  // Lambda keeps few concurrent requests per instance; RDS Proxy does the real pooling.
  const options = { connectionString, max, idleTimeoutMillis: 30_000 };
  if (!password) return new pg.Pool(options);
  // pg lets the URL's (absent) password override a `password` option, so the client is told
  // after its construction, where it accepts a function.
  class SecretPasswordClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super(config);
      (this as unknown as { password: () => Promise<string> }).password =
        password as () => Promise<string>;
    }
  }
  return new pg.Pool({ ...options, Client: SecretPasswordClient });
}

/**
 * Runs `work` in one transaction whose row-level-security context is `tenantId`.
 * `set_config(..., true)` is transaction-local, so a pooled connection never carries one
 * tenant's context into another request.
 */
export async function inTenantTransaction<T>(
  pool: pg.Pool,
  tenantId: number,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, async (client) => {
    await setTenantContext(client, tenantId);
    return work(client);
  });
}

export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const pgError = error as { code?: string; constraint?: string };
  return (
    pgError?.code === '23505' && (constraint === undefined || pgError.constraint === constraint)
  );
}

/**
 * Also tells the transaction where the request being served came from: the audit trail's
 * `source` column reads it, so every audited change carries it at no extra round trip.
 */
export function setTenantContext(client: Queryable, tenantId: number) {
  return client.query(
    `SELECT set_config('app.current_tenant_id', $1, true), set_config('app.request_source', $2, true)`,
    [String(tenantId), requestOrigin()?.sourceIp ?? ''],
  );
}

/** The yes/no features of a plan that a context gates on (columns of `plans`). */
export type PlanFlag =
  | 'predictive_maintenance'
  | 'pattern_recognition'
  | 'edge_deployment'
  | 'custom_models';

/** Whether the tenant's current plan has the feature, read in the tenant's own transaction. */
export function tenantPlanHas(pool: pg.Pool, tenantId: number, flag: PlanFlag): Promise<boolean> {
  return inTenantTransaction(pool, tenantId, async (client) => {
    // `flag` is one of the union's column names, never caller text.
    const { rows } = await client.query<{ allowed: boolean }>(
      `SELECT p.${flag} AS allowed
       FROM tenant_plan tp JOIN plans p ON p.name = tp.plan WHERE tp.tenant_id = $1`,
      [tenantId],
    );
    return rows[0]?.allowed === true;
  });
}
