import { afterAll, expect, it } from 'vitest';
import {
  connectAsDevice,
  type LocalStack,
  registerOnStack,
  setPlanOnStack,
  signUpOnStack,
  startLocalStack,
} from './support/local-stack.ts';
import { scoreAnomaliesOnStack } from './support/scoring.ts';
import { temporaryDataDir } from './support/servers.ts';

/**
 * Anomaly detection through the real local stack: a device streams a normal signal and then
 * a fault over MQTT; the Industrial tenant sees the anomaly through the API; a trained model survives a restart of the stack and is reused, not retrained;
 * on the Starter plan the same device gets plan_required.
 */
const MINUTE = 60_000;
const data = await temporaryDataDir('anomalies-e2e');
let stack: LocalStack | undefined;

afterAll(async () => {
  await stack?.stop();
  await data.remove();
});

it('Industrial sees a fault; the model survives a restart; Starter gets plan_required', async () => {
  stack = await startLocalStack({}, data.dir);
  const { token, tenantId } = await signUpOnStack(stack, { plan: 'industrial' });
  const { id, deviceId, credentials } = await registerOnStack(stack, token, {
    name: 'Pump',
    type: 'pump',
  });
  const device = await connectAsDevice(stack.mqtt, credentials);
  await device.publishAsync(
    `devices/${deviceId}/discovery`,
    JSON.stringify({
      entities: [{ entity_id: 'vibration', entity_type: 'sensor', name: 'Vibration' }],
    }),
    { qos: 1, retain: true },
  );
  // The first discovery goes through cold functions and waits for the stream's batching
  // window (serverless.yml): wait for it, however slow the machine.
  await expect
    .poll(
      async () =>
        (await stack!.request('GET', `/api/devices/${id}`, undefined, token)).body.entities.length,
      { timeout: 30_000 },
    )
    .toBe(1);

  const publishSignal = async (count: number, end: number) => {
    for (let n = 0; n < count; n++) {
      const time = end - (count - n) * MINUTE;
      const value = 4 + Math.sin((2 * Math.PI * time) / 86_400_000) + 0.05 * Math.sin(n * 12.9898);
      await device.publishAsync(
        `devices/${deviceId}/vibration/state`,
        JSON.stringify({ value, timestamp: time / 1000 }),
        { qos: 1 },
      );
    }
  };
  // Anchored at midnight UTC so the daily cycle, and so every score, is the same each run.
  const faultAt = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  await publishSignal(1500, faultAt);
  await device.publishAsync(
    `devices/${deviceId}/vibration/state`,
    JSON.stringify({ value: 30, timestamp: faultAt / 1000 }),
    { qos: 1 },
  );
  const anomalies = () =>
    stack!.request(
      'GET',
      `/api/devices/${id}/anomalies?from=${new Date(faultAt - 1000).toISOString()}&to=${new Date(faultAt + MINUTE).toISOString()}`,
      undefined,
      token,
    );
  // Scored by the scheduled pass, run here rather than waited for, until the stream has
  // delivered the fault.
  await expect
    .poll(
      async () => {
        await scoreAnomaliesOnStack(stack!);
        return (await anomalies()).body.anomalies?.length;
      },
      { timeout: 60_000, interval: 1000 },
    )
    .toBe(1);
  expect((await anomalies()).body.anomalies[0]).toMatchObject({
    entity_id: 'vibration',
    value: 30,
    detector: 'advanced',
  });

  const trained = await stack.request(
    'POST',
    '/api/ml/models',
    { device_id: id, entity_id: 'vibration' },
    token,
  );
  expect(trained.status).toBe(201);
  const version = trained.body.model.version;
  device.end(true);

  // Restart on the same data directory: the model must still be there and in use.
  expect((await stack.stop()).code).toBe(0);
  stack = await startLocalStack({}, data.dir);
  const models = await stack.request('GET', '/api/ml/models', undefined, token);
  expect(
    models.body.models.filter((m: { entity_id: string }) => m.entity_id === 'vibration'),
  ).toHaveLength(1);
  expect(models.body.models[0]).toMatchObject({ version, status: 'active' });
  const again = await connectAsDevice(stack.mqtt, credentials);
  const later = Date.now();
  await again.publishAsync(
    `devices/${deviceId}/vibration/state`,
    JSON.stringify({ value: 4.2, timestamp: later / 1000 }),
    { qos: 1 },
  );
  const predictions = () =>
    stack!.request(
      'GET',
      `/api/devices/${id}/predictions?from=${new Date(later - 1).toISOString()}&to=${new Date(later + MINUTE).toISOString()}`,
      undefined,
      token,
    );
  await expect
    .poll(
      async () => {
        await scoreAnomaliesOnStack(stack!);
        return (await predictions()).body.predictions?.length;
      },
      { timeout: 30_000 },
    )
    .toBe(1);
  expect((await predictions()).body.predictions[0].model_version).toBe(version);

  await setPlanOnStack(stack, tenantId, 'starter');
  const refused = await anomalies();
  expect(refused.status).toBe(403);
  expect(refused.body.error.code).toBe('plan_required');
  again.end(true);
}, 300_000);
