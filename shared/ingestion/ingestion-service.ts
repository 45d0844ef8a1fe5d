import type { Logger } from '../logger.ts';
import { type Reading, readingProblem } from '../timeseries/reading.ts';
import type { ReadingStore } from '../timeseries/reading-store.ts';
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
  ) {
    this.#contexts = new ContextCache(
      (deviceId) => directory.resolve(deviceId),
      options.contextTtlMs,
      options.unknownTtlMs,
    );
  }

  async ingest(events: unknown[]): Promise<IngestionSummary> {
    const now = this.now();
    // A plan change must reach this batch, not wait out the cache's TTL.
    const planVersion = await this.directory.planVersion();
    if (planVersion !== this.#planVersion) {
      this.#contexts.clear();
      this.#planVersion = planVersion;
    }
    const rejections = new Map<string, RejectionCount>();
    const pending: Array<{ device: DeviceContext; readings: Reading[] }> = [];
    const seen = new Map<number, SeenUpdate>();
    const liveByTenant = new Map<number, PendingLiveEvent[]>();
    const confirmed = { count: 0 };

    const reject = (rejection: Rejection, topic: string) => {
      const deviceId = topicDeviceId(topic) ?? null;
      const key = `${rejection.reason}\u0000${deviceId ?? ''}`;
      const entry = rejections.get(key) ?? {
        reason: rejection.reason,
        device_id: deviceId,
        count: 0,
        last_topic: topic,
      };
      entry.count += 1;
      entry.last_topic = topic;
      rejections.set(key, entry);
      this.logger.warn('message rejected', {
        reason: rejection.reason,
        detail: rejection.message,
        topic: topic.slice(0, 200),
      });
    };
    const noteSeen = (device: DeviceContext, update: Omit<SeenUpdate, 'device'>) => {
      const current = seen.get(device.id) ?? { device };
      if (update.online !== undefined) current.online = update.online;
      if (update.lastSeenMs !== undefined) {
        current.lastSeenMs = Math.max(current.lastSeenMs ?? 0, update.lastSeenMs);
      }
      seen.set(device.id, current);
    };
    const liveFor = (tenantId: number) => {
      const list = liveByTenant.get(tenantId) ?? [];
      liveByTenant.set(tenantId, list);
      return list;
    };

    for (const event of events) {
      const topic = String((event as { topic?: unknown })?.topic ?? '');
      try {
        const message = decodeRuleEvent(event);
        // Nearly always cached: no await, which per message was a tenth of the loop's time.
        const device =
          this.#contexts.peek(message.deviceId, now) ??
          (await this.#contexts.get(message.deviceId, now));
        if (!device) throw new Rejection('unknown_device', `${message.deviceId} is not registered`);
        try {
          const accepted = this.#accept(message, device, now, pending, noteSeen, liveFor);
          confirmed.count += typeof accepted === 'number' ? accepted : await accepted;
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
          confirmed.count += await this.#accept(message, fresh, now, pending, noteSeen, liveFor);
        }
      } catch (error) {
        if (!(error instanceof Rejection)) throw error;
        reject(error, topic);
      }
    }

    let stored = 0;
    let anomalies = 0;
    if (pending.length > 0) {
      // A loop, not flatMap: V8's flatMap took a twentieth of the function's time here.
      const all: Reading[] = [];
      for (const entry of pending) for (const reading of entry.readings) all.push(reading);
      const result = await this.readings.writeReadings(all);
      stored = result.written;
      for (const tooOld of result.beyondRetention) {
        reject(
          new Rejection('beyond_retention', 'older than the plan keeps data'),
          `devices/${tooOld.deviceId}/${tooOld.entityId}/state`,
        );
      }
      await this.directory.markLateRollups(lateHours(all, now));
      if (this.scorer)
        anomalies = await this.#score(pending, new Set(result.beyondRetention), liveFor);
    }

    const dueSeen = this.#dueSeenUpdates([...seen.values()], now);
    await this.directory.recordSeen(dueSeen);
    for (const update of dueSeen) {
      const online = update.online ?? this.#seenWrittenAt.get(update.device.id)?.online ?? true;
      this.#seenWrittenAt.set(update.device.id, { at: now, online });
    }
    await this.directory.recordRejections([...rejections.values()]);
    if (this.live) {
      for (const [tenantId, liveEvents] of liveByTenant) {
        const events = () =>
          liveEvents.map((event) => (typeof event === 'function' ? event() : event));
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
      messages: events.length,
      readings: stored,
      confirmedCommands: confirmed.count,
      anomalies,
      rejected,
    };
  }

  /**
   * Takes one decoded message; returns how many commands it confirmed. Synchronous for the
   * common case (sensor readings): awaiting per message cost a tenth of the ingest loop.
   */
  #accept(
    message: InboundMessage,
    device: DeviceContext,
    now: number,
    pending: Array<{ device: DeviceContext; readings: Reading[] }>,
    noteSeen: (device: DeviceContext, update: Omit<SeenUpdate, 'device'>) => void,
    liveFor: (tenantId: number) => PendingLiveEvent[],
  ): number | Promise<number> {
    if (message.kind === 'status') {
      noteSeen(device, {
        online: message.online,
        ...(message.online ? { lastSeenMs: message.receivedAtMs } : {}),
      });
      // A status change must be written now, whatever the throttle says.
      this.#seenWrittenAt.delete(device.id);
      liveFor(device.tenantId).push({
        type: 'status',
        device_id: device.id,
        status: message.online ? 'online' : 'offline',
        time: new Date(message.receivedAtMs).toISOString(),
      });
      return 0;
    }
    if (message.kind === 'discovery') {
      return this.directory.applyDiscovery(device, message.discovery).then(() => {
        this.#contexts.forget(device.deviceId);
        noteSeen(device, { lastSeenMs: message.receivedAtMs });
        return 0;
      });
    }

    const oldestAllowed = device.retentionDays === null ? 0 : now - device.retentionDays * DAY_MS;
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
      if (raw.timeMs < oldestAllowed) {
        throw new Rejection(
          'beyond_retention',
          `the ${device.plan} plan keeps ${device.retentionDays} days`,
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
    pending.push({ device, readings });
    noteSeen(device, { online: true, lastSeenMs: Math.min(latest, message.receivedAtMs) });
    liveFor(device.tenantId).push(() => ({
      type: 'readings',
      device_id: device.id,
      readings: readings.map((reading) => ({
        entity_id: reading.entityId,
        value: reading.value,
        time: new Date(reading.timeMs).toISOString(),
      })),
    }));
    if (confirmations.length === 0) return 0;
    return this.directory.confirmCommands(device, confirmations).then((triggeredBy) => {
      for (const reading of readings) {
        if (reading.entityType === 'switch')
          reading.triggeredBy = triggeredBy.get(reading.entityId) ?? 'device';
      }
      return triggeredBy.size;
    });
  }

  async #score(
    pending: Array<{ device: DeviceContext; readings: Reading[] }>,
    refused: Set<Reading>,
    liveFor: (tenantId: number) => PendingLiveEvent[],
  ): Promise<number> {
    let found = 0;
    const byDevice = new Map<number, { device: DeviceContext; readings: Reading[] }>();
    for (const entry of pending) {
      if (entry.device.anomalyDetection === 'none') continue;
      const group = byDevice.get(entry.device.id) ?? { device: entry.device, readings: [] };
      group.readings.push(...entry.readings.filter((reading) => !refused.has(reading)));
      byDevice.set(entry.device.id, group);
    }
    for (const { device, readings } of byDevice.values()) {
      const anomalies = await (this.scorer as ReadingScorer).score(device, readings);
      found += anomalies.length;
      for (const anomaly of anomalies) {
        liveFor(device.tenantId).push({
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
