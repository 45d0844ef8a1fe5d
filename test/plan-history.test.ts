import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, it } from 'vitest';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
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
 * Plan changes through the real local stack and `npm run admin -- set-plan`: a professional
 * tenant's 2,000 readings over 40 days stay readable through every route after an upgrade,
 * a downgrade to free leaves exactly the last 30 days (deleted from every tier, not hidden),
 * and a reading published as soon as each change is committed lands in the new plan's tier.
 */
const DAY = 86_400_000;
const MINUTE = 60_000;
const data = await temporaryDataDir('plan-history');
let stack: LocalStack | undefined;

afterAll(async () => {
  await stack?.stop();
  await data.remove();
});

/** `npm run admin -- set-plan`; `onChanged` runs when it reports the plan changed. */
async function adminSetPlan(
  tenantId: number,
  plan: string,
  onChanged: () => void,
): Promise<string[]> {
  const { mqttUrl, mqttAdmin } = JSON.parse(
    await readFile(path.join(data.dir, 'stack.json'), 'utf8'),
  ) as { mqttUrl: string; mqttAdmin: { username: string; password: string } };
  const child = spawn(
    process.execPath,
    [tsxCli, 'infra/admin.ts', 'set-plan', String(tenantId), plan],
    {
      cwd: repoRoot,
      // The stack's own servers, found through its stack.json.
      env: {
        ...process.env,
        LOCAL_DATA_DIR: data.dir,
        DATABASE_ADMIN_URL: '',
        INFLUX_URL: '',
        MQTT_ADMIN_URL: mqttUrl,
        MQTT_ADMIN_USERNAME: mqttAdmin.username,
        MQTT_ADMIN_PASSWORD: mqttAdmin.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (/^tenant \d+ .*->/.test(line)) onChanged();
    });
  }
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0
        ? resolve(lines)
        : reject(new Error(`set-plan exited ${code}:\n${lines.join('\n')}`)),
    ),
  );
}

it('a plan change never hides a reading; a downgrade removes exactly what the new plan does not keep; the next reading lands in the new tier', async () => {
  stack = await startLocalStack({}, data.dir);
  const details = (await stack.details()) as Awaited<ReturnType<LocalStack['details']>> & {
    influxUrl: string;
  };
  const influx = new InfluxClient({ url: details.influxUrl, database: DEFAULT_DATABASE });
  const { token, tenantId } = await signUpOnStack(stack, { plan: 'professional' });
  const { id, deviceId, credentials } = await registerOnStack(stack, token, {
    name: 'Kiln',
    type: 'kiln',
  });
  const device = await connectAsDevice(stack.mqtt, credentials);
  await device.publishAsync(
    `devices/${deviceId}/discovery`,
    JSON.stringify({ entities: [{ entity_id: 'temp', entity_type: 'sensor', name: 'Temp' }] }),
    { qos: 1, retain: true },
  );

  // 2,000 readings over the last 40 days, none within 90 minutes of the 30-day boundary (a
  // downgrade keeps whole hours: from the first one inside the window).
  const now = Date.now();
  const boundary = now - 30 * DAY;
  const times: number[] = [];
  for (let n = 0; times.length < 2000; n++) {
    const time = Math.floor((now - 40 * DAY + n * 28.5 * MINUTE) / 1000) * 1000;
    if (Math.abs(time - boundary) > 90 * MINUTE) times.push(time);
  }
  expect(times.at(-1)).toBeLessThan(now - MINUTE);
  const value = (time: number) => 20 + 5 * Math.sin((2 * Math.PI * time) / DAY) + (time % 7) / 10;
  for (let start = 0; start < times.length; start += 200) {
    const batch = times.slice(start, start + 200).map((time) => ({
      timestamp: time / 1000,
      values: { temp: value(time) },
    }));
    await device.publishAsync(`devices/${deviceId}/telemetry`, JSON.stringify(batch), { qos: 1 });
  }

  const range = `from=${new Date(now - 41 * DAY).toISOString()}&to=${new Date(now + DAY).toISOString()}`;
  const get = async (query: string) =>
    (await stack!.request('GET', `/api/devices/${id}/${query}`, undefined, token)).body;
  const sum = (body: { series: Array<{ points: Array<{ value: number }> }> }) =>
    body.series[0]?.points.reduce((total, point) => total + point.value, 0) ?? 0;
  const hourlyCount = async () => sum(await get(`telemetry?${range}&every=1d&fn=count`));
  // Every raw point, a day at a time (a longer span would be served from a rollup).
  const rawCount = async () => {
    const days = await Promise.all(
      Array.from({ length: 42 }, async (_, day) => {
        const from = new Date(now - 41 * DAY + day * DAY).toISOString();
        const to = new Date(now - 40 * DAY + day * DAY - 1).toISOString();
        const body = await get(`telemetry?from=${from}&to=${to}`);
        expect(body.source).toBe('raw');
        return body.series[0]?.points.length ?? 0;
      }),
    );
    return days.reduce((total, count) => total + count, 0);
  };
  const lambda = `${details.lambdaEndpoint}/2015-03-31/functions/easysmart-local-timeseries/invocations`;
  const runRollups = async () => {
    const answer = await fetch(lambda, { method: 'POST', body: '{}' });
    expect(answer.status).toBe(200);
  };

  const stored = async () => {
    const [result] = await influx.query(
      `SELECT count("value") FROM "${DEFAULT_DATABASE}"."professional_plan"."sensor_data" WHERE "tenant_id" = '${tenantId}'` as never,
    );
    return Number(result?.series[0]?.values[0]?.[1] ?? 0);
  };
  await expect.poll(stored, { timeout: 60_000, interval: 500 }).toBe(2000);
  // The readings arrived late (the oldest 40 days late): the rollup function folds them in.
  await runRollups();
  // And the scoring pass scores them (the schedule's run, not waited for).
  await scoreAnomaliesOnStack(stack);
  const snapshot = async () => ({
    hourly: (await get(`telemetry?${range}&every=1d&fn=count`)).series,
    fiveMinute: await get(
      `telemetry?from=${new Date(now - 20 * DAY).toISOString()}&to=${new Date(now).toISOString()}&fn=mean`,
    ),
    latest: (await get('')).entities[0].latest,
    raw: await rawCount(),
  });
  const before = await snapshot();
  const scored = (await get(`predictions?${range}`)).predictions.length;
  expect(scored).toBeGreaterThan(1900);
  expect(before.fiveMinute.source).toBe('5m');
  expect(await hourlyCount()).toBe(2000);
  expect(before.latest.value).toBeCloseTo(value(times.at(-1) as number), 10);

  const inTier = async (policy: string, time: number) => {
    const [result] = await influx.query(
      `SELECT count("value") FROM "${DEFAULT_DATABASE}"."${policy}"."sensor_data" WHERE "tenant_id" = '${tenantId}' AND time = ${time}ms` as never,
    );
    return Number(result?.series[0]?.values[0]?.[1] ?? 0);
  };
  // Published as soon as the command reports the plan changed (committed), while the history
  // is still moving.
  const publishAfterChange = (sent: number[]) => () => {
    const time = Math.floor(Date.now() / 1000) * 1000;
    sent.push(time);
    void device.publishAsync(
      `devices/${deviceId}/temp/state`,
      JSON.stringify({ value: 21.5, timestamp: time / 1000 }),
      { qos: 1 },
    );
  };

  // Upgrade: everything stays readable, the move runs, the next reading goes to industrial.
  const afterUpgrade: number[] = [];
  const upgrade = await adminSetPlan(tenantId, 'industrial', publishAfterChange(afterUpgrade));
  expect(upgrade.join('\n')).toMatch(
    /professional_plan -> industrial_plan: 100%, \d+ points copied/,
  );
  await expect.poll(() => afterUpgrade.length).toBe(1);
  const upgraded = afterUpgrade[0] as number;
  await expect.poll(() => inTier('industrial_plan', upgraded), { timeout: 30_000 }).toBe(1);
  expect(await inTier('professional_plan', upgraded)).toBe(0);
  const after = await snapshot();
  expect(after.raw).toBe(2001);
  expect(after.hourly.length).toBe(1);
  expect(await hourlyCount()).toBe(2001);
  expect(after.fiveMinute.source).toBe('5m');
  const points = (body: typeof before.fiveMinute) => body.series[0].points;
  expect(points(after.fiveMinute).map((p: { time: string }) => p.time)).toEqual(
    points(before.fiveMinute).map((p: { time: string }) => p.time),
  );
  points(after.fiveMinute).forEach((point: { value: number }, n: number) => {
    expect(point.value).toBeCloseTo(points(before.fiveMinute)[n].value, 9);
  });
  expect(after.latest.time >= before.latest.time).toBe(true);
  const trained = await stack.request(
    'POST',
    '/api/ml/models',
    { device_id: id, entity_id: 'temp' },
    token,
  );
  expect(trained.status).toBe(201);
  expect(trained.body.model.training_points).toBeGreaterThan(1000);
  expect((await get(`predictions?${range}`)).predictions.length).toBeGreaterThanOrEqual(scored);

  // Downgrade: exactly the last 30 days remain, in every tier; the next reading goes to free.
  const afterDowngrade: number[] = [];
  await adminSetPlan(tenantId, 'free', publishAfterChange(afterDowngrade));
  await expect.poll(() => afterDowngrade.length).toBe(1);
  const downgraded = afterDowngrade[0] as number;
  await expect.poll(() => inTier('free_plan', downgraded), { timeout: 30_000 }).toBe(1);
  expect(await inTier('industrial_plan', downgraded)).toBe(0);
  const kept = times.filter((time) => time >= boundary).length;
  expect(await rawCount()).toBe(kept + 2);
  expect(await hourlyCount()).toBe(kept + 2);
  for (const policy of ['free_plan', 'starter_plan', 'professional_plan', 'industrial_plan']) {
    const [older] = await influx.query(
      `SELECT count("value") FROM "${DEFAULT_DATABASE}"."${policy}"."sensor_data" WHERE "tenant_id" = '${tenantId}' AND time < ${boundary}ms` as never,
    );
    expect(Number(older?.series[0]?.values[0]?.[1] ?? 0), policy).toBe(0);
  }
  device.end(true);
}, 600_000);
