import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresPresenceStore } from '../shared/devices/adapters/postgres-presence-store.ts';
import {
  PresenceSweep,
  type SilencePolicy,
  silenceLimitMs,
} from '../shared/devices/domain/presence.ts';
import { PostgresDeviceDirectory } from '../shared/ingestion/adapters/postgres-device-directory.ts';
import type { DeviceContext } from '../shared/ingestion/domain/model.ts';
import type { Discovery } from '../shared/ingestion/domain/payloads.ts';
import { callRoute } from './support/api-event.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

/**
 * The silence sweep (run every minute by the alarm notifier's schedule) on the real
 * registry, with an injected clock: its times are in 2020, so that the devices of other
 * tests, heard from today, are never old enough for it.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
const directory = new PostgresDeviceDirectory(pool, 30);
afterAll(() => pool.end());

const policy: SilencePolicy = { factor: 3, defaultReportIntervalS: 60, lastSeenWriteS: 60 };
const sweep = new PresenceSweep(new PostgresPresenceStore(pool), policy);
const T0 = Date.UTC(2020, 0, 1);

describe('the silence sweep', () => {
  it('marks an online device offline once silent for its limit, judged by its announced interval', async () => {
    const owner = await signUp(auth);
    const registered: Array<{ rowId: number; context: DeviceContext }> = [];
    for (const name of ['usual', 'fast']) {
      const device = await addDevice(devices, owner.token, { name });
      const context = await directory.resolve(device.deviceId);
      if (!context) throw new Error('not registered');
      registered.push({ rowId: device.id, context });
    }
    const [usual, fast] = registered as [(typeof registered)[0], (typeof registered)[0]];
    // The fast one says it reports every 5 s: silent 75 s, it is gone; the other, 240 s.
    await directory.applyDiscoveries(fast.context.tenantId, [
      { device: fast.context, discovery: { entities: [], report_interval_s: 5 } as Discovery },
    ]);
    expect(silenceLimitMs(policy, 5)).toBe(75_000);
    expect(silenceLimitMs(policy)).toBe(240_000);
    const online = (lastSeenMs: number) =>
      directory.recordSeen(
        registered.map(({ context }) => ({ device: context, online: true, lastSeenMs })),
      );
    const status = async (rowId: number) =>
      (
        await callRoute(devices, 'GET /api/devices/{id}', {
          token: owner.token,
          params: { id: String(rowId) },
        })
      ).body.device.status;
    const marked = async (atMs: number) =>
      (await sweep.run(atMs))
        .filter((device) => device.tenantId === fast.context.tenantId)
        .map((device) => device.devicePk)
        .sort();

    await online(T0);
    expect(await marked(T0 + 74_000)).toEqual([]);
    expect(await marked(T0 + 76_000)).toEqual([fast.context.devicePk]);
    expect([await status(usual.rowId), await status(fast.rowId)]).toEqual(['online', 'offline']);
    expect(await marked(T0 + 239_000)).toEqual([]);
    expect(await marked(T0 + 241_000)).toEqual([usual.context.devicePk]);
    expect(await status(usual.rowId)).toBe('offline');
    // Heard from again, they are online, and the sweep leaves them be until the next silence.
    await online(T0 + 300_000);
    expect(await marked(T0 + 301_000)).toEqual([]);
    expect([await status(usual.rowId), await status(fast.rowId)]).toEqual(['online', 'online']);
  });
});
