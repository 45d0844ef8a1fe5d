/**
 * The firmware's fleet build (`firmware/build/fleet`) run from Node: many devices a process,
 * each the firmware core with its own MQTT connection, credentials, Last Will and retained
 * discovery, and as many processes as the descriptor limit asks for. `npm run fleet`,
 * `npm run bench:fleet` and the fleet test start it through here and follow its fleet-wide
 * counters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const firmwareDir = path.join(repoRoot, 'firmware');
export const fleetBinary = path.join(firmwareDir, 'build', 'fleet');

export interface FleetDeviceCredentials {
  deviceId: string;
  username: string;
  password: string;
}

/** Fleet-wide counters, one line every `statsMs` (and a last one, `stopped`, at exit). */
export interface FleetStats {
  event: 'fleet' | 'stopped';
  /** Epoch seconds when the line was written. */
  at: number;
  devices: number;
  /** Devices powered up so far (see `startOverMs`). */
  started: number;
  /** Devices with an MQTT session (CONNACK received) right now. */
  online: number;
  connects: number;
  disconnects: number;
  connect_failures: number;
  /** Readings the broker acknowledged. */
  sent: number;
  /** Readings waiting in the devices' buffers (including those in flight). */
  buffered: number;
  inflight: number;
  /** Readings evicted from full buffers. */
  dropped: number;
  rss_kb: number;
  cpu_s: number;
}

export interface FleetProcessOptions {
  devices: FleetDeviceCredentials[];
  mqttUrl: string;
  intervalMs?: number;
  /** Sensors per device; each sampling round is one reading of each. */
  sensors?: number;
  /** Also the reference device's relay, setpoint and label (default: sensors only). */
  actuators?: boolean;
  /** Readings per telemetry message; absent: one sampling round per message. */
  batch?: number;
  batchAgeMs?: number;
  buffer?: number;
  statsMs?: number;
  /** Devices power up spread over this long (0: all at once). */
  startOverMs?: number;
  /**
   * Each device's first sample at a random point of its first interval (the firmware's
   * default); false: at power-up, so a fleet powered up together reports in the same instant.
   */
  randomFirstSample?: boolean;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Each device's random stream (backoff jitter, simulated values) follows from it and its place. */
  seed?: number;
  /** At most this many devices a process (default: what the descriptor limit allows, at most 5,000). */
  devicesPerProcess?: number;
}

export interface RunningFleet {
  /** The fleet's processes. */
  readonly processes: number;
  /** The latest counters, summed over the processes (undefined until each has written one). */
  readonly latest: FleetStats | undefined;
  /** Resolves with a description once every process has exited (the first one's, if any failed). */
  readonly exited: Promise<string>;
  /** Resolves with the first counters (from now on) that satisfy `match`. */
  until(match: (stats: FleetStats) => boolean, timeoutMs: number): Promise<FleetStats>;
  /** SIGTERM (every device sends what waits and announces `offline`), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<FleetStats | undefined>;
  /** SIGKILL to every process at once. */
  kill(): void;
}

/**
 * Devices one fleet process can hold under this machine's descriptor limit: libmosquitto
 * takes three a client (its socket and the socket pair that wakes its loop), and the process
 * raises its soft limit to the hard one. Without /proc (not Linux): 5,000.
 */
export function devicesPerProcessLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
    if (hard === undefined || hard === 'unlimited') return 5_000;
    return Math.max(1, Math.min(5_000, Math.floor((Number(hard) - 64) / 3)));
  } catch {
    return 5_000;
  }
}

/** Builds the fleet binary when a firmware source is newer (make decides). */
export function buildFleet(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('make', ['-C', firmwareDir, 'fleet'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const output: string[] = [];
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.once('error', (error) => reject(new Error(`cannot build the fleet: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve(fleetBinary);
      else
        reject(
          new Error(
            `building the fleet failed (it needs g++, make and libmosquitto-dev):\n${output.join('').trim()}`,
          ),
        );
    });
  });
}

function credentialsCsv(devices: FleetDeviceCredentials[]): string {
  const lines = ['device_id,username,password'];
  for (const device of devices) {
    const fields = [device.deviceId, device.username, device.password];
    if (fields.some((field) => /[,"\r\n]/.test(field))) {
      throw new Error(`device ${device.deviceId}: credentials with a comma or quote`);
    }
    lines.push(fields.join(','));
  }
  return `${lines.join('\n')}\n`;
}

interface FleetHandlers {
  onStats?: (stats: FleetStats) => void;
  onStderr?: (line: string) => void;
}

/**
 * Starts the fleet: its devices in order, split over processes of at most `devicesPerProcess`,
 * each device seeded as if all ran in one process. The counters are summed over the
 * processes; `onStats` sees each new sum.
 */
export async function startFleet(
  options: FleetProcessOptions,
  handlers: FleetHandlers = {},
): Promise<RunningFleet> {
  const perProcess = options.devicesPerProcess ?? devicesPerProcessLimit();
  const seed = options.seed ?? randomInt(2 ** 31);
  const parts: FleetProcess[] = [];
  const latestOf: Array<FleetStats | undefined> = [];
  let latest: FleetStats | undefined;
  const waiters = new Set<(stats: FleetStats) => void>();
  const summed = () => {
    if (latestOf.length < parts.length || latestOf.some((stats) => stats === undefined)) return;
    latest = sumStats(latestOf as FleetStats[]);
    handlers.onStats?.(latest);
    for (const wake of [...waiters]) wake(latest);
  };
  try {
    for (let first = 0; first < options.devices.length; first += perProcess) {
      const index = parts.length;
      latestOf.push(undefined);
      parts.push(
        await startFleetProcess(
          {
            ...options,
            devices: options.devices.slice(first, first + perProcess),
            seed: seed + first,
          },
          {
            onStats: (stats) => {
              latestOf[index] = stats;
              summed();
            },
            ...(handlers.onStderr ? { onStderr: handlers.onStderr } : {}),
          },
        ),
      );
    }
  } catch (error) {
    for (const part of parts) part.child.kill('SIGKILL');
    throw error;
  }
  const exited = Promise.all(parts.map((part) => part.exited)).then(
    (descriptions) =>
      descriptions.find((description) => description !== 'exited with code 0') ??
      (descriptions[0] as string),
  );
  // A process that ends early ends the fleet's waits: the whole fleet is no longer running.
  const firstExit = Promise.race(parts.map((part) => part.exited));
  return {
    processes: parts.length,
    get latest() {
      return latest;
    },
    exited,
    until(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        let settled = false;
        const check = (stats: FleetStats) => {
          if (settled || !match(stats)) return;
          cleanup();
          resolve(stats);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `the fleet did not get there within ${timeoutMs} ms; last counters: ${JSON.stringify(latest)}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          settled = true;
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void firstExit.then((description) => {
          if (settled) return;
          cleanup();
          reject(
            new Error(`a fleet process ${description}; last counters: ${JSON.stringify(latest)}`),
          );
        });
      });
    },
    async stop(timeoutMs = 60_000) {
      await Promise.all(parts.map((part) => part.stop(timeoutMs)));
      // Each process's last line (`stopped`) is in the sum.
      return latest;
    },
    kill() {
      for (const part of parts) part.child.kill('SIGKILL');
    },
  };
}

/** The processes' counters as one fleet's: counts summed, the latest time, stopped once all are. */
function sumStats(all: FleetStats[]): FleetStats {
  const total: FleetStats = {
    event: all.every((stats) => stats.event === 'stopped') ? 'stopped' : 'fleet',
    at: 0,
    devices: 0,
    started: 0,
    online: 0,
    connects: 0,
    disconnects: 0,
    connect_failures: 0,
    sent: 0,
    buffered: 0,
    inflight: 0,
    dropped: 0,
    rss_kb: 0,
    cpu_s: 0,
  };
  for (const stats of all) {
    total.at = Math.max(total.at, stats.at);
    for (const key of SUMMED) total[key] += stats[key];
  }
  return total;
}

const SUMMED = [
  'devices',
  'started',
  'online',
  'connects',
  'disconnects',
  'connect_failures',
  'sent',
  'buffered',
  'inflight',
  'dropped',
  'rss_kb',
  'cpu_s',
] as const satisfies ReadonlyArray<keyof FleetStats>;

/** One running fleet process. */
interface FleetProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<string>;
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Starts one fleet process. The credentials go in a file readable by us only (never on a
 * command line, where `ps` shows them), removed when the process exits.
 */
async function startFleetProcess(
  options: FleetProcessOptions,
  handlers: FleetHandlers,
): Promise<FleetProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'easysmart-fleet-'));
  const devicesFile = path.join(dir, 'devices.csv');
  await writeFile(devicesFile, credentialsCsv(options.devices), { mode: 0o600 });
  const args = ['--devices', devicesFile, '--mqtt', options.mqttUrl];
  const optional: Array<[string, number | undefined]> = [
    ['--interval-ms', options.intervalMs],
    ['--sensors', options.sensors],
    ['--actuators', options.actuators === undefined ? undefined : Number(options.actuators)],
    ['--batch', options.batch],
    ['--batch-age-ms', options.batchAgeMs],
    ['--buffer', options.buffer],
    ['--stats-ms', options.statsMs],
    ['--start-over-ms', options.startOverMs],
    [
      '--random-first-sample',
      options.randomFirstSample === undefined ? undefined : Number(options.randomFirstSample),
    ],
    ['--backoff-base-ms', options.backoffBaseMs],
    ['--backoff-max-ms', options.backoffMaxMs],
    ['--seed', options.seed],
  ];
  for (const [flag, value] of optional) if (value !== undefined) args.push(flag, String(value));

  // Its own process group, so a terminal's Ctrl-C reaches only us (we then stop it while the
  // broker is still up); EASYSMART_PARENT_PID makes it die with us if we are killed outright.
  const child = spawn(fleetBinary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, EASYSMART_PARENT_PID: String(process.pid) },
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    let parsed: { event?: string };
    try {
      parsed = JSON.parse(line) as { event?: string };
    } catch {
      return;
    }
    if (parsed.event !== 'fleet' && parsed.event !== 'stopped') return;
    handlers.onStats?.(parsed as FleetStats);
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) =>
    handlers.onStderr?.(line),
  );
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`failed to start: ${error.message}`));
    // 'close': after its output is read to the end, so its last counters are in.
    child.once('close', (code, signal) =>
      resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
  }).then(async (description) => {
    await rm(dir, { recursive: true, force: true });
    return description;
  });

  return {
    child,
    exited,
    async stop(timeoutMs) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const escalation = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(escalation);
      } else {
        await exited;
      }
    },
  };
}
