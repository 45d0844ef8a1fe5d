import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { APP_ROLE } from '../shared/db/migrate.ts';
import { LiveConnections } from '../shared/live/adapters/api-gateway-live-connections.ts';
import { PostgresLiveConnectionStore } from '../shared/live/adapters/postgres-live-connection-store.ts';
import { LiveSubscriptions } from '../shared/live/domain/subscriptions.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { signUp } from './support/tenants.ts';

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const app = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
const admin = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 2 });
afterAll(async () => {
  await app.end();
  await admin.end();
});

async function tenantTables(): Promise<string[]> {
  const { rows } = await admin.query<{ table_name: string }>(
    `SELECT DISTINCT c.table_name FROM information_schema.columns c
     JOIN information_schema.tables t USING (table_schema, table_name)
     WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
       AND (c.column_name = 'tenant_id' OR c.table_name = 'tenants')`,
  );
  return rows.map((row) => row.table_name).sort();
}

/** Registers a tenant with its owner; returns the tenant's id. */
const newTenant = async () => (await signUp(auth)).tenantId;

describe('row-level security at the database', () => {
  it('every tenant table has RLS enabled and forced', async () => {
    const tables = await tenantTables();
    expect(tables).toEqual(
      expect.arrayContaining([
        'audit_log',
        'device_credentials',
        'devices',
        'entities',
        'tenants',
        'users',
      ]),
    );
    const { rows } = await admin.query(
      `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
       WHERE relname = ANY($1) AND relkind = 'r'`,
      [tables],
    );
    expect(rows).toHaveLength(tables.length);
    for (const row of rows) {
      expect(row, row.relname).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
    }
  });

  it('the application role owns nothing and has neither superuser nor BYPASSRLS', async () => {
    const role = await admin.query(
      `SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1`,
      [APP_ROLE],
    );
    expect(role.rows[0]).toEqual({
      rolsuper: false,
      rolbypassrls: false,
      rolcreaterole: false,
      rolcreatedb: false,
    });
    const owned = await admin.query(
      `SELECT count(*)::integer AS n FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1`,
      [APP_ROLE],
    );
    expect(owned.rows[0].n).toBe(0);
    const connected = await app.query('SELECT current_user');
    expect(connected.rows[0].current_user).toBe(APP_ROLE);
  });

  it('with no tenant context the application role sees 0 rows in every tenant table', async () => {
    await signUp(auth);
    for (const table of await tenantTables()) {
      const asAdmin = await admin.query(`SELECT count(*)::integer AS n FROM ${table}`);
      if (['tenants', 'users', 'audit_log'].includes(table))
        expect(asAdmin.rows[0].n).toBeGreaterThan(0);
      const asApp = await app.query(`SELECT count(*)::integer AS n FROM ${table}`);
      expect(asApp.rows[0].n, table).toBe(0);
      // An empty context is no context.
      const client = await app.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SELECT set_config('app.current_tenant_id', '', true)`);
        const empty = await client.query(`SELECT count(*)::integer AS n FROM ${table}`);
        expect(empty.rows[0].n, table).toBe(0);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    }
  });

  it('within one tenant’s context, the role sees only that tenant and cannot write into another', async () => {
    const [mine, theirs] = [await newTenant(), await newTenant()];
    const client = await app.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.current_tenant_id', $1, true)`, [String(mine)]);
      const visible = await client.query('SELECT DISTINCT tenant_id FROM users');
      expect(visible.rows).toEqual([{ tenant_id: mine }]);
      await expect(
        client.query(
          `INSERT INTO devices (tenant_id, device_id, name, type) VALUES ($1, $2, 'x', 'y')`,
          [theirs, unique('X')],
        ),
      ).rejects.toThrow(/row-level security/);
      await client.query('ROLLBACK');
      // The context was transaction-local: the pooled connection carries nothing over.
      const after = await client.query(`SELECT count(*)::integer AS n FROM users`);
      expect(after.rows[0].n).toBe(0);
    } finally {
      client.release();
    }
  });

  it('live pushes reach only the tenant’s own dashboards (API Gateway’s push API mocked)', async () => {
    const [mine, theirs, nobodys] = [await newTenant(), await newTenant(), await newTenant()];
    const pushed: Array<{ ConnectionId?: string; Data?: Uint8Array }> = [];
    const management = {
      send: async (command: { input: { ConnectionId?: string; Data?: Uint8Array } }) => {
        pushed.push(command.input);
      },
    } as unknown as ApiGatewayManagementApiClient;
    const live = new LiveConnections(app, management);
    const mineId = unique('conn');
    const theirsId = unique('conn');
    await live.connect(mineId, mine, 1);
    await live.connect(theirsId, theirs, 1);
    // Both watch device 1; the other tenant's connection still gets nothing of this one.
    const subscriptions = new LiveSubscriptions(new PostgresLiveConnectionStore(app));
    for (const id of [mineId, theirsId]) {
      await subscriptions.handle(id, { action: 'subscribe', deviceIds: [1] });
    }
    const event = { type: 'status', device_id: 1, status: 'online', time: 'now' } as const;
    await live.publish(mine, () => [event]);
    expect(pushed.map((push) => push.ConnectionId)).toEqual([mineId]);
    expect(JSON.parse(new TextDecoder().decode(pushed[0]?.Data))).toEqual({
      type: 'events',
      events: [event],
    });
    // A tenant with no dashboard: nothing is made or sent.
    let made = false;
    await live.publish(nobodys, () => {
      made = true;
      return [event];
    });
    expect(made).toBe(false);
    expect(pushed).toHaveLength(1);
    // Several tenants' audiences looked up at once (ingestion's batch): each push still
    // reaches only that tenant's dashboards.
    pushed.length = 0;
    const audience = live.audience([mine, theirs, nobodys]);
    await audience.publish(theirs, () => [event]);
    expect(pushed.map((push) => push.ConnectionId)).toEqual([theirsId]);
    await audience.publish(mine, () => [event]);
    await audience.publish(nobodys, () => {
      made = true;
      return [event];
    });
    expect(pushed.map((push) => push.ConnectionId)).toEqual([theirsId, mineId]);
    expect(made).toBe(false);
    // Without the function, the application role reads no connection with no tenant set.
    const direct = await app.query('SELECT count(*)::integer AS n FROM ws_connections');
    expect(direct.rows[0].n).toBe(0);
    await live.disconnect(mineId);
    await live.disconnect(theirsId);
  });
});
