import { describe, expect, it } from 'vitest';
import { adminPool } from './support/in-process.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

/**
 * The detector states of a batch's devices in real PostgreSQL: one load and one
 * compare-and-set save per tenant, a device whose states moved refused alone, and the
 * tenant's row-level security around both.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const { databasePool } = await import('../shared/composition.ts');
const { PostgresDetectorStates } = await import(
  '../shared/anomalies/adapters/postgres-anomalies.ts'
);
const { inTenantTransaction } = await import('../shared/db/postgres.ts');
const { createDetector, restoreDetector } = await import('../shared/ml/domain/detector.ts');
const admin = adminPool(stack);
const states = new PostgresDetectorStates(databasePool());

async function tenantWithDevices(count: number) {
  const { token, tenantId } = await signUp(auth, { plan: 'professional', admin });
  const pks: number[] = [];
  for (let i = 0; i < count; i++) pks.push((await addDevice(devices, token)).id);
  return { tenantId, pks };
}

const update = (entityId: string, lastTimeMs: number, basedOn: number | null) => ({
  entityId,
  state: { mean: lastTimeMs / 1000 },
  lastTimeMs,
  basedOn,
});

describe('detector states, many devices at once', () => {
  it('saves and loads a tenant’s devices in one call each; another tenant sees none of them', async () => {
    const { tenantId, pks } = await tenantWithDevices(3);
    const other = await tenantWithDevices(1);
    const moved = await states.saveIfUnchanged(
      tenantId,
      pks.map((devicePk, i) => ({
        devicePk,
        detector: 'basic' as const,
        updates: [update('a', 1000 + i, null), update('b', 2000 + i, null)],
      })),
    );
    expect(moved.size).toBe(0);
    const loaded = await states.load(
      tenantId,
      pks.map((devicePk) => ({ devicePk, entityIds: ['a', 'b', 'c'] })),
    );
    expect(
      pks.map((pk) =>
        (loaded.get(pk) ?? []).map((s) => [s.entityId, s.lastTimeMs, s.state]).sort(),
      ),
    ).toEqual(
      pks.map((_, i) => [
        ['a', 1000 + i, { mean: (1000 + i) / 1000 }],
        ['b', 2000 + i, { mean: (2000 + i) / 1000 }],
      ]),
    );
    // Another tenant asking for these devices gets nothing, and cannot overwrite them.
    const asOther = pks.map((devicePk) => ({ devicePk, entityIds: ['a', 'b'] }));
    expect((await states.load(other.tenantId, asOther)).size).toBe(0);
    await expect(
      states.saveIfUnchanged(other.tenantId, [
        { devicePk: pks[0] as number, detector: 'basic', updates: [update('a', 9999, 1000)] },
      ]),
    ).resolves.toEqual(new Set([pks[0]]));
    const after = await states.load(tenantId, [{ devicePk: pks[0] as number, entityIds: ['a'] }]);
    expect(after.get(pks[0] as number)?.[0]?.lastTimeMs).toBe(1000);
  });

  it('refuses only the device whose state moved (or appeared) since it was loaded; saves the others whole', async () => {
    const { tenantId, pks } = await tenantWithDevices(3);
    const [first, second, third] = pks as [number, number, number];
    await states.saveIfUnchanged(tenantId, [
      { devicePk: first, detector: 'basic', updates: [update('a', 1000, null)] },
      { devicePk: second, detector: 'basic', updates: [update('a', 1000, null)] },
    ]);
    const moved = await states.saveIfUnchanged(tenantId, [
      // Computed from the state saved at 1000: saved.
      {
        devicePk: first,
        detector: 'basic',
        updates: [update('a', 2000, 1000), update('b', 2000, null)],
      },
      // Computed from 500, but 1000 is saved: refused whole (its new entity b too).
      {
        devicePk: second,
        detector: 'basic',
        updates: [update('a', 2000, 500), update('b', 2000, null)],
      },
      // Thought it had no state, but another invocation saved one: refused.
      { devicePk: third, detector: 'basic', updates: [update('a', 2000, null)] },
    ]);
    expect(moved).toEqual(new Set([second]));
    const loaded = await states.load(
      tenantId,
      pks.map((devicePk) => ({ devicePk, entityIds: ['a', 'b'] })),
    );
    const times = (pk: number) =>
      (loaded.get(pk) ?? []).map((s) => `${s.entityId}@${s.lastTimeMs}`).sort();
    expect(times(first)).toEqual(['a@2000', 'b@2000']);
    expect(times(second)).toEqual(['a@1000']);
    expect(times(third)).toEqual(['a@2000']);
    expect(
      await states.saveIfUnchanged(tenantId, [
        { devicePk: third, detector: 'basic', updates: [update('a', 3000, null)] },
      ]),
    ).toEqual(new Set([third]));
  });

  it('a save of more devices than one statement writes saves every unmoved one, and refuses a moved one in a later statement', async () => {
    const { tenantId, pks } = await tenantWithDevices(30);
    const movedPk = pks[27] as number;
    await states.saveIfUnchanged(tenantId, [
      { devicePk: movedPk, detector: 'basic', updates: [update('a', 1000, null)] },
    ]);
    const moved = await states.saveIfUnchanged(
      tenantId,
      pks.map((devicePk, i) => ({
        devicePk,
        detector: 'basic' as const,
        // The device at 27 thinks it has no state, but one was saved: refused whole.
        updates: [update('a', 5000 + i, null), update('b', 6000 + i, null)],
      })),
    );
    expect(moved).toEqual(new Set([movedPk]));
    const loaded = await states.load(
      tenantId,
      pks.map((devicePk) => ({ devicePk, entityIds: ['a', 'b'] })),
    );
    expect(
      pks.map((pk) => (loaded.get(pk) ?? []).map((s) => `${s.entityId}@${s.lastTimeMs}`).sort()),
    ).toEqual(
      pks.map((pk, i) => (pk === movedPk ? ['a@1000'] : [`a@${5000 + i}`, `b@${6000 + i}`])),
    );
  });

  it('a first state another invocation is inserting at the same time: the device saves nothing', async () => {
    const { tenantId, pks } = await tenantWithDevices(2);
    const [racing, calm] = pks as [number, number];
    // The other invocation's first save of entity b, not yet committed.
    const other = await admin.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO ml_detector_states (device_id, tenant_id, entity_id, detector, state, last_time_ms)
         VALUES ($1, $2, 'b', 'basic', '{}', 1500)`,
        [racing, tenantId],
      );
      const saving = states.saveIfUnchanged(tenantId, [
        {
          devicePk: racing,
          detector: 'basic',
          updates: [update('a', 2000, null), update('b', 2000, null)],
        },
        { devicePk: calm, detector: 'basic', updates: [update('a', 2000, null)] },
      ]);
      // Our insert waits on theirs; once it waits, theirs commits.
      for (;;) {
        const { rows } = await admin.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ml_detector_states%'`,
        );
        if ((rows[0]?.waiting ?? 0) > 0) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await other.query('COMMIT');
      expect(await saving).toEqual(new Set([racing]));
    } finally {
      other.release();
    }
    const loaded = await states.load(
      tenantId,
      pks.map((devicePk) => ({ devicePk, entityIds: ['a', 'b'] })),
    );
    // Its entity a, written beside the refused b, was taken back.
    expect((loaded.get(racing) ?? []).map((s) => `${s.entityId}@${s.lastTimeMs}`)).toEqual([
      'b@1500',
    ]);
    expect((loaded.get(calm) ?? []).map((s) => `${s.entityId}@${s.lastTimeMs}`)).toEqual([
      'a@2000',
    ]);
  });

  it('keeps a real detector’s profile apart, rewritten only when the state carries too many changes to it, and under the tenant’s security', async () => {
    const { tenantId, pks } = await tenantWithDevices(1);
    const other = await tenantWithDevices(1);
    const devicePk = pks[0] as number;
    const reference = createDetector({ kind: 'advanced', model: null });
    let t = Date.UTC(2026, 0, 1, 6);
    const feed = (detector: ReturnType<typeof createDetector>, n: number) => {
      for (let i = 0; i < n; i++) {
        t += 60_000;
        const value = 20 + Math.sin(t / 3_600_000) * 4;
        expect(detector.score(t, value)).toEqual(reference.score(t, value));
      }
    };
    const profileRow = async () =>
      (
        await admin.query<{ xmin: string; bytes: number }>(
          'SELECT xmin::text, octet_length(profile) AS bytes FROM ml_detector_profiles WHERE device_id = $1',
          [devicePk],
        )
      ).rows;
    let basedOn: number | null = null;
    let detector = createDetector({ kind: 'advanced', model: null });
    let stored: unknown;
    const versions: string[] = [];
    for (let batch = 0; batch < 12; batch++) {
      // Ten readings a batch, a minute apart: each batch moves one or two 15-minute bins.
      feed(detector, 10);
      await states.saveIfUnchanged(tenantId, [
        {
          devicePk,
          detector: 'advanced',
          updates: [
            { entityId: 'temp', state: detector.snapshot(), lastTimeMs: t, basedOn, stored },
          ],
        },
      ]);
      basedOn = t;
      // Loaded as the scorer loads it: with what the next batch's readings need.
      const scored = { temp: { fromMs: t + 60_000, toMs: t + 10 * 60_000 } };
      const [saved] =
        (await states.load(tenantId, [{ devicePk, entityIds: ['temp'], scored }])).get(devicePk) ??
        [];
      expect(saved?.lastTimeMs).toBe(t);
      // Only a few bins of the day came (and those the state carries).
      const daily = (saved as { state: { state: { basic: { daily: unknown[] } } } }).state.state
        .basic.daily;
      expect(daily).toHaveLength(96);
      expect(Object.keys(daily).length).toBeLessThan(12);
      stored = saved?.stored;
      detector = restoreDetector(saved?.state, { adopt: true });
      const rows = await profileRow();
      expect(rows).toHaveLength(1);
      versions.push(rows[0]?.xmin as string);
    }
    // Written at the first save, and again only once the state carried more changed bins
    // than it may (never at every save).
    expect(new Set(versions).size).toBeGreaterThanOrEqual(2);
    expect(new Set(versions).size).toBeLessThanOrEqual(4);
    expect((await profileRow())[0]?.bytes).toBe(2 * 96 * 3 * 8);
    feed(detector, 5);
    // Another tenant sees neither the state nor the profile.
    expect((await states.load(other.tenantId, [{ devicePk, entityIds: ['temp'] }])).size).toBe(0);
    const seen = await inTenantTransaction(databasePool(), other.tenantId, (client) =>
      client.query('SELECT 1 FROM ml_detector_profiles WHERE device_id = $1', [devicePk]),
    );
    expect(seen.rows).toHaveLength(0);
  });

  it('a save that fails while writing a profile’s changed bins (injected) saves nothing: the batch scored again gives the same scores and state', async () => {
    const { tenantId, pks } = await tenantWithDevices(1);
    const devicePk = pks[0] as number;
    const start = Date.UTC(2026, 0, 1, 6);
    const value = (t: number) => 20 + Math.sin(t / 3_600_000) * 4 + ((t / 60_000) % 7) / 10;
    const first = createDetector({ kind: 'advanced', model: null });
    for (let i = 1; i <= 10; i++) first.score(start + i * 60_000, value(start + i * 60_000));
    const saved0 = start + 10 * 60_000;
    await states.saveIfUnchanged(tenantId, [
      {
        devicePk,
        detector: 'advanced',
        updates: [{ entityId: 'temp', state: first.snapshot(), lastTimeMs: saved0, basedOn: null }],
      },
    ]);
    // Two hours of readings in one batch: more changed bins than the state carries, so the
    // save writes them into the stored profile.
    const times = Array.from({ length: 120 }, (_, i) => saved0 + (i + 1) * 60_000);
    const scoreBatch = async () => {
      const scored = { temp: { fromMs: times[0] as number, toMs: times[119] as number } };
      const [saved] =
        (await states.load(tenantId, [{ devicePk, entityIds: ['temp'], scored }])).get(devicePk) ??
        [];
      expect(saved?.lastTimeMs).toBe(saved0);
      const detector = restoreDetector(saved?.state, { adopt: true });
      const results = times.map((t) => detector.score(t, value(t)));
      return { results, detector, stored: saved?.stored };
    };
    const profileVersion = async () =>
      (
        await admin.query<{ xmin: string }>(
          'SELECT xmin::text FROM ml_detector_profiles WHERE device_id = $1',
          [devicePk],
        )
      ).rows[0]?.xmin;
    const before = await profileVersion();
    const failed = await scoreBatch();
    await admin.query(`CREATE FUNCTION test_fail_profile_write() RETURNS trigger LANGUAGE plpgsql
      AS $$ BEGIN RAISE EXCEPTION 'injected profile write failure'; END $$`);
    await admin.query(`CREATE TRIGGER test_fail_profile_write BEFORE UPDATE ON ml_detector_profiles
      FOR EACH ROW WHEN (NEW.device_id = ${devicePk}) EXECUTE FUNCTION test_fail_profile_write()`);
    try {
      const save = (stored: unknown, detector: ReturnType<typeof createDetector>) =>
        states.saveIfUnchanged(tenantId, [
          {
            devicePk,
            detector: 'advanced',
            updates: [
              {
                entityId: 'temp',
                state: detector.snapshot({ shared: true }),
                lastTimeMs: times[119] as number,
                basedOn: saved0,
                stored,
              },
            ],
          },
        ]);
      await expect(save(failed.stored, failed.detector)).rejects.toThrow(/injected/);
      expect(await profileVersion()).toBe(before);
      await admin.query('DROP TRIGGER test_fail_profile_write ON ml_detector_profiles');
      // Retried (as the stream retries the batch): the same scores from the same state.
      const again = await scoreBatch();
      expect(again.results).toEqual(failed.results);
      expect(await save(again.stored, again.detector)).toEqual(new Set());
      expect(await profileVersion()).not.toBe(before);
      const [after] =
        (await states.load(tenantId, [{ devicePk, entityIds: ['temp'] }])).get(devicePk) ?? [];
      expect(after?.lastTimeMs).toBe(times[119]);
      // As a detector that scored every reading once, never saved.
      const reference = createDetector({ kind: 'advanced', model: null });
      for (let i = 1; i <= 10; i++) reference.score(start + i * 60_000, value(start + i * 60_000));
      expect(times.map((t) => reference.score(t, value(t)))).toEqual(failed.results);
      expect(JSON.parse(JSON.stringify(after?.state))).toEqual(
        JSON.parse(JSON.stringify(reference.snapshot())),
      );
    } finally {
      await admin.query('DROP TRIGGER IF EXISTS test_fail_profile_write ON ml_detector_profiles');
      await admin.query('DROP FUNCTION IF EXISTS test_fail_profile_write()');
    }
  });
});

const { PostgresScoringLedger } = await import(
  '../shared/anomalies/adapters/postgres-scoring-ledger.ts'
);
const { POSITION_LAG_MS } = await import('../shared/anomalies/domain/scoring-pass.ts');

describe('scoring read positions', () => {
  const ledger = new PostgresScoringLedger(databasePool());

  it('starts a new device before its registration, moves on only from the position read, and ingestion moves it back', async () => {
    const { tenantId, pks } = await tenantWithDevices(2);
    const other = await tenantWithDevices(1);
    const [first, second] = pks as [number, number];
    expect(await ledger.tenants()).toEqual(expect.arrayContaining([tenantId, other.tenantId]));
    const read = await ledger.tenant(tenantId);
    expect(read).toMatchObject({ tenantId, level: 'basic', retentionPolicy: 'professional_plan' });
    expect(read?.devices.map((d) => d.devicePk).sort()).toEqual([first, second].sort());
    for (const device of read?.devices ?? []) {
      expect(device.generation).toBe(-1);
      expect(device.readFromMs).toBeLessThanOrEqual(Date.now() - POSITION_LAG_MS);
      expect(device.readFromMs).toBeGreaterThan(Date.now() - POSITION_LAG_MS - 60_000);
    }
    const at = (pk: number, list = read?.devices ?? []) => {
      const found = list.find((d) => d.devicePk === pk);
      return { readFromMs: found?.readFromMs, generation: found?.generation as number };
    };

    await ledger.advance(tenantId, [
      { devicePk: first, readFromMs: 5_000_000, generation: at(first).generation },
      { devicePk: second, readFromMs: 5_000_000, generation: at(second).generation },
    ]);
    const moved = (await ledger.tenant(tenantId))?.devices ?? [];
    expect(at(first, moved)).toEqual({ readFromMs: 5_000_000, generation: 0 });
    // Readings stored late for the first device, while a pass had read its position: that
    // pass's move is refused; the next pass reads from the late readings.
    await ledger.markLate([{ tenantId, devicePk: first, fromMs: 4_000_000 }]);
    await ledger.advance(tenantId, [
      { devicePk: first, readFromMs: 6_000_000, generation: at(first, moved).generation },
      { devicePk: second, readFromMs: 6_000_000, generation: at(second, moved).generation },
    ]);
    const after = (await ledger.tenant(tenantId))?.devices ?? [];
    expect(at(first, after)).toEqual({ readFromMs: 4_000_000, generation: 1 });
    expect(at(second, after).readFromMs).toBe(6_000_000);
    // A mark later than the position keeps the position; a mark naming another tenant's
    // device changes nothing; another tenant's moves do not reach these devices.
    await ledger.markLate([
      { tenantId, devicePk: second, fromMs: 7_000_000 },
      { tenantId: other.tenantId, devicePk: first, fromMs: 1_000 },
    ]);
    await ledger.advance(other.tenantId, [
      { devicePk: second, readFromMs: 9_000_000, generation: 1 },
    ]);
    const last = (await ledger.tenant(tenantId))?.devices ?? [];
    expect(at(first, last)).toEqual({ readFromMs: 4_000_000, generation: 1 });
    expect(at(second, last)).toEqual({ readFromMs: 6_000_000, generation: 1 });
  });
});
