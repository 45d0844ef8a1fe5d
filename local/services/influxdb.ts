import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { findBinary } from './binaries.ts';
import { freePort, type ManagedProcess, spawnUntilReady } from './process.ts';

export interface StartInfluxdbOptions {
  /** Stops waiting for the server to come up (the stack is shutting down). */
  cancelled?: AbortSignal;
  /** Directory owned by this service: config, meta, data, WAL and log. */
  dataDir: string;
  httpPort?: number;
}

export interface RunningInfluxdb {
  /** Base URL of the v1 HTTP API, e.g. http://127.0.0.1:8086 */
  url: string;
  httpPort: number;
  /** Resolves with a message if influxd exits without `stop()`; renewed by each `start()`. */
  unexpectedExit(): Promise<string>;
  /** True when `GET /ping` answers 204. */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
  /** Starts it again after `stop()`, same port and data. */
  start(): Promise<void>;
}

function influxConfig(dataDir: string, rpcPort: number, httpPort: number): string {
  return `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${path.join(dataDir, 'meta')}"
[data]
  dir = "${path.join(dataDir, 'data')}"
  wal-dir = "${path.join(dataDir, 'wal')}"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
[continuous_queries]
  log-enabled = false
  run-interval = "1s"
`;
}

export async function answersPing(url: string): Promise<boolean> {
  const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
  return response.status === 204;
}

/** Runs an InfluxDB 1.x `influxd` with a config of its own (no system service involved). */
export async function startInfluxdb(options: StartInfluxdbOptions): Promise<RunningInfluxdb> {
  const influxd = findBinary('influxd');
  if (!influxd) {
    throw new Error(`influxd is not installed: run 'sudo apt-get install -y influxdb'`);
  }
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const httpPort = options.httpPort ?? (await freePort());
  const url = `http://127.0.0.1:${httpPort}`;
  const configFile = path.join(dataDir, 'influxdb.conf');
  const logFile = path.join(dataDir, 'influxd.log');
  let server: ManagedProcess | undefined;

  const start = async () => {
    if (server && server.exitDescription === undefined) return;
    // The RPC port is only used by backup tools; a fresh one each start avoids a clash
    // with whatever took the old one meanwhile.
    await writeFile(configFile, influxConfig(dataDir, await freePort(), httpPort));
    server = await spawnUntilReady({
      name: 'influxd',
      command: influxd,
      args: ['-config', configFile],
      logFile,
      pidFile: path.join(dataDir, 'server.pid'),
      ready: () => answersPing(url),
      timeoutMs: 30_000,
      cancelled: options.cancelled,
    });
  };

  await start();
  return {
    url,
    httpPort,
    unexpectedExit: () => server?.unexpectedExit ?? new Promise(() => {}),
    healthy: () => answersPing(url),
    stop: async () => {
      await server?.stop(15_000);
    },
    start,
  };
}
