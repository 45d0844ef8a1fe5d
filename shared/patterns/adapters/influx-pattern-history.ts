import type { ReadingStore } from '../../timeseries/domain/reading-store.ts';
import type { StepGrid } from '../domain/model.ts';
import type { GridQuery, PatternHistory, ReadingCounts } from '../domain/ports.ts';

/**
 * A device's readings as pattern recognition needs them, read through the platform's
 * reading store (InfluxDB; the tenant is in every query it builds, and it reads the rollups
 * where a step is made of whole rollup intervals).
 */
export class InfluxPatternHistory implements PatternHistory {
  constructor(private readonly readings: ReadingStore) {}

  /** One entity's buckets of `bucketMs` in [fromMs, toMs): their start and value. */
  async #buckets(
    query: Omit<GridQuery, 'stepMs'>,
    entityId: string,
    bucketMs: number,
    fn: 'mean' | 'count',
  ): Promise<Array<{ timeMs: number; value: number }>> {
    const result = await this.readings.series({
      tenantId: query.tenantId,
      deviceId: query.device.deviceId,
      entities: [{ entityId, entityType: 'sensor' }],
      from: new Date(query.fromMs),
      // The store's `to` is inclusive.
      to: new Date(query.toMs - 1),
      every: `${Math.round(bucketMs / 1000)}s`,
      fn,
      retentionPolicy: query.device.tier.retentionPolicy,
      priorTier: query.device.tier.priorTier,
    });
    const points: Array<{ timeMs: number; value: number }> = [];
    for (const point of result.series[0]?.points ?? []) {
      if (typeof point.value === 'number' && Number.isFinite(point.value))
        points.push({ timeMs: Date.parse(point.time), value: point.value });
    }
    return points;
  }

  async grid(query: GridQuery): Promise<StepGrid> {
    const steps = Math.max(0, Math.round((query.toMs - query.fromMs) / query.stepMs));
    const rows = Array.from({ length: steps }, () =>
      new Array<number>(query.entityIds.length).fill(Number.NaN),
    );
    // One entity at a time keeps each read far below the store's points limit.
    const series = await Promise.all(
      query.entityIds.map((entityId) => this.#buckets(query, entityId, query.stepMs, 'mean')),
    );
    series.forEach((points, e) => {
      for (const p of points) {
        const row = rows[Math.floor((p.timeMs - query.fromMs) / query.stepMs)];
        if (row) row[e] = p.value;
      }
    });
    return { fromMs: query.fromMs, stepMs: query.stepMs, rows };
  }

  counts(query: Omit<GridQuery, 'stepMs'> & { bucketMs: number }): Promise<ReadingCounts[]> {
    return Promise.all(
      query.entityIds.map(async (entityId) =>
        (await this.#buckets(query, entityId, query.bucketMs, 'count'))
          .filter((p) => p.value > 0)
          .map((p) => ({ timeMs: p.timeMs, readings: p.value })),
      ),
    );
  }
}
