/**
 * A fleet of simulated devices against a running platform (`npm run fleet`):
 *
 *   npm run fleet -- --count N [--api URL] [--mqtt URL] [--interval-ms 10000] [--sensors 10]
 *                    [--duration-s 60] [--register auto|bulk|one-by-one] [--concurrency 8]
 *                    [--tenant NAME | --username U --password P] [--batch N] [--batch-age-ms N]
 *                    [--start-over-ms 0] [--data-dir .local] [--json]
 *
 * Signs up a tenant (or signs in), lifts its device limit through the operator's `setPlan`
 * (industrial: unlimited), registers N devices through the API (in one bulk request when the
 * platform has the bulk route, else one by one), runs them in fleet processes (the firmware
 * core, up to 5,000 devices a process: local/fleet-process.ts), and reports what the
 * devices sent against what the platform stored. URLs default to the running local stack's
 * `<data dir>/stack.json`.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { setPlan } from '../infra/admin.ts';
import {
  countStored,
  fleetDevices,
  type RegisteredFleetDevice,
  registerInBulk,
  registerOneByOne,
  sensorEntities,
} from './fleet-platform.ts';
import { buildFleet, type FleetStats, type RunningFleet, startFleet } from './fleet-process.ts';
import { PlatformClient, type SignedUp } from './platform-client.ts';

class UsageError extends Error {}

interface Options {
  count: number;
  apiUrl: string;
  mqttUrl: string;
  intervalMs: number;
  sensors: number;
  durationS: number;
  register: 'auto' | 'bulk' | 'one-by-one';
  /** Absent: one sampling round per telemetry message. */
  batch: number | undefined;
  batchAgeMs: number | undefined;
  startOverMs: number;
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
      sensors: { type: 'string' },
      'duration-s': { type: 'string' },
      register: { type: 'string' },
      batch: { type: 'string' },
      'batch-age-ms': { type: 'string' },
      'start-over-ms': { type: 'string' },
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
  const register = values.register ?? 'auto';
  if (register !== 'auto' && register !== 'bulk' && register !== 'one-by-one') {
    throw new UsageError('--register expects auto, bulk or one-by-one');
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
    intervalMs: integer('interval-ms', values['interval-ms'], 10_000, 100, 3_600_000),
    sensors: integer('sensors', values.sensors, 10, 3, 60),
    durationS: integer('duration-s', values['duration-s'], 60, 1, 86_400),
    register,
    batch: values.batch === undefined ? undefined : integer('batch', values.batch, 1, 1, 100),
    batchAgeMs:
      values['batch-age-ms'] === undefined
        ? undefined
        : integer('batch-age-ms', values['batch-age-ms'], 0, 0, 3_600_000),
    startOverMs: integer('start-over-ms', values['start-over-ms'], 0, 0, 3_600_000),
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
let running: RunningFleet | undefined;

async function register(
  client: PlatformClient,
  options: Options,
  runId: string,
  progress: Progress,
  interrupted: AbortSignal,
): Promise<{ devices: RegisteredFleetDevice[]; how: string }> {
  const inputs = fleetDevices(`fleet-${runId}`, 1, options.count, `Fleet ${runId}`);
  if (options.register !== 'one-by-one') {
    const bulk = await registerInBulk(client, inputs);
    if (bulk) return { devices: bulk, how: 'in one bulk request' };
    if (options.register === 'bulk') {
      throw new UsageError('the platform has no bulk registration (POST /api/devices/bulk)');
    }
  }
  const started = Date.now();
  const devices = await registerOneByOne(client, inputs, {
    concurrency: options.concurrency,
    cancelled: interrupted,
    onRegistered: (done) =>
      progress.update(
        'registering',
        done,
        options.count,
        `  ${(done / ((Date.now() - started) / 1000)).toFixed(1)}/s`,
      ),
  });
  progress.done();
  return { devices, how: `one by one, ${options.concurrency} at a time` };
}

async function main(argv: string[]): Promise<void> {
  const options = await readOptions(argv);
  const runId = randomBytes(3).toString('hex');
  const progress = new Progress();
  const entities = sensorEntities(options.sensors);

  // First Ctrl-C: wrap up (stop the devices, count, summarise). Second: leave at once.
  const interruption = new AbortController();
  process.on('SIGINT', () => {
    if (!interruption.signal.aborted) {
      progress.done();
      note('interrupted: stopping the devices (Ctrl-C again to quit at once)');
      interruption.abort();
      return;
    }
    running?.kill();
    process.exit(130);
  });
  process.on('SIGTERM', () => interruption.abort());

  const client = new PlatformClient(options.apiUrl);
  const [signedIn] = await Promise.all([account(client, options, runId), buildFleet()]);
  const tenant = await makeRoom(client, options, await tenantOf(client));
  note(
    `tenant ${tenant.name} (id ${tenant.id}, plan ${tenant.plan}); sign in as ${signedIn.username} / ${signedIn.password}`,
  );

  const registrationStarted = Date.now();
  const { devices: fleet, how } = await register(
    client,
    options,
    runId,
    progress,
    interruption.signal,
  );
  const registrationS = (Date.now() - registrationStarted) / 1000;
  note(`registered ${fleet.length} devices ${how} in ${registrationS.toFixed(1)} s`);

  const runStarted = Date.now();
  const stackBefore = options.stackPid ? totalUsage(processTree(options.stackPid)) : undefined;
  let mostOnline = 0;
  let allOnlineAfterMs: number | undefined;
  const stderr: string[] = [];
  const devices = await startFleet(
    {
      devices: fleet,
      mqttUrl: options.mqttUrl,
      intervalMs: options.intervalMs,
      sensors: options.sensors,
      batch: options.batch,
      batchAgeMs: options.batchAgeMs,
      startOverMs: options.startOverMs,
      statsMs: 1000,
    },
    {
      onStats: (stats) => {
        mostOnline = Math.max(mostOnline, stats.online);
        if (allOnlineAfterMs === undefined && stats.online === fleet.length) {
          allOnlineAfterMs = stats.at * 1000 - runStarted;
        }
      },
      onStderr: (line) => stderr.push(line),
    },
  );
  running = devices;
  let exitedEarly: string | undefined;
  void devices.exited.then((description) => {
    exitedEarly ??= description;
  });

  const runUntil = runStarted + options.durationS * 1000;
  while (Date.now() < runUntil && !interruption.signal.aborted && exitedEarly === undefined) {
    const stats = devices.latest;
    const elapsedS = (Date.now() - runStarted) / 1000;
    progress.update(
      'running',
      Math.min(Math.round(elapsedS), options.durationS),
      options.durationS,
      ` s  online ${stats?.online ?? 0}/${fleet.length}  sent ${stats?.sent ?? 0} (${((stats?.sent ?? 0) / elapsedS).toFixed(0)}/s)`,
    );
    await sleep(500, interruption.signal);
  }
  progress.done();
  const beforeStop: FleetStats | undefined = devices.latest;
  const died = exitedEarly;
  note(`stopping ${fleet.length} devices`);
  const last = (await devices.stop()) ?? beforeStop;
  if (died) note(`a fleet process ${died} before the end: ${stderr.slice(-5).join(' | ')}`);
  const runEnded = Date.now();
  const runS = (runEnded - runStarted) / 1000;
  const sent = last?.sent ?? 0;
  const stillBuffered = last?.buffered ?? 0;
  const dropped = last?.dropped ?? 0;

  // The pipeline may still be working through the last readings: wait for it to catch up
  // (or stall), so "stored" is what the platform kept, not a snapshot mid-flight.
  const drainStarted = Date.now();
  let stored = 0;
  let lastChange = Date.now();
  for (;;) {
    const count = await countStored(
      { influxUrl: options.influxUrl, client, concurrency: options.concurrency },
      tenant,
      fleet,
      entities,
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

  const summary = {
    tenant: { id: tenant.id, name: tenant.name, username: signedIn.username },
    requested: options.count,
    registered: fleet.length,
    processes: devices.processes,
    registration_s: round(registrationS),
    registrations_per_s: round(fleet.length / registrationS),
    connected: mostOnline,
    all_connected_after_s: allOnlineAfterMs === undefined ? null : round(allOnlineAfterMs / 1000),
    interval_ms: options.intervalMs,
    sensors: options.sensors,
    run_s: round(runS),
    sent,
    sent_per_s: round(sent / runS),
    stored,
    stored_per_s: round(stored / runS),
    stored_ratio: sent > 0 ? round(stored / sent, 4) : null,
    buffered_at_stop: stillBuffered,
    dropped,
    store_caught_up_after_s: round(drainS),
    exited_early: died ? fleet.length : 0,
    devices_cpu_percent: round(((last?.cpu_s ?? 0) / runS) * 100),
    devices_rss_mb: round((last?.rss_kb ?? 0) / 1024),
    kb_per_device: round((last?.rss_kb ?? 0) / fleet.length),
    stack_cpu_percent:
      stackBefore && stackAfter
        ? round(((stackAfter.cpuS - stackBefore.cpuS) / ((Date.now() - runStarted) / 1000)) * 100)
        : null,
    stack_rss_mb: stackAfter ? round(stackAfter.rssKb / 1024) : null,
    interrupted: interruption.signal.aborted,
  };
  const lines = [
    `fleet of ${summary.requested} simulated devices in ${summary.processes} process${summary.processes === 1 ? '' : 'es'} (tenant ${tenant.name}, sign in as ${signedIn.username})${summary.interrupted ? ', interrupted' : ''}`,
    `  registered  ${summary.registered} ${how} in ${summary.registration_s} s (${summary.registrations_per_s}/s)`,
    `  connected   ${summary.connected}/${summary.registered}${summary.all_connected_after_s === null ? '' : ` (all within ${summary.all_connected_after_s} s)`}`,
    `  sent        ${sent} readings in ${summary.run_s} s (${summary.sent_per_s}/s, each device ${options.sensors} sensors every ${options.intervalMs} ms); ${stillBuffered} unsent at stop, ${dropped} dropped`,
    `  stored      ${stored} readings (${summary.stored_per_s}/s over the run, ${summary.stored_ratio === null ? '-' : `${round(summary.stored_ratio * 100, 2)}%`} of sent), the last one stored ${summary.store_caught_up_after_s} s after the devices stopped`,
    `  devices     ${summary.devices_cpu_percent}% CPU (100% = one core), ${summary.devices_rss_mb} MB resident (${summary.kb_per_device} KB a device)${died ? `; a process ${died} before the end` : ''}`,
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
    await running?.stop();
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
