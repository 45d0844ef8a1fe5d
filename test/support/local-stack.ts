import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import pg from 'pg';
import { setPlan } from '../../infra/admin.ts';
import { descendantsOf, isAlive } from './processes.ts';
import { freePort, temporaryDataDir, waitUntil } from './servers.ts';
import { unique } from './stack-env.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const tsxCli = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** What `npm start` runs (package.json's `start`, minus `tsx`), for `node <tsx cli> ...`. */
export const START_ARGUMENTS = [
  '--max-semi-space-size=64',
  '--min-semi-space-size=64',
  'local/start.ts',
];
export const startCommand = (): string[] => [tsxCli, ...START_ARGUMENTS];

export interface LocalStack {
  child: ChildProcess;
  api: string;
  mqtt: string;
  dashboard: string;
  dataDir: string;
  output: string[];
  exited: Promise<number | null>;
  /** What the supervisor wrote to `<data>/stack.json` (internal endpoints and accounts). */
  details(): Promise<{
    /** The supervisor's process (the one running local/start.ts). */
    pid: number;
    influxUrl: string;
    websocketUrl: string;
    lambdaEndpoint: string;
    mqttPlatform: { username: string; password: string };
    databaseAdminUrl: string;
  }>;
  /** JSON request to the API; returns status and parsed body. */
  request(
    method: string,
    route: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: any }>;
  /**
   * Ctrl-C to the whole process group, as a terminal sends it. Resolves with the exit code
   * and the processes still alive 5 s after it exited (then killed), which should be none.
   */
  stop(): Promise<{ code: number | null; leftovers: number[] }>;
}

/**
 * Runs what `npm start` runs on free ports in a temporary data
 * directory, as its own process group, and resolves once it prints READY.
 */
export async function startLocalStack(
  env: Record<string, string> = {},
  dataDir?: string,
): Promise<LocalStack> {
  // A directory made here is removed by stop(): a stack's data (a PostgreSQL cluster, InfluxDB,
  // the bundled functions) is hundreds of megabytes, and runs left hundreds of them in /tmp.
  const owned = dataDir === undefined ? await temporaryDataDir('stack') : undefined;
  const dir = owned?.dir ?? (dataDir as string);
  const child = spawn(process.execPath, startCommand(), {
    cwd: repoRoot,
    env: {
      ...process.env,
      API_PORT: String(await freePort()),
      MQTT_PORT: String(await freePort()),
      DASHBOARD_PORT: String(await freePort()),
      LOCAL_DATA_DIR: dir,
      DATABASE_URL: '',
      INFLUX_URL: '',
      LOG_LEVEL: 'warn',
      DEMO: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ready = await new Promise<[string, string, string]>((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        if (output.length > 5000) output.splice(0, 1000);
        const match = /^READY api=(\S+) mqtt=(\S+) dashboard=(\S+)$/.exec(line);
        if (match) resolve([match[1] as string, match[2] as string, match[3] as string]);
      });
    }
    exited.then((code) =>
      reject(new Error(`the stack exited with ${code} before READY:\n${output.join('\n')}`)),
    );
    setTimeout(
      () => reject(new Error(`no READY within 150 s:\n${output.join('\n')}`)),
      150_000,
    ).unref();
  }).catch(async (error: unknown) => {
    if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGKILL');
    await owned?.remove();
    throw error;
  });
  const [api, mqtt, dashboard] = ready;
  return {
    child,
    api,
    mqtt,
    dashboard,
    dataDir: dir,
    output,
    exited,
    details: async () => JSON.parse(await readFile(path.join(dir, 'stack.json'), 'utf8')),
    async request(method, route, body, token) {
      const response = await fetch(`${api}${route}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      const pid = child.pid as number;
      const started = [pid, ...descendantsOf(pid)];
      if (child.exitCode === null) process.kill(-pid, 'SIGINT');
      const code = await Promise.race([
        exited,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000)),
      ]);
      await waitUntil('the stack to exit', async () => started.every((p) => !isAlive(p)), {
        timeoutMs: 5000,
      }).catch(() => {});
      const leftovers = started.filter(isAlive);
      for (const leftover of leftovers) process.kill(leftover, 'SIGKILL');
      await owned?.remove();
      return { code, leftovers };
    },
  };
}

/**
 * Signs a new tenant and its owner up through the stack's API, under names no other test
 * uses; with `plan`, the operator then moves the tenant to that plan (infra/admin.ts on the
 * stack's database). Anything but a 201 throws with the API's answer.
 */
export async function signUpOnStack(
  stack: LocalStack,
  options: { plan?: string } = {},
): Promise<{ token: string; tenantId: number; username: string }> {
  const username = unique('owner');
  const registered = await stack.request('POST', '/api/auth/register', {
    tenant_name: unique('Plant'),
    username,
    email: `${username}@example.com`,
    password: 'owner-password',
  });
  if (registered.status !== 201) {
    throw new Error(`sign-up answered ${registered.status}: ${JSON.stringify(registered.body)}`);
  }
  const tenantId = registered.body.tenant.id as number;
  if (options.plan) await setPlanOnStack(stack, tenantId, options.plan);
  return { token: registered.body.token, tenantId, username };
}

/** The operator's plan change (infra/admin.ts) on the stack's database. */
export async function setPlanOnStack(
  stack: LocalStack,
  tenantId: number,
  plan: string,
): Promise<void> {
  const operator = new pg.Client({ connectionString: (await stack.details()).databaseAdminUrl });
  await operator.connect();
  try {
    await setPlan(operator, String(tenantId), plan);
  } finally {
    await operator.end();
  }
}

export interface DeviceCredentials {
  username: string;
  password: string;
  client_id: string;
}

/**
 * Registers a device through the stack's API under a device id no other test uses; its row
 * id, device id and broker credentials. Anything but a 201 throws with the API's answer.
 */
export async function registerOnStack(
  stack: LocalStack,
  token: string,
  body: { name: string; type: string },
): Promise<{ id: number; deviceId: string; credentials: DeviceCredentials }> {
  const deviceId = unique('esp32');
  const created = await stack.request(
    'POST',
    '/api/devices',
    { device_id: deviceId, ...body },
    token,
  );
  if (created.status !== 201) {
    throw new Error(
      `device registration answered ${created.status}: ${JSON.stringify(created.body)}`,
    );
  }
  return { id: created.body.device.id, deviceId, credentials: created.body.credentials };
}

/** Connects to `url` as the device the credentials belong to, without reconnecting. */
export function connectAsDevice(
  url: string,
  credentials: DeviceCredentials,
  options: mqtt.IClientOptions = {},
): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(url, {
    username: credentials.username,
    password: credentials.password,
    clientId: credentials.client_id,
    reconnectPeriod: 0,
    ...options,
  });
}
