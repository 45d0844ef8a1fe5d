import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countStored,
  fleetDevices,
  fleetPresence,
  type RegisteredFleetDevice,
  registerInBulk,
  registerOneByOne,
  sensorEntities,
} from '../local/fleet-platform.ts';
import { buildFleet, type RunningFleet, startFleet } from '../local/fleet-process.ts';
import { PlatformClient } from '../local/platform-client.ts';
import { waitUntil } from '../local/services/process.ts';
import { type LocalStack, signUpOnStack, startLocalStack } from './support/local-stack.ts';
import { onBroker, privateMosquitto } from './support/servers.ts';

/**
 * The fleet against the local stack, with a broker of the test's own so that it can be
 * restarted under the devices while the rest of the platform keeps running:
 * - `npm run fleet` finds the stack through its stack.json, signs up a tenant, lifts its
 *   plan, registers devices and runs them in a fleet process, and reports what they sent
 *   and what the platform stored;
 * - 500 devices in two processes (as 10,000 run on a machine with 20,000 descriptors) come
 *   back after a broker restart by their own backoff, and the platform shows every one of
 *   them online again and stores what they sent; the processes' counters add up.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsxCli = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

let broker: Awaited<ReturnType<typeof privateMosquitto>>;
let stack: LocalStack;

beforeAll(async () => {
  broker = await privateMosquitto();
  [stack] = await Promise.all([startLocalStack(onBroker(broker)), buildFleet()]);
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await broker?.dispose();
}, 60_000);

function runFleet(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsxCli, 'local/fleet.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, LOCAL_DATA_DIR: stack.dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run fleet', () => {
  it('runs 5 devices in one process for a few seconds and reports sent and stored readings', async () => {
    const result = await runFleet([
      '--count',
      '5',
      '--duration-s',
      '8',
      '--interval-ms',
      '500',
      '--json',
    ]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1) as string);
    expect(summary).toMatchObject({
      requested: 5,
      registered: 5,
      connected: 5,
      sensors: 10,
      dropped: 0,
      exited_early: 0,
      interrupted: false,
    });
    expect(summary.sent).toBeGreaterThan(0);
    // Every acknowledged reading is stored once. Readings still buffered at the stop may have
    // been published already (their PUBACK not yet back), so they may be stored too.
    expect(summary.stored).toBeGreaterThanOrEqual(summary.sent);
    expect(summary.stored).toBeLessThanOrEqual(summary.sent + summary.buffered_at_stop);
    expect(result.stdout).toMatch(/registered\s+5 .* in [\d.]+ s/);
    expect(result.stdout).toMatch(/connected\s+5\/5/);
    expect(result.stderr).toContain('plan free -> industrial');

    // The tenant it made is real: its devices are listed with the API, with the fleet
    // device's ten sensors announced by its retained discovery.
    const login = await stack.request('POST', '/api/auth/login', {
      username: summary.tenant.username,
      password: /sign in as \S+ \/ (\S+)/.exec(result.stderr)?.[1],
    });
    expect(login.status).toBe(200);
    const listed = await stack.request('GET', '/api/devices', undefined, login.body.token);
    expect(listed.body.devices).toHaveLength(5);
    const detail = await stack.request(
      'GET',
      `/api/devices/${listed.body.devices[0].id}`,
      undefined,
      login.body.token,
    );
    const sensorIds = (detail.body.entities as Array<{ entity_id: string; entity_type: string }>)
      .filter((entity) => entity.entity_type === 'sensor')
      .map((entity) => entity.entity_id);
    expect(sensorIds.sort()).toEqual(sensorEntities(10).sort());
  }, 120_000);

  it('refuses a bad count with a usage message', async () => {
    const result = await runFleet(['--count', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--count expects a whole number');
  });
});

describe('a broker restart under 500 devices in two processes', () => {
  let fleet: RunningFleet | undefined;
  afterAll(async () => {
    await fleet?.stop();
  });

  it('brings every device back online by its own backoff and stores what they sent', async () => {
    const owner = await signUpOnStack(stack, { plan: 'industrial' });
    const client = new PlatformClient(stack.api);
    client.token = owner.token;
    const prefix = `storm-${owner.tenantId}`;
    const inputs = fleetDevices(prefix, 1, 500, 'storm test');
    // In bulk requests of 100, each well inside API Gateway's 29 s on a loaded machine.
    const devices: RegisteredFleetDevice[] = [];
    for (let i = 0; i < inputs.length; i += 100) {
      const chunk = inputs.slice(i, i + 100);
      devices.push(
        ...((await registerInBulk(client, chunk)) ??
          (await registerOneByOne(client, chunk, { concurrency: 8 }))),
      );
    }
    expect(devices).toHaveLength(500);
    const overview = await stack.request('GET', '/api/tenant', undefined, owner.token);
    const retentionPolicy = overview.body.plan.influx_retention_policy as string;

    const database = new pg.Client({
      connectionString: (await stack.details()).databaseAdminUrl,
    });
    await database.connect();
    try {
      const runStarted = Date.now();
      fleet = await startFleet({
        devices,
        mqttUrl: broker.url,
        // 1,000 readings a second: the restart, not ingestion's throughput, is what is tested.
        intervalMs: 5000,
        sensors: 10,
        statsMs: 250,
        // The firmware's backoff with full jitter, bounded lower than the ESP32's 60 s so
        // the test stays short; the bound is a setting, the logic is the device's.
        backoffBaseMs: 250,
        backoffMaxMs: 4000,
        buffer: 1000,
        devicesPerProcess: 250,
      });
      const running = fleet;
      expect(running.processes).toBe(2);
      await running.until((stats) => stats.online === 500, 60_000);
      await waitUntil(
        'the platform to show 500 devices online',
        async () =>
          (await fleetPresence(database, owner.tenantId, prefix, runStarted)).onlineSince === 500,
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      // The power-up storm is behind the pipeline once a reading of every device taken
      // after it has been stored: only then is the restart's own storm measured.
      const settledFrom = Date.now();
      await waitUntil(
        'a reading of every device after the power-up to be stored',
        async () =>
          (await fleetPresence(database, owner.tenantId, prefix, settledFrom)).onlineSince === 500,
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      const before = running.latest?.connects ?? 0;

      await broker.stop();
      await running.until((stats) => stats.online === 0, 30_000);
      await running.until((stats) => stats.connect_failures > 0, 30_000);
      // Readings taken while the broker is down wait in the devices' buffers.
      await running.until((stats) => stats.buffered >= 500 * 10, 30_000);
      const restartedAt = Date.now();
      await broker.start();

      const back = await running.until((stats) => stats.online === 500, 90_000);
      expect(back.connects).toBeGreaterThanOrEqual(before + 500);
      await waitUntil(
        'the platform to show all 500 online again',
        async () =>
          (await fleetPresence(database, owner.tenantId, prefix, restartedAt)).onlineSince === 500,
        { timeoutMs: 180_000, intervalMs: 500 },
      ).catch(async (error: Error) => {
        const presence = await fleetPresence(database, owner.tenantId, prefix, restartedAt);
        throw new Error(
          `${error.message}: ${JSON.stringify(presence)}\n${stack.output.slice(-40).join('\n')}`,
        );
      });
      // The backlog drains: every device's buffer empties (a few readings of the current
      // round may be in flight).
      await running.until((stats) => stats.buffered <= 500 * 10, 60_000);

      const last = await running.stop();
      fleet = undefined;
      expect(last?.dropped).toBe(0);
      const sent = last?.sent ?? 0;
      let stored = 0;
      await waitUntil(
        'every acknowledged reading to be stored',
        async () => {
          stored = await countStored(
            {
              influxUrl: (await stack.details()).influxUrl,
              client,
              concurrency: 4,
            },
            { id: owner.tenantId, retentionPolicy },
            devices,
            sensorEntities(10),
            runStarted - 60_000,
            Date.now() + 60_000,
          );
          return stored >= sent;
        },
        { timeoutMs: 90_000, intervalMs: 1000 },
      ).catch(() => {});
      expect(stored).toBeGreaterThanOrEqual(sent);
      expect(stored).toBeLessThanOrEqual(sent + (last?.buffered ?? 0));
    } finally {
      await database.end();
    }
  }, 720_000);
});
