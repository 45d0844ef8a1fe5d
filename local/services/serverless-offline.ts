import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { freePort, spawnManaged, startupAbort, waitUntil } from './process.ts';

export interface StartServerlessOfflineOptions {
  /** Stops waiting for the server to come up (the stack is shutting down). */
  cancelled?: AbortSignal;
  /** The directory holding serverless.yml. */
  serviceDir: string;
  /** Per-stack working directory: bundles and the log go here, so two stacks never share them. */
  workDir: string;
  httpPort: number;
  /** Where the HTTP and WebSocket APIs listen; 127.0.0.1 unless in a container. */
  host?: string;
  lambdaPort?: number;
  websocketPort?: number;
  stage: string;
  /** The complete environment of the serverless process; functions inherit it. */
  env: NodeJS.ProcessEnv;
  /** A public route that answers 200 once the functions can serve requests. */
  readinessPath: string;
  /** Receives each line the functions and serverless-offline print. */
  onOutputLine?: (line: string) => void;
}

export interface RunningServerlessOffline {
  url: string;
  lambdaPort: number;
  websocketPort: number;
  /** Base URL for `POST /2015-03-31/functions/<name>/invocations`. */
  lambdaEndpoint: string;
  logFile: string;
  unexpectedExit(): Promise<string>;
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Runs `serverless offline start` (osls + serverless-offline@13) in a child process: the
 * HTTP API, the Lambda invoke endpoint and the WebSocket API, each on its own port.
 */
export async function startServerlessOffline(
  options: StartServerlessOfflineOptions,
): Promise<RunningServerlessOffline> {
  const workDir = path.resolve(options.workDir);
  await mkdir(workDir, { recursive: true });
  const lambdaPort = options.lambdaPort ?? (await freePort());
  const websocketPort = options.websocketPort ?? (await freePort());
  const url = `http://127.0.0.1:${options.httpPort}`;
  const logFile = path.join(workDir, 'serverless-offline.log');
  const cli = path.join(options.serviceDir, 'node_modules', 'osls', 'bin', 'serverless.js');

  // osls prints a failed build or a bad serverless.yml and then stays up without serving,
  // so startup watches the output for the error instead of waiting out the timeout.
  const recentLines: string[] = [];
  let fatalAt: number | undefined;
  const server = spawnManaged({
    name: 'serverless-offline',
    command: process.execPath,
    args: [
      // The emulator hands the ingest function batches of thousands of readings, four at a
      // time, alive until InfluxDB has them: in V8's default 16 MB new space they outlive
      // scavenges and get promoted (bench/README.md has what the larger space saved).
      '--max-semi-space-size=128',
      // The collector on this thread alone: its helper threads took more CPU in all than the
      // same work here, from two cores the whole stack shares (bench/README.md).
      '--single-threaded-gc',
      // The rules emulator's Kinesis batches become whole events before a function gets them.
      '--import',
      new URL('./function-host-preload.mjs', import.meta.url).href,
      cli,
      'offline',
      'start',
      '--stage',
      options.stage,
      '--host',
      options.host ?? '127.0.0.1',
      '--httpPort',
      String(options.httpPort),
      '--lambdaPort',
      String(lambdaPort),
      '--websocketPort',
      String(websocketPort),
      '--noPrependStageInUrl',
    ],
    cwd: options.serviceDir,
    env: {
      ...options.env,
      // serverless-esbuild resolves its work folder against the service directory.
      ESBUILD_WORK_FOLDER: path.relative(options.serviceDir, path.join(workDir, 'esbuild')),
      // osls would otherwise try to reach the network at start and exit.
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      SLS_INTERACTIVE_SETUP_DISABLE: '1',
    },
    logFile,
    pidFile: path.join(workDir, 'server.pid'),
    stopSignal: 'SIGINT',
    onOutputLine: (line) => {
      recentLines.push(line);
      if (fatalAt === undefined && /^(Error:|✘ \[ERROR\])/.test(line.trim())) {
        fatalAt = recentLines.length - 1;
      }
      options.onOutputLine?.(line);
    },
  });
  const fatalError = () =>
    fatalAt === undefined
      ? undefined
      : `serverless failed:\n${recentLines
          .slice(fatalAt, fatalAt + 12)
          .filter((line) => line.trim())
          .join('\n')}`;
  const cancelledOrDead = startupAbort(server, options.cancelled);

  const healthy = async () => {
    const response = await fetch(`${url}${options.readinessPath}`, {
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    if (response.status !== 200) {
      // Thrown rather than returned so a timeout reports what the function answered.
      throw new Error(
        `GET ${options.readinessPath} answered ${response.status}: ${body.slice(0, 300)}`,
      );
    }
    return true;
  };
  try {
    // The first request loads (and bundles) the function, so allow for a slow machine.
    await waitUntil(`serverless-offline on ${url} (log: ${logFile})`, healthy, {
      timeoutMs: 120_000,
      intervalMs: 250,
      abort: () => cancelledOrDead() ?? fatalError(),
    });
  } catch (error) {
    await server.stop();
    throw error;
  }

  return {
    url,
    lambdaPort,
    websocketPort,
    lambdaEndpoint: `http://127.0.0.1:${lambdaPort}`,
    logFile,
    unexpectedExit: () => server.unexpectedExit,
    healthy,
    stop: () => server.stop(15_000),
  };
}
