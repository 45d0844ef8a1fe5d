import type { ReadingStore } from '../../timeseries/domain/reading-store.ts';
import { HOUR_MS } from '../domain/maintenance-service.ts';
import type {
  HourlyQuery,
  Machine,
  MachineHistory,
  StepHistory,
  StepsQuery,
} from '../domain/ports.ts';
import type { ThresholdPoint } from '../domain/time-to-threshold.ts';

/**
 * A machine's readings as predictive maintenance needs them, read through the platform's
 * reading store (InfluxDB; the tenant is in every query it builds): hours from the 1-hour
 * means (the rollups, with the recent tail raw), cycles from the raw readings.
 */
export class InfluxMachineHistory implements MachineHistory {
  constructor(private readonly readings: ReadingStore) {}

  async #series(
    tenantId: number,
    machine: Machine,
    entityId: string,
    fromMs: number,
    toMs: number,
    every: '1h' | undefined,
  ): Promise<Array<{ timeMs: number; value: number }>> {
    const result = await this.readings.series({
      tenantId,
      deviceId: machine.deviceId,
      entities: [{ entityId, entityType: 'sensor' }],
      from: new Date(fromMs),
      to: new Date(toMs),
      ...(every ? { every, fn: 'mean' as const } : { raw: true }),
      ...machine.tier,
    });
    const points: Array<{ timeMs: number; value: number }> = [];
    for (const point of result.series[0]?.points ?? []) {
      if (typeof point.value === 'number')
        points.push({ timeMs: Date.parse(point.time), value: point.value });
    }
    return points;
  }

  async steps(query: StepsQuery): Promise<StepHistory> {
    // Only the entities this machine has: the others are missing (NaN) in every row.
    const own = new Set(query.machine.entities.map((e) => e.entityId));
    const hours = query.unit === 'hours';
    const fromMs = hours ? Math.floor(query.fromMs / HOUR_MS) * HOUR_MS : query.fromMs + 1;
    const toMs = hours ? query.toMs - 1 : query.toMs;
    if (toMs < fromMs) return { times: [], rows: [] };
    // One entity at a time keeps each read far below the store's points limit.
    const series = await Promise.all(
      query.entities.map((entityId) =>
        own.has(entityId)
          ? this.#series(
              query.tenantId,
              query.machine,
              entityId,
              fromMs,
              toMs,
              hours ? '1h' : undefined,
            )
          : Promise.resolve([]),
      ),
    );
    const width = query.entities.length;
    if (hours) {
      // Every hour of the span is a step, with or without readings.
      const count = Math.max(0, Math.ceil((toMs + 1 - fromMs) / HOUR_MS));
      const times = Array.from({ length: count }, (_, i) => fromMs + i * HOUR_MS);
      const rows = times.map(() => new Array<number>(width).fill(Number.NaN));
      series.forEach((points, e) => {
        for (const p of points) {
          const i = Math.floor((p.timeMs - fromMs) / HOUR_MS);
          const row = rows[i];
          if (row) row[e] = p.value;
        }
      });
      return { times, rows };
    }
    // Cycles: every distinct reading time is a step.
    const byTime = new Map<number, number[]>();
    series.forEach((points, e) => {
      for (const p of points) {
        let row = byTime.get(p.timeMs);
        if (!row) {
          row = new Array<number>(width).fill(Number.NaN);
          byTime.set(p.timeMs, row);
        }
        row[e] = p.value;
      }
    });
    const times = [...byTime.keys()].sort((a, b) => a - b);
    return { times, rows: times.map((t) => byTime.get(t) as number[]) };
  }

  async hourly(query: HourlyQuery): Promise<ThresholdPoint[]> {
    const points = await this.#series(
      query.tenantId,
      query.machine,
      query.entityId,
      Math.floor(query.fromMs / HOUR_MS) * HOUR_MS,
      query.toMs,
      '1h',
    );
    // A bucket's mean stands for its middle, not its start (the last one may be partial).
    return points.map((p) => ({
      timeMs: Math.min(p.timeMs + HOUR_MS / 2, query.toMs),
      value: p.value,
    }));
  }
}
