import { describe, expect, it } from 'vitest';
import {
  type BacklogHour,
  type RollupBacklog,
  type RollupComputer,
  RollupService,
} from '../../shared/timeseries/domain/rollups.ts';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 7, 12);

/** In-memory ports: the scheduling logic alone, no servers. */
function service(failingTenant: number) {
  const marked: BacklogHour[] = [1, 2].map((tenantId) => ({
    tenantId,
    policy: 'free_plan',
    hourMs: NOW - 3 * HOUR,
    markedAt: 1,
  }));
  const recomputed: number[] = [];
  const backlog: RollupBacklog = {
    active: async () => [
      { tenantId: 1, policy: 'free_plan' },
      { tenantId: 2, policy: 'free_plan' },
    ],
    take: async () => [...marked],
    done: async (hours) => {
      for (const hour of hours) marked.splice(marked.indexOf(hour), 1);
    },
  };
  const computer: RollupComputer = {
    recompute: async (tenantId) => {
      if (tenantId === failingTenant) throw new Error('InfluxDB sent an unreadable query answer');
      recomputed.push(tenantId);
      return 3;
    },
  };
  const rollups = new RollupService(backlog, computer, {
    recentMs: 15 * 60_000,
    activeMs: 30 * 60_000,
    now: () => NOW,
  });
  return { rollups, recomputed, marked };
}

describe('rollup runs', () => {
  it("one tenant's failing windows neither stop the others nor lose its late hours", async () => {
    const { rollups, recomputed, marked } = service(1);
    const run = await rollups.run();
    expect(recomputed).toEqual([2, 2]);
    expect(run.tenants).toBe(1);
    expect(run.backlogHours).toBe(1);
    expect(run.points).toBe(6);
    expect(run.failures.map((failure) => failure.tenantId)).toEqual([1, 1]);
    // Tenant 1's late hour stays marked, so the next run tries it again.
    expect(marked.map((hour) => hour.tenantId)).toEqual([1]);
  });
});
