import type { Logger } from '../../logger.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type { AnomalyScorer } from './anomaly-scorer.ts';
import type { DetectedAnomaly, ScoredDevice } from './model.ts';
import type {
  AnomalyAudience,
  AnomalyEvent,
  AnomalyListener,
  ScoringDevice,
  ScoringLedger,
  ScoringTenant,
  StoredReadingSource,
} from './ports.ts';

/** How often the scoring pass runs: its schedule in serverless.yml says the same. */
export const SCORING_EVERY_MS = 60_000;
/**
 * A reading stored this long after its own time may be behind the devices' read positions:
 * ingestion then moves its device's back to it (see `POSITION_LAG_MS`).
 */
export const LATE_FOR_SCORING_MS = 60_000;
/**
 * A pass leaves each device's read position this far before its own start, so that it reads
 * again what batches in flight may still store: a reading stored after the pass read is
 * either at or after that position (read next time) or older than LATE_FOR_SCORING_MS when
 * stored, and marked. It exceeds LATE_FOR_SCORING_MS by more than an ingest invocation may
 * last (its timeout, serverless.yml).
 */
export const POSITION_LAG_MS = 2 * 60_000;
/** The longest a pass works before leaving the rest to the next (the function's timeout is longer). */
export const SCORING_BUDGET_MS = 45_000;

/** Devices read and scored together: one InfluxDB query, one load and save of their states. */
const CHUNK_DEVICES = 500;
/** Devices whose read positions are this close share a chunk (and its query's start). */
const CHUNK_SPREAD_MS = 5 * 60_000;
/**
 * What one read of a chunk spans at most beyond its start, so that a chunk far behind (a
 * day of buffered readings, a fleet after an outage) is read a part at a time: the first
 * read's span shrinks with the chunk's devices, and each next one grows while the reads come
 * back small (sparse readings) and shrinks when they come back large.
 */
const FIRST_SPAN_DEVICE_MS = 6 * 3_600_000;
const MIN_SPAN_MS = 10 * 60_000;
const MAX_SPAN_MS = 32 * 86_400_000;
/** The readings one read of a chunk aims at. */
const READ_TARGET = 200_000;

export interface ScoringPassOptions {
  ledger: ScoringLedger;
  readings: StoredReadingSource;
  scorer: Pick<AnomalyScorer, 'scoreBatch'>;
  /** Alarm rules with an anomaly condition. */
  anomalies?: AnomalyListener | undefined;
  /** Dashboards; without it (no WebSocket API) nothing is pushed. */
  live?: AnomalyAudience | undefined;
  logger: Logger;
  now?: () => number;
}

/** What a pass did. */
export interface ScoringPassSummary {
  tenants: number;
  /** Devices scored (one read far behind in several spans counts once a span). */
  devices: number;
  /** Readings read back (those scored before, re-read, included). */
  readings: number;
  /** Readings scored: each stored reading is scored once. */
  scored: number;
  anomalies: number;
  /** Devices whose readings could not be scored; the next pass scores them again. */
  failedDevices: number;
  /** False when the budget ran out before everything stored was scored, or a device failed. */
  caughtUp: boolean;
}

/** A pass that has scored nothing yet (and so is caught up). */
export function noScoring(): ScoringPassSummary {
  return {
    tenants: 0,
    devices: 0,
    readings: 0,
    scored: 0,
    anomalies: 0,
    failedDevices: 0,
    caughtUp: true,
  };
}

/**
 * Anomaly scoring on a schedule, out of the ingestion path (as AWS's own industrial anomaly
 * service scores on a schedule while threshold alarms stay immediate): per tenant with
 * detection, each device's readings stored since its read position are read back from the
 * time-series store and scored a chunk of devices at a time, so each detector state is
 * loaded and saved once per pass however many readings it scores. The anomalies found go
 * to the alarm rules before the states are saved, and to dashboards after. A device's read
 * position moves on only once its readings are scored and saved; a failure leaves it where
 * it was, and the next pass scores the same readings again, which rescoring skips (no
 * reading not newer than its entity's last scored one is scored) and the alarm rules count
 * once. The pass stops within its budget and says whether anything was left.
 */
export class AnomalyScoringPass {
  readonly #ledger: ScoringLedger;
  readonly #readings: StoredReadingSource;
  readonly #scorer: Pick<AnomalyScorer, 'scoreBatch'>;
  readonly #anomalies: AnomalyListener | undefined;
  readonly #live: AnomalyAudience | undefined;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(options: ScoringPassOptions) {
    this.#ledger = options.ledger;
    this.#readings = options.readings;
    this.#scorer = options.scorer;
    this.#anomalies = options.anomalies;
    this.#live = options.live;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The schedule runs a pass over every tenant with detection; `tenantIds` limits it to those
   * (a tenant's own pass, as the tests that share one database with others run it).
   */
  async run(
    options: { budgetMs?: number; tenantIds?: readonly number[] } = {},
  ): Promise<ScoringPassSummary> {
    const startMs = this.#now();
    const deadline = startMs + (options.budgetMs ?? SCORING_BUDGET_MS);
    const summary = noScoring();
    for (const tenantId of options.tenantIds ?? (await this.#ledger.tenants())) {
      if (this.#now() >= deadline) {
        summary.caughtUp = false;
        break;
      }
      const tenant = await this.#ledger.tenant(tenantId);
      if (!tenant || tenant.level === 'none') continue;
      summary.tenants += 1;
      for (let chunk of chunksOf(tenant.devices)) {
        let fromMs = (chunk[0] as ScoringDevice).readFromMs;
        let spanMs = Math.max(MIN_SPAN_MS, FIRST_SPAN_DEVICE_MS / chunk.length);
        // A chunk far behind is read a span at a time, each after the last, while the budget lasts.
        for (;;) {
          if (this.#now() >= deadline) {
            summary.caughtUp = false;
            break;
          }
          const read = await this.#scoreChunk(tenant, chunk, fromMs, spanMs, startMs, summary);
          if (read.toMs === undefined) break;
          // A device that failed is left where it was: scoring its later readings first
          // would skip the ones that failed.
          chunk = chunk.filter(({ devicePk }) => !read.failed.has(devicePk));
          if (chunk.length === 0) break;
          fromMs = read.toMs;
          spanMs =
            read.readings < READ_TARGET / 4
              ? Math.min(MAX_SPAN_MS, spanMs * 4)
              : read.readings > READ_TARGET
                ? Math.max(MIN_SPAN_MS, spanMs / 2)
                : spanMs;
        }
      }
    }
    return summary;
  }

  /**
   * Reads, scores and moves on one chunk of a tenant's devices, from `fromMs` for at most
   * `spanMs` (to the end of what is stored when that reaches the pass's start). Answers where
   * the read ended (undefined: at the end), how many readings it scored and the devices that
   * failed.
   */
  async #scoreChunk(
    tenant: ScoringTenant,
    chunk: ScoringDevice[],
    fromMs: number,
    spanMs: number,
    startMs: number,
    summary: ScoringPassSummary,
  ): Promise<{ toMs: number | undefined; readings: number; failed: Set<number> }> {
    const capped = fromMs + spanMs < startMs;
    // Uncapped, the read has no end: whatever is stored by the time it runs is scored.
    const toMs = capped ? fromMs + spanMs : undefined;
    const nextFromMs = capped ? fromMs + spanMs : startMs - POSITION_LAG_MS;
    const failed = new Set<number>();
    let readings: Map<string, Reading[]>;
    try {
      readings = await this.#readings.numericReadings({
        tenantId: tenant.tenantId,
        retentionPolicy: tenant.retentionPolicy,
        ...(tenant.priorTier ? { priorTier: tenant.priorTier } : {}),
        deviceIds: chunk.map(({ deviceId }) => deviceId),
        fromMs,
        ...(toMs !== undefined ? { toMs } : {}),
      });
    } catch (error) {
      summary.failedDevices += chunk.length;
      summary.caughtUp = false;
      this.#logger.error('scoring pass could not read readings', {
        tenantId: tenant.tenantId,
        error,
      });
      return { toMs: undefined, readings: 0, failed };
    }
    const batch: Array<{ device: ScoredDevice; readings: Reading[] }> = [];
    let count = 0;
    for (const { devicePk, deviceId } of chunk) {
      const stored = readings.get(deviceId);
      if (!stored || stored.length === 0) continue;
      count += stored.length;
      batch.push({
        device: {
          devicePk,
          deviceId,
          tenantId: tenant.tenantId,
          retentionPolicy: tenant.retentionPolicy,
          anomalyDetection: tenant.level,
        },
        readings: stored,
      });
    }
    summary.readings += count;
    const found: Array<{ devicePk: number; anomalies: DetectedAnomaly[] }> = [];
    if (batch.length > 0) {
      const anomalies = this.#anomalies;
      const outcomes = await this.#scorer.scoreBatch(batch, {
        onScored: (count) => {
          summary.scored += count;
        },
        ...(anomalies
          ? {
              handOver: (devices) =>
                anomalies.anomaliesFound(
                  startMs,
                  devices.map(({ device, anomalies: list }) => ({
                    devicePk: device.devicePk,
                    tenantId: device.tenantId,
                    anomalies: list,
                  })),
                ),
            }
          : {}),
      });
      for (const [position, outcome] of outcomes.entries()) {
        const { device } = batch[position] as (typeof batch)[number];
        if ('failed' in outcome) {
          failed.add(device.devicePk);
          this.#logger.warn('device not scored; the next pass scores it again', {
            deviceId: device.deviceId,
            error: outcome.failed,
          });
        } else if (outcome.anomalies.length > 0) {
          found.push({ devicePk: device.devicePk, anomalies: outcome.anomalies });
        }
      }
    }
    summary.devices += batch.length - failed.size;
    summary.failedDevices += failed.size;
    if (failed.size > 0) summary.caughtUp = false;
    const moves = chunk
      .filter(({ devicePk }) => !failed.has(devicePk))
      .map(({ devicePk, generation }) => ({ devicePk, generation, readFromMs: nextFromMs }));
    if (moves.length > 0) {
      try {
        await this.#ledger.advance(tenant.tenantId, moves);
      } catch (error) {
        // Scored and saved: the next pass reads them again and skips what was scored.
        this.#logger.warn('read positions not moved on', { tenantId: tenant.tenantId, error });
      }
    }
    for (const { anomalies } of found) summary.anomalies += anomalies.length;
    if (found.length > 0 && this.#live) {
      await this.#live
        .publish(tenant.tenantId, () => found.flatMap(liveEvents))
        .catch((error: unknown) => {
          // Dashboards catch up from the API; a lost live push must not fail the pass.
          this.#logger.warn('live anomaly update failed', { tenantId: tenant.tenantId, error });
        });
    }
    return { toMs, readings: count, failed };
  }
}

function liveEvents({
  devicePk,
  anomalies,
}: {
  devicePk: number;
  anomalies: DetectedAnomaly[];
}): AnomalyEvent[] {
  return anomalies.map((anomaly) => ({
    type: 'anomaly',
    device_id: devicePk,
    entity_id: anomaly.entityId,
    time: new Date(anomaly.timeMs).toISOString(),
    score: anomaly.score,
    value: anomaly.value,
    reason: anomaly.reason,
  }));
}

/**
 * A tenant's devices (sorted by read position, the most behind first) in chunks of devices
 * whose positions are close, so that one query from the first's position serves them all.
 */
function chunksOf(devices: readonly ScoringDevice[]): ScoringDevice[][] {
  const sorted = [...devices].sort(
    (a, b) => a.readFromMs - b.readFromMs || a.devicePk - b.devicePk,
  );
  const chunks: ScoringDevice[][] = [];
  let current: ScoringDevice[] = [];
  for (const device of sorted) {
    const first = current[0];
    if (
      first &&
      (current.length >= CHUNK_DEVICES || device.readFromMs - first.readFromMs > CHUNK_SPREAD_MS)
    ) {
      chunks.push(current);
      current = [];
    }
    current.push(device);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
