import { LATE_FOR_SCORING_MS } from '../../anomalies/domain/scoring-pass.ts';
import type { Logger } from '../../logger.ts';
import { type ReadingStore, ReadingsRefusedError } from '../../timeseries/domain/reading-store.ts';
import { LATE_READING_MS } from '../../timeseries/domain/retention.ts';
import {
  InvalidReadingError,
  MAX_NUMERIC_MAGNITUDE,
  type Reading,
  readingProblem,
} from '../../timeseries/reading.ts';
import { BatchLedger, type PendingReadings } from './batch-ledger.ts';
import { DeviceContextCache } from './device-context-cache.ts';
import type {
  BatchOutcome,
  CommandConfirmation,
  DeviceContext,
  InboundRecord,
  IngestionSummary,
  LateRollupHour,
  RawReading,
  StoredDeviceReadings,
} from './model.ts';
import { type Discovery, decodeRuleEvent, type InboundMessage, topicDeviceId } from './payloads.ts';
import type {
  DeviceDirectory,
  EdgeModelReports,
  ExpectedReadings,
  LateScoringMarks,
  LiveAudience,
  LivePublisher,
  StoredReadingsListener,
} from './ports.ts';
import { Rejection } from './rejection.ts';

const FUTURE_TOLERANCE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/**
 * The oldest reading accepted, whatever the plan keeps (a shorter plan refuses sooner): a
 * device's offline buffer flushed after up to a year. Anything older is a clock gone wrong
 * (a year-2000 date from an unset RTC), not a reading to fold into years of rollups.
 */
export const MAX_READING_AGE_DAYS = 366;
const MAX_READING_AGE_MS = MAX_READING_AGE_DAYS * DAY_MS;
/** A cached device older than this is looked up again before a reading of it is refused. */
const RECHECK_AFTER_MS = 1_000;

export interface IngestionServiceOptions {
  directory: DeviceDirectory;
  readings: ReadingStore;
  logger: Logger;
  /** Pushes to connected dashboards; without it (no WebSocket API) nothing is pushed. */
  live?: LivePublisher | undefined;
  /**
   * Told of devices whose readings were stored late, so that the scheduled anomaly scoring
   * reads them; without it nothing is marked.
   */
  lateForScoring?: LateScoringMarks | undefined;
  /** Told of every batch's stored readings (see the port). */
  storedReadings?: StoredReadingsListener | undefined;
  /** Edge model confirmations and device-side anomalies; without it they are refused. */
  edgeReports?: EdgeModelReports | undefined;
  /** How long a registry answer is trusted: a known device, and an unknown one. */
  contextTtlMs?: number;
  unknownTtlMs?: number;
  /** How often a device's last-seen time is written while it keeps sending. */
  seenIntervalMs?: number;
  now?: () => number;
}

/**
 * The nanoseconds within its millisecond of a reading without a device timestamp: the
 * record's stream position (microseconds, modulo 1,000) and its item in the message
 * (nanoseconds). Readings received in the same millisecond keep their order and never share
 * a time, and a retried record gets the same time again, so it overwrites itself.
 */
export function untimedOffsetNs(ordinal: number, item: number): number {
  return (ordinal % 1000) * 1000 + (item % 1000);
}

/**
 * PostgreSQL's data exceptions (class 22: a value it cannot store, out of range, badly
 * encoded) and program limits (54) belong to the message, not the infrastructure.
 */
function refusedByDatabase<T>(work: Promise<T>): Promise<T> {
  return work.catch((error: unknown) => {
    const code = (error as { code?: unknown })?.code;
    if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'))) {
      throw new Rejection('refused_by_database', (error as Error).message.slice(0, 300));
    }
    throw error;
  });
}

/** What the time-series store refuses of the content, rather than being unavailable. */
function isContentRefusal(error: unknown): boolean {
  return error instanceof InvalidReadingError || error instanceof ReadingsRefusedError;
}

/** The hours of stored readings the rollup function's next recent window will not reach. */
function lateHours(stored: readonly StoredMessage[], now: number): LateRollupHour[] {
  const lateBefore = now - LATE_READING_MS;
  const hours = new Map<string, LateRollupHour>();
  for (const entry of stored) {
    for (const reading of entry.readings) {
      if (reading.timeMs >= lateBefore) continue;
      const hourMs = Math.floor(reading.timeMs / HOUR_MS) * HOUR_MS;
      const key = `${reading.tenantId}\u0000${reading.retentionPolicy}\u0000${hourMs}`;
      if (!hours.has(key))
        hours.set(key, { tenantId: reading.tenantId, policy: reading.retentionPolicy, hourMs });
    }
  }
  return [...hours.values()];
}

function valueFits(type: DeviceContext['entities'][string]['type'], value: RawReading['value']) {
  switch (type) {
    case 'switch':
      return typeof value === 'boolean';
    case 'sensor':
    case 'number':
      return typeof value === 'number';
    case 'text':
      return typeof value === 'string';
  }
}

/** Where a message sits in its batch and its stream. */
interface MessagePlace {
  index: number;
  /** See `InboundRecord.ordinal`. */
  ordinal: number;
  topic: string;
}

/**
 * What became of a discovery (see `#applyDiscoveries`); `changed` is false when it matched
 * what is stored, so nothing was written and the device's cached context still holds.
 */
type EarlyDiscovery =
  | { applied: true; changed: boolean }
  | { refused: Rejection }
  | { failed: unknown };

/** A message being judged: its place, and the device its topic names (for failures). */
interface JudgedPlace extends MessagePlace {
  topicDevice: string | undefined;
  /** Its discovery's outcome, when it was applied before the batch was judged. */
  earlyDiscovery: EarlyDiscovery | undefined;
}

/** A message's stored readings and who sent them, once the batch is written. */
interface StoredMessage {
  index: number;
  device: DeviceContext;
  readings: Reading[];
}

/** The stored messages' readings grouped by device, with the messages they came in. */
function byDevice(
  stored: readonly StoredMessage[],
): Array<StoredDeviceReadings & { indices: number[] }> {
  const devices = new Map<number, StoredDeviceReadings & { indices: number[] }>();
  for (const entry of stored) {
    const group = devices.get(entry.device.devicePk) ?? {
      device: entry.device,
      readings: [],
      indices: [],
    };
    for (const reading of entry.readings) group.readings.push(reading);
    group.indices.push(entry.index);
    devices.set(entry.device.devicePk, group);
  }
  return [...devices.values()];
}

/**
 * Turns IoT rule events into stored readings, registry updates and live events. Every
 * message is checked whole before any of it is kept: a message with one bad reading is
 * rejected entirely, counted by reason, and never stops the rest of the batch. Only
 * infrastructure failures fail a message, so that the stream retries it; every write is
 * idempotent for that.
 */
export class IngestionService {
  readonly #directory: DeviceDirectory;
  readonly #readings: ReadingStore;
  readonly #logger: Logger;
  readonly #live: LivePublisher | undefined;
  readonly #lateForScoring: LateScoringMarks | undefined;
  readonly #readingsListener: StoredReadingsListener | undefined;
  readonly #edgeReports: EdgeModelReports | undefined;
  readonly #seenIntervalMs: number;
  readonly #now: () => number;
  readonly #contexts: DeviceContextCache;
  /** Last time each device's last_seen was written, so readings do not UPDATE per message. */
  readonly #seenWrittenAt = new Map<number, { at: number; online: boolean }>();
  /** The plan version the cached contexts were resolved under (see `planVersion`). */
  #planVersion: number | undefined;

  constructor(options: IngestionServiceOptions) {
    this.#directory = options.directory;
    this.#readings = options.readings;
    this.#logger = options.logger;
    this.#live = options.live;
    this.#lateForScoring = options.lateForScoring;
    this.#readingsListener = options.storedReadings;
    this.#edgeReports = options.edgeReports;
    this.#seenIntervalMs = options.seenIntervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#contexts = new DeviceContextCache((deviceId) => this.#directory.resolve(deviceId), {
      knownMs: options.contextTtlMs ?? 30_000,
      unknownMs: options.unknownTtlMs ?? 5_000,
    });
  }

  /**
   * Ingests a batch and throws the first infrastructure failure, if any message had one (the
   * caller retries the whole batch: every write is idempotent). The stream handler uses
   * `ingestBatch`, which says which messages failed instead.
   */
  async ingest(events: unknown[]): Promise<IngestionSummary> {
    const outcome = await this.ingestBatch(events.map((event) => ({ event })));
    if (outcome.failed.length > 0) throw outcome.error;
    return outcome.summary;
  }

  /**
   * Judges each message on its own. A message that is wrong in itself (its content, its
   * timestamp, its size, or what the database refuses of it) is rejected and counted, and
   * the batch goes on. Only an infrastructure failure (a server down or timing out) fails a
   * message, and then only the messages it touched, plus the later messages of the same
   * device, which must not overtake it: `failed` lists them, by index, for the caller to
   * retry (a Kinesis partial batch response). Each record's event is let go of once decoded
   * (only its topic is kept).
   */
  async ingestBatch(records: readonly InboundRecord[]): Promise<BatchOutcome> {
    const batch = new BatchLedger(this.#now(), this.#logger);
    // The messages are decoded (CPU, the same under any plan) while the plan version is
    // asked for: the round trip cost each batch its time again under load.
    const planFollowed = this.#followPlanChanges();
    const decoded: Array<InboundMessage | undefined> = new Array(records.length);
    const undecodable = new Map<number, unknown>();
    for (let index = 0; index < records.length; index++) {
      const record = records[index] as InboundRecord;
      try {
        decoded[index] = decodeRuleEvent(record.event);
        // Decoded, a record keeps only its topic (for the counts): the batch's payloads, held
        // through the round trips and writes below, were copied by every scavenge meanwhile.
        record.event = { topic: (record.event as { topic: string }).topic };
      } catch (error) {
        undecodable.set(index, error);
      }
    }
    await planFollowed;
    await this.#prefetchContexts(decoded, batch.now);
    const discoveries = await this.#applyDiscoveries(decoded, batch.now);
    for (let index = 0; index < records.length; index++) {
      const waiting = this.#judgeMessage(
        records[index] as InboundRecord,
        decoded[index] ?? undecodable.get(index),
        index,
        batch,
        discoveries,
      );
      // A message that waits (a registry look-up, a command confirmation) holds the next
      // ones back: a device's messages are taken in order.
      if (waiting) await waiting;
    }
    // Judged: kept alive through the writes below, the batch's messages were copied by every
    // scavenge the writes' waits let happen.
    decoded.length = 0;
    // What does not need the readings stored is started beside their write: one after
    // another, these round trips made each batch wait (bench/README.md, Telemetry pipeline).
    const audience = this.#live?.audience(batch.liveTenants());
    const seen = this.#recordSeen(batch);
    const rejections = this.#recordRejections(batch);
    if (batch.pending.length > 0) {
      const expected = this.#expectStored(batch);
      const stored = await this.#storeReadings(batch);
      await Promise.all([
        this.#markLateRollups(stored, batch),
        this.#markLateScoring(stored, batch),
      ]);
      await this.#handOverStored(byDevice(stored), expected, batch);
    }
    await seen;
    await rejections;
    await this.#publishLive(batch, audience);
    return batch.outcome(records.length);
  }

  /** Tells the listener which devices' readings are about to be stored. */
  #expectStored(batch: BatchLedger): ExpectedReadings | undefined {
    if (!this.#readingsListener) return undefined;
    const devicePks = new Set<number>();
    for (const entry of batch.pending) devicePks.add(entry.device.devicePk);
    return this.#readingsListener.expect([...devicePks]);
  }

  /** A plan change must reach this batch, not wait out the cache's TTL. */
  async #followPlanChanges(): Promise<void> {
    const planVersion = await this.#directory.planVersion();
    if (planVersion !== this.#planVersion) {
      this.#contexts.clear();
      this.#planVersion = planVersion;
    }
  }

  /**
   * Each device's first discovery in the batch, applied before the batch is judged, in one
   * transaction per tenant: a fleet powering up sends thousands, and one transaction each
   * (each taking the tenant's lock) held a batch for tens of seconds. A device's later
   * discoveries in the batch are applied in their turn. Messages whose device is unknown
   * are left to be judged (and rejected) in their turn.
   */
  async #applyDiscoveries(
    decoded: ReadonlyArray<InboundMessage | undefined>,
    now: number,
  ): Promise<Map<number, EarlyDiscovery>> {
    const outcomes = new Map<number, EarlyDiscovery>();
    const byTenant = new Map<
      number,
      Array<{ index: number; device: DeviceContext; discovery: Discovery }>
    >();
    const devices = new Set<string>();
    for (let index = 0; index < decoded.length; index++) {
      const message = decoded[index];
      if (message?.kind !== 'discovery' || devices.has(message.deviceId)) continue;
      devices.add(message.deviceId);
      let device: DeviceContext | null;
      try {
        device =
          this.#contexts.peek(message.deviceId, now) ??
          (await this.#contexts.get(message.deviceId, now));
      } catch (error) {
        outcomes.set(index, { failed: error });
        continue;
      }
      if (!device) continue;
      const group = byTenant.get(device.tenantId) ?? [];
      group.push({ index, device, discovery: message.discovery });
      byTenant.set(device.tenantId, group);
    }
    for (const [tenantId, group] of byTenant) {
      for (const [position, outcome] of (
        await this.#applyTenantDiscoveries(tenantId, group)
      ).entries()) {
        outcomes.set((group[position] as (typeof group)[number]).index, outcome);
      }
      // The devices' contexts now hold the entities just announced, for their readings; a
      // device that re-announced what is stored keeps its context (after a broker restart a
      // whole fleet re-announces, and looking every device up again held its batches).
      const changed = group
        .filter(({ index }) => {
          const outcome = outcomes.get(index);
          return outcome !== undefined && 'applied' in outcome && outcome.changed;
        })
        .map(({ device }) => device.deviceId);
      if (changed.length === 0) continue;
      await this.#contexts
        .prefetch(changed, now, (ids) => this.#directory.resolveMany(ids), true)
        .catch(() => {
          for (const deviceId of changed) this.#contexts.forget(deviceId);
        });
    }
    return outcomes;
  }

  /**
   * The batch's devices not cached, looked up in one call: a fleet powering up sends
   * thousands of new devices' first messages, which one look-up each (awaited in turn, to
   * keep each device's messages in order) held for tens of seconds. If it fails, they are
   * looked up one by one in their turn, where a failure fails their messages.
   */
  async #prefetchContexts(
    decoded: ReadonlyArray<InboundMessage | undefined>,
    now: number,
  ): Promise<void> {
    const missing = new Set<string>();
    for (const message of decoded) {
      if (message && this.#contexts.peek(message.deviceId, now) === undefined)
        missing.add(message.deviceId);
    }
    if (missing.size < 2) return;
    await this.#contexts
      .prefetch([...missing], now, (ids) => this.#directory.resolveMany(ids))
      .catch(() => {});
  }

  /** One tenant's discoveries; what the database refuses of one is retried alone. */
  async #applyTenantDiscoveries(
    tenantId: number,
    items: ReadonlyArray<{ device: DeviceContext; discovery: Discovery }>,
  ): Promise<EarlyDiscovery[]> {
    try {
      const refused = await refusedByDatabase(this.#directory.applyDiscoveries(tenantId, items));
      return refused.map((outcome) =>
        outcome instanceof Rejection
          ? { refused: outcome }
          : { applied: true, changed: outcome !== 'unchanged' },
      );
    } catch (error) {
      if (!(error instanceof Rejection)) return items.map(() => ({ failed: error }));
      if (items.length === 1) return [{ refused: error }];
      const one: EarlyDiscovery[] = [];
      for (const item of items) one.push(...(await this.#applyTenantDiscoveries(tenantId, [item])));
      return one;
    }
  }

  /**
   * Finds a decoded message's device and takes it in, or rejects or fails it.
   * Synchronous for the common case (a cached device, sensor readings): a promise and an
   * await per message were about a tenth of the function's CPU in pipeline benchmark (a).
   */
  #judgeMessage(
    record: InboundRecord,
    /** What `decodeRuleEvent` made of it, or what it threw instead. */
    decoded: InboundMessage | unknown,
    index: number,
    batch: BatchLedger,
    discoveries: Map<number, EarlyDiscovery>,
  ): Promise<void> | undefined {
    const topic = String((record.event as { topic?: unknown })?.topic ?? '');
    const undecoded = decoded instanceof Error || decoded === undefined;
    // A decoded message's device id is its topic's (the same pattern read it): not read twice.
    const topicDevice = undecoded ? topicDeviceId(topic) : (decoded as InboundMessage).deviceId;
    if (batch.holdBack(index, topicDevice)) return undefined;
    const place: JudgedPlace = {
      index,
      ordinal: record.ordinal ?? index,
      topic,
      topicDevice,
      earlyDiscovery: discoveries.size > 0 ? discoveries.get(index) : undefined,
    };
    if (undecoded) {
      this.#miss(decoded, place, batch);
      return undefined;
    }
    const message = decoded as InboundMessage;
    const device = this.#contexts.peek(message.deviceId, batch.now);
    if (device === undefined) return this.#judgeLookedUp(message, place, batch);
    if (device === null) {
      this.#miss(
        new Rejection('unknown_device', `${message.deviceId} is not registered`),
        place,
        batch,
      );
      return undefined;
    }
    return this.#take(message, device, place, batch);
  }

  /** A message whose device is not cached: looked up in the registry first. */
  async #judgeLookedUp(
    message: InboundMessage,
    place: JudgedPlace,
    batch: BatchLedger,
  ): Promise<void> {
    let device: DeviceContext | null;
    try {
      device = await this.#contexts.get(message.deviceId, batch.now);
    } catch (error) {
      this.#miss(error, place, batch);
      return;
    }
    if (!device) {
      this.#miss(
        new Rejection('unknown_device', `${message.deviceId} is not registered`),
        place,
        batch,
      );
      return;
    }
    await this.#take(message, device, place, batch);
  }

  /** Takes the message in for this device; a promise only if that had to wait. */
  #take(
    message: InboundMessage,
    device: DeviceContext,
    place: JudgedPlace,
    batch: BatchLedger,
  ): Promise<void> | undefined {
    let confirmed: number | Promise<number>;
    try {
      confirmed = this.#accept(message, device, place, batch);
    } catch (error) {
      // Another function instance may have stored this device's discovery since we
      // cached it: check once more before refusing a reading of a new entity.
      const stale =
        error instanceof Rejection &&
        error.reason === 'unknown_entity' &&
        this.#contexts.olderThan(message.deviceId, batch.now, RECHECK_AFTER_MS);
      if (stale) return this.#takeRechecked(message, place, batch);
      this.#miss(error, place, batch);
      return undefined;
    }
    if (typeof confirmed === 'number') {
      batch.confirmedCommands += confirmed;
      return undefined;
    }
    return confirmed.then(
      (count) => {
        batch.confirmedCommands += count;
      },
      (error: unknown) => this.#miss(error, place, batch),
    );
  }

  async #takeRechecked(
    message: InboundMessage,
    place: JudgedPlace,
    batch: BatchLedger,
  ): Promise<void> {
    try {
      this.#contexts.forget(message.deviceId);
      const fresh = await this.#contexts.get(message.deviceId, batch.now);
      if (!fresh) throw new Rejection('unknown_device', `${message.deviceId} is not registered`);
      batch.confirmedCommands += await this.#accept(message, fresh, place, batch);
    } catch (error) {
      this.#miss(error, place, batch);
    }
  }

  /** A message wrong in itself is rejected; one an infrastructure failure stopped, failed. */
  #miss(error: unknown, place: JudgedPlace, batch: BatchLedger): void {
    if (error instanceof Rejection) batch.reject(error, place.topic);
    else batch.fail(place.index, error, place.topicDevice);
  }

  /**
   * Takes one decoded message; returns how many commands it confirmed. Synchronous for the
   * common case (sensor readings): awaiting per message cost a tenth of the ingest loop.
   */
  #accept(
    message: InboundMessage,
    device: DeviceContext,
    place: JudgedPlace,
    batch: BatchLedger,
  ): number | Promise<number> {
    switch (message.kind) {
      case 'status':
        this.#acceptStatus(message, device, place, batch);
        return 0;
      case 'discovery':
        return this.#acceptDiscovery(message, device, batch, place.earlyDiscovery);
      case 'readings':
        return this.#acceptReadings(message, device, place, batch);
      case 'edge-model':
        return this.#acceptEdgeModel(message, device);
    }
  }

  async #acceptEdgeModel(
    message: Extract<InboundMessage, { kind: 'edge-model' }>,
    device: DeviceContext,
  ): Promise<number> {
    if (!this.#edgeReports)
      throw new Rejection('unknown_topic', 'edge model reports are not taken here');
    const refused = await this.#edgeReports.report(device, message.report);
    if (refused !== null) throw new Rejection('invalid_payload', refused);
    return 0;
  }

  #acceptStatus(
    message: Extract<InboundMessage, { kind: 'status' }>,
    device: DeviceContext,
    place: MessagePlace,
    batch: BatchLedger,
  ): void {
    batch.noteSeen(device, {
      online: message.online,
      ...(message.online ? { lastSeenMs: message.receivedAtMs } : {}),
    });
    batch.noteStatusMessage(device, place.index);
    // A status change must be written now, whatever the throttle says.
    this.#seenWrittenAt.delete(device.devicePk);
    batch.addLive(device.tenantId, place.index, {
      type: 'status',
      device_id: device.devicePk,
      status: message.online ? 'online' : 'offline',
      time: new Date(message.receivedAtMs).toISOString(),
    });
  }

  async #acceptDiscovery(
    message: Extract<InboundMessage, { kind: 'discovery' }>,
    device: DeviceContext,
    batch: BatchLedger,
    early: EarlyDiscovery | undefined,
  ): Promise<number> {
    const outcome =
      early ??
      (
        await this.#applyTenantDiscoveries(device.tenantId, [
          { device, discovery: message.discovery },
        ])
      )[0];
    if (outcome && 'refused' in outcome) throw outcome.refused;
    if (outcome && 'failed' in outcome) throw outcome.failed;
    // One applied before the batch was judged has had its context looked up again already.
    if (!early && outcome?.changed) this.#contexts.forget(device.deviceId);
    batch.noteSeen(device, { lastSeenMs: message.receivedAtMs });
    return 0;
  }

  #acceptReadings(
    message: Extract<InboundMessage, { kind: 'readings' }>,
    device: DeviceContext,
    place: MessagePlace,
    batch: BatchLedger,
  ): number | Promise<number> {
    // Arrays and closures made only when needed: a sensor reading's message allocated about
    // 900 bytes here, a sixth of the ingest function's garbage in pipeline benchmark (a).
    const raws = message.readings;
    const readings: Reading[] = new Array(raws.length);
    let confirmations: CommandConfirmation[] | undefined;
    let latest = Number.NEGATIVE_INFINITY;
    for (let index = 0; index < raws.length; index++) {
      const raw = raws[index] as RawReading;
      const reading = this.#readingOf(raw, device, place.ordinal, batch.now);
      readings[index] = reading;
      if (raw.timeMs > latest) latest = raw.timeMs;
      // States that answer a command: confirm it and credit the relay change to its sender.
      if (raw.commandId !== undefined || reading.entityType !== 'sensor') {
        const confirmation = { entityId: raw.entityId, value: raw.value, commandId: raw.commandId };
        if (confirmations) confirmations.push(confirmation);
        else confirmations = [confirmation];
      }
    }
    const lastSeenMs = Math.min(latest, message.receivedAtMs);
    if (!confirmations) {
      this.#keepReadings(readings, lastSeenMs, device, place, batch);
      return 0;
    }
    return refusedByDatabase(this.#directory.confirmCommands(device, confirmations)).then(
      (triggeredBy) => {
        for (const reading of readings) {
          if (reading.entityType === 'switch')
            reading.triggeredBy = triggeredBy.get(reading.entityId) ?? 'device';
        }
        this.#keepReadings(readings, lastSeenMs, device, place, batch);
        return triggeredBy.size;
      },
    );
  }

  /** A message's readings, judged good: to be stored, seen, and pushed to dashboards. */
  #keepReadings(
    readings: Reading[],
    lastSeenMs: number,
    device: DeviceContext,
    place: MessagePlace,
    batch: BatchLedger,
  ): void {
    batch.pending.push({ index: place.index, topic: place.topic, device, readings });
    batch.noteSeen(device, { online: true, lastSeenMs });
    batch.addLive(device.tenantId, place.index, () => ({
      type: 'readings',
      device_id: device.devicePk,
      readings: readings.map((reading) => ({
        entity_id: reading.entityId,
        value: reading.value,
        time: new Date(reading.timeMs).toISOString(),
      })),
    }));
  }

  /** The reading a raw one becomes for this device, or the Rejection of its message. */
  #readingOf(raw: RawReading, device: DeviceContext, ordinal: number, now: number): Reading {
    const entity = device.entities[raw.entityId];
    if (!entity) throw new Rejection('unknown_entity', `${raw.entityId} was never announced`);
    if (!valueFits(entity.type, raw.value)) {
      throw new Rejection('wrong_value_type', `${typeof raw.value} for a ${entity.type}`);
    }
    // Beyond it, a window's sum could overflow to +Inf, which InfluxDB cannot answer with.
    if (typeof raw.value === 'number' && Math.abs(raw.value) > MAX_NUMERIC_MAGNITUDE) {
      throw new Rejection(
        'value_out_of_range',
        `${raw.value} is beyond ±${MAX_NUMERIC_MAGNITUDE}, the largest value stored`,
      );
    }
    if (raw.timeMs > now + FUTURE_TOLERANCE_MS) {
      throw new Rejection(
        'timestamp_in_future',
        `reading dated ${new Date(raw.timeMs).toISOString()}`,
      );
    }
    if (device.retentionDays !== null && raw.timeMs < now - device.retentionDays * DAY_MS) {
      throw new Rejection(
        'beyond_retention',
        `the ${device.plan} plan keeps ${device.retentionDays} days`,
      );
    }
    if (raw.timeMs < now - MAX_READING_AGE_MS) {
      throw new Rejection(
        'timestamp_too_old',
        `reading dated ${new Date(raw.timeMs).toISOString()}, over ${MAX_READING_AGE_DAYS} days ago`,
      );
    }
    const reading: Reading = {
      tenantId: device.tenantId,
      deviceId: device.deviceId,
      entityId: raw.entityId,
      entityType: entity.type,
      value: raw.value,
      timeMs: raw.timeMs,
      retentionPolicy: device.retentionPolicy,
    };
    if (raw.untimedItem !== undefined) reading.subMsNs = untimedOffsetNs(ordinal, raw.untimedItem);
    // What the store could not keep exactly (a line break in a text value, say) is refused
    // here, one message at a time, rather than failing the whole batch at write time.
    const problem = readingProblem(reading);
    if (problem) throw new Rejection('invalid_payload', problem);
    return reading;
  }

  /**
   * Writes every accepted reading in one request. If the store refuses content (a field
   * type conflict, a line it cannot parse), each message is written alone so that only the
   * one refused is rejected; if the store is unavailable, every message with readings fails.
   * Returns the messages stored, without the readings the plan's retention refused.
   */
  async #storeReadings(batch: BatchLedger): Promise<StoredMessage[]> {
    const { pending } = batch;
    // A loop, not flatMap: V8's flatMap took a twentieth of the function's time here.
    const all: Reading[] = [];
    for (const entry of pending) for (const reading of entry.readings) all.push(reading);
    try {
      const result = await this.#readings.writeReadings(all);
      batch.writtenReadings += result.written;
      return this.#withoutBeyondRetention(pending, result.beyondRetention, batch);
    } catch (error) {
      if (!isContentRefusal(error)) {
        for (const entry of pending) batch.fail(entry.index, error, entry.device.deviceId);
        return [];
      }
    }
    const stored: StoredMessage[] = [];
    for (const entry of pending) {
      try {
        const result = await this.#readings.writeReadings(entry.readings);
        batch.writtenReadings += result.written;
        stored.push(...this.#withoutBeyondRetention([entry], result.beyondRetention, batch));
      } catch (error) {
        if (isContentRefusal(error)) {
          batch.reject(
            new Rejection('refused_by_database', (error as Error).message.slice(0, 300)),
            entry.topic,
          );
        } else batch.fail(entry.index, error, entry.device.deviceId);
      }
    }
    return stored;
  }

  /** Counts what the store refused as older than the plan keeps, and leaves it out. */
  #withoutBeyondRetention(
    written: PendingReadings[],
    tooOld: Reading[],
    batch: BatchLedger,
  ): StoredMessage[] {
    if (tooOld.length === 0) return written;
    const refused = new Set(tooOld);
    for (const reading of tooOld) {
      batch.reject(
        new Rejection('beyond_retention', 'older than the plan keeps data'),
        `devices/${reading.deviceId}/${reading.entityId}/state`,
      );
    }
    return written.map((entry) => ({
      ...entry,
      readings: entry.readings.filter((reading) => !refused.has(reading)),
    }));
  }

  async #markLateRollups(stored: StoredMessage[], batch: BatchLedger): Promise<void> {
    // Readings are nearly always recent: late hours are found without copying every reading
    // into a list, and nothing is called when there are none.
    const hours = lateHours(stored, batch.now);
    if (hours.length === 0) return;
    try {
      await this.#directory.markLateRollups(hours);
    } catch (cause) {
      // Stored, but the rollups would miss them: retried, they are rewritten and marked.
      for (const entry of stored) batch.fail(entry.index, cause, entry.device.deviceId);
    }
  }

  /**
   * Anomaly scoring runs on a schedule and reads each device's stored readings from its read
   * position on; readings stored long after their time (a device's buffer flushed after a
   * reconnect) may be behind it, so their devices' positions are moved back to them.
   */
  async #markLateScoring(stored: StoredMessage[], batch: BatchLedger): Promise<void> {
    const marks = this.#lateForScoring;
    if (!marks) return;
    const lateBefore = batch.now - LATE_FOR_SCORING_MS;
    const late = new Map<number, { tenantId: number; devicePk: number; fromMs: number }>();
    for (const { device, readings } of stored) {
      if (device.anomalyDetection === 'none') continue;
      for (const reading of readings) {
        if (reading.timeMs >= lateBefore) continue;
        const known = late.get(device.devicePk);
        if (!known)
          late.set(device.devicePk, {
            tenantId: device.tenantId,
            devicePk: device.devicePk,
            fromMs: reading.timeMs,
          });
        else if (reading.timeMs < known.fromMs) known.fromMs = reading.timeMs;
      }
    }
    if (late.size === 0) return;
    try {
      await marks.markLate([...late.values()]);
    } catch (cause) {
      // Stored, but scoring might not read them: retried, they are rewritten and marked.
      for (const entry of stored) {
        if (late.has(entry.device.devicePk)) batch.fail(entry.index, cause, entry.device.deviceId);
      }
    }
  }

  /** Hands the batch's stored readings to the listener; a failure retries their messages. */
  async #handOverStored(
    stored: Array<StoredDeviceReadings & { indices: number[] }>,
    expected: ExpectedReadings | undefined,
    batch: BatchLedger,
  ): Promise<void> {
    const devices = stored.filter((group) => group.readings.length > 0);
    if (!expected || devices.length === 0) return;
    try {
      await expected.readingsStored({
        nowMs: batch.now,
        devices: devices.map(({ device, readings }) => ({ device, readings })),
      });
    } catch (error) {
      for (const { device, indices } of devices) {
        for (const index of indices) batch.fail(index, error, device.deviceId);
      }
    }
  }

  /**
   * Writes status changes and, at most once a `seenIntervalMs` per device, last-seen times.
   * A status message's whole effect is this write, so those are retried if it fails; a
   * reading's last-seen time is refreshed by the device's next message anyway.
   */
  async #recordSeen(batch: BatchLedger): Promise<void> {
    const { now } = batch;
    const due = batch.seenUpdates().filter((update) => {
      const last = this.#seenWrittenAt.get(update.device.devicePk);
      const online = update.online ?? last?.online ?? true;
      return !last || last.online !== online || now - last.at >= this.#seenIntervalMs;
    });
    try {
      await this.#directory.recordSeen(due);
      for (const update of due) {
        const online =
          update.online ?? this.#seenWrittenAt.get(update.device.devicePk)?.online ?? true;
        this.#seenWrittenAt.set(update.device.devicePk, { at: now, online });
      }
    } catch (cause) {
      for (const update of due) {
        for (const index of batch.statusMessagesOf(update.device)) {
          batch.fail(index, cause, update.device.deviceId);
        }
      }
    }
  }

  async #recordRejections(batch: BatchLedger): Promise<void> {
    try {
      await this.#directory.recordRejections(batch.rejectionCounts());
    } catch (cause) {
      // The messages were judged; losing their counts must not make anyone retry them.
      this.#logger.warn('could not record rejection counts', { error: cause });
    }
  }

  async #publishLive(batch: BatchLedger, audience: LiveAudience | undefined): Promise<void> {
    if (!audience) return;
    for (const [tenantId, events] of batch.liveEvents()) {
      await audience.publish(tenantId, events).catch((error: unknown) => {
        // Dashboards catch up from the API; a lost live push must not fail ingestion.
        this.#logger.warn('live update failed', { tenantId, error });
      });
    }
  }
}
