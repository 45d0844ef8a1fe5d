import { type ReadingStore, TooManyPointsError } from '../../timeseries/domain/reading-store.ts';
import type { ExportDevice, ExportReader, ExportRequest, ExportRow } from '../domain/export.ts';

const FIRST_WINDOW_MS = 60_000;
/** Points aimed at per page; the store refuses more than its own limit (set above this). */
const TARGET_POINTS = 10_000;
const MAX_GROWTH = 4;

/**
 * Reads a device's points window by window through the reading store (so plan tiers and
 * rollups are read as the API reads them), sizing each window from the last one's density:
 * a page holds about TARGET_POINTS, so memory stays flat whatever the range.
 */
export class SeriesExportReader implements ExportReader {
  constructor(private readonly readings: ReadingStore) {}

  async *pages(
    tenantId: number,
    device: ExportDevice,
    request: ExportRequest,
  ): AsyncIterable<ExportRow[]> {
    if (device.entities.length === 0) return;
    const end = request.to.getTime();
    let start = request.from.getTime();
    let windowMs = FIRST_WINDOW_MS;
    while (start <= end) {
      const to = Math.min(end, start + windowMs - 1);
      let result: Awaited<ReturnType<ReadingStore['series']>>;
      try {
        result = await this.readings.series({
          tenantId,
          deviceId: device.deviceId,
          entities: device.entities,
          from: new Date(start),
          to: new Date(to),
          source: request.source,
          retentionPolicy: device.retentionPolicy,
          priorTier: device.priorTier,
        });
      } catch (error) {
        // Denser than the last window promised: the same start, a window that fits.
        if (error instanceof TooManyPointsError && windowMs > 1) {
          windowMs = Math.max(1, Math.floor((windowMs * TARGET_POINTS) / error.points));
          continue;
        }
        throw error;
      }
      const rows: ExportRow[] = [];
      for (const series of result.series) {
        for (const point of series.points) {
          rows.push({
            time: point.time,
            deviceId: device.deviceId,
            entityId: series.entity_id,
            value: point.value,
          });
        }
      }
      // Time order across entities; within one time, entity order as listed.
      rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
      if (rows.length > 0) yield rows;
      start = to + 1;
      const scaled =
        rows.length === 0 ? windowMs * MAX_GROWTH : (windowMs * TARGET_POINTS) / rows.length;
      windowMs = Math.max(1, Math.floor(Math.min(scaled, windowMs * MAX_GROWTH)));
    }
  }
}
