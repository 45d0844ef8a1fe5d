/**
 * What checking every authenticated request against PostgreSQL costs (issue: tokens must
 * not outlive the user's rights). Baseline: verifying the access token alone (signature,
 * claims), as before. Measured: the same verification plus the session check, one
 * `auth_session` row read by primary key (shared/accounts/adapters/postgres-session-directory.ts).
 * Both run in this process, alternating rounds, against a real PostgreSQL from npm. Besides
 * the time a request takes, the CPU it costs (this process and PostgreSQL's, from /proc) is
 * printed: on a shared machine waiting for a core inflates the time, much less the CPU.
 *
 *   npx tsx bench/auth-session.ts [--requests 3000] [--rounds 5] [--concurrency 8]
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { generateSigningJwk } from '../local/services/jwt-key.ts';
import { startPostgres } from '../local/services/postgres.ts';
import { AccessTokens } from '../shared/accounts/adapters/jose-access-tokens.ts';
import { PostgresSessionDirectory } from '../shared/accounts/adapters/postgres-session-directory.ts';
import { Authenticator } from '../shared/accounts/domain/sessions.ts';
import { migrate } from '../shared/db/migrate.ts';
import { cpuBetween, sampleCpu } from './cpu.ts';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

const requests = option('--requests', 3000);
const rounds = option('--rounds', 5);
const concurrency = option('--concurrency', 8);

const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-bench-auth-'));
// PostgreSQL runs as its own user when this runs as root: it must reach its folder.
await chmod(dir, 0o755);
const postgres = await startPostgres({ dataDir: path.join(dir, 'postgres') });
try {
  const { appUrl } = await migrate({ adminUrl: postgres.adminUrl, appPassword: 'bench' });
  const admin = new pg.Pool({ connectionString: postgres.adminUrl, max: 2 });
  // The pool a function has (DATABASE_POOL_MAX's default), so connections are not the limit.
  const app = new pg.Pool({ connectionString: appUrl, max: 5 });
  // The server stops at the end; idle connections closing then are expected.
  for (const pool of [admin, app]) pool.on('error', () => {});
  const tenant = await admin.query<{ id: number }>(
    `INSERT INTO tenants (name) VALUES ('Bench') RETURNING id`,
  );
  const tenantId = tenant.rows[0]?.id as number;
  const user = await admin.query<{ id: number }>(
    `INSERT INTO users (tenant_id, username, email, password, role)
     VALUES ($1, 'bench', 'bench@example.com', 'x', 'admin') RETURNING id`,
    [tenantId],
  );
  const tokens = new AccessTokens({
    issuer: 'easysmart',
    audience: 'easysmart-api',
    ttlSeconds: 3600,
    privateJwk: await generateSigningJwk(),
  });
  const authenticator = new Authenticator(tokens, new PostgresSessionDirectory(app));
  const token = await tokens.issue({
    userId: user.rows[0]?.id as number,
    tenantId,
    role: 'admin',
    tokenVersion: 0,
  });

  /**
   * Requests per second with `concurrency` requests in flight, the mean time per request,
   * and the CPU microseconds per request of this process and of PostgreSQL.
   */
  async function measure(check: () => Promise<unknown>) {
    let next = 0;
    const cpuBefore = sampleCpu(process.pid);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < requests) await check();
      }),
    );
    const ms = performance.now() - started;
    const cpu = new Map(cpuBetween(cpuBefore, sampleCpu(process.pid)));
    const usPerRequest = (part: string) => ((cpu.get(part) ?? 0) * 1e6) / requests;
    return {
      perSecond: (requests / ms) * 1000,
      meanMs: ms / requests,
      cpuUs: usPerRequest('load generator (this benchmark)'),
      postgresCpuUs: usPerRequest('PostgreSQL'),
    };
  }
  const tokenOnly = () => tokens.verify(token);
  const withSession = () => authenticator.authenticate(token);
  // Warm-up: JIT, key import, the pool's connections.
  await measure(tokenOnly);
  await measure(withSession);

  type Round = Awaited<ReturnType<typeof measure>>;
  const baseline: Round[] = [];
  const checked: Round[] = [];
  for (let round = 0; round < rounds; round++) {
    baseline.push(await measure(tokenOnly));
    checked.push(await measure(withSession));
  }
  const median = (runs: Round[], pick: (run: Round) => number) =>
    [...runs.map(pick)].sort((x, y) => x - y)[runs.length >> 1] ?? 0;
  const line = (label: string, runs: Round[]) =>
    `${label.padEnd(36)} ${Math.round(median(runs, (r) => r.perSecond))} req/s, ${(median(runs, (r) => r.meanMs) * 1000).toFixed(0)} us/request; CPU ${median(runs, (r) => r.cpuUs).toFixed(0)} us here + ${median(runs, (r) => r.postgresCpuUs).toFixed(0)} us PostgreSQL`;
  const base = median(baseline, (r) => r.meanMs);
  const full = median(checked, (r) => r.meanMs);
  const cpuOf = (runs: Round[]) => median(runs, (r) => r.cpuUs + r.postgresCpuUs);
  console.log(`requests per round ${requests}, rounds ${rounds}, concurrency ${concurrency}`);
  console.log(line('baseline: token verification only', baseline));
  console.log(line('token + session check in PostgreSQL', checked));
  console.log(
    `session_check_us=${((full - base) * 1000).toFixed(0)} ratio=${(full / base).toFixed(2)} session_check_cpu_us=${(cpuOf(checked) - cpuOf(baseline)).toFixed(0)}`,
  );
  await app.end();
  await admin.end();
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
