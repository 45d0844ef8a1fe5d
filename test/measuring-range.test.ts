import { beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { ruleOutput } from './support/kinesis-event.ts';
import { scoreAnomalies, tenantsOfOutputs } from './support/scoring.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, addViewer, signUp } from './support/tenants.ts';

/**
 * An entity's measuring range, with the functions invoked in-process against real
 * PostgreSQL and InfluxDB: announced in the device's discovery, set through the API (plan
 * gate, roles, tenant isolation, bad input), returned with the device, and used by the
 * advanced detector in the scheduled scoring pass.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const ml = (await import('../functions/ml/handler.ts')).handler;
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const admin = adminPool(stack);

const MINUTE = 60_000;
const ROUTE = 'PUT /api/devices/{id}/entities/{entity_id}/measuring-range';

/** Stored, then scored by a scheduled pass, as the schedule would soon after. */
async function ingest(events: object[]) {
  const summary = await ingestionService().ingest(events);
  expect(summary.rejected).toEqual({});
  await scoreAnomalies(await tenantsOfOutputs(admin, events));
}

/** The pump's discovery; `range` is the vibration sensor's announced measuring range. */
function discovery(deviceId: string, range?: { min: number; max: number }) {
  return ruleOutput(`devices/${deviceId}/discovery`, {
    entities: [
      {
        entity_id: 'vibration',
        entity_type: 'sensor',
        name: 'Vibration',
        unit: 'mm/s',
        ...(range ? { measuring_range: range } : {}),
      },
      { entity_id: 'relay', entity_type: 'switch', name: 'Relay' },
    ],
  });
}

async function pump(plan: string, range?: { min: number; max: number }) {
  const owner = await signUp(auth, { plan, admin });
  const viewer = await addViewer(auth, owner);
  const device = await addDevice(devices, owner.token, { name: 'Pump', type: 'pump' });
  await ingest([discovery(device.deviceId, range)]);
  return { owner: owner.token, viewer, id: device.id, deviceId: device.deviceId };
}

type Pump = Awaited<ReturnType<typeof pump>>;

const setRange = (p: Pump, body: unknown, options: { token?: string; entity?: string } = {}) =>
  callRoute(devices, ROUTE, {
    token: options.token ?? p.owner,
    params: { id: String(p.id), entity_id: options.entity ?? 'vibration' },
    body,
  });

async function rangeShown(p: Pump) {
  const detail = await callRoute(devices, 'GET /api/devices/{id}', {
    token: p.viewer,
    params: { id: String(p.id) },
  });
  expect(detail.status).toBe(200);
  return detail.body.entities.find((e: { entity_id: string }) => e.entity_id === 'vibration')
    .measuring_range;
}

/** Steady readings around 4 mm/s, one a minute, ending `end`. */
function steady(deviceId: string, count: number, end: number) {
  return Array.from({ length: count }, (_, n) =>
    ruleOutput(`devices/${deviceId}/vibration/state`, {
      value: 4 + 0.2 * Math.sin(n * 12.9898),
      timestamp: (end - (count - n) * MINUTE) / 1000,
    }),
  );
}

describe('measuring range through discovery and the API', () => {
  let a: Pump;
  let b: Pump;

  beforeAll(async () => {
    [a, b] = await Promise.all([pump('industrial', { min: 0, max: 40 }), pump('industrial')]);
  });

  it("the device's announced range is shown; a range set through the API wins over it until cleared", async () => {
    expect(await rangeShown(a)).toEqual({ min: 0, max: 40, source: 'device' });
    expect(await rangeShown(b)).toBeNull();

    const set = await setRange(a, { min: -5, max: 80 });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({
      entity_id: 'vibration',
      measuring_range: { min: -5, max: 80, source: 'user' },
    });
    await ingest([discovery(a.deviceId, { min: 0, max: 30 })]);
    expect(await rangeShown(a)).toEqual({ min: -5, max: 80, source: 'user' });

    const cleared = await setRange(a, {});
    expect(cleared.body).toEqual({
      entity_id: 'vibration',
      measuring_range: { min: 0, max: 30, source: 'device' },
    });
    expect(await rangeShown(a)).toEqual({ min: 0, max: 30, source: 'device' });
    // A discovery without the range takes the device's away.
    await ingest([discovery(a.deviceId)]);
    expect(await rangeShown(a)).toBeNull();

    const { rows } = await admin.query(
      `SELECT action, details FROM audit_log WHERE action = 'entity_measuring_range.set'
        AND details ->> 'device_id' = $1 ORDER BY id`,
      [a.deviceId],
    );
    expect(rows.map((r) => r.details.measuring_range)).toEqual([{ min: -5, max: 80 }, null]);
  });

  it('refuses viewers, other tenants, lower plans and bad ranges, and changes nothing', async () => {
    await setRange(b, { min: 0, max: 10 });
    const refusals: Array<[Promise<{ status: number; body: any }>, number, string]> = [
      [setRange(b, { min: 0, max: 99 }, { token: b.viewer }), 403, 'insufficient_role'],
      [setRange(b, { min: 0, max: 99 }, { token: a.owner }), 404, 'device_not_found'],
      [setRange(b, { min: 0, max: 99 }, { entity: 'no_such' }), 404, 'entity_not_found'],
      [setRange(b, { min: 0, max: 99 }, { entity: 'relay' }), 400, 'entity_not_numeric'],
      [setRange(b, { min: 10, max: 10 }), 400, 'invalid_measuring_range'],
      [setRange(b, { min: 1 }), 400, 'invalid_measuring_range'],
      [setRange(b, { min: '0', max: 99 }), 400, 'validation_failed'],
      [setRange(b, { min: 0, max: 99, step: 1 }), 400, 'validation_failed'],
    ];
    for (const [answer, status, code] of refusals) {
      const { status: got, body } = await answer;
      expect({ got, code: body.error?.code }).toEqual({ got: status, code });
      expect(typeof body.error.message).toBe('string');
    }
    expect(await rangeShown(b)).toEqual({ min: 0, max: 10, source: 'user' });

    const professional = await pump('professional');
    const gated = await setRange(professional, { min: 0, max: 10 });
    expect(gated.status).toBe(403);
    expect(gated.body.error.code).toBe('plan_required');
    expect(await rangeShown(professional)).toBeNull();
  });

  it('a discovery with a range on a switch, or min not below max, is refused and stores nothing', async () => {
    const p = await pump('industrial');
    const bad = [
      {
        entity_id: 'relay',
        entity_type: 'switch',
        name: 'Relay',
        measuring_range: { min: 0, max: 1 },
      },
      {
        entity_id: 'vibration',
        entity_type: 'sensor',
        name: 'V',
        measuring_range: { min: 5, max: 5 },
      },
      { entity_id: 'vibration', entity_type: 'sensor', name: 'V', measuring_range: { min: 0 } },
    ];
    for (const entity of bad) {
      const summary = await ingestionService().ingest([
        ruleOutput(`devices/${p.deviceId}/discovery`, { entities: [entity] }),
      ]);
      expect(summary.rejected).toEqual({ invalid_payload: 1 });
    }
    expect(await rangeShown(p)).toBeNull();
  });
});

describe('the advanced detector uses the range', () => {
  it("learns the levels shown on the entity's range, and a changed or cleared range starts them afresh", async () => {
    const p = await pump('industrial', { min: 0, max: 40 });
    const measuring = async () => {
      const { rows } = await admin.query(
        `SELECT st.state FROM ml_detector_states st JOIN devices d ON d.id = st.device_id
          WHERE d.device_id = $1 AND st.entity_id = 'vibration'`,
        [p.deviceId],
      );
      return rows[0]?.state.state.measuring;
    };
    const end = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    await ingest(steady(p.deviceId, 200, end - MINUTE));
    expect(await measuring()).toMatchObject({ min: 0, max: 40, total: 200 });

    await ingest([
      ruleOutput(`devices/${p.deviceId}/vibration/state`, { value: 12, timestamp: end / 1000 }),
    ]);
    const found = await callRoute(ml, 'GET /api/devices/{id}/anomalies', {
      token: p.owner,
      params: { id: String(p.id) },
      query: {
        from: new Date(end - MINUTE).toISOString(),
        to: new Date(end + MINUTE).toISOString(),
      },
    });
    expect(found.status).toBe(200);
    expect(found.body.anomalies).toHaveLength(1);
    expect(found.body.anomalies[0]).toMatchObject({ value: 12, anomalous: true });

    expect((await setRange(p, { min: 0, max: 100 })).status).toBe(200);
    await ingest(steady(p.deviceId, 5, end + 6 * MINUTE));
    expect(await measuring()).toMatchObject({ min: 0, max: 100, total: 5 });
    // Cleared: the device's announced range applies again, from scratch.
    expect((await setRange(p, {})).status).toBe(200);
    await ingest(steady(p.deviceId, 2, end + 9 * MINUTE));
    expect(await measuring()).toMatchObject({ min: 0, max: 40, total: 2 });
    await ingest([discovery(p.deviceId)]);
    await ingest(steady(p.deviceId, 2, end + 12 * MINUTE));
    expect(await measuring()).toBeUndefined();
  });
});
