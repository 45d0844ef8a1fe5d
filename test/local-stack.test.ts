import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnManaged } from '../local/services/process.ts';
import { type LocalStack, START_ARGUMENTS, startLocalStack } from './support/local-stack.ts';
import { commandOf, descendantsOf, isAlive } from './support/processes.ts';
import { freePort, temporaryDataDir, waitUntil } from './support/servers.ts';

let data: Awaited<ReturnType<typeof temporaryDataDir>>;
let ports: { api: number; mqtt: number; dashboard: number };
let current: LocalStack | undefined;

/** `npm start` on this test's fixed ports and data directory, as a terminal job. */
async function startStack(): Promise<LocalStack> {
  current = await startLocalStack(
    {
      API_PORT: String(ports.api),
      MQTT_PORT: String(ports.mqtt),
      DASHBOARD_PORT: String(ports.dashboard),
      LOG_LEVEL: 'info',
    },
    data.dir,
  );
  return current;
}

beforeAll(async () => {
  data = await temporaryDataDir('local-stack');
  ports = { api: await freePort(), mqtt: await freePort(), dashboard: await freePort() };
});

// Stops a stack a failed assertion left running, so its ports and processes go too.
afterEach(async () => {
  const left = current;
  current = undefined;
  await left?.stop();
});

afterAll(async () => {
  await data?.remove();
});

describe('the local stack (npm start)', () => {
  it('is started by these tests exactly as npm start starts it', () => {
    const pkg = JSON.parse(
      readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8'),
    ) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`tsx ${START_ARGUMENTS.join(' ')}`);
    // The Docker image runs it too, without npm in between (signals go straight to it).
    const entrypoint = readFileSync(
      path.join(import.meta.dirname, '..', 'docker', 'app-entrypoint.sh'),
      'utf8',
    );
    expect(entrypoint).toContain(`\nexec npx tsx ${START_ARGUMENTS.join(' ')}\n`);
  });

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
    expect({ api: stack.api, mqtt: stack.mqtt, dashboard: stack.dashboard }).toEqual({
      api: `http://127.0.0.1:${ports.api}`,
      mqtt: `mqtt://127.0.0.1:${ports.mqtt}`,
      dashboard: `http://127.0.0.1:${ports.dashboard}`,
    });
    expect(stack.output.filter((line) => line.startsWith('READY'))).toHaveLength(1);

    const registered = await stack.request('POST', '/api/auth/register', account);
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({
      token: expect.any(String),
      user: { username: account.username },
      tenant: { name: account.tenant_name },
    });

    const login = await stack.request('POST', '/api/auth/login', {
      username: account.username,
      password: account.password,
    });
    expect(login.status).toBe(200);
    const token = login.body.token;

    const created = await stack.request('POST', '/api/devices', device, token);
    expect(created.status).toBe(201);
    expect(created.body.device).toMatchObject({ device_id: device.device_id, name: device.name });
    credentials = created.body.credentials as typeof credentials;
    expect(credentials).toMatchObject({
      client_id: device.device_id,
      username: device.device_id,
      password: expect.any(String),
    });

    const listed = await stack.request('GET', '/api/devices', undefined, token);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(device.device_id);

    // The platform account the stack created hears what the device publishes.
    const stackInfo = await stack.details();
    const platform = await mqtt.connectAsync(stack.mqtt, {
      ...stackInfo.mqttPlatform,
      reconnectPeriod: 0,
    });
    const heard = new Promise<string>((resolve) =>
      platform.on('message', (topic, payload) => resolve(`${topic} ${payload}`)),
    );
    await platform.subscribeAsync(`devices/${device.device_id}/#`, { qos: 1 });
    const esp32 = await mqtt.connectAsync(stack.mqtt, {
      clientId: credentials.client_id,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 0,
    });
    await esp32.publishAsync(`devices/${device.device_id}/status`, 'online', { qos: 1 });
    expect(await heard).toBe(`devices/${device.device_id}/status online`);
    await esp32.endAsync();
    await platform.endAsync();

    const dashboard = await fetch(stack.dashboard);
    expect(dashboard.status).toBe(200);

    current = undefined;
    const { code, leftovers } = await stack.stop();
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

    const login = await stack.request('POST', '/api/auth/login', {
      username: account.email,
      password: account.password,
    });
    expect(login.status).toBe(200);
    const listed = await stack.request('GET', '/api/devices', undefined, login.body.token);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(device.device_id);

    const esp32 = await mqtt.connectAsync(stack.mqtt, {
      clientId: credentials.client_id,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 0,
    });
    await esp32.endAsync();

    current = undefined;
    const { code, leftovers } = await stack.stop();
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

describe('the local stack killed outright (kill -9)', () => {
  it('takes its servers with it, and the next start stops one that was left and comes up', async () => {
    const stack = await startStack();
    const supervisor = (await stack.details()).pid;
    const servers = descendantsOf(supervisor);
    const broker = servers.find((p) => commandOf(p).startsWith('/usr/sbin/mosquitto'));
    expect(broker).toBeDefined();
    // A server that cannot act on the kernel's signal (stopped, hung) outlives the stack; the
    // next start must clean it up itself.
    process.kill(broker as number, 'SIGSTOP');
    process.kill(supervisor, 'SIGKILL');
    await stack.exited;
    current = undefined;
    await waitUntil(
      'every server but the stopped broker to exit',
      async () => servers.every((p) => p === broker || !isAlive(p)),
      { timeoutMs: 30_000 },
    );
    expect(isAlive(broker as number)).toBe(true);

    const again = await startStack();
    expect(again.output.join('\n')).toContain(
      `stopped the mosquitto server (pid ${broker}) a killed stack left running`,
    );
    expect(isAlive(broker as number)).toBe(false);
    current = undefined;
    const { code, leftovers } = await again.stop();
    expect(code).toBe(0);
    expect(leftovers).toEqual([]);
  }, 240_000);
});

describe('ports for the local servers', () => {
  it('are free, each handed out once, and outside the range of outgoing connections', async () => {
    // Outgoing connections (the tests make thousands side by side) take ports from the
    // ephemeral range; a port chosen there could be taken before its server binds it.
    const range = existsSync('/proc/sys/net/ipv4/ip_local_port_range')
      ? Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0])
      : 32_768;
    // Many, one after another, as stacks starting side by side ask, each port staying unbound
    // until its server starts: each is leased to one caller. (Drawn at random from some
    // 12,000 ports, 300 would repeat one about 97 times in 100.)
    const many: number[] = [];
    for (let index = 0; index < 300; index++) many.push(await freePort());
    expect(new Set(many).size).toBe(many.length);
    const ports = many.slice(0, 20);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(range);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('managed server processes', () => {
  it('log what the process writes after it exited (a child it left holds its output open)', async () => {
    const data = await temporaryDataDir('managed');
    try {
      const logFile = path.join(data.dir, 'server.log');
      // `exit` comes when sh exits; its background child writes to the same pipe later. The
      // log, closed at `exit`, had that write fail with an uncaught 'write after end'.
      const server = spawnManaged({
        name: 'sh',
        command: 'sh',
        args: ['-c', '(sleep 0.3; echo late line) & echo first line'],
        logFile,
      });
      // sh exits by itself, once it has started the background child.
      await server.unexpectedExit;
      await waitUntil(
        'the late line in the log',
        async () => readFileSync(logFile, 'utf8').includes('late line'),
        { timeoutMs: 5000, intervalMs: 50 },
      );
      expect(readFileSync(logFile, 'utf8')).toBe('first line\nlate line\n');
    } finally {
      await data.remove();
    }
  });
});
