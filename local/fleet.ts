/**
 * A fleet of virtual devices against a running platform (`npm run fleet`):
 *
 *   npm run fleet -- --count N [--api URL] [--mqtt URL] [--interval-ms 1000] [--duration-s 60]
 *                    [--tenant NAME | --username U --password P] [--concurrency 8]
 *                    [--batch N] [--batch-age-ms N]
 *                    [--data-dir .local] [--json]
 *
 * Signs up a tenant (or signs in), lifts its device limit through the operator's `setPlan`
 * (industrial: unlimited), registers N devices through the API, runs N virtual device
 * processes (the firmware's host build), and reports what the devices sent against what
 * the platform stored. URLs default to the running local stack's `<data dir>/stack.json`.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { setPlan } from '../infra/admin.ts';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
import { tenantSelect } from '../shared/timeseries/adapters/influxql.ts';
import { storageOf } from '../shared/timeseries/reading.ts';
import { PlatformClient, type RegisteredDevice, type SignedUp } from './platform-client.ts';
import {
  buildVirtualDevice,
  type DeviceEvent,
  type RunningVirtualDevice,
  startVirtualDevice,
} from './virtual-device.ts';

class UsageError extends Error {}

// The virtual device's sensors: each sampling round is one reading of each.
const SENSOR_ENTITIES = ['temperature', 'pressure', 'vibration'];

interface Options {
  count: number;
  apiUrl: string;
  mqttUrl: string;
  intervalMs: number;
  durationS: number;
  /** Absent: the firmware's defaults (firmware/core/batching.hpp). */
  batch: number | undefined;
  batchAgeMs: number | undefined;
  concurrency: number;
  tenantName: string | undefined;
  username: string | undefined;
  password: string | undefined;
  json: boolean;
  databaseAdminUrl: string | undefined;
  influxUrl: string | undefined;
  stackPid: number | undefined;
}

interface StackFile {
  pid?: number;
  apiUrl?: string;
  mqttUrl?: string;
  databaseAdminUrl?: string;
  influxUrl?: string;
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
) {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} expects a whole number between ${min} and ${max}`);
  }
  return parsed;
}

async function readOptions(argv: string[]): Promise<Options> {
  const { values } = parseArgs({
    args: argv,
    options: {
      count: { type: 'string' },
      api: { type: 'string' },
      mqtt: { type: 'string' },
      'interval-ms': { type: 'string' },
      'duration-s': { type: 'string' },
      batch: { type: 'string' },
      'batch-age-ms': { type: 'string' },
      concurrency: { type: 'string' },
      tenant: { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.count === undefined) throw new UsageError('--count N is required');
  if ((values.username === undefined) !== (values.password === undefined)) {
    throw new UsageError('--username and --password go together');
  }
  const dataDir = path.resolve(values['data-dir'] ?? process.env.LOCAL_DATA_DIR ?? '.local');
  const stackFile = path.join(dataDir, 'stack.json');
  let stack: StackFile = {};
  try {
    stack = JSON.parse(await readFile(stackFile, 'utf8')) as StackFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const apiUrl = values.api ?? stack.apiUrl;
  const mqttUrl = values.mqtt ?? stack.mqttUrl;
  if (!apiUrl || !mqttUrl) {
    throw new UsageError(
      `no platform: start the local stack (npm start) so ${stackFile} exists, or pass --api and --mqtt`,
    );
  }
  return {
    count: integer('count', values.count, 0, 1, 10_000),
    apiUrl: apiUrl.replace(/\/+$/, ''),
    mqttUrl,
    intervalMs: integer('interval-ms', values['interval-ms'], 1000, 100, 3_600_000),
    durationS: integer('duration-s', values['duration-s'], 60, 1, 86_400),
    batch: values.batch === undefined ? undefined : integer('batch', values.batch, 1, 1, 500),
    batchAgeMs:
      values['batch-age-ms'] === undefined
        ? undefined
        : integer('batch-age-ms', values['batch-age-ms'], 0, 0, 3_600_000),
    concurrency: integer('concurrency', values.concurrency, 8, 1, 64),
    tenantName: values.tenant,
    username: values.username,
    password: values.password,
    json: values.json ?? false,
    // The stack's internals are only trusted when they describe the platform we talk to.
    databaseAdminUrl: apiUrl === stack.apiUrl ? stack.databaseAdminUrl : undefined,
    influxUrl: apiUrl === stack.apiUrl ? stack.influxUrl : undefined,
    stackPid: apiUrl === stack.apiUrl ? stack.pid : undefined,
  };
}

/** One status line: redrawn in place on a terminal, printed every few seconds otherwise. */
class Progress {
  private lastPlain = 0;
  private shown = false;
  private readonly tty = process.stderr.isTTY === true;

  update(label: string, done: number, total: number, detail = ''): void {
    const text = `${label} ${this.bar(done, total)} ${done}/${total}${detail}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${text}`);
      this.shown = true;
    } else if (Date.now() - this.lastPlain >= 5000 || done === total) {
      this.lastPlain = Date.now();
      process.stderr.write(`${text}\n`);
    }
  }

  /** Ends the redrawn line so the next output starts on its own line. */
  done(): void {
    if (this.tty && this.shown) process.stderr.write('\n');
    this.shown = false;
    this.lastPlain = 0;
  }

  private bar(done: number, total: number): string {
    const width = 24;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  }
}

function note(message: string): void {
  process.stderr.write(`[fleet] ${message}\n`);
}

interface Tenant {
  id: number;
  name: string;
  plan: string;
  retentionPolicy: string;
  maxDevices: number | null;
  devices: number;
}

interface TenantOverview {
  tenant: { id: number; name: string; plan: string };
  plan: { max_devices: number | null; influx_retention_policy: string };
  usage: { devices: number };
}

async function tenantOf(client: PlatformClient): Promise<Tenant> {
  const overview = await client.expect<TenantOverview>(
    200,
    'reading the tenant',
    'GET',
    '/api/tenant',
  );
  return {
    id: overview.tenant.id,
    name: overview.tenant.name,
    plan: overview.tenant.plan,
    retentionPolicy: overview.plan.influx_retention_policy,
    maxDevices: overview.plan.max_devices,
    devices: overview.usage.devices,
  };
}

/** Signs in with the given account, or signs up a new tenant; returns what to print. */
async function account(
  client: PlatformClient,
  options: Options,
  runId: string,
): Promise<{ username: string; password: string }> {
  if (options.username && options.password) {
    const login = await client.expect<{ token: string }>(
      200,
      'signing in',
      'POST',
      '/api/auth/login',
      {
        username: options.username,
        password: options.password,
      },
    );
    client.token = login.token;
    return { username: options.username, password: options.password };
  }
  const username = `fleet-${runId}`;
  const password = randomBytes(18).toString('base64url');
  const signedUp = await client.expect<SignedUp>(
    201,
    'signing up the fleet tenant',
    'POST',
    '/api/auth/register',
    {
      tenant_name: options.tenantName ?? `Fleet ${runId}`,
      username,
      email: `${username}@fleet.easysmart.local`,
      password,
    },
  );
  client.token = signedUp.token;
  return { username, password };
}

/** Moves the tenant to a plan with room for `count` more devices, through the operator. */
async function makeRoom(client: PlatformClient, options: Options, tenant: Tenant): Promise<Tenant> {
  const fits = (t: Tenant) => t.maxDevices === null || t.devices + options.count <= t.maxDevices;
  if (fits(tenant)) return tenant;
  if (!options.databaseAdminUrl) {
    throw new UsageError(
      `tenant ${tenant.name} is on plan ${tenant.plan} (${tenant.maxDevices} devices) and there is ` +
        'no operator database to change that: run against the local stack, or ' +
        `npm run admin -- set-plan ${tenant.id} industrial`,
    );
  }
  const database = new pg.Client({ connectionString: options.databaseAdminUrl });
  await database.connect();
  try {
    const change = await setPlan(database, String(tenant.id), 'industrial');
    note(`tenant ${tenant.name}: plan ${change.from} -> ${change.to} (unlimited devices)`);
  } finally {
    await database.end();
  }
  const updated = await tenantOf(client);
  if (!fits(updated))
    throw new Error(`tenant ${tenant.name} still has no room for ${options.count} devices`);
  return updated;
}

interface Fleet {
  deviceId: string;
  rowId: number;
  username: string;
  password: string;
  process?: RunningVirtualDevice;
  connectedAfterMs?: number;
  /** Readings acknowledged by the broker, from the device's latest stats or stopped line. */
  sent: number;
  buffered: number;
  dropped: number;
  stopped: boolean;
  exit?: string;
  pid?: number;
}

async function register(
  client: PlatformClient,
  options: Options,
  runId: string,
  progress: Progress,
  interrupted: AbortSignal,
): Promise<Fleet[]> {
  const registered: Fleet[] = [];
  let next = 0;
  let failure: Error | undefined;
  const started = Date.now();
  const worker = async () => {
    while (next < options.count && !failure && !interrupted.aborted) {
      const n = ++next;
      const deviceId = `fleet-${runId}-${String(n).padStart(4, '0')}`;
      for (let attempt = 1; ; attempt++) {
        const response = await client.request<RegisteredDevice>('POST', '/api/devices', {
          device_id: deviceId,
          name: `Fleet device ${n}`,
          type: 'virtual-compressor',
          location: `Fleet ${runId}`,
        });
        if (response.status === 201) {
          registered.push({
            deviceId,
            rowId: response.body.device.id,
            username: response.body.credentials.username,
            password: response.body.credentials.password,
            sent: 0,
            buffered: 0,
            dropped: 0,
            stopped: false,
          });
          break;
        }
        // A busy local API answers 5xx now and then; anything else will not get better.
        if (response.status < 500 || attempt === 3) {
          failure ??= new Error(
            `registering ${deviceId}: ${response.status} ${JSON.stringify(response.body)}`,
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
      const seconds = (Date.now() - started) / 1000;
      progress.update(
        'registering',
        registered.length,
        options.count,
        `  ${(registered.length / seconds).toFixed(1)}/s`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, worker));
  progress.done();
  if (failure) throw failure;
  return registered;
}

/** CPU seconds (user + system) and resident memory of a live process, from /proc. */
function usageOf(pid: number): { cpuS: number; rssKb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the command name;
    // the kernel counts them in USER_HZ, which is 100 on Linux.
    const cpuS = (Number(fields[11]) + Number(fields[12])) / 100;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { cpuS, rssKb };
  } catch {
    return undefined;
  }
}

/** Every process below `root`, from the parent links in /proc. */
function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(parent, [...(parents.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found = [root];
  for (let i = 0; i < found.length; i++) found.push(...(parents.get(found[i] as number) ?? []));
  return found;
}

function totalUsage(pids: number[]): { cpuS: number; rssKb: number } {
  let cpuS = 0;
  let rssKb = 0;
  for (const pid of pids) {
    const usage = usageOf(pid);
    if (usage) {
      cpuS += usage.cpuS;
      rssKb += usage.rssKb;
    }
  }
  return { cpuS, rssKb };
}

/** Stored sensor readings of the fleet's devices with timestamps in [from, to]. */
async function countStored(
  options: Options,
  client: PlatformClient,
  tenant: Tenant,
  fleet: Fleet[],
  from: number,
  to: number,
): Promise<number> {
  if (options.influxUrl) {
    const storage = storageOf('sensor');
    const influx = new InfluxClient({ url: options.influxUrl, database: DEFAULT_DATABASE });
    const [result] = await influx.query(
      tenantSelect({
        tenantId: tenant.id,
        from: {
          database: DEFAULT_DATABASE,
          retentionPolicy: tenant.retentionPolicy,
          measurement: storage.measurement,
        },
        select: [{ expr: { fn: 'count', field: storage.field }, as: 'count' }],
        tags: { device_id: fleet.map((d) => d.deviceId), entity_id: SENSOR_ENTITIES },
        time: { from, to, toInclusive: true },
      }),
    );
    const series = result?.series[0];
    return series ? Number(rowsOf(series)[0]?.count ?? 0) : 0;
  }
  // Without the stack's InfluxDB, the public telemetry API counts them, device by device.
  let total = 0;
  let next = 0;
  const query = new URLSearchParams({
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  });
  const worker = async () => {
    while (next < fleet.length) {
      const device = fleet[next++] as Fleet;
      const response = await client.request<{
        series: Array<{ entity_id: string; points: unknown[] }>;
      }>('GET', `/api/devices/${device.rowId}/telemetry?${query}`);
      if (response.status !== 200) continue;
      for (const series of response.body.series) {
        if (SENSOR_ENTITIES.includes(series.entity_id)) total += series.points.length;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return total;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    signal?.addEventListener('abort', wake, { once: true });
  });
}

// Module scope so a failure anywhere can still stop the devices already running.
const fleet: Fleet[] = [];

async function main(argv: string[]): Promise<void> {
  const options = await readOptions(argv);
  const runId = randomBytes(3).toString('hex');
  const progress = new Progress();

  // First Ctrl-C: wrap up (stop the devices, count, summarise). Second: leave at once.
  const interruption = new AbortController();
  process.on('SIGINT', () => {
    if (!interruption.signal.aborted) {
      progress.done();
      note('interrupted: stopping the devices (Ctrl-C again to quit at once)');
      interruption.abort();
      return;
    }
    for (const device of fleet) device.process?.child.kill('SIGKILL');
    process.exit(130);
  });
  process.on('SIGTERM', () => interruption.abort());

  const client = new PlatformClient(options.apiUrl);
  const [signedIn] = await Promise.all([account(client, options, runId), buildVirtualDevice()]);
  const tenant = await makeRoom(client, options, await tenantOf(client));
  note(
    `tenant ${tenant.name} (id ${tenant.id}, plan ${tenant.plan}); sign in as ${signedIn.username} / ${signedIn.password}`,
  );

  const registrationStarted = Date.now();
  fleet.push(...(await register(client, options, runId, progress, interruption.signal)));
  const registrationS = (Date.now() - registrationStarted) / 1000;
  note(`registered ${fleet.length} devices in ${registrationS.toFixed(1)} s`);

  const runStarted = Date.now();
  const stackBefore = options.stackPid ? totalUsage(processTree(options.stackPid)) : undefined;
  let connected = 0;
  for (const [index, device] of fleet.entries()) {
    if (interruption.signal.aborted) break;
    const onEvent = (event: DeviceEvent) => {
      if (event.event === 'started') device.pid = Number(event.pid);
      if (event.event === 'connected' && device.connectedAfterMs === undefined) {
        device.connectedAfterMs = Date.now() - runStarted;
        connected++;
      }
      if (event.event === 'stats' || event.event === 'stopped') {
        device.sent = Number(event.sent);
        device.buffered = Number(event.buffered);
        device.dropped = Number(event.dropped);
        if (event.event === 'stopped') device.stopped = true;
      }
    };
    device.process = startVirtualDevice(
      {
        deviceId: device.deviceId,
        username: device.username,
        password: device.password,
        mqttUrl: options.mqttUrl,
        intervalMs: options.intervalMs,
        batch: options.batch,
        batchAgeMs: options.batchAgeMs,
        statsMs: 1000,
        name: `Fleet device ${index + 1}`,
        type: 'virtual-compressor',
      },
      { onEvent },
    );
    void device.process.exited.then((description) => {
      device.exit = description;
    });
    // A few at a time, so the broker does not take hundreds of CONNECTs in one instant.
    if (index % 20 === 19) await sleep(100, interruption.signal);
  }

  const runUntil = runStarted + options.durationS * 1000;
  while (Date.now() < runUntil && !interruption.signal.aborted) {
    const sent = fleet.reduce((sum, d) => sum + d.sent, 0);
    const elapsedS = (Date.now() - runStarted) / 1000;
    progress.update(
      'running',
      Math.min(Math.round(elapsedS), options.durationS),
      options.durationS,
      ` s  connected ${connected}/${fleet.length}  sent ${sent} (${(sent / elapsedS).toFixed(0)}/s)`,
    );
    await sleep(500, interruption.signal);
  }
  progress.done();

  const devicePids = fleet.flatMap((d) => (d.pid ? [d.pid] : []));
  const devicesUsage = totalUsage(devicePids);
  note(`stopping ${fleet.length} devices`);
  await Promise.all(fleet.map((device) => device.process?.stop()));
  const runEnded = Date.now();
  const runS = (runEnded - runStarted) / 1000;
  const sent = fleet.reduce((sum, d) => sum + d.sent, 0);
  const stillBuffered = fleet.reduce((sum, d) => sum + d.buffered, 0);
  const dropped = fleet.reduce((sum, d) => sum + d.dropped, 0);

  // The pipeline may still be working through the last readings: wait for it to catch up
  // (or stall), so "stored" is what the platform kept, not a snapshot mid-flight.
  const drainStarted = Date.now();
  let stored = 0;
  let lastChange = Date.now();
  for (;;) {
    const count = await countStored(
      options,
      client,
      tenant,
      fleet,
      runStarted - 1000,
      runEnded + 1000,
    );
    if (count !== stored) lastChange = Date.now();
    stored = count;
    progress.update('storing', Math.min(stored, sent), sent, ' readings');
    if (stored >= sent || Date.now() - lastChange > 15_000 || Date.now() - drainStarted > 180_000)
      break;
    await sleep(1000);
  }
  progress.done();
  // When the count last grew: the pipeline's lag behind the devices, not our waiting time.
  const drainS = Math.max(0, (lastChange - runEnded) / 1000);
  const stackAfter = options.stackPid ? totalUsage(processTree(options.stackPid)) : undefined;
  const connectTimes = fleet.flatMap((d) =>
    d.connectedAfterMs === undefined ? [] : [d.connectedAfterMs],
  );

  const summary = {
    tenant: { id: tenant.id, name: tenant.name, username: signedIn.username },
    requested: options.count,
    registered: fleet.length,
    registration_s: round(registrationS),
    registrations_per_s: round(fleet.length / registrationS),
    connected: connectTimes.length,
    all_connected_after_s: connectTimes.length ? round(Math.max(...connectTimes) / 1000) : null,
    interval_ms: options.intervalMs,
    run_s: round(runS),
    sent,
    sent_per_s: round(sent / runS),
    stored,
    stored_per_s: round(stored / runS),
    stored_ratio: sent > 0 ? round(stored / sent, 4) : null,
    buffered_at_stop: stillBuffered,
    dropped,
    store_caught_up_after_s: round(drainS),
    exited_early: fleet.filter((d) => !d.stopped).length,
    devices_cpu_percent: round((devicesUsage.cpuS / runS) * 100),
    devices_rss_mb: round(devicesUsage.rssKb / 1024),
    stack_cpu_percent:
      stackBefore && stackAfter
        ? round(((stackAfter.cpuS - stackBefore.cpuS) / ((Date.now() - runStarted) / 1000)) * 100)
        : null,
    stack_rss_mb: stackAfter ? round(stackAfter.rssKb / 1024) : null,
    interrupted: interruption.signal.aborted,
  };
  const lines = [
    `fleet of ${summary.requested} virtual devices (tenant ${tenant.name}, sign in as ${signedIn.username})${summary.interrupted ? ', interrupted' : ''}`,
    `  registered  ${summary.registered} in ${summary.registration_s} s (${summary.registrations_per_s}/s)`,
    `  connected   ${summary.connected}/${summary.registered}${summary.all_connected_after_s === null ? '' : ` (all within ${summary.all_connected_after_s} s)`}`,
    `  sent        ${sent} readings in ${summary.run_s} s (${summary.sent_per_s}/s, each device one per sensor every ${options.intervalMs} ms); ${stillBuffered} unsent at stop, ${dropped} dropped`,
    `  stored      ${stored} readings (${summary.stored_per_s}/s over the run, ${summary.stored_ratio === null ? '-' : `${round(summary.stored_ratio * 100, 2)}%`} of sent), the last one stored ${summary.store_caught_up_after_s} s after the devices stopped`,
    `  devices     ${summary.devices_cpu_percent}% CPU (100% = one core), ${summary.devices_rss_mb} MB resident${summary.exited_early ? `; ${summary.exited_early} exited before the end` : ''}`,
  ];
  if (summary.stack_cpu_percent !== null) {
    lines.push(
      `  stack       ${summary.stack_cpu_percent}% CPU (100% = one core), ${summary.stack_rss_mb} MB resident`,
    );
  }
  console.log(lines.join('\n'));
  if (options.json) console.log(JSON.stringify(summary));
}

function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(`[fleet] ${error instanceof Error ? error.message : String(error)}\n`);
    await Promise.all(fleet.map((device) => device.process?.stop()));
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
