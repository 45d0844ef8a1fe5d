/**
 * The firmware's fleet build (`firmware/build/fleet`) run from Node: many devices in one
 * process, each the firmware core with its own MQTT connection, credentials, Last Will and
 * retained discovery. `npm run fleet`, `npm run bench:fleet` and the fleet test start it
 * through here and follow its fleet-wide counters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
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
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  seed?: number;
}

export interface RunningFleet {
  readonly child: ChildProcess;
  /** The latest counters (undefined until the first line). */
  readonly latest: FleetStats | undefined;
  /** Resolves with a description once the process has exited. */
  readonly exited: Promise<string>;
  /** Resolves with the first counters (from now on) that satisfy `match`. */
  until(match: (stats: FleetStats) => boolean, timeoutMs: number): Promise<FleetStats>;
  /** SIGTERM (every device sends what waits and announces `offline`), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<FleetStats | undefined>;
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

/**
 * Starts one fleet process. The credentials go in a file readable by us only (never on a
 * command line, where `ps` shows them), removed when the process exits.
 */
export async function startFleet(
  options: FleetProcessOptions,
  handlers: { onStats?: (stats: FleetStats) => void; onStderr?: (line: string) => void } = {},
): Promise<RunningFleet> {
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
  let latest: FleetStats | undefined;
  const waiters = new Set<(stats: FleetStats) => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    let parsed: { event?: string };
    try {
      parsed = JSON.parse(line) as { event?: string };
    } catch {
      return;
    }
    if (parsed.event !== 'fleet' && parsed.event !== 'stopped') return;
    latest = parsed as FleetStats;
    handlers.onStats?.(latest);
    for (const wake of [...waiters]) wake(latest);
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) =>
    handlers.onStderr?.(line),
  );
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`failed to start: ${error.message}`));
    child.once('exit', (code, signal) =>
      resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
  }).then(async (description) => {
    await rm(dir, { recursive: true, force: true });
    return description;
  });

  return {
    child,
    get latest() {
      return latest;
    },
    exited,
    until(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (stats: FleetStats) => {
          if (!match(stats)) return;
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
        const gone = () => {
          cleanup();
          reject(new Error(`the fleet process ended; last counters: ${JSON.stringify(latest)}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', gone);
        };
        waiters.add(check);
        child.once('exit', gone);
      });
    },
    async stop(timeoutMs = 60_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const escalation = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(escalation);
      } else {
        await exited;
      }
      return latest;
    },
  };
}
