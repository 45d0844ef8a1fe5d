/**
 * Running the firmware's virtual device (`firmware/build/virtual-device`) from Node: the
 * local stack's demo devices and `npm run fleet` both start it as a child and follow its
 * JSON event lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const launcher = path.join(repoRoot, 'firmware', 'host', 'run-virtual-device.mjs');
export const virtualDeviceBinary = path.join(repoRoot, 'firmware', 'build', 'virtual-device');

/**
 * Builds the virtual device if a firmware source is newer than the binary. The launcher
 * does that before running `--help`, so the rules for "stale" live in one place; doing it
 * once up front keeps many devices started at once from racing on the same make. With
 * `logFile`, the compiler's output goes there and a failure names the file instead of
 * carrying the output.
 */
export function buildVirtualDevice(
  options: { cancelled?: AbortSignal; logFile?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
    const child = spawn(process.execPath, [launcher, '--help'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      signal: options.cancelled,
    });
    const output: string[] = [];
    if (log) child.stderr?.pipe(log);
    else child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.once('error', (error) =>
      reject(new Error(`cannot build the virtual device: ${error.message}`)),
    );
    child.once('close', (code) => {
      if (code === 0) resolve(virtualDeviceBinary);
      else if (options.logFile)
        reject(new Error(`building the virtual device failed (log: ${options.logFile})`));
      else reject(new Error(`building the virtual device failed:\n${output.join('').trim()}`));
    });
  });
}

export interface VirtualDeviceOptions {
  deviceId: string;
  username: string;
  password: string;
  mqttUrl: string;
  intervalMs?: number;
  statsMs?: number;
  /** Readings per telemetry message; absent: the firmware's default (firmware/core/batching.hpp). */
  batch?: number;
  /** Longest a reading waits for its telemetry message; absent: the firmware's default. */
  batchAgeMs?: number;
  buffer?: number;
  fault?: 'spike' | 'drift' | 'stuck';
  faultAfterS?: number;
  name?: string;
  type?: string;
}

export function virtualDeviceArgs(options: VirtualDeviceOptions): string[] {
  const args = [
    '--device-id',
    options.deviceId,
    '--username',
    options.username,
    '--password',
    options.password,
    '--mqtt',
    options.mqttUrl,
  ];
  const optional: Array<[string, string | number | undefined]> = [
    ['--interval-ms', options.intervalMs],
    ['--stats-ms', options.statsMs],
    ['--batch', options.batch],
    ['--batch-age-ms', options.batchAgeMs],
    ['--buffer', options.buffer],
    ['--fault', options.fault],
    ['--fault-after-s', options.faultAfterS],
    ['--name', options.name],
    ['--type', options.type],
  ];
  for (const [flag, value] of optional) {
    if (value !== undefined) args.push(flag, String(value));
  }
  return args;
}

/** One line of the device's stdout. */
export interface DeviceEvent {
  event: string;
  [field: string]: unknown;
}

export interface RunningVirtualDevice {
  readonly child: ChildProcess;
  /** Resolves with a description once the process has exited. */
  readonly exited: Promise<string>;
  /** SIGTERM (the device announces `offline`), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts the built binary directly (not through the Node launcher: a Node process per
 * device would cost ~40 MB each). It gets its own process group, so a Ctrl-C in the
 * terminal reaches only our process, which then stops devices while the broker is still
 * up; EASYSMART_PARENT_PID makes it die with us if we are killed outright.
 */
export function startVirtualDevice(
  options: VirtualDeviceOptions,
  handlers: { onEvent?: (event: DeviceEvent) => void; onStderr?: (line: string) => void } = {},
): RunningVirtualDevice {
  const child = spawn(virtualDeviceBinary, virtualDeviceArgs(options), {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, EASYSMART_PARENT_PID: String(process.pid) },
  });
  if (child.stdout) {
    createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on(
      'line',
      (line) => {
        if (!handlers.onEvent || !line.startsWith('{')) return;
        try {
          handlers.onEvent(JSON.parse(line) as DeviceEvent);
        } catch {
          // A line cut short by a kill is not an event.
        }
      },
    );
  }
  if (child.stderr) {
    createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY }).on(
      'line',
      (line) => handlers.onStderr?.(line),
    );
  }
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`failed to start: ${error.message}`));
    child.once('exit', (code, signal) =>
      resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
  });
  return {
    child,
    exited,
    async stop(timeoutMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const escalation = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(escalation);
    },
  };
}
