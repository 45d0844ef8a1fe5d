import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tieredCost } from '../../bench/aws-prices.ts';
import { deviceMessages, firmwareBatching } from '../../bench/firmware-defaults.ts';

/** The cost model's inputs: the firmware's own defaults, and how a device flushes them. */
describe('cost model (bench:cost)', () => {
  it("reads the firmware's default batching from its C++ core", async () => {
    const batching = await firmwareBatching(path.resolve(import.meta.dirname, '..', '..'));
    expect(batching.readings).toBeGreaterThanOrEqual(1);
    expect(batching.source).toContain('firmware/core/device.hpp');
    if (batching.readings > 1) expect(batching.maxAgeMs).toBeGreaterThan(0);
  });

  it('replays the firmware flush rule: full batches, a partial one once its oldest reading is old enough, or one state message per reading', () => {
    const window = { entities: 10, intervalMs: 10_000, phaseMs: 0, fromMs: 0, toMs: 180_000 };
    const full = deviceMessages({ readings: 60, maxAgeMs: 60_000, source: '' }, window);
    expect(full.map((m) => [m.atMs, m.rounds.length, m.kind])).toEqual([
      [50_000, 6, 'telemetry'],
      [110_000, 6, 'telemetry'],
      [170_000, 6, 'telemetry'],
    ]);
    const aged = deviceMessages({ readings: 100, maxAgeMs: 25_000, source: '' }, window);
    expect(aged[0]).toMatchObject({
      atMs: 25_000,
      rounds: [{ atMs: 0 }, { atMs: 10_000 }, { atMs: 20_000 }],
    });
    const single = deviceMessages({ readings: 1, maxAgeMs: undefined, source: '' }, window);
    expect(single).toHaveLength(180);
    expect(single.every((m) => m.kind === 'state' && m.rounds[0]?.entities.length === 1)).toBe(
      true,
    );
  });

  it('prices tiers by the volume in each', () => {
    const tiers = [
      { upTo: 1e9, usd: 1 },
      { upTo: 5e9, usd: 0.8 },
      { upTo: Number.POSITIVE_INFINITY, usd: 0.7 },
    ];
    expect(tieredCost(5e8, tiers)).toBeCloseTo(500);
    expect(tieredCost(2.592e9, tiers)).toBeCloseTo(1000 + 1592 * 0.8);
    expect(tieredCost(6e9, tiers)).toBeCloseTo(1000 + 3200 + 700);
  });
});
