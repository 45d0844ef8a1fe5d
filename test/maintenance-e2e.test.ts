import mqtt from 'mqtt';
import pg from 'pg';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import type { CmapssUnit } from '../bench/cmapss.ts';
import { setPlan } from '../infra/admin.ts';
import { invokeFunction } from '../local/iot-rules/lambda.ts';
import { type LocalStack, startLocalStack } from './support/local-stack.ts';
import { CMAPSS_FEATURES, cmapssEngines } from './support/rul-fleet.ts';
import { temporaryDataDir } from './support/servers.ts';
import { unique } from './support/stack-env.ts';

/**
 * Predictive maintenance through the real local stack, as the platform runs it: C-MAPSS-shaped
 * engines (generated here, in the benchmark's text format) are replayed through MQTT as
 * devices, one telemetry message per cycle with cycles mapped to timestamps a minute apart;
 * their failures are recorded through the API; the scheduled trainer (invoked as
 * serverless-offline invokes it) trains the fleet model asked for; then engines still running
 * are replayed and the health route answers with an RUL whose 10-90% interval holds the true
 * remaining life for most of them. The dashboard shows it and orders the devices by it.
 */
const data = await temporaryDataDir('maintenance-e2e');
let stack: LocalStack | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await data.remove();
});

const CYCLE_MS = 60_000;

it('replays engines through MQTT, trains on their recorded failures and predicts honest RUL intervals, shown on the dashboard', async () => {
  stack = await startLocalStack({}, data.dir);
  const s = stack;
  const name = unique('pm');
  const password = 'maintenance-e2e-password';
  const registered = await s.request('POST', '/api/auth/register', {
    tenant_name: unique('Engines'),
    username: name,
    email: `${name}@example.com`,
    password,
  });
  const token = registered.body.token;
  const details = await s.details();
  const operator = new pg.Client({ connectionString: details.databaseAdminUrl });
  await operator.connect();
  await setPlan(operator, String(registered.body.tenant.id), 'professional').finally(() =>
    operator.end(),
  );

  /** Registers the engine as a device and publishes its cycles, the last one at `endMs`. */
  const replay = async (engine: CmapssUnit, cycles: number, endMs: number) => {
    const created = await s.request(
      'POST',
      '/api/devices',
      {
        device_id: unique(`ENGINE-${engine.unit}`),
        name: `Engine ${engine.unit}`,
        type: 'turbofan',
      },
      token,
    );
    const { username, password: secret, client_id } = created.body.credentials;
    const device = await mqtt.connectAsync(s.mqtt, {
      username,
      password: secret,
      clientId: client_id,
      reconnectPeriod: 0,
    });
    const deviceId = created.body.device.device_id;
    await device.publishAsync(
      `devices/${deviceId}/discovery`,
      JSON.stringify({
        type: 'turbofan',
        entities: CMAPSS_FEATURES.map((entity_id) => ({
          entity_id,
          entity_type: 'sensor',
          name: entity_id,
        })),
      }),
      { qos: 1, retain: true },
    );
    const times = Array.from({ length: cycles }, (_, i) => endMs - (cycles - 1 - i) * CYCLE_MS);
    for (let i = 0; i < cycles; i++) {
      const row = engine.rows[i] as number[];
      await device.publishAsync(
        `devices/${deviceId}/telemetry`,
        JSON.stringify({
          timestamp: (times[i] as number) / 1000,
          values: Object.fromEntries(CMAPSS_FEATURES.map((feature, f) => [feature, row[f]])),
        }),
        { qos: 1 },
      );
    }
    await device.endAsync();
    return { id: created.body.device.id as number, lastMs: times[cycles - 1] as number };
  };
  /** Until the engine's last cycle is stored (a device's messages are ingested in order). */
  const stored = (device: { id: number; lastMs: number }) =>
    expect
      .poll(
        async () => {
          const detail = await s.request('GET', `/api/devices/${device.id}`, undefined, token);
          const sensor = detail.body.entities?.find(
            (e: { entity_id: string }) => e.entity_id === 'sensor_2',
          );
          return sensor?.latest ? Date.parse(sensor.latest.time) : 0;
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe(device.lastMs);

  const end = Date.now() - 5 * CYCLE_MS;
  for (const engine of cmapssEngines(8, 41)) {
    const device = await replay(engine, engine.rows.length, end);
    await stored(device);
    const failure = await s.request(
      'POST',
      `/api/devices/${device.id}/maintenance`,
      { kind: 'failure', time: new Date(device.lastMs + 30_000).toISOString(), note: 'replayed' },
      token,
    );
    expect(failure.status).toBe(201);
  }

  const asked = await s.request(
    'POST',
    '/api/maintenance/models',
    { device_type: 'turbofan', step_unit: 'cycles' },
    token,
  );
  expect(asked.status).toBe(202);
  const invoked = await invokeFunction({
    lambdaEndpoint: details.lambdaEndpoint,
    functionName: 'easysmart-local-maintenance-training',
    payload: { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} },
    timeoutMs: 240_000,
  });
  expect(invoked.ok, JSON.stringify(invoked)).toBe(true);
  const models = await s.request('GET', '/api/maintenance/models', undefined, token);
  expect(models.body.models[0]).toMatchObject({
    device_type: 'turbofan',
    histories: 8,
    status: 'active',
  });

  // Engines still running, each cut off part-way through its life as C-MAPSS test units are.
  const cuts = [0.45, 0.6, 0.75, 0.9];
  const running: Array<{ id: number; trueRul: number }> = [];
  for (const [u, engine] of cmapssEngines(cuts.length, 97).entries()) {
    const seen = Math.floor(engine.rows.length * (cuts[u] as number));
    const device = await replay(engine, seen, end);
    await stored(device);
    running.push({ id: device.id, trueRul: engine.rows.length - seen });
  }
  let inside = 0;
  const predicted: number[] = [];
  for (const engine of running) {
    const health = await s.request('GET', `/api/devices/${engine.id}/health`, undefined, token);
    expect(health.status).toBe(200);
    const { rul } = health.body;
    expect(rul).toMatchObject({ unit: 'cycles', model_version: models.body.models[0].version });
    predicted.push(rul.value);
    if (engine.trueRul >= rul.low && engine.trueRul <= rul.high) inside += 1;
  }
  expect(inside, JSON.stringify({ running, predicted })).toBeGreaterThanOrEqual(3);

  // The dashboard: the device page's health card, and the list ordered by remaining life.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${s.dashboard}/`);
  await page.getByLabel('Username or email').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const soonest = running[predicted.indexOf(Math.min(...predicted))] as { id: number };
  await page.goto(`${s.dashboard}/#/devices/${soonest.id}`);
  const card = page.locator('[data-rul] dd');
  await card.waitFor({ timeout: 30_000 });
  await expect.poll(() => card.textContent(), { timeout: 30_000 }).toMatch(/\d+ cycles/);
  await page.goto(`${s.dashboard}/#/devices`);
  await page.getByLabel('Order').selectOption('rul');
  const first = page.locator('.device-card').first();
  await expect
    .poll(() => first.locator('h2 a').getAttribute('href'), { timeout: 30_000 })
    .toBe(`#/devices/${soonest.id}`);
}, 600_000);
