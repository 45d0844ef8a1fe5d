import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  BackupError,
  backupInflux,
  backupPostgres,
  restoreInflux,
  restorePostgres,
} from '../infra/backup.ts';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { migrate } from '../shared/db/migrate.ts';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import { pgBin, pgDumpMajor, startDebianPostgres } from './support/debian-postgres.ts';
import { temporaryDataDir } from './support/servers.ts';

/**
 * infra/backup.ts against real servers: a PostgreSQL database with the real migrations
 * (roles, row-level security, grants) and an InfluxDB with the plan policies are backed up and restored into empty servers, and the copies are compared.
 */

const data = await temporaryDataDir('backup');
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.allSettled(stops.map((stop) => stop()));
  await data.remove();
});

async function startMatchingPostgres(): Promise<string> {
  const server = await startDebianPostgres(path.join(data.dir, 'postgres'), [
    'easysmart',
    'easysmart_restored',
  ]);
  stops.push(server.stop);
  return server.url;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const snapshotSql = {
  tenants: 'SELECT id, name, plan FROM tenants ORDER BY id',
  forced: `SELECT relname FROM pg_class WHERE relforcerowsecurity ORDER BY relname`,
  policies: 'SELECT tablename, policyname FROM pg_policies ORDER BY 1, 2',
  grants: `SELECT table_name, privilege_type FROM information_schema.role_table_grants
           WHERE grantee = 'easysmart_app' ORDER BY 1, 2`,
  migrations: 'SELECT name FROM pgmigrations ORDER BY id',
};

async function snapshot(url: string): Promise<Record<keyof typeof snapshotSql, any[]>> {
  return Object.fromEntries(
    await Promise.all(
      Object.entries(snapshotSql).map(
        async ([name, sql]) => [name, await query(url, sql)] as const,
      ),
    ),
  ) as Record<keyof typeof snapshotSql, any[]>;
}

describe('PostgreSQL backup and restore (pg_dump / pg_restore)', () => {
  let server = '';
  beforeAll(async () => {
    server = await startMatchingPostgres();
    await migrate({ adminUrl: `${server}/easysmart`, appPassword: 'backup-test-password' });
    await query(
      `${server}/easysmart`,
      `INSERT INTO tenants (name, plan) VALUES ('Backup Plant', 'starter'), ('Other Plant', 'free')`,
    );
  }, 60_000);

  it('restores schema, row-level security, grants and data into an empty database', async () => {
    const dump = path.join(data.dir, 'postgres.dump');
    const taken = await backupPostgres(`${server}/easysmart`, dump, { pgBin });
    expect(taken.server_version).toMatch(new RegExp(`^${pgDumpMajor}\\.`));
    await restorePostgres(`${server}/easysmart_restored`, dump, { pgBin });
    const [before, after] = await Promise.all([
      snapshot(`${server}/easysmart`),
      snapshot(`${server}/easysmart_restored`),
    ]);
    expect(after).toEqual(before);
    expect(after.tenants.map((t: any) => t.name)).toEqual(['Backup Plant', 'Other Plant']);
    expect(after.forced.length).toBeGreaterThan(3);
    // The app role still sees nothing without a tenant context after the restore.
    await migrate({ adminUrl: `${server}/easysmart_restored`, appPassword: 'restored-password' });
    const asApp = `postgresql://easysmart_app:restored-password@${server.slice('postgresql://postgres@'.length)}/easysmart_restored`;
    expect(await query(asApp, 'SELECT id FROM tenants')).toEqual([]);
  });

  it('refuses to restore over a database that has tables', async () => {
    const dump = path.join(data.dir, 'postgres.dump');
    await expect(restorePostgres(`${server}/easysmart`, dump, { pgBin })).rejects.toThrow(
      /not empty/,
    );
  });

  it('names the client tools to install when pg_dump is older than the server', async () => {
    const stack = inject('testStack');
    const [server17] = await query<{ server_version: string }>(
      stack.databaseAdminUrl,
      'SHOW server_version',
    );
    const serverMajor = Number(/(\d+)/.exec(server17?.server_version ?? '')?.[1]);
    const attempt = backupPostgres(stack.databaseAdminUrl, path.join(data.dir, 'stack.dump'), {
      pgBin,
    });
    if (serverMajor > pgDumpMajor) {
      await expect(attempt).rejects.toThrow(BackupError);
      await expect(attempt).rejects.toThrow(`install the PostgreSQL ${serverMajor} client tools`);
    } else {
      await expect(attempt).resolves.toMatchObject({ file: 'stack.dump' });
    }
  });
});

async function rpcAddress(dataDir: string): Promise<string> {
  const conf = await readFile(path.join(dataDir, 'influxdb.conf'), 'utf8');
  const address = /^bind-address = "([^"]+)"/m.exec(conf)?.[1];
  if (!address) throw new Error('no RPC bind-address in influxdb.conf');
  return address;
}

describe('InfluxDB backup and restore (influxd -portable)', () => {
  it('restores the points and the plan policies into a fresh server, with no continuous query', async () => {
    const sourceDir = path.join(data.dir, 'influx-source');
    const targetDir = path.join(data.dir, 'influx-target');
    const [source, target] = await Promise.all([
      startInfluxdb({ dataDir: sourceDir }),
      startInfluxdb({ dataDir: targetDir }),
    ]);
    stops.push(source.stop, target.stop);
    const sourceClient = new InfluxClient({ url: source.url, database: DEFAULT_DATABASE });
    await ensureTimeseriesSchema(sourceClient);
    const now = Date.now();
    const lines = [0, 1, 2]
      .map(
        (i) =>
          `sensor_data,tenant_id=1,device_id=D1,entity_id=t,entity_type=sensor value=${20 + i} ${now - i * 1000}`,
      )
      .join('\n');
    const written = await fetch(
      `${source.url}/write?db=${DEFAULT_DATABASE}&rp=starter_plan&precision=ms`,
      {
        method: 'POST',
        body: lines,
      },
    );
    expect(written.status).toBe(204);

    const backupDir = path.join(data.dir, 'influx-backup');
    await backupInflux(await rpcAddress(sourceDir), DEFAULT_DATABASE, backupDir);
    await restoreInflux(await rpcAddress(targetDir), backupDir, {
      database: DEFAULT_DATABASE,
      influxUrl: target.url,
    });

    const targetClient = new InfluxClient({ url: target.url, database: DEFAULT_DATABASE });
    const count = async (client: InfluxClient) => {
      const [result] = await client.query(
        `SELECT count(value) FROM "${DEFAULT_DATABASE}"."starter_plan"."sensor_data"` as never,
      );
      return rowsOf(result?.series?.[0] ?? ({ columns: [], values: [] } as never))[0]?.count;
    };
    expect(await count(targetClient)).toBe(3);
    const names = async (client: InfluxClient, statement: string) => {
      const [result] = await client.query(statement as never);
      return (result?.series ?? [])
        .flatMap((series) => rowsOf(series).map((row) => row.name))
        .sort();
    };
    expect(await names(targetClient, `SHOW RETENTION POLICIES ON "${DEFAULT_DATABASE}"`)).toEqual(
      await names(sourceClient, `SHOW RETENTION POLICIES ON "${DEFAULT_DATABASE}"`),
    );
    expect(await names(targetClient, 'SHOW CONTINUOUS QUERIES')).toEqual([]);
  }, 90_000);
});
