/**
 * Anomaly scoring of a large fleet's readings a batch at a time (what the scheduled scoring
 * pass does with a chunk of devices), in the same run for each of these ways (`--ways`,
 * comma-separated; default `stored-whole,two-parts`):
 *
 * - `device-by-device`: what ingestion did before the batch scorer: each device's detector
 *   states loaded, its predictions written and its states saved on their own, four devices at
 *   a time on the function's pool of five connections;
 * - `stored-whole`: the whole batch at once, each detector state stored whole (what the
 *   batch scorer did before states were kept in two parts);
 * - `two-parts`: the whole batch at once, each state stored without its time-of-day
 *   profiles, which are rewritten only now and then (what the scoring pass does);
 * - `pass`: the scheduled scoring pass itself (`AnomalyScoringPass`): each round's readings
 *   are first written to InfluxDB (not timed: ingestion's work) and the devices' read
 *   positions set to 2 minutes before them (the overlap a pass re-reads), then one pass reads
 *   them back and scores them, chunk by chunk (timed).
 *
 *   npm run bench:scoring -- [--devices 5000] [--entities 10] [--rounds 5] [--level advanced]
 *                            [--ways stored-whole,two-parts] [--per-entity 1]
 *
 * Each round is one batch: `--per-entity` readings (10 s apart) of every entity of every
 * device (1: a stream batch of a fleet sending one 10-entity reading every 10 s; 6: a
 * one-minute scheduled pass over the same fleet). Both ways score the same fleet with the real stores (PostgreSQL's detector states,
 * InfluxDB's predictions), after an untimed first round that creates the states. Prints
 * readings scored per second and milliseconds per batch for each, with the load average.
 * Private PostgreSQL and InfluxDB servers in a temporary directory; nothing else runs.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { startPostgres } from '../local/services/postgres.ts';
import { InfluxStoredReadings } from '../shared/anomalies/adapters/influx-stored-readings.ts';
import { FileModelStore } from '../shared/anomalies/adapters/model-stores.ts';
import {
  PostgresDetectorStates,
  PostgresModelRegistry,
} from '../shared/anomalies/adapters/postgres-anomalies.ts';
import { PostgresScoringLedger } from '../shared/anomalies/adapters/postgres-scoring-ledger.ts';
import { AnomalyScorer, type DeviceReadings } from '../shared/anomalies/domain/anomaly-scorer.ts';
import { AnomalyScoringPass, POSITION_LAG_MS } from '../shared/anomalies/domain/scoring-pass.ts';
import { migrate } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { InfluxPredictionStore } from '../shared/timeseries/adapters/influx-prediction-store.ts';
import { InfluxReadingStore } from '../shared/timeseries/adapters/influx-reading-store.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import type { Reading } from '../shared/timeseries/reading.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : (process.argv[at + 1] as string);
}
const DEVICES = Number(option('devices', '5000'));
const ENTITIES = Number(option('entities', '10'));
const ROUNDS = Number(option('rounds', '5'));
const LEVEL = option('level', 'advanced') as 'basic' | 'advanced';
const WAYS = option('ways', 'stored-whole,two-parts').split(',');
/** Readings of each entity in one batch, 10 s apart (6: a one-minute scoring pass). */
const PER_ENTITY = Number(option('per-entity', '1'));
/** Devices scored at once device by device: what ingestion did, on a pool of five. */
const DEVICE_CONCURRENCY = 4;

/** Milliseconds spent waiting on each store's calls (summed over concurrent calls). */
const waited = new Map<string, number>();
function timed<T extends object>(name: string, store: T): T {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const began = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          const label = `${name}.${String(key)}`;
          waited.set(label, (waited.get(label) ?? 0) + performance.now() - began);
        }
      };
    },
  });
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-bench-scoring-'));
// PostgreSQL runs as its own user when this runs as root: it must reach its folder.
await chmod(dir, 0o755);
const [postgres, influx] = await Promise.all([
  startPostgres({ dataDir: path.join(dir, 'postgres') }),
  startInfluxdb({ dataDir: path.join(dir, 'influxdb') }),
]);
const admin = new pg.Pool({ connectionString: postgres.adminUrl, max: 2 });
// The servers stop at the end with connections still idle in the pools.
const ignore = () => {};
admin.on('error', ignore);
let app: pg.Pool | undefined;
try {
  const { appUrl } = await migrate({ adminUrl: postgres.adminUrl, appPassword: 'bench' });
  // The ingest function's pool (DATABASE_POOL_MAX's default).
  app = new pg.Pool({ connectionString: appUrl, max: 5 });
  app.on('error', ignore);
  const client = new InfluxClient({
    url: influx.url,
    database: DEFAULT_DATABASE,
    timeoutMs: 120_000,
  });
  await ensureTimeseriesSchema(client);
  const pool = app;
  const scorerOf = (profiles: boolean) =>
    new AnomalyScorer({
      states: timed('states', new PostgresDetectorStates(pool, { profiles })),
      registry: timed('models', new PostgresModelRegistry(pool)),
      predictions: timed('predictions', new InfluxPredictionStore(client, DEFAULT_DATABASE)),
      models: new FileModelStore(path.join(dir, 'models')),
      logger: createLogger('error', { service: 'bench' }),
    });
  const storedWhole = scorerOf(false);
  const twoParts = scorerOf(true);
  const readingStore = new InfluxReadingStore({ client, database: DEFAULT_DATABASE });
  const ledger = new PostgresScoringLedger(pool);
  const scoringPass = new AnomalyScoringPass({
    ledger: timed('positions', ledger),
    readings: timed('readings', new InfluxStoredReadings(client, DEFAULT_DATABASE)),
    scorer: twoParts,
    logger: createLogger('error', { service: 'bench' }),
  });

  /** A fleet of its own for each way, so neither scores the other's states. */
  async function fleet(name: string) {
    const { rows } = await admin.query<{ id: number }>(
      `INSERT INTO tenants (name, plan) VALUES ($1, 'industrial') RETURNING id`,
      [name],
    );
    const tenantId = rows[0]?.id as number;
    const { rows: devices } = await admin.query<{ id: number; device_id: string }>(
      `INSERT INTO devices (tenant_id, device_id, name, type)
       SELECT $1, $2 || '-' || n, 'Bench', 'bench' FROM generate_series(1, $3) AS n
       RETURNING id, device_id`,
      [tenantId, name, DEVICES],
    );
    return devices.map((row) => ({
      devicePk: row.id,
      deviceId: row.device_id,
      tenantId,
      retentionPolicy: 'industrial_plan',
      anomalyDetection: LEVEL,
    }));
  }

  /**
   * Round `round`'s batch: `--per-entity` readings of each entity of each device, 10 s apart;
   * rounds follow one another without a gap.
   */
  function batchOf(devices: Awaited<ReturnType<typeof fleet>>, round: number): DeviceReadings[] {
    const roundMs = Math.max(60_000, PER_ENTITY * 10_000);
    const fromMs = Date.now() - (ROUNDS + 2 - round) * roundMs;
    return devices.map((device, d) => ({
      device,
      readings: Array.from({ length: PER_ENTITY }, (_, i) =>
        Array.from(
          { length: ENTITIES },
          (_, e): Reading => ({
            tenantId: device.tenantId,
            deviceId: device.deviceId,
            entityId: `e${e}`,
            entityType: 'sensor',
            value: 20 + Math.sin((round * PER_ENTITY + i) / 3 + d + e) + (d % 7) / 10,
            timeMs: fromMs + i * 10_000,
            retentionPolicy: device.retentionPolicy,
          }),
        ),
      ).flat(),
    }));
  }

  async function deviceByDevice(batch: DeviceReadings[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const { device, readings } = batch[next++] as DeviceReadings;
        await storedWhole.score(device, readings);
      }
    };
    await Promise.all(Array.from({ length: DEVICE_CONCURRENCY }, worker));
  }

  const wholeBatch =
    (scorer: AnomalyScorer) =>
    async (batch: DeviceReadings[]): Promise<void> => {
      const outcomes = await scorer.scoreBatch(batch);
      const failed = outcomes.find((outcome) => 'failed' in outcome);
      if (failed && 'failed' in failed) throw failed.failed;
    };
  /** The batch stored, positions set as ingestion would for late readings; then one pass, timed. */
  const prepared = new WeakSet<DeviceReadings[]>();
  async function storeForPass(batch: DeviceReadings[]): Promise<void> {
    const all = batch.flatMap(({ readings }) => readings);
    for (let from = 0; from < all.length; from += 50_000)
      await readingStore.writeReadings(all.slice(from, from + 50_000));
    const fromMs = Math.min(...batch.map(({ readings }) => (readings[0] as Reading).timeMs));
    const tenants = new Map<
      number,
      Array<{ tenantId: number; devicePk: number; fromMs: number }>
    >();
    for (const { device } of batch) {
      const list = tenants.get(device.tenantId) ?? [];
      list.push({
        tenantId: device.tenantId,
        devicePk: device.devicePk,
        fromMs: fromMs - POSITION_LAG_MS,
      });
      tenants.set(device.tenantId, list);
    }
    for (const marks of tenants.values()) await ledger.markLate(marks);
    prepared.add(batch);
  }
  async function pass(batch: DeviceReadings[]): Promise<void> {
    if (!prepared.has(batch)) throw new Error('the pass way needs its batch stored first');
    const summary = await scoringPass.run({ budgetMs: 3_600_000 });
    const expected = batch.reduce((sum, { readings }) => sum + readings.length, 0);
    if (!summary.caughtUp || summary.failedDevices > 0 || summary.scored !== expected)
      throw new Error(
        `the pass did not score its ${expected} readings: ${JSON.stringify(summary)}`,
      );
  }
  const ways = {
    'device-by-device': deviceByDevice,
    'stored-whole': wholeBatch(storedWhole),
    'two-parts': wholeBatch(twoParts),
    pass,
  } as const;

  const readingsPerBatch = DEVICES * ENTITIES * PER_ENTITY;
  console.log(
    `${DEVICES} devices x ${ENTITIES} entities x ${PER_ENTITY} readings each, ${LEVEL} detector: batches of ${readingsPerBatch} readings, ${ROUNDS} timed rounds after one untimed (load ${load()})`,
  );
  const results: Array<{ name: string; perS: number; msPerBatch: number }> = [];
  for (const [index, name] of WAYS.entries()) {
    const run = ways[name as keyof typeof ways];
    if (!run) throw new Error(`--ways: no way ${name} (${Object.keys(ways).join(', ')})`);
    const devices = await fleet(`${name}-${index}`);
    const untimed = batchOf(devices, 0);
    if (name === 'pass') await storeForPass(untimed);
    await run(untimed);
    waited.clear();
    let ms = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const batch = batchOf(devices, round);
      // Not timed: what ingestion stores (through stores not counted in the waits).
      if (name === 'pass') await storeForPass(batch);
      const began = performance.now();
      await run(batch);
      ms += performance.now() - began;
    }
    const perS = (readingsPerBatch * ROUNDS) / (ms / 1000);
    results.push({ name, perS, msPerBatch: ms / ROUNDS });
    const waits = [...waited]
      .map(([label, total]) => `${label} ${Math.round(total / ROUNDS)} ms`)
      .join(', ');
    console.log(
      `${name.padEnd(16)} ${Math.round(perS).toLocaleString('en').padStart(9)} readings/s  ${Math.round(
        ms / ROUNDS,
      )
        .toLocaleString('en')
        .padStart(7)} ms a batch  (load ${load()}); a batch waited on ${waits}`,
    );
  }
  const first = results[0] as (typeof results)[number];
  const last = results[results.length - 1] as (typeof results)[number];
  console.log(
    `devices=${DEVICES} entities=${ENTITIES} per_entity=${PER_ENTITY} level=${LEVEL} ${results
      .map(({ name, perS }) => `${name.replace(/-/g, '_')}_per_s=${Math.round(perS)}`)
      .join(' ')} speedup=${(last.perS / first.perS).toFixed(1)}`,
  );
} finally {
  await app?.end();
  await admin.end();
  await Promise.all([postgres.stop(), influx.stop()]);
  await rm(dir, { recursive: true, force: true });
}
