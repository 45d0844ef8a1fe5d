import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportEdgeModel } from '../shared/edge/domain/export.ts';
import { crc32Hex } from '../shared/edge/domain/model-format.ts';
import { trainModel } from '../shared/ml/domain/training.ts';
import {
  type DeviceCredentials,
  type LocalStack,
  registerOnStack,
  signUpOnStack,
  startLocalStack,
} from './support/local-stack.ts';
import { randomModel, recordActiveModel } from './support/models.ts';
import { commandOf, descendantsOf } from './support/processes.ts';
import { scoreAnomaliesOnStack } from './support/scoring.ts';
import { unique } from './support/stack-env.ts';
import {
  type DeviceEvent,
  type RunningDevice,
  spawnVirtualDevice,
} from './support/virtual-device.ts';

/**
 * Edge deployment through the whole local stack: the platform exports a device's model and
 * sends it over the real broker to the virtual device (the firmware core over
 * libmosquitto), which confirms it; the anomalies it then finds itself are the ones the
 * platform finds in the same readings, with the same scores; an anomaly found while the
 * broker is frozen is reported after the reconnect; a reboot keeps the model; a corrupted
 * chunk, a wrong checksum and a model too large for the device are refused with nothing
 * replaced; a model the device refuses, or never confirms, is failed; viewers, other tenants
 * and plans without edge deployment are refused.
 */

const INTERVAL_MS = 100;
const TOLERANCE = 1e-4;

let stack: LocalStack;
let token: string;
let tenantId: number;
let rowId: number;
let deviceId: string;
let credentials: DeviceCredentials;
let modelDir: string;
const running: RunningDevice[] = [];

const api = (method: string, route: string, body?: unknown) =>
  stack.request(method, route, body, token);

async function asOperator<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: (await stack.details()).databaseAdminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function startDevice(): RunningDevice {
  const device = spawnVirtualDevice([
    '--device-id',
    deviceId,
    '--username',
    credentials.username,
    '--password',
    credentials.password,
    '--mqtt',
    stack.mqtt,
    '--interval-ms',
    String(INTERVAL_MS),
    '--batch-age-ms',
    '500',
    '--stats-ms',
    '0',
    '--backoff-base-ms',
    '100',
    '--backoff-max-ms',
    '1000',
    '--seed',
    '21',
    // Large jumps on the temperature from well after the install: the test freezes the
    // broker before they start, so the first ones (certain anomalies) happen offline.
    '--fault',
    'spike',
    '--fault-after-s',
    '150',
    // Room for every reading taken while the broker is frozen.
    '--buffer',
    '5000',
    '--model-file',
    path.join(modelDir, 'edge-model.bin'),
  ]);
  running.push(device);
  return device;
}

function brokerPid(): number {
  const pid = descendantsOf(stack.child.pid as number).find((candidate) =>
    /(^|\/)mosquitto\s+-c\s/.test(commandOf(candidate)),
  );
  if (!pid) throw new Error('no mosquitto process under the stack');
  return pid;
}

interface Prediction {
  entity_id: string;
  time: string;
  score: number;
  anomalous: boolean;
}

async function temperaturePredictions(fromMs: number, toMs: number): Promise<Prediction[]> {
  const q = new URLSearchParams({
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
  });
  const answer = await api('GET', `/api/devices/${rowId}/predictions?${q}`);
  expect(answer.status).toBe(200);
  return (answer.body.predictions as Prediction[]).filter((p) => p.entity_id === 'temperature');
}

beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'edge-device-'));
  stack = await startLocalStack();
  ({ token, tenantId } = await signUpOnStack(stack, { plan: 'industrial' }));
  ({
    id: rowId,
    deviceId,
    credentials,
  } = await registerOnStack(stack, token, {
    name: 'Edge compressor',
    type: 'compressor',
  }));
}, 180_000);

afterAll(async () => {
  for (const device of running) device.kill();
  try {
    process.kill(brokerPid(), 'SIGCONT');
  } catch {
    // the stack is already gone
  }
  await stack?.stop();
  await rm(modelDir, { recursive: true, force: true });
});

describe('edge deployment to the virtual device over the real broker', () => {
  let device: RunningDevice;
  let version: string;
  let trained: Awaited<ReturnType<typeof trainModel>>;
  let checksum: string;
  let installedAt: number;
  let reconnectedAt: number;

  it('the platform exports the active model, the device installs and confirms it', async () => {
    device = startDevice();
    await device.next((e) => e.event === 'connected', 60_000);
    // Setting the stage: the platform trains on one-minute means of a month, which seconds
    // of readings do not make, so the entity's model is trained here on its raw readings
    // and registered as active, as the trainer would store it.
    let points: Array<{ time: string; value: number }> = [];
    await expect
      .poll(
        async () => {
          const q = new URLSearchParams({
            entity_id: 'temperature',
            from: new Date(Date.now() - 3_600_000).toISOString(),
            to: new Date(Date.now() + 60_000).toISOString(),
          });
          const answer = await api('GET', `/api/devices/${rowId}/telemetry?${q}`);
          points = answer.body.series?.[0]?.points ?? [];
          return points.length;
        },
        { timeout: 90_000, interval: 1000 },
      )
      .toBeGreaterThan(220);
    const model = await trainModel(
      points.map((p) => ({ timeMs: Date.parse(p.time), value: p.value })),
      { epochs: 3 },
    );
    version = model.version;
    trained = model;
    await recordActiveModel(
      { dataDir: stack.dataDir, ...(await stack.details()) },
      { tenantId, devicePk: rowId, entityId: 'temperature' },
      model,
    );

    const sent = await api('POST', `/api/devices/${rowId}/edge-model`, {
      entity_id: 'temperature',
    });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ entity_id: 'temperature', version, status: 'sent' });
    expect(sent.body.size_bytes).toBeLessThanOrEqual(16_384);
    checksum = sent.body.checksum;
    expect(checksum).toMatch(/^[0-9a-f]{8}$/);

    const installed = await device.next((e) => e.event === 'model_installed', 30_000);
    installedAt = installed.at;
    expect(installed).toMatchObject({ version, checksum, entity_id: 'temperature' });
    await expect
      .poll(async () => (await api('GET', `/api/devices/${rowId}/edge-model`)).body.status, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe('confirmed');
    const current = (await api('GET', `/api/devices/${rowId}/edge-model`)).body;
    expect(current.running).toMatchObject({ version, checksum });
  }, 240_000);

  it('an anomaly found while the broker is frozen is reported after the reconnect', async () => {
    const from = device.events.length;
    const broker = brokerPid();
    process.kill(broker, 'SIGSTOP');
    let offline: DeviceEvent;
    try {
      await device.next((e) => e.event === 'disconnected', 40_000, from);
      offline = await device.next(
        (e) => e.event === 'anomaly' && e.online === false,
        180_000,
        from,
      );
    } finally {
      process.kill(broker, 'SIGCONT');
    }
    reconnectedAt = (await device.next((e) => e.event === 'connected', 30_000, from)).at;
    await expect
      .poll(
        async () =>
          (
            (await api('GET', `/api/devices/${rowId}/edge-model`)).body.anomalies as Array<{
              time: string;
            }>
          ).some((a) => Date.parse(a.time) === offline.time_ms),
        { timeout: 30_000, interval: 500 },
      )
      .toBe(true);
  }, 300_000);

  it("the device's anomalies are the platform's on the same readings, with the same scores", async () => {
    // Everything scored from the install to a moment after the reconnect: the device scores
    // as it samples; the platform's scoring pass once the readings (the outage's backlog
    // included) are stored.
    const until = Math.max(Date.now(), reconnectedAt + 5_000);
    await expect
      .poll(
        async () => {
          // The scheduled scoring pass, run here rather than waited for.
          await scoreAnomaliesOnStack(stack);
          const scored = await temperaturePredictions(until, until + 60_000);
          return scored.length > 0;
        },
        { timeout: 60_000, interval: 1000 },
      )
      .toBe(true);
    const deviceAnomalies = device.events.filter(
      (e) =>
        e.event === 'anomaly' &&
        (e.time_ms as number) >= installedAt &&
        (e.time_ms as number) <= until,
    );
    expect(deviceAnomalies.length).toBeGreaterThan(0);
    expect(deviceAnomalies.some((e) => e.online === false)).toBe(true);
    const predictions = await temperaturePredictions(installedAt, until + 1);
    const byTime = new Map(predictions.map((p) => [Date.parse(p.time), p]));
    let largest = 0;
    for (const event of deviceAnomalies) {
      const platform = byTime.get(event.time_ms as number);
      expect(platform, `platform score at ${event.time_ms}`).toBeDefined();
      expect(platform?.anomalous).toBe(true);
      const difference = Math.abs((platform?.score ?? 0) - (event.score as number));
      expect(difference).toBeLessThanOrEqual(TOLERANCE);
      largest = Math.max(largest, difference);
    }
    console.info(
      `edge deployment: ${predictions.length} platform scores since the install, ${deviceAnomalies.length} ` +
        `device anomalies (${deviceAnomalies.filter((e) => e.online === false).length} offline), ` +
        `largest score difference ${largest.toExponential(2)}`,
    );
    const platformAlarms = predictions.filter((p) => p.anomalous).map((p) => Date.parse(p.time));
    expect(platformAlarms).toEqual(deviceAnomalies.map((e) => e.time_ms));
  }, 180_000);

  it('a reboot keeps the confirmed model', async () => {
    device.child.kill('SIGTERM');
    await device.exited;
    device = startDevice();
    const installed = await device.next((e) => e.event === 'model_installed', 30_000);
    expect(installed).toMatchObject({ version, checksum });
  }, 120_000);

  it('a corrupted chunk, a wrong checksum and a model too large are refused; the running model stays', async () => {
    // The platform's own account publishes forged chunks to the device's topic.
    const { mqttPlatform } = await stack.details();
    const forger = await mqtt.connectAsync(stack.mqtt, {
      username: mqttPlatform.username,
      password: mqttPlatform.password,
      clientId: unique('forger'),
      reconnectPeriod: 0,
    });
    const topic = `devices/${deviceId}/model/set`;
    const forged = exportEdgeModel({
      entityId: 'temperature',
      model: randomModel([8]),
      detectorState: null,
      lastTimeMs: null,
    }).bytes;
    const forgedChecksum = crc32Hex(forged.subarray(16));
    const send = (bytes: Uint8Array, fields: Record<string, unknown> = {}) =>
      forger.publishAsync(
        topic,
        JSON.stringify({
          version: 'dense-forecaster-1-test-8',
          checksum: forgedChecksum,
          size: bytes.length,
          offset: 0,
          data: Buffer.from(bytes).toString('base64'),
          ...fields,
        }),
        { qos: 1 },
      );
    const corrupted = forged.slice();
    corrupted[200] = (corrupted[200] as number) ^ 0x20;
    const storedBefore = await readFile(path.join(modelDir, 'edge-model.bin'));
    try {
      const cases: Array<[Uint8Array, Record<string, unknown>, string]> = [
        [corrupted, {}, 'checksum_mismatch'],
        [forged, { checksum: '0badc0de' }, 'checksum_mismatch'],
        [forged, { size: 16_385 }, 'too_large'],
      ];
      for (const [bytes, fields, reason] of cases) {
        const from = device.events.length;
        await send(bytes, fields);
        const refused = await device.next((e) => e.event === 'model_refused', 20_000, from);
        expect(refused).toMatchObject({ reason, running: version });
      }
    } finally {
      forger.end(true);
    }
    const current = (await api('GET', `/api/devices/${rowId}/edge-model`)).body;
    expect(current.running).toMatchObject({ version });
    // What a reboot would load is still the confirmed model, byte for byte.
    expect(await readFile(path.join(modelDir, 'edge-model.bin'))).toEqual(storedBefore);
  }, 120_000);

  it('a newer model is sent, then the earlier one rolled back; the audit trail has both', async () => {
    // A second version, as a retraining would store it, becomes the active one.
    const newer = { ...trained, version: `${version}-next` };
    await recordActiveModel(
      { dataDir: stack.dataDir, ...(await stack.details()) },
      { tenantId, devicePk: rowId, entityId: 'temperature' },
      newer,
    );
    const installedVersion = async (body: Record<string, unknown>) => {
      const from = device.events.length;
      const sent = await api('POST', `/api/devices/${rowId}/edge-model`, body);
      expect(sent.status).toBe(202);
      const installed = await device.next((e) => e.event === 'model_installed', 30_000, from);
      await expect
        .poll(async () => (await api('GET', `/api/devices/${rowId}/edge-model`)).body.status, {
          timeout: 30_000,
          interval: 500,
        })
        .toBe('confirmed');
      return installed.version;
    };
    expect(await installedVersion({ entity_id: 'temperature' })).toBe(newer.version);
    expect(await installedVersion({ entity_id: 'temperature', version })).toBe(version);
    const current = (await api('GET', `/api/devices/${rowId}/edge-model`)).body;
    expect(current.running).toMatchObject({ version });

    const trail = await api('GET', '/api/audit?action=edge_model.');
    expect(trail.status).toBe(200);
    expect(
      trail.body.entries.map((entry: { action: string; target: string; details: unknown }) => [
        entry.action,
        entry.target,
        (entry.details as { version: string }).version,
      ]),
    ).toEqual([
      ['edge_model.rollback', `device:${rowId}`, version],
      ['edge_model.deploy', `device:${rowId}`, newer.version],
      ['edge_model.deploy', `device:${rowId}`, version],
    ]);
  }, 120_000);
  it('roles, tenants and plans on the edge model routes: a viewer reads but cannot deploy, an admin deploys, another tenant finds nothing, a lower plan is refused', async () => {
    const route = `/api/devices/${rowId}/edge-model`;
    const as = (who: string, method: string, body?: unknown) =>
      stack.request(method, route, body, who);
    const member = async (role: 'viewer' | 'admin') => {
      const username = unique(role);
      const password = 'another long password';
      const added = await api('POST', '/api/users', {
        username,
        email: `${username}@example.com`,
        password,
        role,
      });
      expect(added.status).toBe(201);
      const login = await stack.request('POST', '/api/auth/login', { username, password });
      expect(login.status).toBe(200);
      return login.body.token as string;
    };

    const viewer = await member('viewer');
    const seen = await as(viewer, 'GET');
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ entity_id: 'temperature', version, status: 'confirmed' });
    const refused = await as(viewer, 'POST', { entity_id: 'temperature' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('insufficient_role');
    // Nothing was sent: the latest deployment is the one the viewer saw.
    expect((await api('GET', route)).body.created_at).toBe(seen.body.created_at);

    const admin = await member('admin');
    const from = device.events.length;
    const sent = await as(admin, 'POST', { entity_id: 'temperature', version });
    expect(sent.status).toBe(202);
    await device.next((e) => e.event === 'model_installed', 30_000, from);
    await expect
      .poll(async () => (await api('GET', route)).body, { timeout: 30_000, interval: 500 })
      .toMatchObject({ status: 'confirmed', created_at: sent.body.created_at });

    // Another Industrial tenant: the device does not exist for it, and nothing of it shows.
    const other = await signUpOnStack(stack, { plan: 'industrial' });
    for (const [method, body] of [['GET'], ['POST', { entity_id: 'temperature' }]] as const) {
      const answer = await as(other.token, method, body);
      expect(answer.status, `${method} by another tenant`).toBe(404);
      expect(JSON.stringify(answer.body)).not.toContain(version);
    }
    // A Professional tenant (no edge deployment) is refused on its own device.
    const professional = await signUpOnStack(stack, { plan: 'professional' });
    const itsDevice = await registerOnStack(stack, professional.token, {
      name: 'Press',
      type: 'press',
    });
    for (const [method, body] of [['GET'], ['POST', { entity_id: 'temperature' }]] as const) {
      const answer = await stack.request(
        method,
        `/api/devices/${itsDevice.id}/edge-model`,
        body,
        professional.token,
      );
      expect(answer.status, `${method} on professional`).toBe(403);
      expect(answer.body.error.code).toBe('plan_required');
    }
    expect((await api('GET', route)).body.created_at).toBe(sent.body.created_at);
  }, 120_000);
  it("a model the device refuses is failed with the device's reason; one never confirmed is failed after the command timeout", async () => {
    const route = `/api/devices/${rowId}/edge-model`;
    // A model of the setpoint (a number the device is set to, not a sensor it scores), stored
    // as the trainer would: exported and sent, and refused by the device.
    await recordActiveModel(
      { dataDir: stack.dataDir, ...(await stack.details()) },
      { tenantId, devicePk: rowId, entityId: 'setpoint' },
      trained,
    );
    const from = device.events.length;
    const sent = await api('POST', route, { entity_id: 'setpoint' });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ entity_id: 'setpoint', status: 'sent' });
    const refused = await device.next((e) => e.event === 'model_refused', 30_000, from);
    expect(refused).toMatchObject({ reason: 'unknown_entity', running: version });
    await expect
      .poll(async () => (await api('GET', route)).body, { timeout: 30_000, interval: 500 })
      .toMatchObject({ entity_id: 'setpoint', status: 'failed', status_reason: 'unknown_entity' });
    // The temperature model still runs.
    expect((await api('GET', route)).body.running).toMatchObject({ version });

    // Sent while the device is off: nothing confirms it. Once its age passes the command
    // timeout (moved back here, as a clock would move on) it reads failed, like a command.
    device.child.kill('SIGTERM');
    await device.exited;
    const unanswered = await api('POST', route, { entity_id: 'temperature' });
    expect(unanswered.status).toBe(202);
    expect((await api('GET', route)).body).toMatchObject({ status: 'sent' });
    await asOperator((client) =>
      client.query(
        `UPDATE edge_deployments SET created_at = created_at - interval '1 day'
         WHERE id = (SELECT max(id) FROM edge_deployments WHERE device_id = $1)`,
        [rowId],
      ),
    );
    expect((await api('GET', route)).body).toMatchObject({
      entity_id: 'temperature',
      status: 'failed',
      status_reason: 'no_confirmation',
    });
  }, 120_000);
});
