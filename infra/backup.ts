/**
 * Backups of what a working platform needs into one directory, and restores from it:
 *
 *   npm run backup -- backup  --to DIR   [--postgres URL] [--influx-rpc HOST:PORT]
 *                                        [--stack DATA_DIR | --dynsec FILE --device-passwords FILE
 *                                         --jwt-key FILE --models DIR]
 *   npm run backup -- restore --from DIR [--postgres URL] [--influx-rpc HOST:PORT]
 *                                        [--influx-url URL]
 *                                        [--stack DATA_DIR | --dynsec FILE --device-passwords FILE
 *                                         --jwt-key FILE --models DIR]
 *
 * Besides the two databases: the broker's credentials (Mosquitto's dynsec.json, which holds
 * the platform's own broker accounts; the devices' password file, which holds every
 * device's password hash, in a local stack's data directory or, on a Docker stack, the
 * `device-credentials` volume (--device-passwords); and,
 * from a local or Docker stack, the passwords of its admin and platform clients), the JWT signing key (so tokens already issued still verify)
 * and the trained ML models (a file model store). --stack names a stack's data directory
 * (LOCAL_DATA_DIR) and finds all three where the stack keeps them; a restore with --stack
 * puts them into a new data directory before that stack first starts.
 *
 * PostgreSQL: `pg_dump -Fc` of the whole database (schema, row-level security policies,
 * grants, data) as postgres.dump; restored with `pg_restore` into an empty database after
 * creating the roles the schema grants to. --postgres is a schema-owner URL (default
 * DATABASE_ADMIN_URL). pg_dump must be at least the server's major version (--pg-bin DIR
 * picks another installation).
 *
 * InfluxDB 1.x: `influxd backup -portable` through the server's RPC address (bind-address,
 * port 8088 by default) into influxdb/; `influxd restore -portable` refuses a database that
 * exists, so restore targets a fresh server (or --influx-db-as NAME). --influx-url lets the
 * restore check the retention policies afterwards (and drop an earlier version's rollup
 * continuous queries). InfluxDB 2.x and 3 take their own backups (`influx backup`).
 * Managed InfluxDB (Timestream for InfluxDB, InfluxDB Cloud) has its own snapshots instead.
 *
 * Either half is skipped when its option is absent; the manifest records what was taken.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { config } from '../shared/config.ts';
import { createRolesIfMissing } from '../shared/db/migrate.ts';
import {
  InfluxClient,
  InfluxQueryError,
  rowsOf,
} from '../shared/timeseries/adapters/influx-client.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import { anyPointOfPolicy, showRetentionPolicies } from '../shared/timeseries/adapters/influxql.ts';

const run = promisify(execFile);
const HOUR_MS = 3_600_000;

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export interface Manifest {
  created_at: string;
  postgres?: { file: string; server_version: string; pg_dump_version: string };
  influxdb?: { dir: string; database: string };
  /** Files copied as they are, by their name in the backup. */
  files?: Partial<Record<SecretFile, string>>;
  models?: { dir: string };
}

/** The files besides the databases, each by its place in a stack's data directory. */
export type SecretFile =
  | 'dynsec'
  | 'devicePasswords'
  | 'brokerAdminPassword'
  | 'brokerPlatformPassword'
  | 'jwtKey';

const STACK_FILES: Record<SecretFile, string> = {
  dynsec: 'mosquitto/state/dynsec.json',
  devicePasswords: 'mosquitto/state/device-passwords',
  brokerAdminPassword: 'mosquitto/admin-password',
  brokerPlatformPassword: 'mosquitto/platform-password',
  jwtKey: 'jwt-private-jwk.json',
};
const STACK_MODELS = 'models';
/** A stack whose broker runs elsewhere (Docker) keeps its devices' file beside that broker. */
const OPTIONAL_FILES: ReadonlySet<SecretFile> = new Set(['devicePasswords']);

export interface FileSources {
  files: Partial<Record<SecretFile, string>>;
  models?: string;
}

/** Where a stack's data directory keeps the broker's credentials, the JWT key and the models. */
export function stackFiles(dataDir: string): FileSources {
  return {
    files: Object.fromEntries(
      Object.entries(STACK_FILES).map(([name, file]) => [name, path.join(dataDir, file)]),
    ) as Record<SecretFile, string>,
    models: path.join(dataDir, STACK_MODELS),
  };
}

/** Copies the credential files and the model store into the backup; the manifest's part. */
export async function backupFiles(
  sources: FileSources,
  dir: string,
): Promise<Pick<Manifest, 'files' | 'models'>> {
  const files: Partial<Record<SecretFile, string>> = {};
  for (const [name, source] of Object.entries(sources.files) as Array<[SecretFile, string]>) {
    if (!existsSync(source)) {
      if (OPTIONAL_FILES.has(name)) continue;
      throw new BackupError(`${source} does not exist`);
    }
    const target = path.join(dir, `${name}${path.extname(source)}`);
    await copyFile(source, target);
    // Device password hashes and the signing key: readable by the backup's owner only.
    await chmod(target, 0o600);
    files[name] = path.basename(target);
  }
  let models: Manifest['models'];
  if (sources.models) {
    if (!existsSync(sources.models)) throw new BackupError(`${sources.models} does not exist`);
    await cp(sources.models, path.join(dir, 'models'), { recursive: true });
    models = { dir: 'models' };
  }
  return { files, ...(models ? { models } : {}) };
}

/** Puts the backed-up files where `targets` say (a new stack's data directory, say). */
export async function restoreFiles(
  manifest: Manifest,
  dir: string,
  targets: FileSources,
): Promise<string[]> {
  const restored: string[] = [];
  for (const [name, file] of Object.entries(manifest.files ?? {}) as Array<[SecretFile, string]>) {
    const target = targets.files[name];
    if (!target) continue;
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(path.join(dir, file), target);
    await chmod(target, 0o600);
    restored.push(name);
  }
  if (manifest.models && targets.models) {
    await cp(path.join(dir, manifest.models.dir), targets.models, { recursive: true });
    restored.push('models');
  }
  return restored;
}

function fileSources(args: string[]): FileSources | undefined {
  const stack = option(args, '--stack');
  if (stack) return stackFiles(path.resolve(stack));
  const dynsec = option(args, '--dynsec');
  const devicePasswords = option(args, '--device-passwords');
  const jwtKey = option(args, '--jwt-key');
  const models = option(args, '--models');
  if (!dynsec && !devicePasswords && !jwtKey && !models) return undefined;
  return {
    files: {
      ...(dynsec ? { dynsec: path.resolve(dynsec) } : {}),
      ...(devicePasswords ? { devicePasswords: path.resolve(devicePasswords) } : {}),
      ...(jwtKey ? { jwtKey: path.resolve(jwtKey) } : {}),
    },
    ...(models ? { models: path.resolve(models) } : {}),
  };
}

function tool(pgBin: string | undefined, name: string): string {
  return pgBin ? path.join(pgBin, name) : name;
}

async function command(file: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  try {
    return await run(file, args, { env, timeout: 6 * HOUR_MS, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') throw new BackupError(`${file} is not installed or not on PATH`);
    const detail = (failure.stderr ?? failure.message).trim().split('\n').slice(-3).join(' ');
    throw new BackupError(`${path.basename(file)} failed: ${detail}`);
  }
}

const majorOf = (version: string) => Number(/(\d+)/.exec(version)?.[1] ?? Number.NaN);

/**
 * libpq tools take the password from the environment rather than the command line, where
 * other users of the machine could read it in the process list.
 */
function libpq(url: string): { env: NodeJS.ProcessEnv; dbname: string } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  return { env: { ...process.env, PGPASSWORD: password }, dbname: parsed.toString() };
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]?.server_version ?? '';
  } finally {
    await client.end();
  }
}

export async function backupPostgres(
  url: string,
  file: string,
  options: { pgBin?: string } = {},
): Promise<NonNullable<Manifest['postgres']>> {
  const pgDump = tool(options.pgBin, 'pg_dump');
  const [{ stdout }, server] = await Promise.all([
    command(pgDump, ['--version']),
    serverVersion(url),
  ]);
  const dumpVersion = stdout.trim().replace(/^pg_dump \(PostgreSQL\) /, '');
  // pg_dump refuses a newer server anyway; saying which client to install is the help.
  if (majorOf(dumpVersion) < majorOf(server)) {
    throw new BackupError(
      `pg_dump ${dumpVersion} cannot dump PostgreSQL ${server}: install the PostgreSQL ${majorOf(server)} client tools and pass --pg-bin <their bin directory>`,
    );
  }
  const { env, dbname } = libpq(url);
  await command(
    pgDump,
    ['--format=custom', '--compress=6', `--file=${file}`, `--dbname=${dbname}`],
    env,
  );
  return { file: path.basename(file), server_version: server, pg_dump_version: dumpVersion };
}

export async function restorePostgres(
  url: string,
  file: string,
  options: { pgBin?: string } = {},
): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tables: number }>(
      `SELECT count(*)::integer AS tables FROM pg_tables WHERE schemaname = 'public'`,
    );
    if ((rows[0]?.tables ?? 0) > 0) {
      throw new BackupError(
        'the target database is not empty: restore into a new database (and point the stage at it)',
      );
    }
    // Grants and policies name these roles; the app role's password is set by the next
    // migrate (infra/migrate.ts), which every deploy runs.
    await createRolesIfMissing(client);
  } finally {
    await client.end();
  }
  const { env, dbname } = libpq(url);
  await command(
    tool(options.pgBin, 'pg_restore'),
    ['--exit-on-error', '--single-transaction', `--dbname=${dbname}`, file],
    env,
  );
}

export async function backupInflux(rpcAddress: string, database: string, dir: string) {
  await command('influxd', ['backup', '-portable', '-host', rpcAddress, '-db', database, dir]);
  return { dir: path.basename(dir), database };
}

export async function restoreInflux(
  rpcAddress: string,
  dir: string,
  options: { database: string; restoreAs?: string; influxUrl?: string },
): Promise<void> {
  const target = options.restoreAs ?? options.database;
  await command('influxd', [
    'restore',
    '-portable',
    '-host',
    rpcAddress,
    '-db',
    options.database,
    '-newdb',
    target,
    dir,
  ]);
  if (options.influxUrl) {
    const client = new InfluxClient({ url: options.influxUrl, database: target });
    await ensureTimeseriesSchema(client, { database: target });
    await untilRestoredShardsAnswer(client, target);
  }
}

/**
 * `influxd restore` returns before InfluxDB has reopened the restored shards, and until it
 * has, reads of them fail with "engine is closed" (or "shard is disabled" while one opens):
 * the restore is done once they answer.
 */
async function untilRestoredShardsAnswer(client: InfluxClient, database: string) {
  const [policies] = await client.query(showRetentionPolicies(database));
  const names = (policies?.series ?? []).flatMap((series) =>
    rowsOf(series).map((row) => String(row.name)),
  );
  const deadline = Date.now() + 60_000;
  for (const name of names) {
    for (;;) {
      try {
        await client.query(anyPointOfPolicy(database, name));
        break;
      } catch (error) {
        const reopening =
          error instanceof InfluxQueryError &&
          /engine is closed|shard is disabled/.test(error.message);
        if (!reopening || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at === -1) return undefined;
  const value = args[at + 1];
  if (!value || value.startsWith('--')) throw new BackupError(`${name} needs a value`);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const [action, ...args] = argv;
  const postgresUrl = option(args, '--postgres') ?? config().database.adminUrl;
  const influxRpc = option(args, '--influx-rpc');
  const influxDb = option(args, '--influx-db') ?? DEFAULT_DATABASE;
  const pgBin = option(args, '--pg-bin');
  if (action === 'backup') {
    const dir = path.resolve(option(args, '--to') ?? '');
    if (!option(args, '--to')) throw new BackupError('backup needs --to DIR');
    await mkdir(dir, { recursive: true });
    const manifest: Manifest = { created_at: new Date().toISOString() };
    if (postgresUrl) {
      manifest.postgres = await backupPostgres(postgresUrl, path.join(dir, 'postgres.dump'), {
        ...(pgBin ? { pgBin } : {}),
      });
      console.log(`postgresql: ${manifest.postgres.file}`);
    }
    if (influxRpc) {
      manifest.influxdb = await backupInflux(influxRpc, influxDb, path.join(dir, 'influxdb'));
      console.log(`influxdb: ${manifest.influxdb.dir}/`);
    }
    const sources = fileSources(args);
    if (sources) {
      Object.assign(manifest, await backupFiles(sources, dir));
      console.log(
        `files: ${[...Object.keys(manifest.files ?? {}), ...(manifest.models ? ['models'] : [])].join(', ')}`,
      );
    }
    if (!manifest.postgres && !manifest.influxdb && !sources) {
      throw new BackupError(
        'nothing to back up: give --postgres URL, --influx-rpc HOST:PORT and/or --stack DIR',
      );
    }
    await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  } else if (action === 'restore') {
    const from = option(args, '--from');
    if (!from) throw new BackupError('restore needs --from DIR');
    const dir = path.resolve(from);
    const manifest = JSON.parse(
      await readFile(path.join(dir, 'manifest.json'), 'utf8'),
    ) as Manifest;
    if (manifest.postgres && postgresUrl) {
      await restorePostgres(postgresUrl, path.join(dir, manifest.postgres.file), {
        ...(pgBin ? { pgBin } : {}),
      });
      console.log(
        'postgresql: restored; run infra/migrate.ts (or deploy) to set the app role password',
      );
    }
    if (manifest.influxdb && influxRpc) {
      const restoreAs = option(args, '--influx-db-as');
      const influxUrl = option(args, '--influx-url');
      await restoreInflux(influxRpc, path.join(dir, manifest.influxdb.dir), {
        database: manifest.influxdb.database,
        ...(restoreAs ? { restoreAs } : {}),
        ...(influxUrl ? { influxUrl } : {}),
      });
      console.log('influxdb: restored');
    }
    const targets = fileSources(args);
    if (targets) console.log(`files: ${(await restoreFiles(manifest, dir, targets)).join(', ')}`);
  } else {
    throw new BackupError(
      'usage: backup --to DIR | restore --from DIR, with --postgres URL and/or --influx-rpc HOST:PORT',
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof BackupError ? error.message : error);
    process.exit(error instanceof BackupError ? 2 : 1);
  });
}
