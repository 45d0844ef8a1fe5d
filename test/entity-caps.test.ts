import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresDeviceDirectory } from '../shared/ingestion/adapters/postgres-device-directory.ts';
import type { Discovery } from '../shared/ingestion/domain/payloads.ts';
import { Rejection } from '../shared/ingestion/domain/rejection.ts';
import { callRoute } from './support/api-event.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

// The free plan: 20 entities per device, 40 series (entities) per tenant.
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
const directory = new PostgresDeviceDirectory(pool, 30);
afterAll(() => pool.end());

const announce = (ids: string[]): Discovery =>
  ({
    entities: ids.map((entity_id) => ({ entity_id, entity_type: 'sensor', name: entity_id })),
  }) as Discovery;
const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

async function discover(deviceId: string, ids: string[]) {
  const context = await directory.resolve(deviceId);
  if (!context) throw new Error(`${deviceId} not registered`);
  return directory.applyDiscovery(context, announce(ids)).then(
    () => 'applied',
    (error: unknown) => (error instanceof Rejection ? error.reason : Promise.reject(error)),
  );
}

/** A new free-plan tenant with `count` registered devices. */
async function tenantWithDevices(count: number) {
  const { token } = await signUp(auth);
  const registered = [];
  for (let i = 0; i < count; i++)
    registered.push(await addDevice(devices, token, { name: `Machine ${i}` }));
  return {
    token,
    deviceIds: registered.map((device) => device.deviceId),
    rowIds: registered.map((device) => device.id),
  };
}

describe('per-plan caps on entities per device and series per tenant', () => {
  it('refuses growth past either cap with entity_limit_reached, stores none of it, and keeps serving the device', async () => {
    const { token, deviceIds, rowIds } = await tenantWithDevices(3);
    const [first, second, third] = deviceIds as [string, string, string];

    expect(await discover(first, range('e', 0, 20))).toBe('applied');
    expect(await discover(first, range('e', 20, 21))).toBe('entity_limit_reached');
    // A whole discovery that would cross the cap is refused, not cut.
    expect(await discover(first, [...range('e', 0, 19), 'extra'])).toBe('entity_limit_reached');
    // Re-announcing what it has is fine.
    expect(await discover(first, range('e', 0, 20))).toBe('applied');

    expect(await discover(second, range('e', 0, 20))).toBe('applied');
    expect(await discover(third, range('e', 0, 1))).toBe('entity_limit_reached');

    const detail = await callRoute(devices, 'GET /api/devices/{id}', {
      token,
      params: { id: String(rowIds[0]) },
    });
    expect(detail.status).toBe(200);
    expect(detail.body.entities).toHaveLength(20);
    const overview = await callRoute(auth, 'GET /api/tenant', { token });
    expect(overview.body.usage.entities).toBe(40);
    expect(overview.body.plan).toMatchObject({ max_entities_per_device: 20, max_series: 40 });
  });
  it("judges a batch of one tenant's discoveries device by device, in order, in one call", async () => {
    const { token, deviceIds, rowIds } = await tenantWithDevices(3);
    const [a, b, c] = await Promise.all(
      deviceIds.map(async (id) => {
        const context = await directory.resolve(id);
        if (!context) throw new Error(`${id} not registered`);
        return context;
      }),
    );
    if (!a || !b || !c) throw new Error('three devices expected');
    const outcomes = async (items: Array<[typeof a, string[]]>) =>
      (
        await directory.applyDiscoveries(
          a.tenantId,
          items.map(([device, ids]) => ({ device, discovery: announce(ids) })),
        )
      ).map((refused) => (refused instanceof Rejection ? refused.reason : 'applied'));
    // Over the per-device cap: refused whole, and the devices after it still judged.
    expect(
      await outcomes([
        [a, range('a', 0, 20)],
        [b, range('b', 0, 21)],
        [c, range('c', 0, 20)],
      ]),
    ).toEqual(['applied', 'entity_limit_reached', 'applied']);
    // The tenant's 40 series are taken: growth is refused, re-announcing is not.
    expect(
      await outcomes([
        [b, range('b', 0, 1)],
        [a, range('a', 0, 20)],
        [c, []],
      ]),
    ).toEqual(['entity_limit_reached', 'applied', 'applied']);
    const entitiesOf = async (index: number) =>
      (
        await callRoute(devices, 'GET /api/devices/{id}', {
          token,
          params: { id: String(rowIds[index]) },
        })
      ).body.entities.length;
    expect([await entitiesOf(0), await entitiesOf(1), await entitiesOf(2)]).toEqual([20, 0, 20]);
  });
});
