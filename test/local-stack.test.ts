import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commandOf, descendantsOf, isAlive } from './support/processes.ts';
import { freePort, temporaryDataDir, waitUntil } from './support/servers.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsxCli = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

interface RunningStack {
  child: ChildProcess;
  ready: { api: string; mqtt: string; dashboard: string };
  output: string[];
  exited: Promise<number | null>;
}

let data: Awaited<ReturnType<typeof temporaryDataDir>>;
let ports: { api: number; mqtt: number; dashboard: number };
let current: RunningStack | undefined;

/** `tsx local/start.ts` (what `npm start` runs), in its own process group like a terminal job. */
async function startStack(): Promise<RunningStack> {
  const child = spawn(process.execPath, [tsxCli, 'local/start.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      API_PORT: String(ports.api),
      MQTT_PORT: String(ports.mqtt),
      DASHBOARD_PORT: String(ports.dashboard),
      LOCAL_DATA_DIR: data.dir,
      DEMO: '0',
      DATABASE_URL: '',
      INFLUX_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ready = new Promise<RunningStack['ready']>((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const match = /^READY api=(\S+) mqtt=(\S+) dashboard=(\S+)$/.exec(line);
        if (match)
          resolve({
            api: match[1] as string,
            mqtt: match[2] as string,
            dashboard: match[3] as string,
          });
      });
    }
    exited.then((code) =>
      reject(new Error(`the stack exited with ${code} before READY:\n${output.join('\n')}`)),
    );
    setTimeout(
      () => reject(new Error(`no READY within 120 s:\n${output.join('\n')}`)),
      120_000,
    ).unref();
  });
  const stack: RunningStack = {
    child,
    ready: { api: '', mqtt: '', dashboard: '' },
    output,
    exited,
  };
  current = stack;
  stack.ready = await ready;
  return stack;
}

/** Ctrl-C: SIGINT to the whole foreground process group. */
async function interrupt(
  stack: RunningStack,
): Promise<{ code: number | null; leftovers: number[] }> {
  const pid = stack.child.pid as number;
  const started = [pid, ...descendantsOf(pid)];
  process.kill(-pid, 'SIGINT');
  const code = await stack.exited;
  current = undefined;
  await waitUntil(
    'every process of the stack to exit',
    async () => started.every((p) => !isAlive(p)),
    {
      timeoutMs: 5000,
    },
  ).catch(() => {});
  return { code, leftovers: started.filter(isAlive) };
}

/** The fields of API answers this test reads. */
interface ApiBody {
  token?: string;
  device?: Record<string, unknown>;
  credentials?: { client_id: string; username: string; password: string };
  [field: string]: unknown;
}

async function api(
  stack: RunningStack,
  method: string,
  route: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: ApiBody }> {
  const response = await fetch(`${stack.ready.api}${route}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  data = await temporaryDataDir('local-stack');
  ports = { api: await freePort(), mqtt: await freePort(), dashboard: await freePort() };
});

/** Stops a stack a failed assertion left running, so its ports and processes go too. */
async function forceStop(stack: RunningStack): Promise<void> {
  const pid = stack.child.pid as number;
  const started = [pid, ...descendantsOf(pid)];
  if (stack.child.exitCode === null) process.kill(-pid, 'SIGINT');
  await Promise.race([stack.exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  for (const leftover of started.filter(isAlive)) process.kill(leftover, 'SIGKILL');
}

afterEach(async () => {
  const left = current;
  current = undefined;
  if (left) await forceStop(left);
});

afterAll(async () => {
  await data?.remove();
});

describe('the local stack (npm start)', () => {
  const account = {
    tenant_name: 'Local Acme',
    username: 'local-owner',
    email: 'owner@local.example',
    password: 'correct horse battery staple',
  };
  const device = { device_id: 'esp32-local-1', name: 'Boiler room', type: 'esp32' };
  let credentials: { client_id: string; username: string; password: string };

  it('starts, serves the API, registers a device that can publish, and stops on Ctrl-C', async () => {
    const stack = await startStack();
    expect(stack.ready).toEqual({
      api: `http://127.0.0.1:${ports.api}`,
      mqtt: `mqtt://127.0.0.1:${ports.mqtt}`,
      dashboard: `http://127.0.0.1:${ports.dashboard}`,
    });
    expect(stack.output.filter((line) => line.startsWith('READY'))).toHaveLength(1);

    const registered = await api(stack, 'POST', '/api/auth/register', account);
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({
      token: expect.any(String),
      user: { username: account.username },
      tenant: { name: account.tenant_name },
    });

    const login = await api(stack, 'POST', '/api/auth/login', {
      username: account.username,
      password: account.password,
    });
    expect(login.status).toBe(200);
    const token = login.body.token;

    const created = await api(stack, 'POST', '/api/devices', device, token);
    expect(created.status).toBe(201);
    expect(created.body.device).toMatchObject({ device_id: device.device_id, name: device.name });
    credentials = created.body.credentials as typeof credentials;
    expect(credentials).toMatchObject({
      client_id: device.device_id,
      username: device.device_id,
      password: expect.any(String),
    });

    const listed = await api(stack, 'GET', '/api/devices', undefined, token);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(device.device_id);

    // The platform account the stack created hears what the device publishes.
    const stackInfo = JSON.parse(readFileSync(path.join(data.dir, 'stack.json'), 'utf8'));
    const platform = await mqtt.connectAsync(stack.ready.mqtt, {
      ...stackInfo.mqttPlatform,
      reconnectPeriod: 0,
    });
    const heard = new Promise<string>((resolve) =>
      platform.on('message', (topic, payload) => resolve(`${topic} ${payload}`)),
    );
    await platform.subscribeAsync(`devices/${device.device_id}/#`, { qos: 1 });
    const esp32 = await mqtt.connectAsync(stack.ready.mqtt, {
      clientId: credentials.client_id,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 0,
    });
    await esp32.publishAsync(`devices/${device.device_id}/status`, 'online', { qos: 1 });
    expect(await heard).toBe(`devices/${device.device_id}/status online`);
    await esp32.endAsync();
    await platform.endAsync();

    const dashboard = await fetch(stack.ready.dashboard);
    expect(dashboard.status).toBe(200);

    const { code, leftovers } = await interrupt(stack);
    expect(code).toBe(0);
    expect(leftovers).toEqual([]);
    expect(existsSync(path.join(data.dir, 'stack.json'))).toBe(false);
    for (const port of [ports.api, ports.mqtt, ports.dashboard]) {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    }
  }, 240_000);

  it('keeps accounts, devices and device credentials across a restart', async () => {
    expect(credentials).toBeDefined();
    const stack = await startStack();

    const login = await api(stack, 'POST', '/api/auth/login', {
      username: account.email,
      password: account.password,
    });
    expect(login.status).toBe(200);
    const listed = await api(stack, 'GET', '/api/devices', undefined, login.body.token);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(device.device_id);

    const esp32 = await mqtt.connectAsync(stack.ready.mqtt, {
      clientId: credentials.client_id,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 0,
    });
    await esp32.endAsync();

    const { code, leftovers } = await interrupt(stack);
    expect(code).toBe(0);
    expect(leftovers).toEqual([]);
  }, 240_000);

  it('stops everything and exits non-zero when one of its servers dies', async () => {
    const stack = await startStack();
    const pid = stack.child.pid as number;
    const started = [pid, ...descendantsOf(pid)];
    const broker = started.find((p) => commandOf(p).includes('mosquitto'));
    expect(broker).toBeDefined();
    process.kill(broker as number, 'SIGKILL');

    expect(await stack.exited).not.toBe(0);
    current = undefined;
    expect(stack.output.join('\n')).toMatch(/mosquitto stopped unexpectedly: .*killed by SIGKILL/);
    await waitUntil(
      'every process of the stack to exit',
      async () => started.every((p) => !isAlive(p)),
      {
        timeoutMs: 10_000,
      },
    );
  }, 240_000);
});
