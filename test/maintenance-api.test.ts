import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { FLEET_ENTITIES, fleet, gaussian, seeded } from './support/rul-fleet.ts';
import { temporaryDataDir } from './support/servers.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { addDevice, addViewer, OWNER_PASSWORD, signUp } from './support/tenants.ts';

/**
 * Predictive maintenance through its routes, with the functions invoked in-process against
 * real PostgreSQL and InfluxDB: readings go through ingestion, failures are recorded through
 * the API, the scheduled function trains the fleet model and the health route answers with
 * the remaining useful life and the limits' forecasts. Plan gate, roles, tenant isolation and
 * bad input on every route.
 */
const models = await temporaryDataDir('rul-models');
const stack = useTestStack({ ML_MODEL_DIR: models.dir, TFJS_BACKEND: 'wasm' });
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const maintenance = (await import('../functions/maintenance/handler.ts')).handler;
const scheduled = (await import('../functions/maintenance-training/handler.ts')).handler;
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const { rollupService } = await import('../shared/timeseries/composition.ts');
const admin = adminPool(stack);
afterAll(() => models.remove());

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function ruleOutput(deviceId: string, kind: string, payload: unknown) {
  return {
    payload: Buffer.from(JSON.stringify(payload)).toString('base64'),
    topic: `devices/${deviceId}/${kind}`,
    client_id: deviceId,
    received_at: Date.now(),
  };
}

async function ingest(outputs: object[]) {
  for (let i = 0; i < outputs.length; i += 500) {
    const summary = await ingestionService().ingest(outputs.slice(i, i + 500));
    expect(summary.rejected).toEqual({});
  }
}

interface Tenant {
  id: number;
  owner: string;
  viewer: string;
}

async function tenant(plan: string): Promise<Tenant> {
  const owner = await signUp(auth, { plan, admin });
  const viewer = await addViewer(auth, owner);
  return { id: owner.tenantId, owner: owner.token, viewer };
}

async function machine(
  owner: string,
  type: string,
  entities: Array<{ entity_id: string; entity_type: string }>,
) {
  const device = await addDevice(devices, owner, { type });
  await ingest([
    ruleOutput(device.deviceId, 'discovery', {
      entities: entities.map((e) => ({ ...e, name: e.entity_id })),
    }),
  ]);
  return { id: device.id, deviceId: device.deviceId };
}

const call = (
  routeKey: string,
  token: string,
  options: { params?: Record<string, string>; body?: unknown } = {},
) => callRoute(maintenance, routeKey, { token, ...options });

const PUMP_ENTITIES = [
  { entity_id: 'oil_temperature', entity_type: 'sensor' },
  { entity_id: 'relay', entity_type: 'switch' },
];

describe('plan gate, roles, tenant isolation and bad input', () => {
  let a: Tenant;
  let b: Tenant;
  let pump: { id: number; deviceId: string };
  let foreign: { id: number; deviceId: string };
  let starter: Tenant;
  let starterPump: { id: number; deviceId: string };
  let free: Tenant;
  let freePump: { id: number; deviceId: string };

  beforeAll(async () => {
    [a, b, starter, free] = await Promise.all([
      tenant('professional'),
      tenant('industrial'),
      tenant('starter'),
      tenant('free'),
    ]);
    [pump, foreign, starterPump, freePump] = await Promise.all([
      machine(a.owner, 'pump', PUMP_ENTITIES),
      machine(b.owner, 'pump', PUMP_ENTITIES),
      machine(starter.owner, 'pump', PUMP_ENTITIES),
      machine(free.owner, 'pump', PUMP_ENTITIES),
    ]);
  });

  /** What predictive maintenance and its audit entries hold of the tenant. */
  const written = async (tenantId: number) => {
    const { rows } = await admin.query(
      `SELECT (SELECT count(*) FROM maintenance_events WHERE tenant_id = $1)::int AS events,
              (SELECT count(*) FROM entity_limits WHERE tenant_id = $1)::int AS limits,
              (SELECT count(*) FROM rul_training_requests WHERE tenant_id = $1)::int AS requests,
              (SELECT count(*) FROM audit_log WHERE tenant_id = $1
                 AND action IN ('maintenance.record', 'entity_limit.set', 'rul_model.train'))::int AS audited`,
      [tenantId],
    );
    return rows[0];
  };
  const NOTHING = { events: 0, limits: 0, requests: 0, audited: 0 };

  /** Every route with a valid request for `device`. */
  const requests = (device: { id: number }) => {
    const id = String(device.id);
    return [
      ['POST /api/devices/{id}/maintenance', { params: { id }, body: { kind: 'inspection' } }],
      ['GET /api/devices/{id}/maintenance', { params: { id } }],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, body: { above: 90 } },
      ],
      ['GET /api/devices/{id}/health', { params: { id } }],
      ['GET /api/maintenance/devices', {}],
      ['GET /api/maintenance/models', {}],
      ['POST /api/maintenance/models', { body: { device_type: 'pump' } }],
    ] as const;
  };

  it('Free and Starter get 403 plan_required on every route, and nothing is written', async () => {
    for (const [plan, gated, device] of [
      ['free', free, freePump],
      ['starter', starter, starterPump],
    ] as const) {
      for (const [routeKey, options] of requests(device)) {
        // A viewer may not change anything on any plan: only its reads reach the plan gate.
        const callers = routeKey.startsWith('GET') ? [gated.owner, gated.viewer] : [gated.owner];
        for (const token of callers) {
          const answer = await call(routeKey, token, options);
          expect(answer.status, `${routeKey} on ${plan}`).toBe(403);
          expect(answer.body.error.code, `${routeKey} on ${plan}`).toBe('plan_required');
          expect(answer.body.error.message).toMatch(/Professional plan/);
        }
      }
      expect(await written(gated.id), plan).toEqual(NOTHING);
    }
  });

  it('a viewer reads but gets 403 insufficient_role on every change, and nothing is written', async () => {
    for (const [routeKey, options] of requests(pump)) {
      const answer = await call(routeKey, a.viewer, options);
      if (routeKey.startsWith('GET')) expect(answer.status, routeKey).toBe(200);
      else {
        expect(answer.status, routeKey).toBe(403);
        expect(answer.body.error.code, routeKey).toBe('insufficient_role');
      }
    }
    expect(await written(a.id)).toEqual(NOTHING);
  });

  it("another tenant's device is not found on every device route, and lists show only one's own", async () => {
    for (const [routeKey, options] of requests(foreign)) {
      if (!routeKey.includes('{id}')) continue;
      const answer = await call(routeKey, a.owner, options);
      expect(answer.status, routeKey).toBe(404);
      expect(answer.body.error.code, routeKey).toBe('device_not_found');
    }
    const listed = await call('GET /api/maintenance/devices', a.owner);
    expect(listed.body.devices.map((d: { id: number }) => d.id)).toEqual([pump.id]);
    // A fleet is the caller's devices of a type: another tenant's type is no fleet of its own.
    await machine(b.owner, 'compressor', PUMP_ENTITIES);
    const foreignFleet = await call('POST /api/maintenance/models', a.owner, {
      body: { device_type: 'compressor' },
    });
    expect(foreignFleet.status).toBe(404);
    expect(foreignFleet.body.error.code).toBe('device_type_not_found');
    const foreignEvents = await call('GET /api/devices/{id}/maintenance', b.owner, {
      params: { id: String(foreign.id) },
    });
    expect(foreignEvents.body.events).toEqual([]);
  });

  it('bad input gets a clear 4xx and writes nothing', async () => {
    const fresh = await machine(a.owner, 'pump', PUMP_ENTITIES);
    const id = String(fresh.id);
    const refused = [
      [
        'POST /api/devices/{id}/maintenance',
        {
          params: { id },
          body: { kind: 'failure', time: new Date(Date.now() + HOUR).toISOString() },
        },
        400,
        'time_in_future',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: { kind: 'explosion' } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: { kind: 'repair', time: 'yesterday' } },
        400,
        'validation_failed',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'no_such_entity' }, body: { above: 1 } },
        404,
        'entity_not_found',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'relay' }, body: { above: 1 } },
        400,
        'entity_not_numeric',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, body: { above: 10, below: 20 } },
        400,
        'invalid_limit',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, body: { above: '90' } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/maintenance/models',
        { body: { device_type: 'no such type' } },
        404,
        'device_type_not_found',
      ],
      [
        'POST /api/maintenance/models',
        { body: { device_type: 'pump', step_unit: 'days' } },
        400,
        'validation_failed',
      ],
      // Malformed bodies.
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: {} },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: { kind: 'repair', by: 'someone' } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: { kind: 'repair', note: 'x'.repeat(2001) } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, body: { kind: 'repair', time: '1969-12-31T23:00:00Z' } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id }, rawBody: '{"kind": "failure",' },
        400,
        'invalid_json',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, body: { above: 90, over: 95 } },
        400,
        'validation_failed',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, rawBody: 'above=90' },
        400,
        'invalid_json',
      ],
      [
        'PUT /api/devices/{id}/entities/{entity_id}/limit',
        { params: { id, entity_id: 'oil_temperature' }, body: [90] },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/maintenance',
        { params: { id: '2147483000' }, body: { kind: 'failure' } },
        404,
        'device_not_found',
      ],
      ['POST /api/maintenance/models', { body: { step_unit: 'hours' } }, 400, 'validation_failed'],
    ] as const;
    for (const [routeKey, options, status, code] of refused) {
      const answer = await call(routeKey, a.owner, options);
      expect(answer.status, `${routeKey} ${JSON.stringify(options)}`).toBe(status);
      expect(answer.body.error.code, routeKey).toBe(code);
      expect(answer.body.error.message.length).toBeGreaterThan(0);
    }
    const events = await call('GET /api/devices/{id}/maintenance', a.owner, { params: { id } });
    expect(events.body.events).toEqual([]);
    const health = await call('GET /api/devices/{id}/health', a.owner, { params: { id } });
    expect(health.body).toEqual({
      device_id: fresh.deviceId,
      rul: null,
      thresholds: [],
      status: 'ok',
    });
    // Nothing of the tenant at all: no event, limit, training request or audit entry.
    expect(await written(a.id)).toEqual(NOTHING);
  });

  it('records events newest first, and a limit with neither side removes it', async () => {
    const id = String(pump.id);
    const failedAt = new Date(Date.now() - 2 * HOUR).toISOString();
    const failure = await call('POST /api/devices/{id}/maintenance', a.owner, {
      params: { id },
      body: { kind: 'failure', time: failedAt, note: 'seal leak' },
    });
    expect(failure.status).toBe(201);
    expect(failure.body.event).toMatchObject({ kind: 'failure', note: 'seal leak' });
    expect(Date.parse(failure.body.event.time)).toBe(Date.parse(failedAt));
    const repair = await call('POST /api/devices/{id}/maintenance', a.owner, {
      params: { id },
      body: { kind: 'repair' },
    });
    expect(repair.status).toBe(201);
    const events = await call('GET /api/devices/{id}/maintenance', a.viewer, { params: { id } });
    expect(events.body.events.map((e: { kind: string }) => e.kind)).toEqual(['repair', 'failure']);

    const params = { id, entity_id: 'oil_temperature' };
    const set = await call('PUT /api/devices/{id}/entities/{entity_id}/limit', a.owner, {
      params,
      body: { above: 90, below: 5 },
    });
    expect(set.body).toEqual({ entity_id: 'oil_temperature', limit: { above: 90, below: 5 } });
    const cleared = await call('PUT /api/devices/{id}/entities/{entity_id}/limit', a.owner, {
      params,
      body: {},
    });
    expect(cleared.body).toEqual({ entity_id: 'oil_temperature', limit: null });
    const health = await call('GET /api/devices/{id}/health', a.owner, { params: { id } });
    expect(health.body.thresholds).toEqual([]);
  });

  it('answers the owner of a Professional tenant and an admin of an Industrial one on every route', async () => {
    const admin2 = unique('admin');
    await callRoute(auth, 'POST /api/users', {
      token: b.owner,
      body: {
        username: admin2,
        email: `${admin2}@example.com`,
        password: OWNER_PASSWORD,
        role: 'admin',
      },
    });
    const adminToken = (
      await callRoute(auth, 'POST /api/auth/login', {
        body: { username: admin2, password: OWNER_PASSWORD },
      })
    ).body.token;
    const own = await machine(a.owner, 'pump', PUMP_ENTITIES);
    for (const [token, device] of [
      [a.owner, own],
      [adminToken, foreign],
    ] as const) {
      for (const [routeKey, options] of requests(device)) {
        const answer = await call(routeKey, token, options);
        expect(answer.status, `${routeKey}: ${JSON.stringify(answer.body)}`).toBeLessThan(300);
        // A fleet's step is an hour of readings unless asked otherwise.
        if (routeKey === 'POST /api/maintenance/models')
          expect(answer.body.request.step_unit).toBe('hours');
      }
    }
    expect(await written(b.id)).toEqual({ events: 1, limits: 1, requests: 1, audited: 3 });
    // The scheduled trainer ends both requests (neither fleet has a failure to learn from),
    // so they take no place from the fleets the tests below ask for.
    for (let run = 0; run < 5; run++) {
      const left = (await written(a.id)).requests + (await written(b.id)).requests;
      if (left === 0) break;
      await scheduled({} as never);
    }
    expect((await written(a.id)).requests + (await written(b.id)).requests).toBe(0);
  });
});

describe('time to threshold', () => {
  it('a sensor drifting linearly towards its limit gets an ETA within 5% of the true crossing', async () => {
    const t = await tenant('professional');
    const pump = await machine(t.owner, 'pump', PUMP_ENTITIES);
    // Three days of readings every 10 minutes, rising 0.2 °C an hour with noise: 90 °C is
    // crossed about 40 hours after the last one.
    const now = Date.now();
    const start = now - 72 * HOUR;
    const slopePerMs = 0.2 / HOUR;
    const limit = 90;
    const base = limit - slopePerMs * (now + 40 * HOUR - start);
    const random = seeded(3);
    const outputs = [];
    for (let time = start; time <= now - MINUTE; time += 10 * MINUTE) {
      const value = base + slopePerMs * (time - start) + gaussian(random) * 0.3;
      outputs.push(
        ruleOutput(pump.deviceId, 'oil_temperature/state', { value, timestamp: time / 1000 }),
      );
    }
    await ingest(outputs);
    // The scheduled rollups fold the late readings into the hourly windows the forecast reads.
    await rollupService().run();
    const params = { id: String(pump.id), entity_id: 'oil_temperature' };
    expect(
      (
        await call('PUT /api/devices/{id}/entities/{entity_id}/limit', t.owner, {
          params,
          body: { above: limit },
        })
      ).status,
    ).toBe(200);

    const health = await call('GET /api/devices/{id}/health', t.viewer, {
      params: { id: params.id },
    });
    expect(health.status).toBe(200);
    const [threshold] = health.body.thresholds;
    expect(threshold).toMatchObject({
      entity_id: 'oil_temperature',
      limit: { above: limit, below: null },
      trend: 'rising',
      crossed: false,
    });
    // The contract's shape, and the two documented additions (crossed, slope_per_hour).
    expect(Object.keys(health.body).sort()).toEqual(['device_id', 'rul', 'status', 'thresholds']);
    expect(Object.keys(threshold).sort()).toEqual([
      'crossed',
      'entity_id',
      'eta',
      'limit',
      'slope_per_hour',
      'trend',
    ]);
    expect(Object.keys(threshold.eta).sort()).toEqual(['high', 'low', 'time']);
    const trueCrossing = start + (limit - base) / slopePerMs;
    const eta = Date.parse(threshold.eta.time);
    expect(Math.abs(eta - trueCrossing)).toBeLessThan(0.05 * (trueCrossing - now));
    expect(Date.parse(threshold.eta.low)).toBeLessThanOrEqual(eta);
    expect(Date.parse(threshold.eta.high)).toBeGreaterThanOrEqual(eta);
    expect(threshold.slope_per_hour).toBeCloseTo(0.2, 1);
    expect(health.body.status).toBe('service_soon');
  });
});

describe('learned remaining useful life', () => {
  /** A machine replayed from a generated history: one telemetry message per step. */
  async function replay(
    owner: string,
    rows: readonly (readonly number[])[],
    endMs: number,
    stepMs = MINUTE,
  ) {
    const device = await machine(
      owner,
      'press',
      FLEET_ENTITIES.map((entity_id) => ({ entity_id, entity_type: 'sensor' })),
    );
    const times = rows.map((_, i) => endMs - (rows.length - 1 - i) * stepMs);
    await ingest(
      rows.map((row, i) =>
        ruleOutput(device.deviceId, 'telemetry', {
          timestamp: (times[i] as number) / 1000,
          values: Object.fromEntries(FLEET_ENTITIES.map((entity, e) => [entity, row[e]])),
        }),
      ),
    );
    return { ...device, lastMs: times[times.length - 1] as number };
  }

  it('trains on request from recorded failures, activates only a model that beats the fleet mean, and predicts with an interval', async () => {
    const t = await tenant('professional');
    const end = Date.now() - 10 * MINUTE;
    for (const history of fleet(8, 21)) {
      const device = await replay(t.owner, history.rows, end);
      const failed = await call('POST /api/devices/{id}/maintenance', t.owner, {
        params: { id: String(device.id) },
        body: { kind: 'failure', time: new Date(device.lastMs + 30_000).toISOString() },
      });
      expect(failed.status).toBe(201);
    }
    // Machines still running: each seen part-way through its life.
    const running = [];
    for (const [u, history] of fleet(3, 77).entries()) {
      const seen = Math.floor(history.rows.length * [0.5, 0.8, 0.95][u]!);
      const device = await replay(t.owner, history.rows.slice(0, seen), end);
      running.push({ ...device, trueRul: history.rows.length - seen });
    }
    const before = await call('GET /api/devices/{id}/health', t.owner, {
      params: { id: String(running[0]!.id) },
    });
    expect(before.body.rul).toBeNull();

    const asked = await call('POST /api/maintenance/models', t.owner, {
      body: { device_type: 'press', step_unit: 'cycles' },
    });
    expect(asked.status).toBe(202);
    expect(asked.body.request).toMatchObject({ device_type: 'press', step_unit: 'cycles' });
    const run = await scheduled({} as never);
    expect(run.training, JSON.stringify(run)).toMatchObject({ failed: 0 });
    const listed = await call('GET /api/maintenance/models', t.viewer);
    expect(run.training.trained, JSON.stringify(listed.body)).toBeGreaterThanOrEqual(1);

    expect(listed.body.models).toHaveLength(1);
    const [model] = listed.body.models;
    expect(model).toMatchObject({
      device_type: 'press',
      step_unit: 'cycles',
      histories: 8,
      status: 'active',
    });
    expect(model.metrics.rmse).toBeLessThan(model.metrics.baselineRmse);
    expect(model.metrics.backend).toBe('wasm');

    let inside = 0;
    for (const device of running) {
      const health = await call('GET /api/devices/{id}/health', t.viewer, {
        params: { id: String(device.id) },
      });
      expect(health.status).toBe(200);
      const { rul } = health.body;
      expect(rul).toMatchObject({ unit: 'cycles', model_version: model.version });
      expect(Object.keys(rul).sort()).toEqual([
        'computed_at',
        'high',
        'low',
        'model_version',
        'unit',
        'value',
      ]);
      expect(rul.low).toBeLessThanOrEqual(rul.value);
      expect(rul.high).toBeGreaterThanOrEqual(rul.value);
      if (device.trueRul >= rul.low && device.trueRul <= rul.high) inside += 1;
    }
    expect(inside).toBeGreaterThanOrEqual(2);
    // The nearly worn-out machine is the one to service first.
    const sorted = await call('GET /api/maintenance/devices', t.viewer);
    const byId = new Map<number, { rul: { value: number } | null }>(
      sorted.body.devices.map((d: { id: number; rul: { value: number } | null }) => [d.id, d]),
    );
    const values = running.map((d) => byId.get(d.id)?.rul?.value as number);
    expect(values[2]).toBeLessThan(values[0] as number);

    // A new reading window: the machine seen at half its life reconnects and reports 30 more
    // cycles; the scheduled run predicts it again from them, and leaves the others' predictions.
    const predictions = async () =>
      new Map(
        (
          await admin.query<{ device_id: number; window_end: Date; computed_at: Date }>(
            'SELECT device_id, window_end, computed_at FROM rul_predictions WHERE tenant_id = $1',
            [t.id],
          )
        ).rows.map((row) => [row.device_id, row]),
      );
    const earlier = await predictions();
    const [early, ...others] = running as [(typeof running)[0], ...typeof running];
    const [history0] = fleet(3, 77);
    const seen0 = Math.floor(history0!.rows.length * 0.5);
    const next = history0!.rows.slice(seen0, seen0 + 30);
    const reportedAt = Date.now();
    const nextTimes = next.map((_, i) => reportedAt - (next.length - i) * 1000);
    await ingest([
      ruleOutput(early.deviceId, 'status', 'online'),
      ...next.map((row, i) =>
        ruleOutput(early.deviceId, 'telemetry', {
          timestamp: (nextTimes[i] as number) / 1000,
          values: Object.fromEntries(FLEET_ENTITIES.map((entity, e) => [entity, row[e]])),
        }),
      ),
    ]);
    const refreshed = await scheduled({} as never);
    expect(refreshed.predictions.failed).toBe(0);
    const later = await predictions();
    expect(later.get(early.id)?.window_end.getTime()).toBe(nextTimes[nextTimes.length - 1]);
    expect(later.get(early.id)?.computed_at.getTime()).toBeGreaterThan(
      earlier.get(early.id)?.computed_at.getTime() as number,
    );
    for (const other of others) {
      expect(later.get(other.id)?.computed_at).toEqual(earlier.get(other.id)?.computed_at);
    }
    const now = await call('GET /api/maintenance/devices', t.viewer);
    const earlyNow = now.body.devices.find((d: { id: number }) => d.id === early.id);
    expect(Date.parse(earlyNow.rul.computed_at)).toBe(later.get(early.id)?.computed_at.getTime());

    // A fleet whose machines all live exactly the mean life: the model cannot beat the
    // baseline, is kept as rejected with the reason, and the active one stays.
    const same = await tenant('professional');
    for (const history of fleet(5, 5, () => 150)) {
      const device = await replay(same.owner, history.rows, end);
      await call('POST /api/devices/{id}/maintenance', same.owner, {
        params: { id: String(device.id) },
        body: { kind: 'failure', time: new Date(device.lastMs + 30_000).toISOString() },
      });
    }
    await call('POST /api/maintenance/models', same.owner, {
      body: { device_type: 'press', step_unit: 'cycles' },
    });
    await scheduled({} as never);
    const rejected = await call('GET /api/maintenance/models', same.owner);
    expect(rejected.body.models).toHaveLength(1);
    expect(rejected.body.models[0]).toMatchObject({ status: 'rejected' });
    expect(rejected.body.models[0].status_reason).toMatch(/fleet-mean baseline/);
  }, 240_000);

  it('trains on its schedule once a fleet has new failures, unasked, in hours of operation from the hourly rollups', async () => {
    const t = await tenant('industrial');
    // Each step an hour, the last one complete before now; the failure after it.
    const end = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    for (const history of fleet(8, 21)) {
      const device = await replay(t.owner, history.rows, end, HOUR);
      await call('POST /api/devices/{id}/maintenance', t.owner, {
        params: { id: String(device.id) },
        body: { kind: 'failure', time: new Date(device.lastMs + 30 * MINUTE).toISOString() },
      });
    }
    const [history] = fleet(1, 77);
    const seen = Math.floor(history!.rows.length * 0.8);
    const running = await replay(t.owner, history!.rows.slice(0, seen), end, HOUR);
    // The scheduled rollups fold the late readings into the hourly windows training reads.
    await rollupService().run();
    // No request: the fleet's new failures are what makes it due.
    const run = await scheduled({} as never);
    const listed = await call('GET /api/maintenance/models', t.owner);
    expect(listed.body.models[0], JSON.stringify(run)).toMatchObject({
      step_unit: 'hours',
      histories: 8,
      status: 'active',
    });
    const health = await call('GET /api/devices/{id}/health', t.owner, {
      params: { id: String(running.id) },
    });
    expect(health.body.rul).toMatchObject({ unit: 'hours' });
    const trueRul = history!.rows.length - seen;
    expect(Math.abs(health.body.rul.value - trueRul)).toBeLessThan(40);
  }, 240_000);
});
