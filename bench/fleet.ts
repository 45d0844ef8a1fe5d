/**
 * Fleet scale on this machine (`npm run bench:fleet -- [--count 10000]`): the local stack
 * with a broker of the benchmark's own (so it can be restarted under the fleet), and the
 * fleet in processes of up to 5,000 devices (firmware/build/fleet: the firmware core, each
 * device with its own connection, credentials, Last Will and retained discovery; libmosquitto
 * takes 3 descriptors a device, and the hard limit here is 20,000 a process).
 *
 *   npx tsx bench/fleet.ts [--count 10000] [--one-by-one 1000] [--interval-ms 10000]
 *                          [--sensors 10] [--latency-s 60] [--sample 200] [--concurrency 8]
 *                          [--synchronized]
 *
 * 1. register_ratio: --warm-up registrations that are not timed (the functions' first
 *    requests compile and connect), then the first --one-by-one devices registered one per
 *    request (8 at a time), then the fleet in bulk, then --one-by-one more one by one; the
 *    median request time of the last ones over the first ones.
 * 2. bulk_s: the --count fleet devices in one `POST /api/devices/bulk`.
 * 3. online_s: the fleet processes start every device at once (a power-up storm); the time
 *    until the platform shows all of them online (their retained `online` reached the registry).
 * 4. p50_ms / p99_ms: each device sends one reading of --sensors entities every --interval-ms,
 *    from a random point of its first interval (the firmware's default) or, with
 *    --synchronized, from power-up, so that the whole fleet reports in the same instant;
 *    for --latency-s, the time from a sampled reading's timestamp (taken when the device
 *    publishes it) to its first appearance in InfluxDB, polled every 250 ms for --sample
 *    devices (so each figure is late by up to the poll period plus one query). It also
 *    prints how the emulated event source mapping batched those seconds (what sent each
 *    batch, and the mean invocation time): what the latency is made of.
 * 5. recover_s: the broker is stopped (its clients see the connection close) and started
 *    again; the time from its start until the platform has heard every device's `online`
 *    again. The devices reconnect by the firmware's backoff with full jitter (1 s doubling to
 *    60 s, as on the ESP32).
 * 6. mb_per_device: the fleet processes' resident memory over their devices.
 *
 * A wait that does not end within --give-up-s prints NA for its figure (and what it reached).
 *
 * The last line is `devices=<n> bulk_s=<n> register_ratio=<n> online_s=<n> recover_s=<n>
 * mb_per_device=<n> p50_ms=<n> p99_ms=<n>`; figures go in bench/README.md with the load.
 */
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  fleetDevices,
  fleetPresence,
  type RegisteredFleetDevice,
  registerInBulk,
  registerOneByOne,
  sensorReadingsOf,
} from '../local/fleet-platform.ts';
import { buildFleet, type RunningFleet, startFleet } from '../local/fleet-process.ts';
import { PlatformClient } from '../local/platform-client.ts';
import { waitUntil } from '../local/services/process.ts';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
import { tenantSelect } from '../shared/timeseries/adapters/influxql.ts';
import { type LocalStack, signUpOnStack, startLocalStack } from '../test/support/local-stack.ts';
import { onBroker, privateMosquitto } from '../test/support/servers.ts';
import { eventSourceMapping, rulesEmulatorStats } from './rules-stats.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000' },
    'one-by-one': { type: 'string', default: '1000' },
    'warm-up': { type: 'string', default: '50' },
    'interval-ms': { type: 'string', default: '10000' },
    sensors: { type: 'string', default: '10' },
    'latency-s': { type: 'string', default: '60' },
    sample: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    'give-up-s': { type: 'string', default: '900' },
    synchronized: { type: 'boolean', default: false },
  },
});
const COUNT = Number(values.count);
const ONE_BY_ONE = Number(values['one-by-one']);
const WARM_UP = Number(values['warm-up']);
const INTERVAL_MS = Number(values['interval-ms']);
const SENSORS = Number(values.sensors);
const LATENCY_S = Number(values['latency-s']);
const SAMPLE = Math.min(Number(values.sample), COUNT);
const CONCURRENCY = Number(values.concurrency);
const GIVE_UP_MS = Number(values['give-up-s']) * 1000;
const SYNCHRONIZED = values.synchronized;

const log = (message: string) =>
  process.stderr.write(
    `[bench:fleet ${new Date().toISOString().slice(11, 19)} load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}] ${message}\n`,
  );
const seconds = (ms: number) => Math.round(ms / 100) / 10;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
const median = (values: number[]) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

/**
 * Publish-to-queryable latency: polls InfluxDB for the sampled devices' newest `temperature`
 * points and notes when each first appears.
 */
async function measureLatency(
  influx: InfluxClient,
  tenant: { id: number; retentionPolicy: string },
  sample: RegisteredFleetDevice[],
  durationS: number,
): Promise<number[]> {
  const sensors = sensorReadingsOf(tenant);
  const seen = new Set<string>();
  const latencies: number[] = [];
  const started = Date.now();
  while (Date.now() - started < durationS * 1000) {
    const polled = Date.now();
    const [result] = await influx.query(
      tenantSelect({
        tenantId: tenant.id,
        from: sensors.from,
        select: [{ expr: { field: sensors.field }, as: 'value' }],
        tags: { device_id: sample.map((d) => d.deviceId), entity_id: ['temperature'] },
        time: { from: polled - 30_000, to: polled + 60_000, toInclusive: true },
        groupBy: { tags: ['device_id'] },
      }),
    );
    const found = Date.now();
    for (const series of result?.series ?? []) {
      const device = series.tags?.device_id ?? '';
      for (const row of rowsOf(series)) {
        // The client asks InfluxDB for epoch milliseconds.
        const time = Number(row.time);
        const key = `${device}@${time}`;
        if (seen.has(key)) continue;
        seen.add(key);
        // Points already stored before measuring started are not latencies.
        if (time >= started) latencies.push(found - time);
      }
    }
    const wait = 250 - (Date.now() - polled);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return latencies;
}

/** What to stop when the benchmark ends, however it ends (Ctrl-C included). */
const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the fleet, the stack and the broker`);
    void cleanUp().then(() => process.exit(130));
  });
}

/** Records in the stack's dead-letter store (what the rules stage gave up delivering). */
async function deadLettered(dataDir: string): Promise<number> {
  const file = path.join(dataDir, 'dead-letters', 'dead-letters.jsonl');
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.trim() !== '').length;
}

/**
 * Milliseconds from `since` until the platform shows all `count` fleet devices online and
 * heard from since `since`; undefined if that does not happen within --give-up-s.
 */
async function untilAllOnline(
  database: pg.Client,
  tenantId: number,
  prefix: string,
  since: number,
): Promise<number | undefined> {
  let last = { online: 0, onlineSince: 0 };
  try {
    await waitUntil(
      `the platform to show all ${COUNT} devices online`,
      async () => {
        last = await fleetPresence(database, tenantId, prefix, since);
        return last.onlineSince === COUNT;
      },
      { timeoutMs: GIVE_UP_MS, intervalMs: 500 },
    );
    return Date.now() - since;
  } catch {
    log(
      `gave up: after ${GIVE_UP_MS / 1000} s the platform shows ${last.onlineSince} of ${COUNT} online since then (${COUNT - last.online} offline, ${last.online - last.onlineSince} online but not heard from since)`,
    );
    return undefined;
  }
}

async function main(): Promise<void> {
  log(`building the fleet and starting the stack with a broker of its own`);
  const broker = await privateMosquitto();
  cleanups.push(() => broker.dispose());
  let stack: LocalStack | undefined;
  let fleet: RunningFleet | undefined;
  let database: pg.Client | undefined;
  cleanups.push(async () => stack?.stop());
  cleanups.push(async () => database?.end());
  cleanups.push(async () => fleet?.stop());
  try {
    [stack] = await Promise.all([startLocalStack(onBroker(broker)), buildFleet()]);
    const details = await stack.details();
    database = new pg.Client({ connectionString: details.databaseAdminUrl });
    await database.connect();
    const owner = await signUpOnStack(stack, { plan: 'industrial' });
    const client = new PlatformClient(stack.api, 300_000);
    client.token = owner.token;
    const overview = await stack.request('GET', '/api/tenant', undefined, owner.token);
    const tenant = {
      id: owner.tenantId,
      retentionPolicy: overview.body.plan.influx_retention_policy,
    };

    // 1-2. Registration.
    log(`warming up with ${WARM_UP} registrations (not timed)`);
    await registerOneByOne(client, fleetDevices('warm', 1, WARM_UP, 'bench'), {
      concurrency: CONCURRENCY,
    });
    const firstRows = fleetDevices('first', 1, ONE_BY_ONE, 'bench');
    log(`registering the first ${ONE_BY_ONE} one by one`);
    const first = await registerOneByOne(client, firstRows, { concurrency: CONCURRENCY });
    const prefix = `fleet-${owner.tenantId}`;
    log(`registering ${COUNT} in bulk`);
    const bulkStarted = performance.now();
    const fleetRows = fleetDevices(prefix, 1, COUNT, 'bench');
    const bulk = await registerInBulk(client, fleetRows).catch(async (error: Error) => {
      // The figure is lost, not the rest of the run: the fleet goes in requests of 500.
      log(`the bulk request failed (${error.message}); registering in requests of 500`);
      const registered: RegisteredFleetDevice[] = [];
      for (let i = 0; i < fleetRows.length; i += 500) {
        registered.push(...((await registerInBulk(client, fleetRows.slice(i, i + 500))) ?? []));
      }
      return { failed: true as const, registered };
    });
    const bulkMs = performance.now() - bulkStarted;
    let devices: RegisteredFleetDevice[];
    const bulkFailed = bulk !== undefined && 'failed' in bulk;
    if (bulk && 'failed' in bulk) {
      devices = bulk.registered;
    } else if (bulk) {
      devices = bulk;
      log(`bulk: ${seconds(bulkMs)} s`);
    } else {
      log('no bulk route on this platform: registering the fleet one by one (bulk_s=NA)');
      devices = await registerOneByOne(client, fleetDevices(prefix, 1, COUNT, 'bench'), {
        concurrency: CONCURRENCY,
      });
    }
    log(`registering the last ${ONE_BY_ONE} one by one`);
    const last = await registerOneByOne(client, fleetDevices('last', 1, ONE_BY_ONE, 'bench'), {
      concurrency: CONCURRENCY,
    });
    const firstMedian = median(first.map((d) => d.ms ?? 0));
    const lastMedian = median(last.map((d) => d.ms ?? 0));
    const registerRatio = lastMedian / firstMedian;
    log(
      `one by one: first ${ONE_BY_ONE} median ${firstMedian.toFixed(0)} ms, last ${ONE_BY_ONE} median ${lastMedian.toFixed(0)} ms (ratio ${registerRatio.toFixed(2)})`,
    );

    // 3. Power-up storm.
    const rulesAtPowerUp = await rulesEmulatorStats(stack.dataDir);
    const startedAt = Date.now();
    log(
      `starting ${COUNT} devices at once, each taking its first sample ${SYNCHRONIZED ? 'at power-up (--synchronized)' : 'at a random point of its first interval'}`,
    );
    fleet = await startFleet({
      devices,
      mqttUrl: broker.url,
      intervalMs: INTERVAL_MS,
      sensors: SENSORS,
      statsMs: 1000,
      ...(SYNCHRONIZED ? { randomFirstSample: false } : {}),
    });
    const running = fleet;
    log(`${running.processes} fleet process${running.processes === 1 ? '' : 'es'}`);
    const progress = setInterval(() => {
      const s = running.latest;
      if (s)
        log(
          `fleet: online ${s.online}/${s.devices}, sent ${s.sent}, buffered ${s.buffered}, connect failures ${s.connect_failures}`,
        );
    }, 10_000);
    try {
      const onlineMs = await untilAllOnline(database, tenant.id, prefix, startedAt);
      if (onlineMs !== undefined) log(`all online in the platform after ${seconds(onlineMs)} s`);
      // What ingestion did meanwhile: batches held past the rules stage's limit are retried.
      log(
        `power-up: ${eventSourceMapping(rulesAtPowerUp, await rulesEmulatorStats(stack.dataDir))}`,
      );

      // 4. Latency in steady state (after one full interval, so the storm's backlog is gone).
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
      const influx = new InfluxClient({ url: details.influxUrl, database: DEFAULT_DATABASE });
      const sample = devices
        .filter((_, i) => i % Math.floor(COUNT / SAMPLE) === 0)
        .slice(0, SAMPLE);
      log(`publish-to-queryable over ${LATENCY_S} s for ${sample.length} devices`);
      const rulesBefore = await rulesEmulatorStats(stack.dataDir);
      const latencies = (await measureLatency(influx, tenant, sample, LATENCY_S)).sort(
        (a, b) => a - b,
      );
      log(eventSourceMapping(rulesBefore, await rulesEmulatorStats(stack.dataDir)));
      const p50 = quantile(latencies, 0.5);
      const p99 = quantile(latencies, 0.99);
      log(
        `latency: ${latencies.length} readings, p50 ${p50} ms, p99 ${p99} ms, max ${latencies.at(-1)} ms`,
      );
      const rssKb = running.latest?.rss_kb ?? 0;

      // 5. Broker restart.
      log('stopping the broker');
      await broker.stop();
      await running.until((s) => s.online === 0, 120_000);
      const rulesAtRestart = await rulesEmulatorStats(stack.dataDir);
      const restartedAt = Date.now();
      await broker.start();
      log('broker started again');
      const recoverMs = await untilAllOnline(database, tenant.id, prefix, restartedAt);
      if (recoverMs !== undefined)
        log(`all back online in the platform ${seconds(recoverMs)} s after the broker started`);
      log(
        `recovery: ${eventSourceMapping(rulesAtRestart, await rulesEmulatorStats(stack.dataDir))}`,
      );
      const finalStats = await running.stop();
      fleet = undefined;
      log(`fleet stopped: ${JSON.stringify(finalStats)}`);
      log(
        `records the rules stage dead-lettered during the run: ${await deadLettered(stack.dataDir)}`,
      );

      console.log(
        [
          `devices=${COUNT}`,
          `bulk_s=${bulk && !bulkFailed ? seconds(bulkMs) : 'NA'}`,
          `register_ratio=${registerRatio.toFixed(2)}`,
          `online_s=${onlineMs === undefined ? 'NA' : seconds(onlineMs)}`,
          `recover_s=${recoverMs === undefined ? 'NA' : seconds(recoverMs)}`,
          `mb_per_device=${(rssKb / 1024 / COUNT).toFixed(4)}`,
          `p50_ms=${Math.round(p50)}`,
          `p99_ms=${Math.round(p99)}`,
        ].join(' '),
      );
    } finally {
      clearInterval(progress);
    }
  } finally {
    await cleanUp();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[bench:fleet] ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
