import { type ChildProcess, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  readFileSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves true if nothing listens on `port` at 127.0.0.1 right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first port the kernel hands out for outgoing connections (Linux; 32768 elsewhere). */
function ephemeralPortsFrom(): number {
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > 0 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

const LOWEST_CHOSEN_PORT = 20_000;
/** Handed-out ports, one file each, shared by every process on the machine that uses this. */
const LEASE_DIR = path.join(tmpdir(), 'easysmart-port-leases');
/** Long enough for a stack to start every server it chose a port for. */
const LEASE_MS = 5 * 60_000;

/**
 * Takes `port` for this caller unless another process took it within LEASE_MS and may not
 * have bound it yet. Without a lease directory (say, not writable) every port is takeable.
 */
async function lease(port: number): Promise<boolean> {
  const file = path.join(LEASE_DIR, String(port));
  try {
    await mkdir(LEASE_DIR, { recursive: true });
    await writeFile(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return true;
  }
  const taken = await stat(file).catch(() => undefined);
  if (taken && Date.now() - taken.mtimeMs < LEASE_MS) return false;
  await writeFile(file, String(process.pid)).catch(() => {});
  return true;
}

/**
 * A port nobody listens on right now on 127.0.0.1, for a server started next. Chosen at
 * random below the kernel's ephemeral range: a port the OS picks for `listen(0)` comes from
 * that range, where any outgoing connection may take it before the server binds it (which
 * happened with the test files' servers and clients running side by side). Each port is
 * leased for a few minutes, so that stacks starting side by side never choose the same one
 * while it waits for its server.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralPortsFrom();
  if (below - LOWEST_CHOSEN_PORT >= 1_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = LOWEST_CHOSEN_PORT + Math.floor(Math.random() * (below - LOWEST_CHOSEN_PORT));
      if ((await isPortFree(port)) && (await lease(port))) return port;
    }
  }
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** An abort check for `waitUntil`: why to stop waiting for `server`, if there is a reason. */
export function startupAbort(
  server: { readonly exitDescription: string | undefined },
  cancelled: AbortSignal | undefined,
): () => string | undefined {
  return () => server.exitDescription ?? (cancelled?.aborted ? 'startup cancelled' : undefined);
}

/** Polls `probe` until it returns true, failing with `what` in the message after `timeoutMs`. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const abortReason = options.abort?.();
    if (abortReason) throw new Error(`${what}: ${abortReason}`);
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

// Every server child this process started, killed outright if Node exits without stopping
// them (a crash, an uncaught error in a test run), so no orphan keeps a port or data dir.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const orphan of liveChildren) orphan.kill('SIGKILL');
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** When the kernel started `pid` (clock ticks since boot; Linux), undefined if it is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name's closing parenthesis: state is field 3, starttime 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** What a pid file records: the server and the supervisor it belongs to, each with its start. */
interface PidRecord {
  pid: number;
  startTime: string;
  owner: { pid: number; startTime: string };
  command: string;
}

const isAliveAs = (pid: number, startTime: string) => processStartTime(pid) === startTime;

/**
 * Stops the server a pid file names if the process that started it is gone (killed outright,
 * so it could not stop its servers) and the server still runs. The start times make sure a
 * reused pid is never taken for ours. Throws when the owner is still running: then the data
 * directory belongs to a live stack. Resolves with the pid it stopped, if any.
 */
export async function reapStaleServer(pidFile: string): Promise<number | undefined> {
  let record: PidRecord;
  try {
    record = JSON.parse(readFileSync(pidFile, 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
  if (record.owner.pid !== process.pid && isAliveAs(record.owner.pid, record.owner.startTime)) {
    throw new Error(
      `${path.dirname(pidFile)} is in use by process ${record.owner.pid}, which is still running: stop it first or use another LOCAL_DATA_DIR`,
    );
  }
  let stopped: number | undefined;
  if (isAliveAs(record.pid, record.startTime)) {
    stopped = record.pid;
    // SIGTERM lets the broker save its queue; SIGCONT wakes a stopped server to act on it.
    for (const signal of ['SIGTERM', 'SIGCONT'] as const) process.kill(record.pid, signal);
    await waitUntil(
      `stale ${record.command} (pid ${record.pid}) to exit`,
      async () => !isAliveAs(record.pid, record.startTime),
      { timeoutMs: 10_000, intervalMs: 50 },
    ).catch(() => process.kill(record.pid, 'SIGKILL'));
    await waitUntil(
      `stale ${record.command} (pid ${record.pid}) to be killed`,
      async () => !isAliveAs(record.pid, record.startTime),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  }
  await rm(pidFile, { force: true });
  return stopped;
}

/**
 * `setpriv --pdeathsig` (util-linux, on every Debian and Ubuntu): the command it runs gets
 * `signal` from the kernel when this process dies, however it dies, so a supervisor killed
 * outright takes its servers with it. Node has no prctl(PR_SET_PDEATHSIG) of its own.
 */
const setpriv = (() => {
  if (process.platform !== 'linux') return undefined;
  for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
})();

export interface ManagedProcessOptions {
  /** Short name used in messages. */
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr are appended here rather than cluttering the console. */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Signal that asks the server to shut down cleanly. */
  stopSignal?: NodeJS.Signals;
  /** Also receives each line of output, e.g. to echo it with a prefix. */
  onOutputLine?: (line: string) => void;
  /**
   * Records the server here (see `reapStaleServer`) and has the kernel send it `stopSignal`
   * if this process dies without stopping it. The command must not change its user itself:
   * that clears the kernel's parent-death signal (start it as that user instead).
   */
  pidFile?: string;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Set once the process has exited, whether asked to or not. */
  readonly exitDescription: string | undefined;
  /** Resolves when the process exits for a reason other than `stop()`. */
  readonly unexpectedExit: Promise<string>;
  stop(timeoutMs?: number): Promise<void>;
}

export function spawnManaged(options: ManagedProcessOptions): ManagedProcess {
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const stopSignal = options.stopSignal ?? 'SIGTERM';
  const [command, args] =
    options.pidFile && setpriv
      ? [
          setpriv,
          ['--pdeathsig', stopSignal.replace(/^SIG/, ''), '--', options.command, ...options.args],
        ]
      : [options.command, options.args];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    uid: options.uid,
    gid: options.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches only the supervisor, which
    // then stops the servers in order instead of all of them dying at once.
    detached: true,
  });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    stream.pipe(log, { end: false });
    const onOutputLine = options.onOutputLine;
    if (onOutputLine) {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on(
        'line',
        onOutputLine,
      );
    }
  }
  trackChild(child);
  const pidFile = options.pidFile;
  const startTime = child.pid ? processStartTime(child.pid) : undefined;
  if (pidFile && child.pid && startTime) {
    const record: PidRecord = {
      pid: child.pid,
      startTime,
      owner: { pid: process.pid, startTime: processStartTime(process.pid) ?? '' },
      command: options.name,
    };
    writeFileSync(pidFile, `${JSON.stringify(record)}\n`);
    child.once('exit', () => {
      // Unless a newer start of the same server has written its own record there meanwhile.
      try {
        if (readFileSync(pidFile, 'utf8').includes(`"pid":${record.pid},`)) rmSync(pidFile);
      } catch {
        // Already gone with its data directory.
      }
    });
  }

  let stopping = false;
  let exitDescription: string | undefined;
  let resolveUnexpected: (reason: string) => void = () => {};
  const unexpectedExit = new Promise<string>((resolve) => {
    resolveUnexpected = resolve;
  });
  const exited = new Promise<void>((resolve) => {
    const onGone = (description: string) => {
      if (exitDescription !== undefined) return;
      exitDescription = description;
      if (!stopping) resolveUnexpected(`${options.name} ${description} (log: ${options.logFile})`);
      resolve();
    };
    child.once('error', (error) => onGone(`failed to start: ${error.message}`));
    // Not at `exit`: the output pipes close later, once every process holding them (a child
    // the server left behind, say) has, and what comes meanwhile belongs in the log too.
    child.once('close', () => log.end());
    child.once('exit', (code, signal) =>
      onGone(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
  });

  return {
    child,
    pid: child.pid ?? -1,
    get exitDescription() {
      return exitDescription;
    },
    unexpectedExit,
    async stop(timeoutMs = 10_000) {
      stopping = true;
      if (exitDescription !== undefined) return;
      child.kill(stopSignal);
      const escalation = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(escalation);
    },
  };
}

/**
 * Starts a server and waits until `ready` answers true; if it does not (timeout, the
 * process died, the stack is shutting down), the process is stopped before the error is
 * rethrown, so a failed start leaves nothing running.
 */
export async function spawnUntilReady(
  options: ManagedProcessOptions & {
    ready: () => Promise<boolean>;
    timeoutMs: number;
    cancelled?: AbortSignal;
  },
): Promise<ManagedProcess> {
  const started = spawnManaged(options);
  try {
    await waitUntil(`${options.name} (log: ${options.logFile})`, options.ready, {
      timeoutMs: options.timeoutMs,
      intervalMs: 50,
      abort: startupAbort(started, options.cancelled),
    });
  } catch (error) {
    await started.stop();
    throw error;
  }
  return started;
}
