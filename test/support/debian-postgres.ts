import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { freePort, waitUntil } from './servers.ts';

/** The major version of the machine's pg_dump, and Debian's server binaries of that version. */
export const pgDumpMajor = Number(
  /(\d+)/.exec(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }))?.[1],
);
export const pgBin = `/usr/lib/postgresql/${pgDumpMajor}/bin`;

/**
 * A PostgreSQL of pg_dump's own major version (Debian's server binaries) in `dir`, with the
 * given databases: the test stack's embedded server is newer than the machine's client
 * tools. Resolves with its superuser URL without a database name.
 */
export async function startDebianPostgres(
  dir: string,
  databases: string[],
): Promise<{ url: string; stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  // initdb refuses to run as root; the Debian package's postgres user owns the cluster.
  const asPostgres: { uid?: number; gid?: number } =
    process.getuid?.() === 0
      ? {
          uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
          gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
        }
      : {};
  if (asPostgres.uid !== undefined && asPostgres.gid !== undefined) {
    await chown(dir, asPostgres.uid, asPostgres.gid);
  }
  execFileSync(
    path.join(pgBin, 'initdb'),
    ['-D', path.join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync'],
    { ...asPostgres, stdio: 'ignore' },
  );
  const port = await freePort();
  const server: ChildProcess = spawn(
    path.join(pgBin, 'postgres'),
    [
      '-D',
      path.join(dir, 'data'),
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
    ],
    { ...asPostgres, stdio: 'ignore' },
  );
  const url = `postgresql://postgres@127.0.0.1:${port}`;
  await waitUntil(
    'postgres to answer',
    async () => {
      const client = new pg.Client({ connectionString: `${url}/postgres` });
      await client.connect();
      await client.end();
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  const client = new pg.Client({ connectionString: `${url}/postgres` });
  await client.connect();
  for (const database of databases) await client.query(`CREATE DATABASE ${database}`);
  await client.end();
  return {
    url,
    async stop() {
      if (server.exitCode !== null) return;
      server.kill('SIGINT');
      await new Promise((resolve) => server.once('exit', resolve));
    },
  };
}
