import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import { type CmapssUnit, parseCmapss, parseCmapssTruth } from '../bench/cmapss.ts';
import { datasetBesideCheckout } from '../bench/datasets.ts';
import { setPlan } from '../infra/admin.ts';
import { invokeFunction } from '../local/iot-rules/lambda.ts';
import { type LocalStack, startLocalStack } from './support/local-stack.ts';
import { CMAPSS_FEATURES, cmapssEngines, gaussian, seeded } from './support/rul-fleet.ts';
import { temporaryDataDir } from './support/servers.ts';
import { unique } from './support/stack-env.ts';

/**
 * Predictive maintenance through the real local stack, as the platform runs it: C-MAPSS
 * engines are replayed through MQTT as devices, one telemetry message per cycle with cycles
 * mapped to timestamps a minute apart; their failures are recorded through the API; the
 * scheduled trainer (invoked as serverless-offline invokes it) trains the fleet model asked
 * for; then engines still running are replayed and the health route answers with an RUL whose
 * 10-90% interval holds the true remaining life for most of them. The dashboard shows it,
 * orders the devices by it, and draws a limit's forecast crossing on a sensor's chart.
 *
 * The engines are NASA's C-MAPSS FD001 (the first 8 training engines, the first 10 test
 * engines with their true RUL) from the folder CMAPSS_DIR names, or from
 * ../shared/datasets/cmapss beside the checkout, where the benchmark looks too; without the
 * files (NASA's data is not part of the repository), engines generated in the same text
 * format (test/support/rul-fleet.ts). The test's name says which it replayed.
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
const HOUR_MS = 60 * CYCLE_MS;

interface Engines {
  source: string;
  training: CmapssUnit[];
  /** Each engine's first `seen` cycles are replayed; `trueRul` cycles were left in it. */
  running: Array<{ engine: CmapssUnit; seen: number; trueRul: number }>;
}

/** Where the benchmark looks for the NASA files too: beside the checkout. */
const BESIDE_CHECKOUT = datasetBesideCheckout('cmapss');

async function engines(): Promise<Engines> {
  const dir =
    process.env.CMAPSS_DIR ??
    (existsSync(path.join(BESIDE_CHECKOUT, 'train_FD001.txt')) ? BESIDE_CHECKOUT : undefined);
  if (dir) {
    const read = (file: string) => readFile(path.join(dir, file), 'utf8');
    const test = parseCmapss(await read('test_FD001.txt'));
    const truth = parseCmapssTruth(await read('RUL_FD001.txt'));
    return {
      source: 'NASA C-MAPSS FD001',
      training: parseCmapss(await read('train_FD001.txt')).slice(0, 8),
      running: test
        .slice(0, 10)
        .map((engine, u) => ({ engine, seen: engine.rows.length, trueRul: truth[u] as number })),
    };
  }
  // Engines cut off part-way through their lives, as C-MAPSS test units are.
  const cuts = [0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9];
  return {
    source: 'generated C-MAPSS-format',
    training: cmapssEngines(8, 41),
    running: cmapssEngines(cuts.length, 97).map((engine, u) => {
      const seen = Math.floor(engine.rows.length * (cuts[u] as number));
      return { engine, seen, trueRul: engine.rows.length - seen };
    }),
  };
}
const fleet = await engines();

it(`replays ${fleet.source} engines through MQTT, trains on their recorded failures and predicts honest RUL intervals, shown on the dashboard with a limit's forecast`, async () => {
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

  /** Registers a device and publishes its readings, one telemetry message per row. */
  const publish = async (
    device: { device_id: string; name: string; type: string },
    entities: readonly string[],
    rows: ReadonlyArray<readonly number[]>,
    times: readonly number[],
  ) => {
    const created = await s.request('POST', '/api/devices', device, token);
    const { username, password: secret, client_id } = created.body.credentials;
    const client = await mqtt.connectAsync(s.mqtt, {
      username,
      password: secret,
      clientId: client_id,
      reconnectPeriod: 0,
    });
    const deviceId = created.body.device.device_id;
    await client.publishAsync(
      `devices/${deviceId}/discovery`,
      JSON.stringify({
        type: device.type,
        entities: entities.map((entity_id) => ({
          entity_id,
          entity_type: 'sensor',
          name: entity_id,
        })),
      }),
      { qos: 1, retain: true },
    );
    for (const [i, row] of rows.entries()) {
      await client.publishAsync(
        `devices/${deviceId}/telemetry`,
        JSON.stringify({
          timestamp: (times[i] as number) / 1000,
          values: Object.fromEntries(entities.map((entity, e) => [entity, row[e]])),
        }),
        { qos: 1 },
      );
    }
    await client.endAsync();
    return { id: created.body.device.id as number, lastMs: times[times.length - 1] as number };
  };
  /** Registers the engine as a device and publishes its cycles, the last one at `endMs`. */
  const replay = (engine: CmapssUnit, cycles: number, endMs: number) =>
    publish(
      {
        device_id: unique(`ENGINE-${engine.unit}`),
        name: `Engine ${engine.unit}`,
        type: 'turbofan',
      },
      CMAPSS_FEATURES,
      engine.rows.slice(0, cycles),
      Array.from({ length: cycles }, (_, i) => endMs - (cycles - 1 - i) * CYCLE_MS),
    );
  /** Until the device's last reading is stored (a device's messages are ingested in order). */
  const stored = (device: { id: number; lastMs: number }, entityId = 'sensor_2') =>
    expect
      .poll(
        async () => {
          const detail = await s.request('GET', `/api/devices/${device.id}`, undefined, token);
          const sensor = detail.body.entities?.find(
            (e: { entity_id: string }) => e.entity_id === entityId,
          );
          return sensor?.latest ? Date.parse(sensor.latest.time) : 0;
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe(device.lastMs);

  const end = Date.now() - 5 * CYCLE_MS;
  for (const engine of fleet.training) {
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
    histories: fleet.training.length,
    status: 'active',
    metrics: { backend: 'wasm' },
  });

  const running: Array<{ id: number; trueRul: number }> = [];
  for (const { engine, seen, trueRul } of fleet.running) {
    const device = await replay(engine, seen, end);
    await stored(device);
    running.push({ id: device.id, trueRul });
  }
  let inside = 0;
  const predicted: Array<{ trueRul: number; value: number; low: number; high: number }> = [];
  for (const engine of running) {
    const health = await s.request('GET', `/api/devices/${engine.id}/health`, undefined, token);
    expect(health.status).toBe(200);
    const { rul } = health.body;
    expect(rul).toMatchObject({ unit: 'cycles', model_version: models.body.models[0].version });
    predicted.push({ trueRul: engine.trueRul, value: rul.value, low: rul.low, high: rul.high });
    if (engine.trueRul >= rul.low && engine.trueRul <= rul.high) inside += 1;
  }
  console.info(
    `${fleet.source}: the true RUL of ${inside} of ${running.length} running engines inside their 10-90% interval; held-back RMSE ${models.body.models[0].metrics.rmse.toFixed(2)} against the fleet-mean baseline's ${models.body.models[0].metrics.baselineRmse.toFixed(2)}`,
  );
  // Most units: more than half.
  expect(inside, JSON.stringify(predicted)).toBeGreaterThan(running.length / 2);

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
  const values = predicted.map((p) => p.value);
  const soonest = running[values.indexOf(Math.min(...values))] as { id: number };
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

  // Time to threshold: a pump whose oil temperature has risen 0.2 an hour for three days, a
  // reading every 10 minutes, and crosses 90 about 40 hours after its last reading.
  const slopePerMs = 0.2 / HOUR_MS;
  const lastMs = Date.now() - CYCLE_MS;
  const trueCrossing = lastMs + 40 * HOUR_MS;
  const noise = seeded(5);
  const times = Array.from({ length: 72 * 6 }, (_, i) => lastMs - (72 * 6 - 1 - i) * 10 * CYCLE_MS);
  const pump = await publish(
    { device_id: unique('PUMP'), name: 'Oil pump', type: 'pump' },
    ['oil_temperature'],
    times.map((time) => [90 - slopePerMs * (trueCrossing - time) + gaussian(noise) * 0.3]),
    times,
  );
  await stored(pump, 'oil_temperature');
  // The scheduled rollups fold the late readings into the hourly means the forecast reads.
  const rolled = await invokeFunction({
    lambdaEndpoint: details.lambdaEndpoint,
    functionName: 'easysmart-local-timeseries',
    payload: { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} },
    timeoutMs: 120_000,
  });
  expect(rolled.ok, JSON.stringify(rolled)).toBe(true);
  await page.goto(`${s.dashboard}/#/devices/${pump.id}`);
  const limitForm = page.getByRole('form', { name: 'Set a limit' });
  await limitForm.getByLabel('at most').fill('90');
  await limitForm.getByRole('button', { name: 'Set limit' }).click();
  const forecast = page.locator('table.thresholds tr[data-entity-id="oil_temperature"]');
  await expect.poll(() => forecast.textContent(), { timeout: 30_000 }).toMatch(/in (3\d|4\d) h/);
  const chart = page.locator('article[data-entity-id="oil_temperature"] .chart');
  const label = await chart.getAttribute('aria-label');
  const drawn = /limit at most 90, forecast to cross it at (\S+) \(10-90%: (\S+) to (\S+)\)/.exec(
    label ?? '',
  );
  expect(drawn, label ?? '').not.toBeNull();
  const [eta, low, high] = (drawn as RegExpExecArray).slice(1).map(Date.parse) as number[];
  expect(Math.abs((eta as number) - trueCrossing)).toBeLessThan(0.05 * (trueCrossing - lastMs));
  expect(low).toBeLessThanOrEqual(eta as number);
  expect(high).toBeGreaterThanOrEqual(eta as number);
}, 600_000);
