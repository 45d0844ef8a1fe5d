import type { InfluxClient, InfluxValue } from '../../timeseries/adapters/influx-client.ts';
import { statements, tenantSelect } from '../../timeseries/adapters/influxql.ts';
import { type Reading, storageOf } from '../../timeseries/reading.ts';
import type { StoredReadingSource, StoredReadingsQuery } from '../domain/ports.ts';

const NUMERIC = storageOf('sensor');

/**
 * The raw numeric points of some of a tenant's devices, read back for scoring: one request
 * (one statement per tier during a tier move), grouped by device and entity. Sensor and
 * number entities share the field, so the entity type comes back as `sensor` (scoring
 * treats both alike).
 */
export class InfluxStoredReadings implements StoredReadingSource {
  constructor(
    private readonly client: InfluxClient,
    private readonly database: string,
  ) {}

  async numericReadings(query: StoredReadingsQuery): Promise<Map<string, Reading[]>> {
    const byDevice = new Map<string, Reading[]>();
    if (query.deviceIds.length === 0) return byDevice;
    const reads: Array<{ policy: string; fromMs: number; toMs?: number }> = [];
    const prior = query.priorTier;
    if (prior && prior.before > query.fromMs) {
      reads.push({
        policy: prior.policy,
        fromMs: query.fromMs,
        toMs: Math.min(prior.before, query.toMs ?? prior.before),
      });
    }
    const currentFrom = prior ? Math.max(query.fromMs, prior.before) : query.fromMs;
    if (query.toMs === undefined || currentFrom < query.toMs) {
      reads.push({
        policy: query.retentionPolicy,
        fromMs: currentFrom,
        ...(query.toMs !== undefined ? { toMs: query.toMs } : {}),
      });
    }
    const results = await this.client.query(
      statements(
        reads.map((read) =>
          tenantSelect({
            tenantId: query.tenantId,
            from: {
              database: this.database,
              retentionPolicy: read.policy,
              measurement: NUMERIC.measurement,
            },
            select: [{ expr: { field: NUMERIC.field }, as: 'value' }],
            tags: { device_id: query.deviceIds },
            time: { from: read.fromMs, ...(read.toMs !== undefined ? { to: read.toMs } : {}) },
            groupBy: { tags: ['device_id', 'entity_id'] },
          }),
        ),
      ),
    );
    for (const [index, result] of results.entries()) {
      const policy = (reads[index] as (typeof reads)[number]).policy;
      for (const series of result.series) {
        const deviceId = series.tags.device_id;
        const entityId = series.tags.entity_id;
        if (deviceId === undefined || entityId === undefined) continue;
        const valueColumn = series.columns.indexOf('value');
        const list = byDevice.get(deviceId) ?? [];
        for (const row of series.values) {
          const value: InfluxValue | undefined = row[valueColumn];
          const time = row[0];
          if (typeof value !== 'number' || typeof time !== 'number') continue;
          list.push({
            tenantId: query.tenantId,
            deviceId,
            entityId,
            entityType: 'sensor',
            value,
            timeMs: time,
            retentionPolicy: policy,
          });
        }
        byDevice.set(deviceId, list);
      }
    }
    return byDevice;
  }
}
