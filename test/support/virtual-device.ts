import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './local-stack.ts';

/** One JSON line of the virtual device's stdout, stamped with when it was read. */
export interface DeviceEvent {
  event: string;
  at: number;
  [field: string]: unknown;
}

export interface RunningDevice {
  child: ChildProcess;
  events: DeviceEvent[];
  stderr: string[];
  exited: Promise<void>;
  /** Resolves with the first event (from index `from` on) that satisfies `match`. */
  next(
    match: (event: DeviceEvent) => boolean,
    timeoutMs: number,
    from?: number,
  ): Promise<DeviceEvent>;
  /** SIGKILL unless it already exited. */
  kill(): void;
}

const launcher = path.join(repoRoot, 'firmware', 'host', 'run-virtual-device.mjs');

/** Starts the firmware's virtual device through `npm run device`'s launcher. */
export function spawnVirtualDevice(args: string[]): RunningDevice {
  const child = spawn(process.execPath, [launcher, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: DeviceEvent[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      events.push({ ...(JSON.parse(line) as { event: string }), at: Date.now() });
    } catch {
      return;
    }
    for (const wake of waiters) wake();
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    stderr.push(line);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    events,
    stderr,
    exited,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    next(match, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.slice(from).find(match);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching device event within ${timeoutMs} ms; last events:\n${events
                .slice(-8)
                .map((e) => JSON.stringify(e))
                .join('\n')}\nstderr:\n${stderr.slice(-10).join('\n')}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
