import { beforeAll, describe, expect, it } from 'vitest';
import {
  adjustedRandIndex,
  REGIME_ENTITIES,
  type Regime,
  regimeHistory,
} from '../bench/patterns-regimes.ts';
import { InfluxPatternHistory } from '../shared/patterns/adapters/influx-pattern-history.ts';
import { PostgresPatternStore } from '../shared/patterns/adapters/postgres-pattern-store.ts';
import type { PatternJob } from '../shared/patterns/domain/model.ts';
import { PatternService } from '../shared/patterns/domain/pattern-service.ts';
import type { PatternHistory } from '../shared/patterns/domain/ports.ts';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { waitUntil } from './support/servers.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, addViewer, signUp } from './support/tenants.ts';

/**
 * Pattern recognition through its routes, with the functions invoked in-process against real
 * PostgreSQL and InfluxDB: a machine's generated history with known modes goes through
 * ingestion, a discovery job finds the modes, users name them, the device's current mode and
 * a chart's bands are recognised from its readings, and a mode never seen is flagged novel.
 * Plan gate, roles, tenant isolation and bad input on every route.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const patterns = (await import('../functions/patterns/handler.ts')).handler as Parameters<
  typeof callRoute
>[0];
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const { readingStore, rollupService } = await import('../shared/timeseries/composition.ts');
const { databasePool, logger } = await import('../shared/composition.ts');
const { auditTrail } = await import('../shared/audit/composition.ts');
const admin = adminPool(stack);

const STEP_MS = 10_000;
const ENTITIES = [
  ...REGIME_ENTITIES.map((entity_id) => ({ entity_id, entity_type: 'sensor' })),
  { entity_id: 'relay', entity_type: 'switch' },
];

function ruleOutput(deviceId: string, kind: string, payload: object) {
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

/** Readings of the three entities, one message per time. */
function telemetry(deviceId: string, times: number[], rows: number[][]) {
  return rows.map((row, i) =>
    ruleOutput(deviceId, 'telemetry', {
      timestamp: (times[i] as number) / 1000,
      values: Object.fromEntries(REGIME_ENTITIES.map((entity, e) => [entity, row[e]])),
    }),
  );
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

async function machine(owner: string, entities = ENTITIES) {
  const device = await addDevice(devices, owner, { type: 'press' });
  await ingest([
    ruleOutput(device.deviceId, 'discovery', {
      entities: entities.map((e) => ({ ...e, name: e.entity_id })),
    }),
  ]);
  return device;
}

const call = (
  routeKey: string,
  token: string,
  options: { params?: Record<string, string>; body?: unknown; query?: Record<string, string> } = {},
) => callRoute(patterns, routeKey, { token, ...options });

async function jobCount(tenantId: number): Promise<number> {
  const { rows } = await admin.query(
    'SELECT count(*)::int AS n FROM pattern_jobs WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0].n;
}

describe('discovery, labels, the current mode and novelty', () => {
  let t: Tenant;
  let device: { id: number; deviceId: string };
  let id: string;
  let truth: Regime[];
  let times: number[];

  beforeAll(async () => {
    t = await tenant('industrial');
    device = await machine(t.owner);
    id = String(device.id);
    // About four and a half hours of a machine going through its modes, ending ten minutes ago.
    const history = regimeHistory({ seed: 21, steps: 1600, stepMs: STEP_MS, startMs: 0 });
    const end = Math.floor((Date.now() - 10 * 60_000) / STEP_MS) * STEP_MS;
    times = history.times.map((time) => end - (history.times.length - 1) * STEP_MS + time);
    truth = history.labels;
    await ingest(telemetry(device.deviceId, times, history.rows));
    // As the scheduled rollup does: a read over hours uses the rollups.
    await rollupService().run();
  }, 120_000);

  it('a discovery job finds the known modes (adjusted Rand index over the history) and names stick', async () => {
    const started = await call('POST /api/devices/{id}/patterns/discover', t.owner, {
      params: { id },
      body: {
        entity_ids: ['vibration', 'temperature', 'current'],
        from: new Date((times[0] as number) - STEP_MS).toISOString(),
        to: new Date((times.at(-1) as number) + STEP_MS).toISOString(),
      },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const jobId = String(started.body.job.job_id);
    const job = await call('GET /api/devices/{id}/patterns/jobs/{job_id}', t.viewer, {
      params: { id, job_id: jobId },
    });
    expect(job.body.job.status, JSON.stringify(job.body)).toBe('done');
    expect(job.body.job.result).toMatchObject({ step_seconds: 10, window_seconds: 80 });
    expect(job.body.job.result.patterns).toBeGreaterThanOrEqual(4);

    const listed = await call('GET /api/devices/{id}/patterns', t.viewer, { params: { id } });
    expect(listed.status).toBe(200);
    const found = listed.body.patterns as Array<{
      pattern_id: number;
      label: string | null;
      entity_ids: string[];
      occurrences: number;
      example: { from: string; to: string };
      share: number;
      profile: Array<{ entity_id: string; mean: number }>;
    }>;
    expect(found.length).toBe(job.body.job.result.patterns);
    for (const p of found) {
      expect(p.label).toBeNull();
      expect(p.entity_ids).toEqual(['current', 'temperature', 'vibration']);
      expect(p.occurrences).toBeGreaterThan(0);
      expect(Date.parse(p.example.from)).toBeLessThan(Date.parse(p.example.to));
    }
    // The largest patterns are the machine's steady modes, by their temperature level.
    const level = (p: (typeof found)[number]) =>
      p.profile.find((e) => e.entity_id === 'temperature')?.mean as number;
    const idle = found.find((p) => Math.abs(level(p) - 25) < 3);
    const full = found.find((p) => Math.abs(level(p) - 70) < 3);
    expect(idle && full).toBeTruthy();

    // The timeline over the history recognises every reading's mode as the truth has it.
    const timeline = await call('GET /api/devices/{id}/patterns/timeline', t.viewer, {
      params: { id },
      query: {
        from: new Date(times[0] as number).toISOString(),
        to: new Date((times.at(-1) as number) + STEP_MS).toISOString(),
      },
    });
    expect(timeline.status, JSON.stringify(timeline.body)).toBe(200);
    const segments = timeline.body.segments as Array<{
      from: string;
      to: string;
      pattern_id: number | null;
      novel: boolean;
    }>;
    const t0 = times[0] as number;
    const truthOf: Regime[] = [];
    const foundOf: Array<number | null> = [];
    for (const s of segments) {
      for (let ms = Date.parse(s.from); ms < Date.parse(s.to); ms += STEP_MS) {
        const i = (ms - t0) / STEP_MS;
        if (i < 0 || i >= truth.length) continue;
        truthOf.push(truth[i] as Regime);
        foundOf.push(s.pattern_id);
      }
    }
    expect(truthOf.length).toBeGreaterThan(0.9 * truth.length);
    expect(adjustedRandIndex(truthOf, foundOf)).toBeGreaterThan(0.8);
    // No window of the history is novel (a window cut by the history's ends may be).
    const windowMs = timeline.body.window_seconds * 1000;
    const inside = segments.filter(
      (s) =>
        Date.parse(s.from) >= t0 + windowMs &&
        Date.parse(s.to) <= (times.at(-1) as number) - windowMs,
    );
    expect(inside.filter((s) => s.novel)).toEqual([]);

    const named = await call('PATCH /api/devices/{id}/patterns/{pattern_id}', t.owner, {
      params: { id, pattern_id: String(full?.pattern_id) },
      body: { label: '  full load ' },
    });
    expect(named.status, JSON.stringify(named.body)).toBe(200);
    expect(named.body.pattern).toMatchObject({ pattern_id: full?.pattern_id, label: 'full load' });
    await call('PATCH /api/devices/{id}/patterns/{pattern_id}', t.owner, {
      params: { id, pattern_id: String(idle?.pattern_id) },
      body: { label: 'idle' },
    });
    const audit = await admin.query(
      `SELECT changes FROM audit_log WHERE tenant_id = $1 AND action = 'pattern.label'
       ORDER BY id`,
      [t.id],
    );
    expect(audit.rows[0].changes).toEqual({ label: { before: null, after: 'full load' } });

    // A second discovery over the default week keeps the names on the same modes; it finds
    // where the readings begin and their density (one step per reading) by itself.
    const again = await call('POST /api/devices/{id}/patterns/discover', t.owner, {
      params: { id },
      body: {},
    });
    expect(again.body.job.status, JSON.stringify(again.body)).toBe('done');
    expect(again.body.job.result.step_seconds).toBe(10);
    // Found to within a bucket of a 200th of the span read (here 2 minutes), not the week.
    expect(
      Math.abs(Date.parse(again.body.job.result.from) - (times[0] as number)),
    ).toBeLessThanOrEqual(120_000);
    const relisted = await call('GET /api/devices/{id}/patterns', t.owner, { params: { id } });
    const byLabel = (label: string) =>
      (relisted.body.patterns as typeof found).find((p) => p.label === label);
    expect(Math.abs(level(byLabel('full load') as (typeof found)[number]) - 70)).toBeLessThan(3);
    expect(Math.abs(level(byLabel('idle') as (typeof found)[number]) - 25)).toBeLessThan(3);
  }, 120_000);

  it('recognises the current mode from the latest readings, and flags one never seen as novel', async () => {
    const now = Date.now();
    const recent = Array.from({ length: 24 }, (_, i) => now - (24 - i) * 5_000);
    const fullLoad = recent.map((_, i) => [70 + (i % 3) * 0.4, 12 + (i % 2) * 0.2, 3.5]);
    await ingest(telemetry(device.deviceId, recent, fullLoad));
    const known = await call('GET /api/devices/{id}/patterns', t.viewer, { params: { id } });
    expect(known.body.current_pattern, JSON.stringify(known.body)).toMatchObject({
      label: 'full load',
      novel: false,
    });
    const detail = await callRoute(devices, 'GET /api/devices/{id}', {
      token: t.viewer,
      params: { id },
    });
    expect(detail.body.current_pattern).toMatchObject({ label: 'full load', novel: false });

    // The same times again, now overheating: a temperature no mode ever had.
    const overheat = recent.map((_, i) => [140 + (i % 3) * 0.4, 12, 3.5]);
    await ingest(telemetry(device.deviceId, recent, overheat));
    const novel = await call('GET /api/devices/{id}/patterns', t.viewer, { params: { id } });
    expect(novel.body.current_pattern).toMatchObject({ pattern_id: null, novel: true });
    expect(novel.body.current_pattern.distance_ratio).toBeGreaterThan(1);
    const timeline = await call('GET /api/devices/{id}/patterns/timeline', t.viewer, {
      params: { id },
      query: { from: new Date((recent[0] as number) - 60_000).toISOString() },
    });
    expect(timeline.body.segments.some((s: { novel: boolean }) => s.novel)).toBe(true);
  }, 60_000);

  it('a discovery by default leaves out a sensor too sparse for the windows and names it; asked for, it fails naming it', async () => {
    const withGauge = await machine(t.owner, [
      ...ENTITIES,
      { entity_id: 'oil_level', entity_type: 'sensor' },
    ]);
    const history = regimeHistory({ seed: 22, steps: 400, stepMs: STEP_MS, startMs: 0 });
    const end = Math.floor((Date.now() - 10 * 60_000) / STEP_MS) * STEP_MS;
    const at = history.times.map((time) => end - 399 * STEP_MS + time);
    // The gauge reports every 40th step: 10 readings, too few for windows of 8 steps.
    const gauge = at
      .filter((_, i) => i % 40 === 0)
      .map((time) =>
        ruleOutput(withGauge.deviceId, 'telemetry', {
          timestamp: time / 1000,
          values: { oil_level: 80 },
        }),
      );
    await ingest([...telemetry(withGauge.deviceId, at, history.rows), ...gauge]);
    const params = { id: String(withGauge.id) };
    const range = {
      from: new Date((at[0] as number) - STEP_MS).toISOString(),
      to: new Date((at.at(-1) as number) + STEP_MS).toISOString(),
    };
    const found = await call('POST /api/devices/{id}/patterns/discover', t.owner, {
      params,
      body: range,
    });
    expect(found.body.job, JSON.stringify(found.body)).toMatchObject({
      status: 'done',
      result: {
        entity_ids: ['current', 'temperature', 'vibration'],
        left_out: [{ entity_id: 'oil_level', readings: 10 }],
        step_seconds: 10,
      },
    });
    const listed = await call('GET /api/devices/{id}/patterns', t.owner, { params });
    expect(listed.body.patterns.length).toBeGreaterThan(0);
    for (const p of listed.body.patterns) {
      expect(p.entity_ids).toEqual(['current', 'temperature', 'vibration']);
    }

    // Asked for by name it is not left out: the job fails and says which entity is short.
    const asked = await call('POST /api/devices/{id}/patterns/discover', t.owner, {
      params,
      body: { ...range, entity_ids: ['temperature', 'oil_level'] },
    });
    expect(asked.body.job).toMatchObject({
      status: 'failed',
      error: { code: 'not_enough_history' },
    });
    expect(asked.body.job.error.message).toContain('oil_level has 10');
    expect(asked.body.job.error.message).not.toContain('temperature has');
  }, 60_000);

  it('a discovery over too short a history fails with the reason, and keeps the patterns', async () => {
    const before = await call('GET /api/devices/{id}/patterns', t.owner, { params: { id } });
    const short = await call('POST /api/devices/{id}/patterns/discover', t.owner, {
      params: { id },
      body: {
        from: new Date((times[0] as number) - 60 * 60_000).toISOString(),
        to: new Date((times[0] as number) + 30_000).toISOString(),
      },
    });
    expect(short.status).toBe(202);
    expect(short.body.job).toMatchObject({
      status: 'failed',
      error: { code: 'not_enough_history' },
    });
    const after = await call('GET /api/devices/{id}/patterns', t.owner, { params: { id } });
    expect(after.body.patterns).toEqual(before.body.patterns);
  });
});

describe('a discovery whose worker is lost (an injected clock; Lambda retries as job-lifecycle.ts has them)', () => {
  let clock = 0;
  let caller: { tenantId: number; userId: number };
  let owner: string;
  let device: { id: number; deviceId: string };
  let range: { from: Date; to: Date };
  const readings = new InfluxPatternHistory(readingStore());
  /** A worker: the service as a discovery's invocation runs it, on the test's clock. */
  const worker = (history: PatternHistory = readings) =>
    new PatternService({
      store: new PostgresPatternStore(databasePool()),
      history,
      // Lambda's part (invoking, and retrying after a failure) is played by the test.
      dispatcher: { dispatch: async () => {} },
      audit: auditTrail(),
      logger: logger(),
      now: () => clock,
    });
  /** History reads that wait for `gate`: a worker stopped inside its discovery. */
  const stopped = (gate: Promise<void>): PatternHistory => ({
    grid: (query) => readings.grid(query),
    counts: async (query) => {
      await gate;
      return readings.counts(query);
    },
  });
  const read = (jobId: number) => worker().job(caller, device.id, jobId);
  const started = async (jobId: number) => {
    await waitUntil(
      'the worker to take the job',
      async () => (await read(jobId)).status !== 'pending',
      {
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
    return read(jobId);
  };

  beforeAll(async () => {
    const signed = await signUp(auth, { plan: 'industrial', admin });
    caller = { tenantId: signed.tenantId, userId: signed.userId };
    owner = signed.token;
    device = await machine(owner);
    const history = regimeHistory({ seed: 23, steps: 400, stepMs: STEP_MS, startMs: 0 });
    const end = Math.floor((Date.now() - 10 * 60_000) / STEP_MS) * STEP_MS;
    const at = history.times.map((time) => end - 399 * STEP_MS + time);
    await ingest(telemetry(device.deviceId, at, history.rows));
    range = { from: new Date((at[0] as number) - STEP_MS), to: new Date(end + STEP_MS) };
  }, 60_000);

  it("after the lost worker's deadline Lambda's retry takes the job over; the lost worker's late outcome changes nothing", async () => {
    clock = Date.now();
    const queued = await worker().startDiscovery(caller, device.id, range);
    expect(queued).toMatchObject({ status: 'pending', attempts: 0, deadline_at: null });
    let resume = () => {};
    const first = worker(stopped(new Promise((go) => (resume = go)))).runJob(
      caller.tenantId,
      queued.job_id,
      600_000,
    );
    const running = await started(queued.job_id);
    expect(running).toMatchObject({ status: 'running', attempts: 1 });
    expect(Date.parse(running.deadline_at as string)).toBe(clock + 600_000);

    // The same event again before the deadline (a duplicate delivery): the worker that has
    // the job may still be running, so it is left alone.
    clock += 60_000;
    await worker().runJob(caller.tenantId, queued.job_id, 900_000);
    expect(await read(queued.job_id)).toMatchObject({ status: 'running', attempts: 1 });

    // Lambda ends the worker at its deadline and retries a minute later: the retry takes over.
    clock += 600_000;
    expect(await read(queued.job_id)).toMatchObject({ status: 'running', attempts: 1 });
    await worker().runJob(caller.tenantId, queued.job_id, 900_000);
    const done = await read(queued.job_id);
    expect(done, JSON.stringify(done)).toMatchObject({
      status: 'done',
      attempts: 2,
      error: null,
      result: { entity_ids: ['current', 'temperature', 'vibration'] },
    });
    const patterns = await worker().patterns(caller, device.id);
    expect(patterns.patterns.length).toBeGreaterThan(0);

    // The lost worker comes back to life and completes its discovery: nothing of it is kept.
    resume();
    await first;
    expect(await read(queued.job_id)).toEqual(done);
    expect((await worker().patterns(caller, device.id)).patterns).toEqual(patterns.patterns);
  }, 60_000);

  it('a lost worker with no retry to come fails the job on the next read, which says why', async () => {
    clock = Date.now();
    const queued = await worker().startDiscovery(caller, device.id, range);
    void worker(stopped(new Promise(() => {}))).runJob(caller.tenantId, queued.job_id, 600_000);
    await started(queued.job_id);
    // Up to the deadline and the retries' window, a retry may still come.
    clock += 600_000 + 5 * 60_000;
    expect(await read(queued.job_id)).toMatchObject({ status: 'running', attempts: 1 });
    clock += 1;
    const lost: PatternJob = await read(queued.job_id);
    expect(lost).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { code: 'discovery_lost' },
    });
    expect(Date.parse(lost.finished_at as string)).toBe(clock);
    expect(lost.error?.message).toMatch(/stopped before it finished.*1 attempt\b.*start it again/);
    // A retry arriving after that finds nothing to take.
    await worker().runJob(caller.tenantId, queued.job_id, 900_000);
    expect(await read(queued.job_id)).toEqual(lost);
  }, 60_000);

  it('the API fails, when it is read, a job whose last worker ended long ago or that no worker ever started', async () => {
    const { rows } = await admin.query<{ id: number }>(
      `INSERT INTO pattern_jobs (tenant_id, device_id, request, status, attempts, created_at,
                                 started_at, deadline_at)
       VALUES ($1, $2, '{}', 'running', 3, now() - interval '2 hours', now() - interval '2 hours',
               now() - interval '105 minutes'),
              ($1, $2, '{}', 'pending', 0, now() - interval '7 hours', NULL, NULL)
       RETURNING id`,
      [caller.tenantId, device.id],
    );
    const [ended, neverStarted] = rows.map((row) =>
      call('GET /api/devices/{id}/patterns/jobs/{job_id}', owner, {
        params: { id: String(device.id), job_id: String(row.id) },
      }),
    );
    expect((await ended)?.body.job).toMatchObject({
      status: 'failed',
      attempts: 3,
      error: { code: 'discovery_lost', message: expect.stringContaining('3 attempts') },
    });
    expect((await neverStarted)?.body.job).toMatchObject({
      status: 'failed',
      attempts: 0,
      error: { code: 'discovery_lost', message: expect.stringContaining('No worker started') },
    });
  });
});

describe('plan gate, roles, tenant isolation and bad input', () => {
  let a: Tenant;
  let b: Tenant;
  let professional: Tenant;
  let press: { id: number; deviceId: string };
  let foreign: { id: number; deviceId: string };
  let professionalPress: { id: number; deviceId: string };
  let foreignPattern: number;

  beforeAll(async () => {
    [a, b, professional] = await Promise.all([
      tenant('industrial'),
      tenant('industrial'),
      tenant('professional'),
    ]);
    [press, foreign, professionalPress] = await Promise.all([
      machine(a.owner),
      machine(b.owner),
      machine(professional.owner),
    ]);
    // Tenant b's press gets patterns of its own.
    const history = regimeHistory({ seed: 3, steps: 400, stepMs: STEP_MS, startMs: 0 });
    const end = Math.floor((Date.now() - 60 * 60_000) / STEP_MS) * STEP_MS;
    const times = history.times.map((time) => end - 400 * STEP_MS + time);
    await ingest(telemetry(foreign.deviceId, times, history.rows));
    const job = await call('POST /api/devices/{id}/patterns/discover', b.owner, {
      params: { id: String(foreign.id) },
      body: { from: new Date(end - 401 * STEP_MS).toISOString(), to: new Date(end).toISOString() },
    });
    expect(job.body.job.status, JSON.stringify(job.body)).toBe('done');
    const listed = await call('GET /api/devices/{id}/patterns', b.owner, {
      params: { id: String(foreign.id) },
    });
    foreignPattern = listed.body.patterns[0].pattern_id;
  }, 60_000);

  /** Every route with a valid request for `device`. */
  const requests = (device: { id: number }, patternId = 1) => {
    const id = String(device.id);
    return [
      ['POST /api/devices/{id}/patterns/discover', { params: { id }, body: {} }],
      ['GET /api/devices/{id}/patterns/jobs/{job_id}', { params: { id, job_id: '1' } }],
      ['GET /api/devices/{id}/patterns', { params: { id } }],
      [
        'PATCH /api/devices/{id}/patterns/{pattern_id}',
        { params: { id, pattern_id: String(patternId) }, body: { label: 'idle' } },
      ],
      ['GET /api/devices/{id}/patterns/timeline', { params: { id } }],
    ] as const;
  };

  it('Professional gets 403 plan_required on every route, and nothing is written', async () => {
    for (const [routeKey, options] of requests(professionalPress)) {
      const answer = await call(routeKey, professional.owner, options);
      expect(answer.status, routeKey).toBe(403);
      expect(answer.body.error.code, routeKey).toBe('plan_required');
    }
    expect(await jobCount(professional.id)).toBe(0);
    // The device detail has no current pattern below the plan.
    const detail = await callRoute(devices, 'GET /api/devices/{id}', {
      token: professional.owner,
      params: { id: String(professionalPress.id) },
    });
    expect(detail.body.current_pattern).toBeNull();
  });

  it('a viewer reads but gets 403 insufficient_role on every change', async () => {
    for (const [routeKey, options] of requests(press)) {
      const answer = await call(routeKey, a.viewer, options);
      if (routeKey.startsWith('GET')) {
        // The job route answers 404 for a job the device never had; the rest 200.
        expect(answer.status, routeKey).toBe(routeKey.includes('job_id') ? 404 : 200);
      } else {
        expect(answer.status, routeKey).toBe(403);
        expect(answer.body.error.code, routeKey).toBe('insufficient_role');
      }
    }
    expect(await jobCount(a.id)).toBe(0);
  });

  it("another tenant's device, job and pattern are not found, and nothing of theirs changes", async () => {
    for (const [routeKey, options] of requests(foreign, foreignPattern)) {
      const answer = await call(routeKey, a.owner, options);
      expect(answer.status, routeKey).toBe(404);
      expect(answer.body.error.code, routeKey).toBe('device_not_found');
    }
    // b's pattern through a's own device.
    const crossed = await call('PATCH /api/devices/{id}/patterns/{pattern_id}', a.owner, {
      params: { id: String(press.id), pattern_id: String(foreignPattern) },
      body: { label: 'stolen' },
    });
    expect(crossed.status).toBe(404);
    expect(crossed.body.error.code).toBe('pattern_not_found');
    const { rows } = await admin.query('SELECT label FROM patterns WHERE id = $1', [
      foreignPattern,
    ]);
    expect(rows[0].label).toBeNull();
    expect(await jobCount(a.id)).toBe(0);
  });

  it('bad input gets a clear 4xx and writes nothing', async () => {
    const id = String(press.id);
    const hour = 3_600_000;
    const refused = [
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { entity_ids: ['nope'] } },
        404,
        'entity_not_found',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { entity_ids: ['relay'] } },
        400,
        'entity_not_numeric',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { entity_ids: ['current', 'current'] } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { entity_ids: [] } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { window: 5 } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { from: 'yesterday' } },
        400,
        'validation_failed',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        {
          params: { id },
          body: {
            from: new Date(Date.now() - hour).toISOString(),
            to: new Date(Date.now() - 2 * hour).toISOString(),
          },
        },
        400,
        'invalid_range',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { to: new Date(Date.now() + 2 * hour).toISOString() } },
        400,
        'invalid_range',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id }, body: { from: '2020-01-01T00:00:00Z' } },
        400,
        'range_too_long',
      ],
      [
        'POST /api/devices/{id}/patterns/discover',
        { params: { id: '0' }, body: {} },
        400,
        'validation_failed',
      ],
      [
        'PATCH /api/devices/{id}/patterns/{pattern_id}',
        { params: { id, pattern_id: '2147483647' }, body: { label: 'idle' } },
        404,
        'pattern_not_found',
      ],
      [
        'PATCH /api/devices/{id}/patterns/{pattern_id}',
        { params: { id, pattern_id: '1' }, body: { label: 'x'.repeat(101) } },
        400,
        'validation_failed',
      ],
      [
        'PATCH /api/devices/{id}/patterns/{pattern_id}',
        { params: { id, pattern_id: '1' }, body: { label: '   ' } },
        400,
        'validation_failed',
      ],
      [
        'PATCH /api/devices/{id}/patterns/{pattern_id}',
        { params: { id, pattern_id: '1' }, body: {} },
        400,
        'validation_failed',
      ],
      [
        'GET /api/devices/{id}/patterns/timeline',
        { params: { id }, query: { from: 'soon' } },
        400,
        'validation_failed',
      ],
      [
        'GET /api/devices/{id}/patterns/jobs/{job_id}',
        { params: { id, job_id: 'x' } },
        400,
        'validation_failed',
      ],
    ] as const;
    for (const [routeKey, options, status, code] of refused) {
      const answer = await call(routeKey, a.owner, options);
      expect(answer.status, `${routeKey} ${JSON.stringify(options)}`).toBe(status);
      expect(answer.body.error.code, `${routeKey} ${JSON.stringify(options)}`).toBe(code);
      expect(typeof answer.body.error.message).toBe('string');
    }
    expect(await jobCount(a.id)).toBe(0);
    // A device with no numeric entity has nothing to find patterns in.
    const relayOnly = await machine(a.owner, [{ entity_id: 'relay', entity_type: 'switch' }]);
    const answer = await call('POST /api/devices/{id}/patterns/discover', a.owner, {
      params: { id: String(relayOnly.id) },
      body: {},
    });
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe('no_numeric_entities');
    expect(await jobCount(a.id)).toBe(0);
  });
});
