/**
 * What checking every authenticated request against PostgreSQL costs (issue: tokens must
 * not outlive the user's rights). Baseline: verifying the access token alone (signature,
 * claims), as before. Measured: the same verification plus the session check, one
 * `auth_session` row read by primary key (shared/accounts/adapters/postgres-session-directory.ts).
 * Both run in this process, alternating rounds, against a real PostgreSQL from npm.
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

  /** Requests per second with `concurrency` requests in flight, and the mean per request. */
  async function measure(check: () => Promise<unknown>) {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < requests) await check();
      }),
    );
    const ms = performance.now() - started;
    return { perSecond: (requests / ms) * 1000, meanMs: ms / requests };
  }
  const tokenOnly = () => tokens.verify(token);
  const withSession = () => authenticator.authenticate(token);
  // Warm-up: JIT, key import, the pool's connections.
  await measure(tokenOnly);
  await measure(withSession);

  const baseline: number[] = [];
  const checked: number[] = [];
  const baselineRate: number[] = [];
  const checkedRate: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const a = await measure(tokenOnly);
    const b = await measure(withSession);
    baseline.push(a.meanMs);
    baselineRate.push(a.perSecond);
    checked.push(b.meanMs);
    checkedRate.push(b.perSecond);
  }
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1] ?? 0;
  const base = median(baseline);
  const full = median(checked);
  console.log(`requests per round ${requests}, rounds ${rounds}, concurrency ${concurrency}`);
  console.log(
    `baseline: token verification only   ${Math.round(median(baselineRate))} req/s, ${(base * 1000).toFixed(0)} us/request`,
  );
  console.log(
    `token + session check in PostgreSQL ${Math.round(median(checkedRate))} req/s, ${(full * 1000).toFixed(0)} us/request`,
  );
  console.log(
    `session_check_us=${((full - base) * 1000).toFixed(0)} ratio=${(full / base).toFixed(2)}`,
  );
  await app.end();
  await admin.end();
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
