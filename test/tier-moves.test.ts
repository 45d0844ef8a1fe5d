import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { inTenantTransaction } from '../shared/db/postgres.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { InfluxReadingStore } from '../shared/timeseries/adapters/influx-reading-store.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
import {
  InfluxRollups,
  InfluxTierData,
  influxQlPurger,
} from '../shared/timeseries/adapters/influx-tiers.ts';
import {
  TIER_COLUMNS,
  type TierRow,
  tiersOf,
} from '../shared/timeseries/adapters/postgres-tenant-storage.ts';
import { tierMoves } from '../shared/timeseries/composition.ts';
import { DAY_MS } from '../shared/timeseries/domain/tier-moves.ts';
import type { Reading } from '../shared/timeseries/reading.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * A tier move against real PostgreSQL and InfluxDB: at every step, including after a driver
 * died halfway through a day, each reading is counted exactly once through the read path;
 * another driver takes the move over once the lease lapses and finishes it.
 */
const stack = useTestStack();
const admin = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 2 });
const app = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
const influx = new InfluxClient({ url: stack.influxUrl, database: DEFAULT_DATABASE });
const store = new InfluxReadingStore({ client: influx });
afterAll(async () => {
  await admin.end();
  await app.end();
});

/** A starter tenant with one device, made by the operator. */
async function starterTenantWithPress(): Promise<{ tenantId: number; deviceId: string }> {
  const { rows } = await admin.query<{ id: number }>(
    `INSERT INTO tenants (name, plan) VALUES ($1, 'starter') RETURNING id`,
    [unique('Mover')],
  );
  const tenantId = rows[0]?.id as number;
  const deviceId = unique('MOVE');
  await admin.query(
    `INSERT INTO devices (tenant_id, device_id, name, type, last_seen) VALUES ($1, $2, 'Press', 'press', now())`,
    [tenantId, deviceId],
  );
  return { tenantId, deviceId };
}

describe('tier moves', () => {
  it('a move interrupted mid-day and resumed by another driver never hides or doubles a reading', async () => {
    const { tenantId, deviceId } = await starterTenantWithPress();
    const now = Date.now();
    const readings: Reading[] = Array.from({ length: 120 }, (_, n) => ({
      tenantId,
      deviceId,
      entityId: 'force',
      entityType: 'sensor',
      value: n,
      timeMs: now - 5 * DAY_MS + n * 3_600_000,
      retentionPolicy: 'starter_plan',
    }));
    await store.writeReadings(readings);
    await new InfluxRollups(influx, DEFAULT_DATABASE).recompute(
      tenantId,
      'starter_plan',
      now - 6 * DAY_MS,
      now,
    );

    await admin.query(`UPDATE tenants SET plan = 'professional' WHERE id = $1`, [tenantId]);
    const moved = await admin.query<{ id: number }>('SELECT start_tier_move($1) AS id', [tenantId]);
    const ref = { id: Number(moved.rows[0]?.id), tenantId };

    const counted = async () => {
      const tiers = await inTenantTransaction(app, tenantId, async (client) => {
        const storage = await client.query<TierRow>(`SELECT ${TIER_COLUMNS} FROM tenant_storage`);
        return tiersOf(storage.rows[0]);
      });
      const query = {
        tenantId,
        deviceId,
        entities: [{ entityId: 'force', entityType: 'sensor' as const }],
        from: new Date(now - 6 * DAY_MS),
        to: new Date(now),
        ...tiers,
      };
      const sum = async (every: string) =>
        (await store.series({ ...query, every, fn: 'count' })).series[0]?.points.reduce(
          (total, point) => total + (point.value as number),
          0,
        );
      return { daily: await sum('1d'), hourly: await sum('1h'), prior: tiers.priorTier };
    };

    expect(await counted()).toMatchObject({ daily: 120, hourly: 120 });
    const first = tierMoves(app, influx, { leaseMs: 200, settleMs: 0, owner: 'first' });
    for (let step = 0; step < 3; step++) {
      const move = await first.step(ref);
      expect(move?.finishedAt).toBeNull();
      const seen = await counted();
      expect(seen).toMatchObject({ daily: 120, hourly: 120 });
      expect(seen.prior?.before).toBe(move?.copiedFrom);
    }
    // The first driver copies the next day, then dies before recording it.
    const copiedFrom = (await first.log.get(ref))?.copiedFrom as number;
    const rollups = new InfluxRollups(influx, DEFAULT_DATABASE);
    await new InfluxTierData(
      influx,
      DEFAULT_DATABASE,
      rollups,
      influxQlPurger(influx, DEFAULT_DATABASE),
    ).copy(tenantId, 'starter_plan', 'professional_plan', {
      from: copiedFrom - DAY_MS,
      to: copiedFrom,
    });
    expect(await counted()).toMatchObject({ daily: 120, hourly: 120 });

    const second = tierMoves(app, influx, { leaseMs: 200, settleMs: 0, owner: 'second' });
    // The first driver's lease lapses; until then the move is not the second's to take.
    await expect.poll(() => second.step(ref), { timeout: 10_000, interval: 50 }).not.toBeNull();
    const done = await second.run(ref);
    expect(done?.finishedAt).not.toBeNull();
    expect(await counted()).toEqual({ daily: 120, hourly: 120, prior: undefined });
    const [inNewTier] = await influx.query(
      `SELECT count("value") FROM "${DEFAULT_DATABASE}"."professional_plan"."sensor_data" WHERE "tenant_id" = '${tenantId}'` as never,
    );
    expect(inNewTier?.series[0]?.values[0]?.[1]).toBe(120);
    // The first driver cannot record anything on the finished move.
    expect(await first.step(ref)).toBeNull();
  });

  it('a reading written to the new tier as the plan changes is read before the move has run a step', async () => {
    const { tenantId, deviceId } = await starterTenantWithPress();
    const reading = (timeMs: number, retentionPolicy: string): Reading => ({
      tenantId,
      deviceId,
      entityId: 'force',
      entityType: 'sensor',
      value: 1,
      timeMs,
      retentionPolicy,
    });
    const from = Date.now() - 3_600_000;
    await store.writeReadings([reading(from + 60_000, 'starter_plan')]);
    await admin.query(`UPDATE tenants SET plan = 'professional' WHERE id = $1`, [tenantId]);
    await admin.query('SELECT start_tier_move($1)', [tenantId]);
    // Ingestion writes to the new tier from the change on.
    await store.writeReadings([reading(Date.now() + 1_000, 'professional_plan')]);
    const tiers = await inTenantTransaction(app, tenantId, async (client) => {
      const storage = await client.query<TierRow>(`SELECT ${TIER_COLUMNS} FROM tenant_storage`);
      return tiersOf(storage.rows[0]);
    });
    expect(tiers.retentionPolicy).toBe('professional_plan');
    const answer = await store.series({
      tenantId,
      deviceId,
      entities: [{ entityId: 'force', entityType: 'sensor' as const }],
      from: new Date(from),
      to: new Date(Date.now() + 60_000),
      ...tiers,
    });
    expect(answer.series[0]?.points).toHaveLength(2);
  });
});
