import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { setPlan } from '../infra/admin.ts';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { pgBin, startDebianPostgres } from './support/debian-postgres.ts';
import {
  connectAsDevice,
  type LocalStack,
  registerOnStack,
  repoRoot,
  signUpOnStack,
  startLocalStack,
  tsxCli,
} from './support/local-stack.ts';
import { scoreAnomaliesOnStack } from './support/scoring.ts';
import { temporaryDataDir } from './support/servers.ts';

/**
 * `npm run backup` of a running stack, restored into fresh servers (a new PostgreSQL
 * cluster, a new InfluxDB, a new data directory whose Mosquitto starts from the restored
 * credentials): the existing device connects with its original password, a token issued
 * before the backup still verifies, and the model trained before it still scores.
 */
const MINUTE = 60_000;
const data = await temporaryDataDir('backup-restore');
const stops: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await data.remove();
});

function backup(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [tsxCli, 'infra/backup.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_ADMIN_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`backup.ts exited ${code}: ${output}`)),
    ),
  );
}

async function rpcAddress(influxDir: string): Promise<string> {
  const conf = await readFile(path.join(influxDir, 'influxdb.conf'), 'utf8');
  return /^bind-address = "([^"]+)"/m.exec(conf)?.[1] as string;
}

it('a backup restored into empty servers: the device reconnects, an old token verifies, a model scores', async () => {
  const before = await startDebianPostgres(path.join(data.dir, 'pg-before'), ['easysmart']);
  stops.push(before.stop);
  const first = path.join(data.dir, 'stack-before');
  let stack: LocalStack = await startLocalStack({ DATABASE_URL: `${before.url}/easysmart` }, first);
  stops.push(() => stack.stop());

  // The stack's database is this test's own cluster: the operator works on it directly.
  const { token, tenantId, username } = await signUpOnStack(stack);
  const operator = new pg.Client({ connectionString: `${before.url}/easysmart` });
  await operator.connect();
  await setPlan(operator, String(tenantId), 'industrial').finally(() => operator.end());
  const { id, deviceId, credentials } = await registerOnStack(stack, token, {
    name: 'Chiller',
    type: 'chiller',
  });
  const device = await connectAsDevice(stack.mqtt, credentials);
  await device.publishAsync(
    `devices/${deviceId}/discovery`,
    JSON.stringify({ entities: [{ entity_id: 'flow', entity_type: 'sensor', name: 'Flow' }] }),
    { qos: 1, retain: true },
  );
  const now = Math.floor(Date.now() / MINUTE) * MINUTE;
  const history = Array.from({ length: 400 }, (_, n) => ({
    timestamp: (now - (400 - n) * MINUTE) / 1000,
    values: { flow: 10 + Math.sin(n / 20) + 0.01 * (n % 7) },
  }));
  await device.publishAsync(`devices/${deviceId}/telemetry`, JSON.stringify(history), { qos: 1 });
  const range = `from=${new Date(now - 401 * MINUTE).toISOString()}&to=${new Date(now).toISOString()}`;
  await expect
    .poll(
      async () =>
        (await stack.request('GET', `/api/devices/${id}/telemetry?${range}`, undefined, token)).body
          .series?.[0]?.points.length,
      { timeout: 30_000 },
    )
    .toBe(400);
  const trained = await stack.request(
    'POST',
    '/api/ml/models',
    { device_id: id, entity_id: 'flow' },
    token,
  );
  expect(trained.status).toBe(201);
  device.end(true);

  const backupDir = path.join(data.dir, 'backup');
  const taken = await backup([
    'backup',
    '--to',
    backupDir,
    '--postgres',
    `${before.url}/easysmart`,
    '--pg-bin',
    pgBin,
    '--influx-rpc',
    await rpcAddress(path.join(first, 'influxdb')),
    '--stack',
    first,
  ]);
  expect(taken).toContain(
    'files: dynsec, devicePasswords, brokerAdminPassword, brokerPlatformPassword, jwtKey, models',
  );
  expect((await stack.stop()).code).toBe(0);
  await before.stop();

  // Fresh servers, restored, then a stack on them with the restored data directory.
  const after = await startDebianPostgres(path.join(data.dir, 'pg-after'), ['easysmart']);
  stops.push(after.stop);
  const influxDir = path.join(data.dir, 'influx-after');
  const influx = await startInfluxdb({ dataDir: influxDir });
  stops.push(influx.stop);
  const second = path.join(data.dir, 'stack-after');
  await backup([
    'restore',
    '--from',
    backupDir,
    '--postgres',
    `${after.url}/easysmart`,
    '--pg-bin',
    pgBin,
    '--influx-rpc',
    await rpcAddress(influxDir),
    '--influx-url',
    influx.url,
    '--stack',
    second,
  ]);
  stack = await startLocalStack(
    { DATABASE_URL: `${after.url}/easysmart`, INFLUX_URL: influx.url },
    second,
  );

  const me = await stack.request('GET', '/api/auth/me', undefined, token);
  expect(me.status).toBe(200);
  expect(me.body.user.username).toBe(username);
  const again = await connectAsDevice(stack.mqtt, credentials);
  const later = Date.now();
  await again.publishAsync(
    `devices/${deviceId}/flow/state`,
    JSON.stringify({ value: 10.4, timestamp: later / 1000 }),
    { qos: 1 },
  );
  const predictions = () =>
    stack.request(
      'GET',
      `/api/devices/${id}/predictions?from=${new Date(later - 1000).toISOString()}&to=${new Date(later + MINUTE).toISOString()}`,
      undefined,
      token,
    );
  await expect
    .poll(
      async () => {
        // The scheduled scoring pass, run here rather than waited for.
        await scoreAnomaliesOnStack(stack);
        return (await predictions()).body.predictions?.length;
      },
      { timeout: 30_000 },
    )
    .toBe(1);
  expect((await predictions()).body.predictions[0]).toMatchObject({
    detector: 'advanced',
    model_version: trained.body.model.version,
  });
  again.end(true);
}, 600_000);
