import type {
  CommandConfirmation,
  DeviceContext,
  LateRollupHour,
  LiveEvent,
  RejectionCount,
  SeenUpdate,
  StoredBatch,
} from './model.ts';
import type { Discovery } from './payloads.ts';
import type { Rejection } from './rejection.ts';

/*
 * What ingestion needs from the rest of the platform. Each port is implemented outside this
 * folder; an implementation in another context declares the argument types it reads itself
 * (TypeScript checks the fit where the service is composed), so that no context imports
 * ingestion back and the contexts stay free of circles.
 */

/** The registry as ingestion sees it. The PostgreSQL adapter is `adapters/postgres-device-directory.ts`. */
export interface DeviceDirectory {
  resolve(deviceId: string): Promise<DeviceContext | null>;
  /** `resolve` for many devices in one call; unknown devices are left out. */
  resolveMany(deviceIds: readonly string[]): Promise<Map<string, DeviceContext>>;
  /**
   * Upserts the announced entities in auto mode (entities a user manages are left alone),
   * for devices of one tenant, in order, each judged as if alone; answers each device's
   * refusal (its plan's caps), 'unchanged' when it announced what is stored (nothing was
   * written), or null once applied. A failure applies none of them.
   */
  applyDiscoveries(
    tenantId: number,
    items: ReadonlyArray<{ device: DeviceContext; discovery: Discovery }>,
  ): Promise<Array<Rejection | 'unchanged' | null>>;
  recordSeen(updates: SeenUpdate[]): Promise<void>;
  /** Marks matching pending commands confirmed; returns who triggered each, by entity. */
  confirmCommands(
    device: DeviceContext,
    confirmations: CommandConfirmation[],
  ): Promise<Map<string, string>>;
  recordRejections(counts: RejectionCount[]): Promise<void>;
  /**
   * Bumped by every plan change: when it moves, cached device contexts (plan, tier) are
   * stale. Read once per batch, so a change reaches every function instance at once.
   */
  planVersion(): Promise<number>;
  /** Hours that received readings too late for the rollup function's recent window. */
  markLateRollups(hours: LateRollupHour[]): Promise<void>;
}

/**
 * Where the scheduled anomaly scoring keeps each device's read position: ingestion moves a
 * device's back to the oldest of its readings stored late (LATE_FOR_SCORING_MS after their
 * time), after storing them. A rejection fails those devices' messages, which the stream
 * then retries.
 */
export interface LateScoringMarks {
  markLate(devices: Array<{ tenantId: number; devicePk: number; fromMs: number }>): Promise<void>;
}

export interface LivePublisher {
  /**
   * Looks up, in one round trip for all of them, which dashboards watch the tenants' devices.
   * Ingestion asks while the batch's readings are being written, so that pushing them
   * afterwards waits for no query of its own.
   */
  audience(tenantIds: readonly number[]): LiveAudience;
}

export interface LiveAudience {
  /**
   * `events` is called only if some dashboard of the tenant is connected: rendering every
   * reading's time for nobody was a tenth of the function's time at 25,000 readings.
   */
  publish(tenantId: number, events: () => LiveEvent[]): Promise<void>;
}

/**
 * Told of every batch's stored readings. `expect` is called once a batch is judged, with the
 * devices whose readings it is about to write, so that what judging them needs is read while
 * the write is under way (after it, that read was one more wait per batch); the answer's
 * `readingsStored` is then called once, after the readings are stored, with every reading
 * the batch stored (grouped by device), so an
 * implementation can judge a whole batch with one query. It is not called when the batch
 * stored nothing. A rejection fails the messages of every device in the call, which the
 * stream then retries (their readings are rewritten idempotently and handed over again), so
 * an implementation must tolerate seeing a reading twice.
 */
export interface StoredReadingsListener {
  expect(devicePks: readonly number[]): ExpectedReadings;
}

export interface ExpectedReadings {
  readingsStored(batch: StoredBatch): Promise<void>;
}

/**
 * Takes a device's devices/<id>/model/state message (edge models). Returns why the message
 * is refused (counted as an invalid payload), or null once it is applied.
 */
export interface EdgeModelReports {
  report(device: { devicePk: number; tenantId: number }, payload: unknown): Promise<string | null>;
}
