import type { Logger } from '../logger.ts';
import { InvalidReadingError, type Reading, readingProblem } from '../timeseries/reading.ts';
import { type ReadingStore, ReadingsRefusedError } from '../timeseries/reading-store.ts';
import { LATE_READING_MS } from '../timeseries/schema.ts';
import type {
  CommandConfirmation,
  DeviceContext,
  DeviceDirectory,
  LateRollupHour,
  RejectionCount,
  SeenUpdate,
} from './device-directory.ts';
import {
  decodeRuleEvent,
  type InboundMessage,
  type RawReading,
  Rejection,
  type RejectionReason,
  storableText,
  topicDeviceId,
} from './inbound.ts';

/** A change worth telling connected dashboards about. */
export type LiveEvent =
  | {
      type: 'readings';
      device_id: number;
      readings: Array<{ entity_id: string; value: Reading['value']; time: string }>;
    }
  | { type: 'status'; device_id: number; status: 'online' | 'offline'; time: string }
  | {
      type: 'anomaly';
      device_id: number;
      entity_id: string;
      time: string;
      score: number;
      value: number;
      reason: string | null;
    }
  | {
      type: 'alarm';
      device_id: number;
      alarm: {
        id: number;
        rule_id: number | null;
        entity_id: string | null;
        severity: string;
        status: string;
        count: number;
        value: unknown;
        event: string;
        started_at: string;
        cleared_at: string | null;
      };
    };

/** Port: the plan's anomaly detector, run on readings once they are stored. */
export interface ReadingScorer {
  score(
    device: DeviceContext,
    readings: Reading[],
  ): Promise<
    Array<{ entityId: string; timeMs: number; score: number; value: number; reason: string | null }>
  >;
}

/** An anomaly the plan's detector found in a batch's readings. */
export type ScoredAnomaly = Awaited<ReturnType<ReadingScorer['score']>>[number];

/** One device's stored readings of a batch, with what the detector found in them. */
export interface StoredDeviceReadings {
  device: DeviceContext;
  readings: Reading[];
  anomalies: ScoredAnomaly[];
}

/**
 * Port: told once per batch, after its readings are stored and scored, of every device's
 * stored readings (alarm rules run there). A throw fails those devices' messages, so the
 * batch is retried: the observer must take a batch twice without counting it twice.
 */
export interface StoredReadingsObserver {
  readingsStored(batch: { nowMs: number; devices: StoredDeviceReadings[] }): Promise<void>;
}

export interface LivePublisher {
  /**
   * `events` is called only if some dashboard of the tenant is connected: rendering every
   * reading's time for nobody was a tenth of the function's time at 25,000 readings.
   */
  publish(tenantId: number, events: () => LiveEvent[]): Promise<void>;
}

/** A live event, or how to make it once someone is there to receive it. */
type PendingLiveEvent = LiveEvent | (() => LiveEvent);

export interface IngestionSummary {
  messages: number;
  readings: number;
  confirmedCommands: number;
  anomalies: number;
  rejected: Partial<Record<RejectionReason, number>>;
}

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

/** One message of a batch, with its place in the stream when it has one. */
export interface InboundRecord {
  event: unknown;
  /**
   * The record's position in its stream shard (the Kinesis sequence number), or its index
   * in the batch: it tells apart readings without a device timestamp.
   */
  ordinal?: number;
}

export interface BatchOutcome {
  summary: IngestionSummary;
  /** Indices of the messages an infrastructure failure kept from being stored, ascending. */
  failed: number[];
  /** The first such failure. */
  error: unknown;
}

interface PendingReadings {
  index: number;
  topic: string;
  device: DeviceContext;
  readings: Reading[];
}

interface AcceptContext {
  now: number;
  pending: PendingReadings[];
  noteSeen(device: DeviceContext, update: Omit<SeenUpdate, 'device'>): void;
  live(tenantId: number, index: number, event: PendingLiveEvent): void;
  statusOf(device: DeviceContext, index: number): void;
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

/** Caches registry answers in the function instance: one look-up per device per TTL. */
class ContextCache {
  readonly #entries = new Map<string, { context: DeviceContext | null; expiresAt: number }>();
  constructor(
    private readonly resolve: (deviceId: string) => Promise<DeviceContext | null>,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
  ) {}

  /** The cached answer, or undefined when the registry must be asked (see `get`). */
  peek(deviceId: string, now: number): DeviceContext | null | undefined {
    const cached = this.#entries.get(deviceId);
    return cached && cached.expiresAt > now ? cached.context : undefined;
  }

  async get(deviceId: string, now: number): Promise<DeviceContext | null> {
    const cached = this.peek(deviceId, now);
    if (cached !== undefined) return cached;
    const context = await this.resolve(deviceId);
    if (this.#entries.size > 50_000) this.#entries.clear();
    this.#entries.set(deviceId, {
      context,
      expiresAt: now + (context ? this.ttlMs : this.negativeTtlMs),
    });
    return context;
  }

  forget(deviceId: string): void {
    this.#entries.delete(deviceId);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** True when the cached answer is older than `ms`: worth asking the registry again. */
  olderThan(deviceId: string, now: number, ms: number): boolean {
    const cached = this.#entries.get(deviceId);
    return !cached || cached.expiresAt - this.ttlMs <= now - ms;
  }
}

/** The hours of readings the rollup function's next recent window will not reach. */
function lateHours(readings: Reading[], now: number): LateRollupHour[] {
  const lateBefore = now - LATE_READING_MS;
  const hours = new Map<string, LateRollupHour>();
  for (const reading of readings) {
    if (reading.timeMs >= lateBefore) continue;
    const hourMs = Math.floor(reading.timeMs / HOUR_MS) * HOUR_MS;
    const key = `${reading.tenantId}\u0000${reading.retentionPolicy}\u0000${hourMs}`;
    if (!hours.has(key))
      hours.set(key, { tenantId: reading.tenantId, policy: reading.retentionPolicy, hourMs });
  }
  return [...hours.values()];
}

/** A cached device older than this is looked up again before a reading of it is refused. */
const RECHECK_AFTER_MS = 1_000;

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

/**
 * Turns IoT rule events into stored readings, registry updates and live events. Every
 * message is checked whole before any of it is kept: a message with one bad reading is
 * rejected entirely, counted by reason, and never stops the rest of the batch. Only
 * infrastructure failures throw, so the caller (the rule's retry, the emulator) tries the
 * whole batch again; every write is idempotent for that.
 */
export class IngestionService {
  readonly #contexts: ContextCache;
  /** Last time each device's last_seen was written, so readings do not UPDATE per message. */
  readonly #seenWrittenAt = new Map<number, { at: number; online: boolean }>();
  /** The plan version the cached contexts were resolved under (see `planVersion`). */
  #planVersion: number | undefined;

  constructor(
    private readonly directory: DeviceDirectory,
    private readonly readings: ReadingStore,
    private readonly logger: Logger,
    private readonly live?: LivePublisher,
    private readonly scorer?: ReadingScorer,
    private readonly options = {
      contextTtlMs: 30_000,
      unknownTtlMs: 5_000,
      seenIntervalMs: 60_000,
    },
    private readonly now: () => number = Date.now,
    private readonly observer?: StoredReadingsObserver,
  ) {
    this.#contexts = new ContextCache(
      (deviceId) => directory.resolve(deviceId),
      options.contextTtlMs,
      options.unknownTtlMs,
    );
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
   * retry (a Kinesis partial batch response).
   */
  async ingestBatch(records: readonly InboundRecord[]): Promise<BatchOutcome> {
    const now = this.now();
    // A plan change must reach this batch, not wait out the cache's TTL.
    const planVersion = await this.directory.planVersion();
    if (planVersion !== this.#planVersion) {
      this.#contexts.clear();
      this.#planVersion = planVersion;
    }
    const rejections = new Map<string, RejectionCount>();
    const pending: PendingReadings[] = [];
    const seen = new Map<number, SeenUpdate>();
    const statusRecords = new Map<number, number[]>();
    const liveByTenant = new Map<number, Array<{ index: number; event: PendingLiveEvent }>>();
    const failed = new Set<number>();
    /** Devices with a failed message: their later messages wait for its retry. */
    const failedDevices = new Set<string>();
    let error: unknown;
    const fail = (index: number, cause: unknown, deviceId: string | undefined) => {
      failed.add(index);
      error ??= cause;
      if (deviceId) failedDevices.add(deviceId);
    };
    let confirmed = 0;

    const reject = (rejection: Rejection, topic: string) => {
      const deviceId = topicDeviceId(topic) ?? null;
      const key = `${rejection.reason}\u0000${deviceId ?? ''}`;
      // The topic is stored as text: nothing PostgreSQL refuses may come with it.
      const lastTopic = storableText(topic.slice(0, 200));
      const entry = rejections.get(key) ?? {
        reason: rejection.reason,
        device_id: deviceId,
        count: 0,
        last_topic: lastTopic,
      };
      entry.count += 1;
      entry.last_topic = lastTopic;
      rejections.set(key, entry);
      this.logger.warn('message rejected', {
        reason: rejection.reason,
        detail: rejection.message,
        topic: lastTopic,
      });
    };
    const context: AcceptContext = {
      now,
      pending,
      noteSeen: (device, update) => {
        const current = seen.get(device.id) ?? { device };
        if (update.online !== undefined) current.online = update.online;
        if (update.lastSeenMs !== undefined) {
          current.lastSeenMs = Math.max(current.lastSeenMs ?? 0, update.lastSeenMs);
        }
        seen.set(device.id, current);
      },
      live: (tenantId, index, event) => {
        const list = liveByTenant.get(tenantId);
        if (list) list.push({ index, event });
        else liveByTenant.set(tenantId, [{ index, event }]);
      },
      statusOf: (device, index) => {
        const list = statusRecords.get(device.id);
        if (list) list.push(index);
        else statusRecords.set(device.id, [index]);
      },
    };

    for (let index = 0; index < records.length; index++) {
      const record = records[index] as InboundRecord;
      const event = record.event;
      const topic = String((event as { topic?: unknown })?.topic ?? '');
      const topicDevice = topicDeviceId(topic);
      if (topicDevice && failedDevices.has(topicDevice)) {
        failed.add(index);
        continue;
      }
      try {
        const message = decodeRuleEvent(event);
        // Nearly always cached: no await, which per message was a tenth of the loop's time.
        const device =
          this.#contexts.peek(message.deviceId, now) ??
          (await this.#contexts.get(message.deviceId, now));
        if (!device) throw new Rejection('unknown_device', `${message.deviceId} is not registered`);
        const ordinal = record.ordinal ?? index;
        try {
          const accepted = this.#accept(message, device, { index, ordinal, topic }, context);
          confirmed += typeof accepted === 'number' ? accepted : await accepted;
        } catch (error) {
          // Another function instance may have stored this device's discovery since we
          // cached it: check once more before refusing a reading of a new entity.
          const stale =
            error instanceof Rejection &&
            error.reason === 'unknown_entity' &&
            this.#contexts.olderThan(message.deviceId, now, RECHECK_AFTER_MS);
          if (!stale) throw error;
          this.#contexts.forget(message.deviceId);
          const fresh = await this.#contexts.get(message.deviceId, now);
          if (!fresh)
            throw new Rejection('unknown_device', `${message.deviceId} is not registered`);
          confirmed += await this.#accept(message, fresh, { index, ordinal, topic }, context);
        }
      } catch (error) {
        if (error instanceof Rejection) reject(error, topic);
        else fail(index, error, topicDevice);
      }
    }

    let stored = 0;
    let anomalies = 0;
    if (pending.length > 0) {
      const written = await this.#write(pending, reject, fail);
      stored = written.stored;
      const kept: Reading[] = [];
      for (const entry of written.kept) for (const reading of entry.readings) kept.push(reading);
      try {
        await this.directory.markLateRollups(lateHours(kept, now));
      } catch (cause) {
        // Stored, but the rollups would miss them: retried, they are rewritten and marked.
        for (const entry of written.kept) fail(entry.index, cause, entry.device.deviceId);
      }
      const found = new Map<number, ScoredAnomaly[]>();
      if (this.scorer) {
        anomalies = await this.#score(written.kept, written.refused, context.live, fail, found);
      }
      if (this.observer) await this.#observe(written, found, now, fail);
    }

    const dueSeen = this.#dueSeenUpdates([...seen.values()], now);
    try {
      await this.directory.recordSeen(dueSeen);
      for (const update of dueSeen) {
        const online = update.online ?? this.#seenWrittenAt.get(update.device.id)?.online ?? true;
        this.#seenWrittenAt.set(update.device.id, { at: now, online });
      }
    } catch (cause) {
      // A status message's whole effect is this write: those are retried. A reading's
      // last-seen time is refreshed by the device's next message anyway.
      for (const update of dueSeen) {
        for (const index of statusRecords.get(update.device.id) ?? []) {
          fail(index, cause, update.device.deviceId);
        }
      }
    }
    try {
      await this.directory.recordRejections([...rejections.values()]);
    } catch (cause) {
      // The messages were judged; losing their counts must not make anyone retry them.
      this.logger.warn('could not record rejection counts', { error: cause });
    }
    if (this.live) {
      for (const [tenantId, liveEvents] of liveByTenant) {
        const events = () =>
          liveEvents
            .filter((entry) => !failed.has(entry.index))
            .map(({ event }) => (typeof event === 'function' ? event() : event));
        await this.live.publish(tenantId, events).catch((error: unknown) => {
          // Dashboards catch up from the API; a lost live push must not fail ingestion.
          this.logger.warn('live update failed', { tenantId, error });
        });
      }
    }
    const rejected: IngestionSummary['rejected'] = {};
    for (const entry of rejections.values()) {
      rejected[entry.reason] = (rejected[entry.reason] ?? 0) + entry.count;
    }
    return {
      summary: {
        messages: records.length,
        readings: stored,
        confirmedCommands: confirmed,
        anomalies,
        rejected,
      },
      failed: [...failed].sort((a, b) => a - b),
      error,
    };
  }

  /**
   * Writes every accepted reading in one request. If the store refuses content (a field
   * type conflict, a line it cannot parse), each message is written alone so that only the
   * one refused is rejected; if the store is unavailable, every message with readings fails.
   */
  async #write(
    pending: PendingReadings[],
    reject: (rejection: Rejection, topic: string) => void,
    fail: (index: number, cause: unknown, deviceId: string | undefined) => void,
  ): Promise<{ stored: number; kept: PendingReadings[]; refused: Set<Reading> }> {
    // A loop, not flatMap: V8's flatMap took a twentieth of the function's time here.
    const all: Reading[] = [];
    for (const entry of pending) for (const reading of entry.readings) all.push(reading);
    const beyondRetention = (tooOld: Reading[]) => {
      for (const reading of tooOld) {
        reject(
          new Rejection('beyond_retention', 'older than the plan keeps data'),
          `devices/${reading.deviceId}/${reading.entityId}/state`,
        );
      }
    };
    try {
      const result = await this.readings.writeReadings(all);
      beyondRetention(result.beyondRetention);
      return { stored: result.written, kept: pending, refused: new Set(result.beyondRetention) };
    } catch (error) {
      if (!isContentRefusal(error)) {
        for (const entry of pending) fail(entry.index, error, entry.device.deviceId);
        return { stored: 0, kept: [], refused: new Set() };
      }
    }
    let stored = 0;
    const kept: PendingReadings[] = [];
    const refused = new Set<Reading>();
    for (const entry of pending) {
      try {
        const result = await this.readings.writeReadings(entry.readings);
        beyondRetention(result.beyondRetention);
        for (const reading of result.beyondRetention) refused.add(reading);
        stored += result.written;
        kept.push(entry);
      } catch (error) {
        if (isContentRefusal(error)) {
          reject(
            new Rejection('refused_by_database', (error as Error).message.slice(0, 300)),
            entry.topic,
          );
        } else fail(entry.index, error, entry.device.deviceId);
      }
    }
    return { stored, kept, refused };
  }

  /**
   * Takes one decoded message; returns how many commands it confirmed. Synchronous for the
   * common case (sensor readings): awaiting per message cost a tenth of the ingest loop.
   */
  #accept(
    message: InboundMessage,
    device: DeviceContext,
    { index, ordinal, topic }: { index: number; ordinal: number; topic: string },
    context: AcceptContext,
  ): number | Promise<number> {
    const { now } = context;
    if (message.kind === 'status') {
      context.noteSeen(device, {
        online: message.online,
        ...(message.online ? { lastSeenMs: message.receivedAtMs } : {}),
      });
      context.statusOf(device, index);
      // A status change must be written now, whatever the throttle says.
      this.#seenWrittenAt.delete(device.id);
      context.live(device.tenantId, index, {
        type: 'status',
        device_id: device.id,
        status: message.online ? 'online' : 'offline',
        time: new Date(message.receivedAtMs).toISOString(),
      });
      return 0;
    }
    if (message.kind === 'discovery') {
      return refusedByDatabase(this.directory.applyDiscovery(device, message.discovery)).then(
        () => {
          this.#contexts.forget(device.deviceId);
          context.noteSeen(device, { lastSeenMs: message.receivedAtMs });
          return 0;
        },
      );
    }

    const retentionStart = device.retentionDays === null ? 0 : now - device.retentionDays * DAY_MS;
    const readings: Reading[] = [];
    let latest = Number.NEGATIVE_INFINITY;
    const confirmations: CommandConfirmation[] = [];
    for (const raw of message.readings) {
      const entity = device.entities[raw.entityId];
      if (!entity) throw new Rejection('unknown_entity', `${raw.entityId} was never announced`);
      if (!valueFits(entity.type, raw.value)) {
        throw new Rejection('wrong_value_type', `${typeof raw.value} for a ${entity.type}`);
      }
      if (raw.timeMs > now + FUTURE_TOLERANCE_MS) {
        throw new Rejection(
          'timestamp_in_future',
          `reading dated ${new Date(raw.timeMs).toISOString()}`,
        );
      }
      if (raw.timeMs < retentionStart) {
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
      if (raw.untimedItem !== undefined)
        reading.subMsNs = untimedOffsetNs(ordinal, raw.untimedItem);
      // What the store could not keep exactly (a line break in a text value, say) is refused
      // here, one message at a time, rather than failing the whole batch at write time.
      const problem = readingProblem(reading);
      if (problem) throw new Rejection('invalid_payload', problem);
      readings.push(reading);
      if (raw.timeMs > latest) latest = raw.timeMs;
      // States that answer a command: confirm it and credit the relay change to its sender.
      if (raw.commandId !== undefined || entity.type !== 'sensor') {
        confirmations.push({ entityId: raw.entityId, value: raw.value, commandId: raw.commandId });
      }
    }
    const keep = () => {
      context.pending.push({ index, topic, device, readings });
      context.noteSeen(device, {
        online: true,
        lastSeenMs: Math.min(latest, message.receivedAtMs),
      });
      context.live(device.tenantId, index, () => ({
        type: 'readings',
        device_id: device.id,
        readings: readings.map((reading) => ({
          entity_id: reading.entityId,
          value: reading.value,
          time: new Date(reading.timeMs).toISOString(),
        })),
      }));
    };
    if (confirmations.length === 0) {
      keep();
      return 0;
    }
    return refusedByDatabase(this.directory.confirmCommands(device, confirmations)).then(
      (triggeredBy) => {
        for (const reading of readings) {
          if (reading.entityType === 'switch')
            reading.triggeredBy = triggeredBy.get(reading.entityId) ?? 'device';
        }
        keep();
        return triggeredBy.size;
      },
    );
  }

  /** Hands each device's stored readings (and their anomalies) to the observer, once per batch. */
  async #observe(
    written: { kept: PendingReadings[]; refused: Set<Reading> },
    anomalies: Map<number, ScoredAnomaly[]>,
    now: number,
    fail: (index: number, cause: unknown, deviceId: string | undefined) => void,
  ): Promise<void> {
    const byDevice = new Map<number, StoredDeviceReadings & { indices: number[] }>();
    for (const entry of written.kept) {
      let group = byDevice.get(entry.device.id);
      if (!group) {
        group = {
          device: entry.device,
          readings: [],
          anomalies: anomalies.get(entry.device.id) ?? [],
          indices: [],
        };
        byDevice.set(entry.device.id, group);
      }
      for (const reading of entry.readings)
        if (!written.refused.has(reading)) group.readings.push(reading);
      group.indices.push(entry.index);
    }
    if (byDevice.size === 0) return;
    try {
      await (this.observer as StoredReadingsObserver).readingsStored({
        nowMs: now,
        devices: [...byDevice.values()],
      });
    } catch (error) {
      // Stored, but not judged: retried, the readings are rewritten (idempotent) and judged.
      for (const group of byDevice.values())
        for (const index of group.indices) fail(index, error, group.device.deviceId);
    }
  }

  async #score(
    pending: PendingReadings[],
    refused: Set<Reading>,
    live: AcceptContext['live'],
    fail: (index: number, cause: unknown, deviceId: string | undefined) => void,
    scored: Map<number, ScoredAnomaly[]>,
  ): Promise<number> {
    let found = 0;
    const byDevice = new Map<
      number,
      { device: DeviceContext; readings: Reading[]; indices: number[] }
    >();
    for (const entry of pending) {
      if (entry.device.anomalyDetection === 'none') continue;
      const group = byDevice.get(entry.device.id) ?? {
        device: entry.device,
        readings: [],
        indices: [],
      };
      group.readings.push(...entry.readings.filter((reading) => !refused.has(reading)));
      group.indices.push(entry.index);
      byDevice.set(entry.device.id, group);
    }
    for (const { device, readings, indices } of byDevice.values()) {
      let anomalies: Awaited<ReturnType<ReadingScorer['score']>>;
      try {
        anomalies = await (this.scorer as ReadingScorer).score(device, readings);
      } catch (error) {
        // Stored, but not yet scored: retried, the readings are rewritten (idempotent) and scored.
        for (const index of indices) fail(index, error, device.deviceId);
        continue;
      }
      found += anomalies.length;
      if (anomalies.length > 0) scored.set(device.id, anomalies);
      for (const anomaly of anomalies) {
        live(device.tenantId, indices[indices.length - 1] as number, {
          type: 'anomaly',
          device_id: device.id,
          entity_id: anomaly.entityId,
          time: new Date(anomaly.timeMs).toISOString(),
          score: anomaly.score,
          value: anomaly.value,
          reason: anomaly.reason,
        });
      }
    }
    return found;
  }

  #dueSeenUpdates(updates: SeenUpdate[], now: number): SeenUpdate[] {
    return updates.filter((update) => {
      const last = this.#seenWrittenAt.get(update.device.id);
      const online = update.online ?? last?.online ?? true;
      return !last || last.online !== online || now - last.at >= this.options.seenIntervalMs;
    });
  }
}
