import { access } from 'node:fs/promises';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { TrainedModel } from '../shared/ml/domain/model.ts';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { ruleOutput } from './support/kinesis-event.ts';
import { layersUpload, motorMinutes } from './support/models.ts';
import { scoreAnomalies, tenantsOfOutputs } from './support/scoring.ts';
import { temporaryDataDir } from './support/servers.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, addViewer, signUp } from './support/tenants.ts';

/**
 * Custom models (plans with the custom_models flag) with the functions invoked in-process
 * against real PostgreSQL and InfluxDB: a tenant uploads its own TensorFlow.js Layers model
 * or chooses a family and settings, every model passes the quality gate before it scores,
 * any accepted version can be made active again, and a bad upload stores nothing.
 */
const models = await temporaryDataDir('custom-models');
const stack = useTestStack({ ML_MODEL_DIR: models.dir, TFJS_BACKEND: 'wasm' });
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const ml = (await import('../functions/ml/handler.ts')).handler;
const audit = (await import('../functions/audit/handler.ts')).handler;
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const { modelStore } = await import('../shared/anomalies/composition.ts');
const { createDetector, restoreDetector } = await import('../shared/ml/domain/detector.ts');
const { buildInput, Forecaster, inputSize, outputToForecast } = await import(
  '../shared/ml/domain/model.ts'
);
const { loadTfModel, trainModel } = await import('../shared/ml/domain/training.ts');
const { AlignedCoEntities } = await import('../shared/ml/domain/co-entities.ts');
const { useTfBackend } = await import('../shared/ml/domain/tf-runtime.ts');
const admin = adminPool(stack);
afterAll(() => models.remove());

const MINUTE = 60_000;
/** Stored, then scored by a scheduled pass, as the schedule would soon after. */
const ingest = async (events: unknown[]) => {
  for (let i = 0; i < events.length; i += 500) {
    await ingestionService().ingest(events.slice(i, i + 500));
  }
  await scoreAnomalies(await tenantsOfOutputs(admin, events));
};

/** One reading a minute on whole minutes ending at `end`: a daily cycle and a faster wave. */
function signal(count: number, end: number): Array<{ timeMs: number; value: number }> {
  const last = Math.floor(end / MINUTE) * MINUTE;
  return Array.from({ length: count }, (_, n) => {
    const timeMs = last - (count - 1 - n) * MINUTE;
    const value =
      40 +
      5 * Math.sin((2 * Math.PI * timeMs) / 86_400_000) +
      2 * Math.sin((2 * Math.PI * timeMs) / (37 * MINUTE)) +
      0.2 * Math.sin((timeMs / MINUTE) * 12.9898);
    return { timeMs, value };
  });
}

const readingsOf = (deviceId: string, points: Array<{ timeMs: number; value: number }>) =>
  points.map((p) =>
    ruleOutput(`devices/${deviceId}/vibration/state`, {
      value: p.value,
      timestamp: p.timeMs / 1000,
    }),
  );

interface Machine {
  token: string;
  viewer: string;
  tenantId: number;
  id: number;
  deviceId: string;
  history: Array<{ timeMs: number; value: number }>;
  /** Time of the device's newest reading: later ones follow it, never ahead of the clock. */
  newest: number;
}

async function machine(plan: string, historyMinutes = 0): Promise<Machine> {
  const owner = await signUp(auth, { plan, admin });
  const viewer = await addViewer(auth, owner);
  const { id, deviceId } = await addDevice(devices, owner.token, { name: 'Pump', type: 'pump' });
  await ingest([
    ruleOutput(`devices/${deviceId}/discovery`, {
      entities: [
        { entity_id: 'vibration', entity_type: 'sensor', name: 'Vibration', unit: 'mm/s' },
        { entity_id: 'relay', entity_type: 'switch', name: 'Relay' },
      ],
    }),
  ]);
  const newest = Math.floor((Date.now() - 600 * MINUTE) / MINUTE) * MINUTE;
  const history = historyMinutes > 0 ? signal(historyMinutes, newest) : [];
  await ingest(readingsOf(deviceId, history));
  return {
    token: owner.token,
    viewer,
    tenantId: owner.tenantId,
    id,
    deviceId,
    history,
    newest,
  };
}

/**
 * Makes every forecast of the platform's models with TensorFlow.js running `net` on the input
 * the platform builds (the window, the time of day, other entities' aligned windows).
 */
async function forecastWithTf(net: TF.LayersModel) {
  const tf = await useTfBackend();
  return vi.spyOn(Forecaster.prototype, 'predict').mockImplementation(function (
    this: { model: TrainedModel },
    window,
    timeMs,
    co,
  ) {
    const input = new Float64Array(inputSize(this.model.windowSize, this.model));
    buildInput(window, timeMs, this.model.normalisation, input, this.model, co);
    const x = tf.tensor2d(Float32Array.from(input), [1, input.length]);
    const y = net.predict(x) as TF.Tensor;
    const output = y.dataSync()[0] as number;
    x.dispose();
    y.dispose();
    return outputToForecast(output, window, this.model);
  });
}

/** The tenant's own network, trained outside the platform on the same kind of signal. */
async function tenantsNetwork(): Promise<TF.Sequential> {
  const trained = await trainModel(signal(1400, Date.now() - 30 * MINUTE), {
    windowSize: 16,
    hidden: [12],
    seed: 3,
  });
  return loadTfModel(trained);
}

const RELATIVE_16 = {
  window_size: 16,
  encoding: 'relative',
  time_of_day: true,
  normalisation: { mean: 40, std: 4 },
} as const;

const upload = (m: Machine, body: object, token = m.token) =>
  callRoute(ml, 'POST /api/ml/models/upload', {
    token,
    body: { device_id: m.id, entity_id: 'vibration', input: RELATIVE_16, ...body },
  });

const listModels = async (m: Machine) =>
  (await callRoute(ml, 'GET /api/ml/models', { token: m.token })).body.models as Array<{
    id: number;
    version: string;
    status: string;
    origin: string;
  }>;

/** Scores of the device's readings from `from` on, oldest first. */
async function scoresSince(m: Machine, from: number) {
  const answer = await callRoute(ml, 'GET /api/devices/{id}/predictions', {
    token: m.token,
    params: { id: String(m.id) },
    query: {
      from: new Date(from).toISOString(),
      to: new Date(Date.now() + 60 * MINUTE).toISOString(),
    },
  });
  expect(answer.status).toBe(200);
  return answer.body.predictions as Array<{ time: string; score: number; model_version: string }>;
}

/** `count` new readings after the device's newest, ingested. */
async function moreReadings(m: Machine, count: number) {
  m.newest += count * MINUTE;
  const fresh = signal(count, m.newest);
  await ingest(readingsOf(m.deviceId, fresh));
  return fresh;
}

/** The model version that scored the newest of five new readings. */
async function versionScoringNow(m: Machine): Promise<string> {
  const fresh = await moreReadings(m, 5);
  const scores = await scoresSince(m, (fresh[0] as { timeMs: number }).timeMs);
  return (scores.at(-1) as { model_version: string }).model_version;
}

describe('uploaded TensorFlow.js models', () => {
  it('are checked, calibrated on the entity, activated, and score exactly as TensorFlow.js runs them', async () => {
    const m = await machine('industrial', 1500);
    const net = await tenantsNetwork();
    const files = await layersUpload(net);
    const answer = await upload(m, files);
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    const summary = answer.body.model;
    expect(summary).toMatchObject({
      device_id: m.id,
      entity_id: 'vibration',
      status: 'active',
      origin: 'uploaded',
      settings: { window_size: 16, encoding: 'relative', parameters: 17 * 12 + 12 + 12 + 1 },
    });
    expect(summary.metrics.heldBack.modelMae).toBeLessThan(summary.metrics.heldBack.repeatLastMae);

    // New readings, scored by the next scoring pass with the uploaded model.
    const fresh = await moreReadings(m, 60);
    const scored = (await scoresSince(m, (fresh[0] as { timeMs: number }).timeMs)).slice(0, 60);
    expect(scored).toHaveLength(60);
    for (const s of scored) expect(s.model_version).toBe(summary.version);

    // The same readings through the same detector, with every forecast made by TensorFlow.js
    // from the uploaded files themselves.
    const stored = await modelStore().load(
      `tenant-${m.tenantId}/device-${m.id}/vibration/${summary.version}`,
    );
    if (!stored) throw new Error('the accepted model is not in the model store');
    const predict = await forecastWithTf(net);
    try {
      const history = m.history;
      const before = createDetector({ kind: 'advanced' });
      for (const p of history) before.score(p.timeMs, p.value);
      const after = restoreDetector(JSON.parse(JSON.stringify(before.snapshot())), {
        model: stored,
      });
      const reference = fresh.map((p) => after.score(p.timeMs, p.value).score);
      expect(predict).toHaveBeenCalledTimes(60);
      const largest = Math.max(
        ...scored.map((s, i) => Math.abs(s.score - (reference[i] as number))),
      );
      expect(largest).toBeLessThanOrEqual(1e-6);
    } finally {
      predict.mockRestore();
      net.dispose();
    }
  }, 120_000);

  it('a malformed, oversized or mis-shaped upload is refused with a clear 4xx and nothing is stored', async () => {
    // Too little history to calibrate on: only the last refusal gets as far as reading it.
    const m = await machine('industrial', 60);
    const net = await tenantsNetwork();
    const files = await layersUpload(net);
    net.dispose();
    const topology = files.model_json.modelTopology as { config: { layers: unknown[] } };
    const refusals: Array<[string, Promise<{ status: number; body: any }>, number, string]> = [
      [
        'a body over 1 MiB',
        upload(m, { ...files, weights: 'A'.repeat(1024 * 1024) }),
        413,
        'body_too_large',
      ],
      [
        'weights over the limit',
        upload(m, { ...files, weights: 'A'.repeat(700_000) }),
        400,
        'validation_failed',
      ],
      [
        'a layer type that is not accepted',
        upload(m, {
          ...files,
          model_json: {
            ...files.model_json,
            modelTopology: {
              class_name: 'Sequential',
              config: {
                layers: [
                  { class_name: 'Lambda', config: { batch_input_shape: [null, 17] } },
                  ...topology.config.layers,
                ],
              },
            },
          },
        }),
        400,
        'model_unsupported_layer',
      ],
      [
        'an input that does not match the declared window',
        upload(m, { ...files, input: { ...RELATIVE_16, window_size: 20 } }),
        400,
        'model_shape_mismatch',
      ],
      [
        'truncated weights',
        upload(m, {
          ...files,
          weights: Buffer.from(files.weights, 'base64').subarray(8).toString('base64'),
        }),
        400,
        'model_shape_mismatch',
      ],
      ['no model.json', upload(m, { weights: files.weights }), 400, 'validation_failed'],
      ['a switch entity', upload(m, { ...files, entity_id: 'relay' }), 400, 'not_trainable'],
      ['an unknown entity', upload(m, { ...files, entity_id: 'nothing' }), 404, 'entity_not_found'],
      ['too little history', upload(m, { ...files }), 422, 'training_failed'],
    ];
    for (const [what, pending, status, code] of refusals) {
      const answer = await pending;
      expect(answer.status, `${what}: ${JSON.stringify(answer.body)}`).toBe(status);
      expect(answer.body.error.code, what).toBe(code);
      expect(answer.body.error.message.length, what).toBeGreaterThan(10);
    }
    expect(await listModels(m)).toEqual([]);
    await expect(access(path.join(models.dir, `tenant-${m.tenantId}`))).rejects.toThrow();
  }, 120_000);
});

describe('versions, the quality gate and roll-back', () => {
  it('a bad upload is rejected and leaves the active model; a chosen family trains; any accepted version comes back', async () => {
    const m = await machine('industrial', 1500);
    const net = await tenantsNetwork();
    const good = await upload(m, await layersUpload(net));
    net.dispose();
    expect(good.body.model.status).toBe('active');

    // A network of the right shape that was never trained: worse than repeating the last value.
    const { sequential, layers, initializers } = await import('@tensorflow/tfjs');
    const untrained = sequential();
    untrained.add(
      layers.dense({
        inputShape: [17],
        units: 1,
        kernelInitializer: initializers.randomUniform({ minval: -2, maxval: 2, seed: 1 }),
      }),
    );
    const bad = await upload(m, await layersUpload(untrained));
    untrained.dispose();
    expect(bad.status).toBe(201);
    expect(bad.body.model).toMatchObject({ status: 'rejected', origin: 'uploaded' });
    expect(bad.body.model.status_reason).toMatch(/not below repeating the last value/);
    expect(await versionScoringNow(m)).toBe(good.body.model.version);

    const linear = await callRoute(ml, 'POST /api/ml/models', {
      token: m.token,
      body: { device_id: m.id, entity_id: 'vibration', family: 'linear', window_size: 12 },
    });
    expect(linear.status, JSON.stringify(linear.body)).toBe(201);
    expect(linear.body.model).toMatchObject({
      status: 'active',
      origin: 'trained',
      settings: { family: 'linear', window_size: 12 },
    });
    expect(await versionScoringNow(m)).toBe(linear.body.model.version);

    const rollBack = await callRoute(ml, 'POST /api/ml/models/{id}/activate', {
      token: m.token,
      params: { id: String(good.body.model.id) },
    });
    expect(rollBack.status).toBe(200);
    expect(rollBack.body.model).toMatchObject({ id: good.body.model.id, status: 'active' });
    expect(await versionScoringNow(m)).toBe(good.body.model.version);
    expect((await listModels(m)).map((x) => [x.version, x.status])).toEqual([
      [linear.body.model.version, 'superseded'],
      [bad.body.model.version, 'rejected'],
      [good.body.model.version, 'active'],
    ]);

    const rejected = await callRoute(ml, 'POST /api/ml/models/{id}/activate', {
      token: m.token,
      params: { id: String(bad.body.model.id) },
    });
    expect(rejected.status).toBe(409);
    expect(rejected.body.error.code).toBe('model_rejected');
    expect(await versionScoringNow(m)).toBe(good.body.model.version);
  }, 180_000);
});

type MotorMinute = ReturnType<typeof motorMinutes>[number];

/** One telemetry message a minute: both readings share its timestamp. */
const motorMessages = (deviceId: string, minutes: MotorMinute[]) =>
  minutes.map((p) =>
    ruleOutput(`devices/${deviceId}/telemetry`, {
      timestamp: p.timeMs / 1000,
      values: { temperature: p.temperature, current: p.current },
    }),
  );

describe('a model that also reads other entities of the device', () => {
  it('is judged by the gate with them, forecasts better for it, and scores through the scoring pass exactly as TensorFlow.js runs it', async () => {
    const owner = await signUp(auth, { plan: 'industrial', admin });
    const device = await addDevice(devices, owner.token, { name: 'Motor', type: 'motor' });
    await ingest([
      ruleOutput(`devices/${device.deviceId}/discovery`, {
        entities: [
          { entity_id: 'temperature', entity_type: 'sensor', name: 'Winding', unit: '°C' },
          { entity_id: 'current', entity_type: 'sensor', name: 'Current', unit: 'A' },
          { entity_id: 'relay', entity_type: 'switch', name: 'Relay' },
        ],
      }),
    ]);
    const newest = Math.floor((Date.now() - 600 * MINUTE) / MINUTE) * MINUTE;
    const minutes = motorMinutes(1560, newest + 60 * MINUTE);
    const history = minutes.slice(0, 1500);
    // A fault the current does not explain: the winding runs 3 degrees hot for five minutes.
    const fresh = minutes
      .slice(1500)
      .map((p, i) => (i >= 30 && i < 35 ? { ...p, temperature: p.temperature + 3 } : p));
    await ingest(motorMessages(device.deviceId, history));
    const train = (settings: object) =>
      callRoute(ml, 'POST /api/ml/models', {
        token: owner.token,
        body: { device_id: device.id, entity_id: 'temperature', window_size: 8, ...settings },
      });

    // Refused before any training: itself, an entity the device lacks, a switch.
    for (const [co, status] of [
      [['temperature'], 400],
      [['pressure'], 422],
      [['relay'], 422],
    ] as const) {
      const refused = await train({ co_entities: co });
      expect(refused.status, JSON.stringify(refused.body)).toBe(status);
      expect(refused.body.error.code).toBe('co_entity_unusable');
    }
    expect((await train({ co_entities: ['current', 'current'] })).status).toBe(400);

    const alone = await train({});
    expect(alone.status, JSON.stringify(alone.body)).toBe(201);
    const withCurrent = await train({ co_entities: ['current'], co_window: 4 });
    expect(withCurrent.status, JSON.stringify(withCurrent.body)).toBe(201);
    const summary = withCurrent.body.model;
    expect(summary).toMatchObject({
      status: 'active',
      settings: { family: 'dense', window_size: 8, co_entities: ['current'], co_window: 4 },
    });
    // The gate judged it on the held-back readings, where the current explains the switches.
    const heldBack = summary.metrics.heldBack;
    expect(heldBack.modelMae).toBeLessThan(heldBack.repeatLastMae);
    expect(heldBack.modelMae).toBeLessThan(alone.body.model.metrics.heldBack.modelMae * 0.7);

    await ingest(motorMessages(device.deviceId, fresh));
    const answer = await callRoute(ml, 'GET /api/devices/{id}/predictions', {
      token: owner.token,
      params: { id: String(device.id) },
      query: {
        entity_id: 'temperature',
        from: new Date((fresh[0] as MotorMinute).timeMs).toISOString(),
        to: new Date(Date.now() + 60 * MINUTE).toISOString(),
      },
    });
    const scored = (
      answer.body.predictions as Array<{
        entity_id: string;
        score: number;
        model_version: string;
      }>
    ).filter((p) => p.entity_id === 'temperature');
    expect(scored).toHaveLength(fresh.length);
    for (const p of scored) expect(p.model_version).toBe(summary.version);

    // The same readings through the same detector, the current aligned by the shared definition,
    // every forecast made by TensorFlow.js from the stored network.
    const stored = await modelStore().load(
      `tenant-${owner.tenantId}/device-${device.id}/temperature/${summary.version}`,
    );
    if (!stored) throw new Error('the accepted model is not in the model store');
    expect(stored.coEntities?.map((c) => c.entityId)).toEqual(['current']);
    const net = await loadTfModel(stored);
    const predict = await forecastWithTf(net);
    try {
      const before = createDetector({ kind: 'advanced' });
      for (const p of history) before.score(p.timeMs, p.temperature);
      const after = restoreDetector(JSON.parse(JSON.stringify(before.snapshot())), {
        model: stored,
      });
      const target = fresh.map((p) => ({ timeMs: p.timeMs, value: p.temperature }));
      const aligned = new AlignedCoEntities(target, [
        { entityId: 'current', points: fresh.map((p) => ({ timeMs: p.timeMs, value: p.current })) },
      ]);
      const reference = target.map(
        (p, t) => after.score(p.timeMs, p.value, aligned.windowsAt(t, stored)).score,
      );
      // The first three new readings fill the aligned window; the model forecasts the rest.
      expect(predict).toHaveBeenCalledTimes(fresh.length - 3);
      const largest = Math.max(
        ...scored.map((s, i) => Math.abs(s.score - (reference[i] as number))),
      );
      expect(largest).toBeLessThanOrEqual(1e-6);
      expect(Math.max(...scored.slice(30, 35).map((p) => p.score))).toBeGreaterThan(0.5);

      // The 1e-6 comparison sees the alignment: the current one reading late scores differently.
      const late = restoreDetector(JSON.parse(JSON.stringify(before.snapshot())), {
        model: stored,
      });
      const lateScores = target.map(
        (p, t) =>
          late.score(p.timeMs, p.value, aligned.windowsAt(Math.max(0, t - 1), stored)).score,
      );
      expect(
        Math.max(...lateScores.map((x, i) => Math.abs(x - (reference[i] as number)))),
      ).toBeGreaterThan(1e-5);
    } finally {
      predict.mockRestore();
      net.dispose();
    }
  }, 180_000);
});

describe('a family and settings chosen for a device type', () => {
  it('train its devices on request and are handed to the scheduled trainer, again after a change', async () => {
    const m = await machine('industrial', 1500);
    const chosen = await callRoute(ml, 'PUT /api/ml/settings', {
      token: m.token,
      body: { device_type: 'pump', entity_id: 'vibration', family: 'linear', window_size: 12 },
    });
    expect(chosen.status, JSON.stringify(chosen.body)).toBe(200);
    expect(chosen.body.settings).toMatchObject({
      device_type: 'pump',
      entity_id: 'vibration',
      family: 'linear',
      window_size: 12,
    });
    const listed = await callRoute(ml, 'GET /api/ml/settings', { token: m.token });
    expect(listed.body.settings).toEqual([chosen.body.settings]);
    const trail = await callRoute(audit, 'GET /api/audit', {
      token: m.token,
      query: { action: 'model.settings' },
    });
    expect(trail.body.entries).toMatchObject([
      {
        action: 'model.settings',
        target: 'device_type:pump/vibration',
        details: { family: 'linear', window_size: 12, co_entities: [], co_window: 4 },
      },
    ]);

    const candidates = async () =>
      (
        await admin.query(
          'SELECT device_id, entity_id, settings FROM ml_training_candidates(30, 100000) WHERE tenant_id = $1',
          [m.tenantId],
        )
      ).rows;
    expect(await candidates()).toEqual([
      {
        device_id: m.id,
        entity_id: 'vibration',
        settings: { family: 'linear', windowSize: 12, size: 'medium', coEntities: [], coWindow: 4 },
      },
    ]);

    // A request without settings of its own trains the type's choice.
    const trained = await callRoute(ml, 'POST /api/ml/models', {
      token: m.token,
      body: { device_id: m.id, entity_id: 'vibration' },
    });
    expect(trained.status, JSON.stringify(trained.body)).toBe(201);
    expect(trained.body.model.settings).toEqual({ family: 'linear', window_size: 12 });
    expect(await candidates()).toEqual([]);

    // A changed choice makes the entity a candidate again, with the new settings.
    await callRoute(ml, 'PUT /api/ml/settings', {
      token: m.token,
      body: { device_type: 'pump', entity_id: 'vibration', family: 'dense', size: 'small' },
    });
    expect(await candidates()).toEqual([
      {
        device_id: m.id,
        entity_id: 'vibration',
        settings: { family: 'dense', windowSize: 24, size: 'small', coEntities: [], coWindow: 4 },
      },
    ]);
  }, 120_000);
});

describe('plan, roles and tenants on every custom-model route', () => {
  it('below Industrial: plan_required; viewers: refused; another tenant: not found', async () => {
    const pro = await machine('professional');
    const other = await machine('industrial');
    const m = await machine('industrial', 400);
    const files = {
      model_json: { format: 'layers-model', modelTopology: {}, weightsManifest: [] },
      weights: 'AAAA',
    };
    const train = (x: Machine, token: string, device = x.id) =>
      callRoute(ml, 'POST /api/ml/models', {
        token,
        body: { device_id: device, entity_id: 'vibration', family: 'dense', size: 'small' },
      });
    const activate = (token: string, id: number) =>
      callRoute(ml, 'POST /api/ml/models/{id}/activate', { token, params: { id: String(id) } });

    const choose = (token: string) =>
      callRoute(ml, 'PUT /api/ml/settings', {
        token,
        body: { device_type: 'pump', entity_id: 'vibration' },
      });
    for (const answer of [
      await upload(pro, files),
      await train(pro, pro.token),
      await activate(pro.token, 1),
      await choose(pro.token),
    ]) {
      expect(answer.status).toBe(403);
      expect(answer.body.error.code).toBe('plan_required');
    }
    for (const answer of [
      await upload(m, files, m.viewer),
      await train(m, m.viewer),
      await activate(m.viewer, 1),
      await choose(m.viewer),
    ]) {
      expect(answer.status).toBe(403);
      expect(answer.body.error.code).not.toBe('plan_required');
    }
    // The other tenant's device and model do not exist for this one.
    const own = await train(m, m.token);
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    const models = await listModels(m);
    const ownModel = models[0];
    expect(ownModel).toBeDefined();
    expect((await upload(m, files, other.token)).status).toBe(404);
    expect((await train(m, other.token)).status).toBe(404);
    const foreign = await activate(other.token, (ownModel as { id: number }).id);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('model_not_found');
    expect(await listModels(other)).toEqual([]);
    // Settings are the tenant's own: another tenant's choice for the same type is not listed.
    expect((await choose(other.token)).status).toBe(200);
    const mine = await callRoute(ml, 'GET /api/ml/settings', { token: m.token });
    expect(mine.body.settings).toEqual([]);
  }, 60_000);
});
