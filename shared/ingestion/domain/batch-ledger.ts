import type { Logger } from '../../logger.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type {
  BatchOutcome,
  DeviceContext,
  IngestionSummary,
  LiveEvent,
  RejectionCount,
  SeenUpdate,
} from './model.ts';
import { storableText, topicDeviceId } from './payloads.ts';
import type { Rejection } from './rejection.ts';

/** A live event, or how to make it once someone is there to receive it. */
export type PendingLiveEvent = LiveEvent | (() => LiveEvent);

/** One message's readings, judged good and waiting to be stored. */
export interface PendingReadings {
  /** The message's index in the batch. */
  index: number;
  topic: string;
  device: DeviceContext;
  readings: Reading[];
}

/**
 * What one batch has come to so far: the readings waiting to be stored, the rejections by
 * reason and device, the devices seen, the live events, and the messages that failed. Each
 * step of `IngestionService.ingestBatch` adds to it; `outcome` is the batch's answer.
 */
export class BatchLedger {
  readonly pending: PendingReadings[] = [];
  confirmedCommands = 0;
  writtenReadings = 0;

  readonly #rejections = new Map<string, RejectionCount>();
  readonly #seen = new Map<number, SeenUpdate>();
  /** Status messages by device row id: their whole effect is the last-seen write. */
  readonly #statusMessages = new Map<number, number[]>();
  readonly #live = new Map<number, Array<{ index: number; event: PendingLiveEvent }>>();
  readonly #failed = new Set<number>();
  /** Devices with a failed message: their later messages wait for its retry. */
  readonly #failedDevices = new Set<string>();
  #error: unknown;

  constructor(
    readonly now: number,
    private readonly logger: Logger,
  ) {}

  /** Counts a message that is wrong in itself; the batch goes on. */
  reject(rejection: Rejection, topic: string): void {
    const deviceId = topicDeviceId(topic) ?? null;
    const key = `${rejection.reason}\u0000${deviceId ?? ''}`;
    // The topic is stored as text: nothing PostgreSQL refuses may come with it.
    const lastTopic = storableText(topic.slice(0, 200));
    const entry = this.#rejections.get(key) ?? {
      reason: rejection.reason,
      device_id: deviceId,
      count: 0,
      last_topic: lastTopic,
    };
    entry.count += 1;
    entry.last_topic = lastTopic;
    this.#rejections.set(key, entry);
    this.logger.warn('message rejected', {
      reason: rejection.reason,
      detail: rejection.message,
      topic: lastTopic,
    });
  }

  /** Marks a message an infrastructure failure kept from being stored; it is retried. */
  fail(index: number, cause: unknown, deviceId: string | undefined): void {
    this.#failed.add(index);
    this.#error ??= cause;
    if (deviceId) this.#failedDevices.add(deviceId);
  }

  /** A message of a device with a failed message: it must not overtake that one's retry. */
  holdBack(index: number, deviceId: string | undefined): boolean {
    if (!deviceId || !this.#failedDevices.has(deviceId)) return false;
    this.#failed.add(index);
    return true;
  }

  noteSeen(device: DeviceContext, update: Omit<SeenUpdate, 'device'>): void {
    const current = this.#seen.get(device.devicePk) ?? { device };
    if (update.online !== undefined) current.online = update.online;
    if (update.lastSeenMs !== undefined) {
      current.lastSeenMs = Math.max(current.lastSeenMs ?? 0, update.lastSeenMs);
    }
    this.#seen.set(device.devicePk, current);
  }

  noteStatusMessage(device: DeviceContext, index: number): void {
    const list = this.#statusMessages.get(device.devicePk);
    if (list) list.push(index);
    else this.#statusMessages.set(device.devicePk, [index]);
  }

  addLive(tenantId: number, index: number, event: PendingLiveEvent): void {
    const list = this.#live.get(tenantId);
    if (list) list.push({ index, event });
    else this.#live.set(tenantId, [{ index, event }]);
  }

  seenUpdates(): SeenUpdate[] {
    return [...this.#seen.values()];
  }

  statusMessagesOf(device: DeviceContext): number[] {
    return this.#statusMessages.get(device.devicePk) ?? [];
  }

  rejectionCounts(): RejectionCount[] {
    return [...this.#rejections.values()];
  }

  /** The tenants with live events so far (a batch's scoring adds none of its own). */
  liveTenants(): number[] {
    return [...this.#live.keys()];
  }

  /** Each tenant's live events, without those of failed messages, made only when asked. */
  *liveEvents(): Iterable<[tenantId: number, events: () => LiveEvent[]]> {
    for (const [tenantId, entries] of this.#live) {
      yield [
        tenantId,
        () =>
          entries
            .filter((entry) => !this.#failed.has(entry.index))
            .map(({ event }) => (typeof event === 'function' ? event() : event)),
      ];
    }
  }

  outcome(messages: number): BatchOutcome {
    const rejected: IngestionSummary['rejected'] = {};
    for (const entry of this.#rejections.values()) {
      rejected[entry.reason] = (rejected[entry.reason] ?? 0) + entry.count;
    }
    return {
      summary: {
        messages,
        readings: this.writtenReadings,
        confirmedCommands: this.confirmedCommands,
        rejected,
      },
      failed: [...this.#failed].sort((a, b) => a - b),
      error: this.#error,
    };
  }
}
