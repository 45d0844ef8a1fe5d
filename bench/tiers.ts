/**
 * Tier moves and rollups, against a raw InfluxDB write baseline measured in the same run:
 *   1. raw: the tenant's history written as line protocol in 5,000-point batches (what any
 *      copy of it costs InfluxDB at least);
 *   2. rollups: the platform's 5-minute and 1-hour rollups recomputed over the whole history
 *      (what the rollup function does for late hours, and a tier move for each copied day);
 *   3. move: `set-plan` professional -> industrial driving the tier move to its end (copy
 *      of raw points and predictions, rollups recomputed in the new tier).
 *
 *   npx tsx bench/tiers.ts [--entities 20] [--days 40] [--every-s 60]
 *
 * Private PostgreSQL and InfluxDB servers in a temporary directory; nothing else runs.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { startPostgres } from '../local/services/postgres.ts';
import { migrate } from '../shared/db/migrate.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import { InfluxRollups } from '../shared/timeseries/adapters/influx-tiers.ts';
import { tierMoves } from '../shared/timeseries/composition.ts';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

const entities = option('--entities', 20);
const days = option('--days', 40);
const everyMs = option('--every-s', 60) * 1000;
const DAY = 86_400_000;

const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-bench-tiers-'));
// PostgreSQL runs as its own user when this runs as root: it must reach its folder.
await chmod(dir, 0o755);
const [postgres, influx] = await Promise.all([
  startPostgres({ dataDir: path.join(dir, 'postgres') }),
  startInfluxdb({ dataDir: path.join(dir, 'influxdb') }),
]);
try {
  const { appUrl } = await migrate({ adminUrl: postgres.adminUrl, appPassword: 'bench' });
  const client = new InfluxClient({
    url: influx.url,
    database: DEFAULT_DATABASE,
    timeoutMs: 120_000,
  });
  await ensureTimeseriesSchema(client);
  const admin = new pg.Pool({ connectionString: postgres.adminUrl, max: 2 });
  const app = new pg.Pool({ connectionString: appUrl, max: 4 });
  const { rows } = await admin.query<{ id: number }>(
    `INSERT INTO tenants (name, plan) VALUES ('Bench', 'professional') RETURNING id`,
  );
  const tenantId = rows[0]?.id as number;
  await admin.query(
    `INSERT INTO devices (tenant_id, device_id, name, type, last_seen) VALUES ($1, 'BENCH_1', 'Bench', 'bench', now())`,
    [tenantId],
  );

  const now = Date.now();
  const start = now - days * DAY;
  const lines: string[] = [];
  for (let time = start; time < now; time += everyMs) {
    for (let entity = 0; entity < entities; entity++) {
      lines.push(
        `sensor_data,device_id=BENCH_1,entity_id=e${entity},entity_type=sensor,tenant_id=${tenantId} value=${(time / everyMs + entity) % 97} ${time}`,
      );
    }
  }
  const points = lines.length;
  console.log(
    `${points.toLocaleString('en')} points: ${entities} entities, ${days} days, every ${everyMs / 1000} s`,
  );

  let began = performance.now();
  await client.write(lines, { retentionPolicy: 'professional_plan' });
  const rawSeconds = (performance.now() - began) / 1000;
  console.log(
    `raw write: ${(points / rawSeconds).toFixed(0)} points/s (${rawSeconds.toFixed(1)} s)`,
  );

  began = performance.now();
  const rollups = new InfluxRollups(client, DEFAULT_DATABASE);
  let written = 0;
  for (let day = Math.floor(start / DAY) * DAY; day < now; day += DAY) {
    written += await rollups.recompute(tenantId, 'professional_plan', day, day + DAY);
  }
  const rollupSeconds = (performance.now() - began) / 1000;
  console.log(
    `rollups: ${(points / rollupSeconds).toFixed(0)} raw points/s, ${((rollupSeconds * 1e6) / points).toFixed(2)} us per raw point ` +
      `(${written.toLocaleString('en')} rollup points, ${(rawSeconds / rollupSeconds).toFixed(2)} x the raw write rate)`,
  );

  await admin.query(`UPDATE tenants SET plan = 'industrial' WHERE id = $1`, [tenantId]);
  const moved = await admin.query<{ id: number }>('SELECT start_tier_move($1) AS id', [tenantId]);
  const moves = tierMoves(app, client, { settleMs: 0 });
  began = performance.now();
  const done = await moves.run({ id: Number(moved.rows[0]?.id), tenantId });
  const moveSeconds = (performance.now() - began) / 1000;
  console.log(
    `move: ${((done?.pointsCopied ?? 0) / moveSeconds).toFixed(0)} points/s including rollups ` +
      `(${moveSeconds.toFixed(1)} s, ${done?.pointsCopied.toLocaleString('en')} points, ` +
      `${(rawSeconds / moveSeconds).toFixed(2)} x the raw write rate)`,
  );
  await admin.end();
  await app.end();
} finally {
  await Promise.allSettled([postgres.stop(), influx.stop()]);
  await rm(dir, { recursive: true, force: true });
}
