/**
 * The local stand-in for AWS IoT Core's rules engine: it reads the `iot` events in
 * serverless.yml, takes the messages on each rule's topic filter, evaluates the rule's SQL
 * and invokes the rule's function through serverless-offline's Lambda Invoke API with the
 * rule's output, as AWS IoT's Lambda action does.
 *
 * Where the messages come from: with the local broker's journal (`journal`), the rules on
 * the journaled filters read it, as AWS's rules engine takes messages inside the broker: the
 * broker appends each client message there before it acknowledges it, so a broker crash
 * loses none (local/services/mosquitto-journal.c), and the broker does not fan messages out
 * to the emulator. The other rules (those on topics the broker publishes on itself, the
 * devices' last wills, which a plugin never sees) and every rule on a broker without a
 * journal subscribe through a persistent MQTT session.
 *
 * Delivery is at least once. A journal record's checkpoint moves past it, and a message from
 * the MQTT session is acknowledged, only once every function its rules fired for has taken
 * it (or it has been written to the dead-letter store), so a message is never lost to an
 * emulator restart, a failing function or a stack that was down.
 */
import { BufferPool, POOLED_BUFFER_BYTES } from '../../shared/buffer-pool.ts';
import type { Logger } from '../../shared/logger.ts';
import {
  type BatchSettings,
  type IotRulesConfig,
  loadIotRulesConfig,
  MAX_BATCH_BYTES,
  type RuleDefinition,
  type StreamSettings,
} from './config.ts';
import { DeadLetterStore } from './dead-letter-store.ts';
import { JournalReader, type JournalRecord } from './journal.ts';
import {
  BASE64_DATA_BYTES,
  compactRecordAround,
  compactRecordData,
  compactRecordText,
  expandKinesisBatch,
  LOCAL_KINESIS_BATCH_CLOSE,
  localKinesisBatchOpen,
  mostRecordDataBytes,
  writeJsonAsRecordData,
} from './kinesis-batch.mjs';
import { invokeFunction, readStreamAnswer } from './lambda.ts';
import { type InboundPublish, MqttSession } from './mqtt-session.ts';
import {
  Base64Payload,
  compileMessageValue,
  compileOutputWriter,
  evaluateRule,
  NOT_ASCII,
  type RuleMessage,
  topicMatches,
} from './sql.ts';

export type EmulatorLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface RetrySettings {
  /** Delay before the first retry; doubles after each failed attempt. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Past this much time since the first attempt, a failure is dead-lettered. */
  maxElapsedMs: number;
}

export interface IotRulesEmulatorOptions {
  serverlessYmlPath: string;
  stage: string;
  /** Defaults to serverless.yml's `service`. */
  service?: string;
  /** The platform's broker account (may subscribe to every rule's filter). */
  mqtt: { url: string; username: string; password: string };
  /** serverless-offline's Lambda endpoint, e.g. `http://127.0.0.1:3002`. */
  lambdaEndpoint: string;
  deadLetterDir: string;
  /** Fixed across restarts: the broker keeps this client's session and queued messages. */
  clientId: string;
  log: EmulatorLog;
  /** Defaults: 200 ms doubling to 10 s, dead-lettered after 60 s. */
  retry?: Partial<RetrySettings>;
  /** An invocation that has not answered by then counts as failed. Default 30 s. */
  invokeTimeoutMs?: number;
  /** Invocations (or batches) of one function in flight at once, unless batch settings say otherwise. Default 4. */
  maxInFlightPerFunction?: number;
  /** How long `stop()` lets running invocations finish before abandoning them. Default 5 s. */
  stopTimeoutMs?: number;
  /**
   * How long a message still being worked on may hold back the acknowledgement of the
   * messages the broker sent after it. Default 5 s.
   */
  ackHoldLimitMs?: number;
  /**
   * Messages received and not yet acknowledged, at most: the MQTT Receive Maximum, which the
   * emulator also enforces itself by not reading further. Default 8,192.
   */
  receiveMaximum?: number;
  /** Payload bytes of unacknowledged messages past which it stops reading too. Default 16 MB. */
  maxUnacknowledgedBytes?: number;
  /**
   * The broker's journal (see `startMosquitto`'s `journalTopics`): the rules on `topics`
   * read it from the checkpoint in `checkpointFile` instead of the MQTT session.
   */
  journal?: { dir: string; checkpointFile: string; topics: readonly string[] };
}

export interface FunctionStats {
  /** Rule outputs routed to the function. */
  received: number;
  /** HTTP invocations made, retries included. */
  invoked: number;
  /** Rule outputs the function took. */
  succeeded: number;
  /** Invocations that failed and were tried again. */
  retried: number;
  /** Rule outputs written to the dead-letter store. */
  deadLettered: number;
  /** Rule outputs in an invocation or waiting for a retry. */
  inFlight: number;
  /** Rule outputs waiting for an invocation slot, a batch, or an earlier message on their topic. */
  queued: number;
  /** Milliseconds the invocations took, each rounded up to a whole millisecond as Lambda bills. */
  billedMs: number;
  /** Batches sent, by what sent them (a stream's event source mapping; see `pumpStream`). */
  batchesSentBy: Record<BatchTrigger, number>;
}

/**
 * Why a batcher sent its batch: BatchSize records, the byte limit, the batching window, a
 * backlog the emulator may not read further into, or a stop draining what the broker may no
 * longer hold.
 */
export type BatchTrigger = 'size' | 'bytes' | 'window' | 'backlog' | 'drain';

/** What a stream (a Kinesis stream locally) took in, as Kinesis meters it. */
export interface StreamStats {
  /** Records put (one per rule output). */
  records: number;
  /** Bytes of record data (the rule outputs' JSON) and partition keys. */
  bytes: number;
  /** PUT payload units: each record in 25 KB chunks. */
  putPayloadUnits: number;
}

export interface JournalStats {
  /** Records read from the broker's journal since the emulator started. */
  read: number;
  /** The first record not yet settled: where a restart reads from. */
  checkpoint: number;
  /** Records read and not yet settled. */
  unsettled: number;
  /** Torn records found at a segment's end (their publishers were never acknowledged). */
  torn: number;
}

export interface IotRulesEmulatorStats {
  connected: boolean;
  /** With a journal: what was read from it. */
  journal?: JournalStats;
  /** Reading from the broker is paused: the emulator holds all the unacknowledged it may. */
  readingPaused: boolean;
  /** PUBLISH packets the broker delivered: one per matching rule filter, as Mosquitto sends them. */
  messages: number;
  /** Messages acknowledged to the broker. */
  acknowledged: number;
  /** Messages the broker delivered again (DUP flag) after a reconnect. */
  redelivered: number;
  /** Rule evaluations whose WHERE clause was not true. */
  filtered: number;
  /** Rule evaluations that needed a JSON payload and did not get one (the rule does not fire). */
  notJson: number;
  /** Messages matching no current rule (a subscription left from an earlier configuration). */
  unrouted: number;
  /**
   * Inbound PUBLISH packets as AWS IoT meters messaging: each in 5 KB increments of its
   * payload and topic (a redelivery is not a second publish by the device, so not counted).
   */
  meteredMessages: number;
  /** Rules triggered and actions applied, each in 5 KB increments of the message. */
  rulesTriggered: number;
  actionsApplied: number;
  functions: Record<string, FunctionStats>;
  streams: Record<string, StreamStats>;
}

export interface RunningIotRulesEmulator {
  stats(): IotRulesEmulatorStats;
  /** Resolves once the emulator is idle: nothing queued, in flight or waiting for an ack. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_RETRY: RetrySettings = {
  initialDelayMs: 200,
  maxDelayMs: 10_000,
  maxElapsedMs: 60_000,
};
/**
 * Messages with the same key are invoked in arrival order. A device's messages share one key
 * across its topics, so its discovery is stored before the readings it announces, as the
 * device published them; other topics keep their own order.
 */
export function orderingKey(topic: string): string {
  return /^devices\/[^/]+/.exec(topic)?.[0] ?? topic;
}

/** MQTT 5 Session Expiry Interval meaning "never": queued messages wait however long we are down. */
const SESSION_NEVER_EXPIRES = 0xffff_ffff;
/**
 * MQTT 5 Receive Maximum: the broker sends at most this many unacknowledged, and queues the
 * rest (cheaply, in C); the emulator stops reading at this many, for brokers that send more
 * (`MqttSession.pauseReading`). It is more than the invocations in flight can take, and far less
 * than the protocol's 65,535: with that many, the emulator held hundreds of megabytes of
 * 50-reading messages and spent about a tenth more CPU per message (pipeline benchmark).
 */
const RECEIVE_MAXIMUM = 8192;
/**
 * The Receive Maximum for these rules: at least RECEIVE_MAXIMUM, and room for every stream
 * batcher's full batch in an invocation and the next one gathering behind it (the stream
 * has records ready for the next batch as soon as one returns on AWS too), within MQTT's
 * 65,535.
 */
function receiveMaximumFor(config: IotRulesConfig): number {
  let most = RECEIVE_MAXIMUM;
  for (const settings of config.batch.values()) {
    if (!settings.stream) continue;
    most = Math.max(most, 2 * settings.stream.parallelizationFactor * settings.maxRecords);
  }
  return Math.min(0xffff, most);
}

/**
 * Payload bytes of unacknowledged messages past which the emulator stops reading: a count
 * alone would let 8,192 large messages (a backlog of firmware logs, say) take gigabytes.
 * 50-reading telemetry messages reach it first, with about two batches for each of four
 * batchers held (what the count gives one-reading messages); at 32 MB, it held twice the
 * outputs, whose slabs the collector kept marking and the pool dropped and made anew.
 */
const MAX_UNACKNOWLEDGED_BYTES = 16 * 1024 * 1024;

/** One PUBLISH from the broker, acknowledged once each rule output made from it is settled. */
interface Delivery {
  topic: string;
  receivedAt: number;
  /** A journal record's sequence; undefined for a message of the MQTT session. */
  journalSequence?: number;
  messageId: number;
  /** Its payload's size, counted in what unacknowledged messages hold. */
  bytes: number;
  /**
   * Set when that connection closed. The broker delivers the message again only if it still
   * has it: one killed before its next save has lost it, so the emulator's copy is still
   * handed to the function (never acknowledged: that connection is gone).
   */
  stale: boolean;
  outstanding: number;
  /** Every rule output made from it is settled: it may be acknowledged. */
  settled: boolean;
  acknowledged: boolean;
}

interface Item {
  delivery: Delivery;
  definition: RuleDefinition;
  /**
   * `buffer` from `jsonStart` to `jsonEnd`: the rule output as JSON (UTF-8), made once: an
   * invocation's body is these concatenated (one JSON.stringify of the whole batch cost as
   * much again). For a stream's record, its values in the batch form the function host
   * expands (local/iot-rules/kinesis-batch.mjs). Then to `payloadEnd`, the message's payload,
   * for the dead-letter store (the socket's buffer is reused). Offsets, not views: two
   * buffer views per record were a good part of what the collector had to move.
   */
  buffer: Buffer;
  jsonStart: number;
  jsonEnd: number;
  payloadEnd: number;
  /** What it adds to a batch's size: for a stream's record, the record in Lambda's event. */
  bytes: number;
  /** Where `buffer` comes from; released once the item's invocation is over. */
  slab: Slab | undefined;
  enqueuedAt: number;
  /** For a stream's record: its sequence number (`json` is then the Kinesis record). */
  sequenceNumber?: string;
  sequence?: number;
}

/** The item's rule output (or stream record values) as JSON. */
function jsonOf(item: Item): Buffer {
  return item.buffer.subarray(item.jsonStart, item.jsonEnd);
}

/** A stream's batch text before its records, and what a record's text in Lambda's event adds. */
interface StreamEnvelope {
  open: Buffer;
  /** Bytes of a record in Lambda's event beyond its values and its sequence number again. */
  recordBytes: number;
}

/** `[a,b,...]` from the items' JSON, in a buffer of `buffers`, to give back once answered. */
function batchBody(items: readonly Item[], buffers: BufferPool): { body: Buffer; buffer: Buffer } {
  let size = 2 + Math.max(0, items.length - 1);
  for (const item of items) size += item.jsonEnd - item.jsonStart;
  const buffer = buffers.take(size);
  let at = 0;
  buffer[at++] = 0x5b; // [
  for (const [index, item] of items.entries()) {
    if (index > 0) buffer[at++] = 0x2c; // ,
    at += item.buffer.copy(buffer, at, item.jsonStart, item.jsonEnd);
  }
  buffer[at++] = 0x5d; // ]
  return { body: buffer.subarray(0, at), buffer };
}

const RECORDS_CLOSE = Buffer.from(LOCAL_KINESIS_BATCH_CLOSE);

/** The batch of the items' Kinesis records, in stream order, in the function host's form. */
function streamBody(
  items: readonly Item[],
  open: Buffer,
  buffers: BufferPool,
): { body: Buffer; buffer: Buffer } {
  let size = open.length + RECORDS_CLOSE.length + Math.max(0, items.length - 1);
  for (const item of items) size += item.jsonEnd - item.jsonStart;
  const buffer = buffers.take(size);
  let at = open.copy(buffer, 0);
  for (let index = 0; index < items.length; index++) {
    const item = items[index] as Item;
    if (index > 0) buffer[at++] = 0x2c; // ,
    at += item.buffer.copy(buffer, at, item.jsonStart, item.jsonEnd);
  }
  at += RECORDS_CLOSE.copy(buffer, at);
  return { body: buffer.subarray(0, at), buffer };
}

/**
 * A Kinesis sequence number: 56 digits, as AWS's are, whose last three are the record's
 * place modulo 1,000 (ingestion reads them to order readings of one millisecond).
 */
function sequenceNumberOf(sequence: number, heads = STREAM_SEQUENCE_HEADS): string {
  // An integer's own digits after a head of zeros made for their count: converting
  // 1e15 + sequence (a double) and slicing it cost a twentieth of the emulator's CPU.
  const digits = String(sequence);
  return (heads[digits.length] ?? heads[52]) + digits;
}
/** `<4 digits>` then zeros up to 56 digits with n more, by n (1 to 52). */
function sequenceHeads(head: string): string[] {
  return Array.from({ length: 53 }, (_, n) => `${head}${'0'.repeat(Math.max(0, 52 - n))}`);
}
const STREAM_SEQUENCE_HEADS = sequenceHeads('4959');
/**
 * With a journal, the MQTT session's records (last wills) are numbered apart, below the
 * journal's: a journal record's number is its place in the journal, the same after a
 * restart, so the function sees a record read again as the same record.
 */
const SESSION_SEQUENCE_HEADS = sequenceHeads('4958');

/** The batcher of a partition key's records: a string hash modulo the batchers (FNV-1a). */
function batcherOf(key: string, batchers: number): number {
  if (batchers === 1) return 0;
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index++) {
    hash ^= key.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % batchers;
}

/** Room in a stream body beyond its records' bytes: the batch's common fields, commas. */
const STREAM_BODY_SLACK_BYTES = 64 * 1024;

/** A 5 KB increment, the unit AWS IoT meters messages, rules and actions in. */
const IOT_METERING_BYTES = 5 * 1024;
/** A PUT payload unit of Kinesis. */
const KINESIS_PAYLOAD_UNIT_BYTES = 25 * 1024;
/** The local account and region in ARNs (nothing checks them here). */
const LOCAL_ACCOUNT = '000000000000';
const LOCAL_REGION = 'us-east-1';

/**
 * `clientid()` locally: Mosquitto does not tell a subscriber who published. The broker's
 * per-device ACL lets a device publish only under `devices/<its id>/#`, and a device's client
 * id is its device id, so for those topics the second level is the publisher's client id.
 * (On AWS, `clientid()` is the real MQTT client id of the publisher.)
 */
export function localClientId(topic: string): string | undefined {
  if (!topic.startsWith('devices/')) return undefined;
  const end = topic.indexOf('/', 'devices/'.length);
  return topic.slice('devices/'.length, end === -1 ? undefined : end) || undefined;
}

/**
 * Default for how long a message still being worked on (retried, or behind its device's
 * earlier messages) may hold back the acknowledgement of messages the broker sent after it.
 * Past that, those are acknowledged out of order: slower for the broker, but one stuck message
 * must not fill the Receive Maximum window and stall every device for long. At full load a
 * message can wait over a second in the emulator (8,192 of 50 readings each), so a shorter
 * limit would give up the broker's fast path in normal running.
 */
const ACK_HOLD_LIMIT_MS = 5000;

/** Where an item's JSON and payload were written (see `Item`). */
type ItemBytes = Pick<Item, 'buffer' | 'jsonStart' | 'jsonEnd' | 'payloadEnd' | 'slab'>;

/** A 1 MB buffer of rule outputs, and how many of them are still in use. */
interface Slab {
  buffer: Buffer;
  used: number;
  live: number;
}

/**
 * A rule output's JSON text as a stream record's data in a local batch (see
 * `writeJsonAsRecordData`); `length` is the most bytes it takes there.
 */
class RecordData {
  constructor(readonly json: Buffer) {}

  get length(): number {
    return mostRecordDataBytes(this.json.length);
  }
}

/**
 * UTF-8 copies of rule outputs, each with the payload it came from (for the dead-letter
 * store), written side by side into 1 MB slabs. `Buffer.from` per output took a new 8 KB
 * pool (an ArrayBuffer) every two 50-reading messages, garbage for the collector. A slab's
 * buffer whose outputs are all done with is written again: a fresh one each time is allocated
 * and has its pages mapped in by the kernel as they are first written (bench/README.md has
 * what each cost).
 */
class JsonSlabs {
  // 48 MB kept at most, once a burst has passed: about what the outputs of the messages the
  // emulator holds at its byte limit take (16 MB of payloads, each written with its record).
  // With 16 kept, every burst of large messages dropped slabs and made new ones, external
  // memory to which V8 answered with full collections.
  readonly #buffers = new BufferPool(48);
  #current: Slab = this.#newSlab();

  /**
   * The output as JSON (UTF-8) and a copy of the payload, and the slab to `release` them to
   * once nothing reads them.
   */
  bytesOf(output: unknown, payload: Buffer): ItemBytes {
    return this.partsOf(jsonParts(output), payload);
  }

  /** `ascii`: every string part is ASCII only, and is written byte for character. */
  partsOf(
    parts: Array<string | Base64Payload | RecordData>,
    payload: Buffer,
    ascii = false,
  ): ItemBytes {
    let most = payload.length;
    // A UTF-16 unit is at most 3 bytes of UTF-8; ASCII text (base64 too) a byte a character.
    for (const part of parts)
      most += typeof part === 'string' && !ascii ? part.length * 3 : part.length;
    let slab: Slab | undefined;
    let buffer: Buffer;
    if (most > POOLED_BUFFER_BYTES / 8) {
      buffer = Buffer.allocUnsafe(most);
    } else {
      slab = this.#current;
      if (slab.used + most > slab.buffer.length) {
        const previous = slab;
        slab = this.#newSlab();
        this.#current = slab;
        this.#recycle(previous);
      }
      buffer = slab.buffer;
    }
    const start = slab?.used ?? 0;
    let at = start;
    for (const part of parts) {
      if (typeof part === 'string') at += buffer.write(part, at, ascii ? 'latin1' : 'utf8');
      else if (part instanceof RecordData) at = writeJsonAsRecordData(part.json, buffer, at);
      else at += buffer.write(part.toJSON(), at, 'latin1');
    }
    const jsonEnd = at;
    at += payload.copy(buffer, at);
    if (slab) {
      slab.used = at;
      slab.live += 1;
    }
    return { buffer, jsonStart: start, jsonEnd, payloadEnd: at, slab };
  }

  /** One output of `slab` is no longer read by anything (invoked for good, or dropped). */
  release(slab: Slab | undefined): void {
    if (!slab) return;
    slab.live -= 1;
    if (slab !== this.#current) this.#recycle(slab);
  }

  #newSlab(): Slab {
    return { buffer: this.#buffers.take(POOLED_BUFFER_BYTES), used: 0, live: 0 };
  }

  /** Gives the slab's buffer back once no output in it is read any more (it is not current). */
  #recycle(slab: Slab): void {
    if (slab.live === 0) this.#buffers.give(slab.buffer);
  }
}

let outputScratch = Buffer.allocUnsafe(64 * 1024);

/**
 * JSON.stringify(output) as UTF-8, in a buffer reused for the next output (copy what must
 * outlive it): written from its parts, the payload's base64 is not scanned for characters
 * to escape, nor encoded again.
 */
function ruleOutputJson(output: unknown): Buffer {
  const parts = jsonParts(output);
  let most = 0;
  for (const part of parts) most += typeof part === 'string' ? part.length * 3 : part.length;
  if (most > outputScratch.length) outputScratch = Buffer.allocUnsafe(most);
  let at = 0;
  for (const part of parts) {
    at +=
      typeof part === 'string'
        ? outputScratch.write(part, at)
        : outputScratch.write(part.toJSON(), at, 'latin1');
  }
  return outputScratch.subarray(0, at);
}

/**
 * JSON.stringify(output) in parts: JSON text, and the base64 payloads to write between them
 * (as JSON strings) without making the text of either twice.
 */
function jsonParts(output: unknown): Array<string | Base64Payload> {
  if (output === null || typeof output !== 'object' || Array.isArray(output)) {
    return [JSON.stringify(output) ?? 'null'];
  }
  const fields = output as Record<string, unknown>;
  const parts: Array<string | Base64Payload> = [];
  let text = '{';
  let first = true;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    const encoded = value instanceof Base64Payload;
    const json = encoded ? undefined : JSON.stringify(value);
    // As JSON.stringify(output) does, fields it cannot write (undefined, say) are left out.
    if (!encoded && json === undefined) continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (encoded) {
      parts.push(`${text}"`, value);
      text = '"';
    } else {
      text += json;
    }
  }
  parts.push(`${text}}`);
  return parts;
}

class FunctionDispatcher {
  readonly stats: FunctionStats = {
    received: 0,
    invoked: 0,
    succeeded: 0,
    retried: 0,
    deadLettered: 0,
    inFlight: 0,
    queued: 0,
    billedMs: 0,
    batchesSentBy: { size: 0, bytes: 0, window: 0, backlog: 0, drain: 0 },
  };
  /** Per ordering key, in arrival order; Map order gives keys a rough round-robin. */
  private readonly queues = new Map<string, Item[]>();
  /** Keys with an item in an invocation: later items of the key wait, to keep order. */
  private readonly busyTopics = new Set<string>();
  /** Stream batchers (ParallelizationFactor) with a batch in an invocation. */
  private readonly busyBatchers = new Set<number>();
  /**
   * Each stream batcher's queued record bytes, kept as records come and go: a pump runs for
   * every read from the socket, and adding them up there each time walked every queued record.
   */
  private readonly batcherBytes: number[] = [];
  /** The batcher of each ordering key (see `batcherOf`). */
  private readonly batcherOfKey = new Map<string, number>();
  private running = 0;
  private pumpScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlightBatches = new Set<Promise<void>>();
  /** The items of each invocation under way. */
  private readonly inFlightItems = new Set<Item[]>();

  /**
   * Bodies of the stream's invocations, each room for a batch at the byte limit (a batch's
   * records take fewer bytes in the body than in the event they count for): every batcher's
   * batch in flight and the next one made. A fresh one per invocation counted as external
   * memory to V8, which answered with full collections (see BufferPool).
   */
  private readonly streamBodies: BufferPool | undefined;

  constructor(
    readonly functionKey: string,
    readonly functionName: string,
    private readonly batch: BatchSettings | undefined,
    private readonly maxInFlight: number,
    private readonly emulator: Emulator,
  ) {
    if (batch?.stream) {
      this.streamBodies = new BufferPool(
        2 * batch.stream.parallelizationFactor,
        batch.maxBytes + STREAM_BODY_SLACK_BYTES,
      );
    }
  }

  enqueue(item: Item): void {
    this.stats.received += 1;
    this.stats.queued += 1;
    const key = orderingKey(item.delivery.topic);
    const queue = this.queues.get(key);
    if (queue) queue.push(item);
    else this.queues.set(key, [item]);
    const stream = this.batch?.stream;
    if (stream) {
      const batcher = this.#batcherOf(key, stream);
      this.batcherBytes[batcher] = (this.batcherBytes[batcher] ?? 0) + item.bytes;
    }
    // Once for all the messages of one read from the socket (hundreds when busy), not per
    // message: each pump walks every ordering key's queue.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  busy(): boolean {
    return this.running > 0 || this.queues.size > 0;
  }

  #batcherOf(key: string, stream: StreamSettings): number {
    let batcher = this.batcherOfKey.get(key);
    if (batcher === undefined) {
      batcher = batcherOf(key, stream.parallelizationFactor);
      // Keys of devices long gone are not kept for ever.
      if (this.batcherOfKey.size >= 100_000) this.batcherOfKey.clear();
      this.batcherOfKey.set(key, batcher);
    }
    return batcher;
  }

  /** Holds an item of a closed connection, queued or in an invocation. */
  holdsStale(): boolean {
    for (const items of this.inFlightItems) {
      if (items.some((item) => item.delivery.stale)) return true;
    }
    for (const queue of this.queues.values()) {
      if (queue.some((item) => item.delivery.stale)) return true;
    }
    return false;
  }

  async settle(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inFlightBatches]);
  }

  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.emulator.stopping) return;
    if (this.batch?.stream) {
      this.pumpStream(this.batch, this.batch.stream);
      return;
    }
    const maxRecords = this.batch?.maxRecords ?? 1;
    const maxBytes = this.batch?.maxBytes ?? MAX_BATCH_BYTES;
    const maxWaitMs = this.batch?.maxWaitMs ?? 0;
    while (this.running < this.maxInFlight) {
      let ready = 0;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [topic, queue] of this.queues) {
        if (this.busyTopics.has(topic)) continue;
        ready += queue.length;
        oldest = Math.min(oldest, (queue[0] as Item).enqueuedAt);
        if (ready >= maxRecords) break;
      }
      if (ready === 0) return;
      const waited = Date.now() - oldest;
      if (ready < maxRecords && waited < maxWaitMs) {
        this.timer = setTimeout(() => this.pump(), maxWaitMs - waited);
        return;
      }
      const items: Item[] = [];
      let bytes = 0;
      let full = false;
      for (const [topic, queue] of this.queues) {
        if (full || items.length >= maxRecords) break;
        if (this.busyTopics.has(topic)) continue;
        let take = 0;
        while (take < queue.length && items.length + take < maxRecords) {
          const size = (queue[take] as Item).bytes;
          // A batch stays under its byte limit; a lone larger message goes alone.
          if (items.length + take > 0 && bytes + size > maxBytes) {
            full = true;
            break;
          }
          bytes += size;
          take += 1;
        }
        if (take === 0) break;
        this.busyTopics.add(topic);
        items.push(...queue.splice(0, take));
        if (queue.length === 0) this.queues.delete(topic);
      }
      this.launch(items, () => {
        for (const item of items) this.busyTopics.delete(orderingKey(item.delivery.topic));
      });
    }
  }

  /** Invokes the function with `items` in the background; `release` frees what they held. */
  private launch(items: Item[], release: () => void): void {
    this.stats.queued -= items.length;
    this.stats.inFlight += items.length;
    this.running += 1;
    this.inFlightItems.add(items);
    const run = this.invoke(items).finally(() => {
      this.inFlightItems.delete(items);
      // Nothing reads the outputs after their invocation (a dead letter copies them).
      for (const item of items) this.emulator.jsonSlabs.release(item.slab);
      this.running -= 1;
      this.stats.inFlight -= items.length;
      release();
      this.inFlightBatches.delete(run);
      this.pump();
      this.emulator.checkIdle();
    });
    this.inFlightBatches.add(run);
  }

  /**
   * A stream's event source mapping: ParallelizationFactor batchers, each reading the
   * partition keys that hash to it, with one batch in an invocation at a time (AWS Lambda
   * developer guide, "Using Lambda with Kinesis Data Streams": ParallelizationFactor batches
   * of a shard at once, a partition key's records in order). A batcher sends its batch once
   * it holds BatchSize records, or the byte limit of records (Lambda API reference,
   * EventSourceMappingConfiguration: BatchSize "up to the payload limit for synchronous
   * invocation (6 MB)"), or its oldest record has waited the batching window, whichever
   * comes first, as Lambda does. Locally the stream is what
   * the broker has delivered and the emulator not yet acknowledged, which the emulator reads
   * only up to its Receive Maximum: once it holds that much, the stream holds more than it
   * can see, and Lambda reading a stream with such a backlog gets its batch at once, so the
   * batcher sends what it holds rather than wait out a window in which nothing more can
   * arrive. Conversely, while the broker's journal holds more than the emulator has read, a
   * batcher past its window waits for the reads under way instead of sending part of a
   * batch: Lambda reading a shard with a backlog gets up to BatchSize records at once.
   */
  private pumpStream(batch: BatchSettings, stream: StreamSettings): void {
    const now = Date.now();
    const backlog = this.emulator.readingHeld();
    const catchingUp = this.emulator.catchingUp();
    const draining = this.emulator.draining;
    let nextWake = Number.POSITIVE_INFINITY;
    for (let batcher = 0; batcher < stream.parallelizationFactor; batcher++) {
      if (this.busyBatchers.has(batcher)) continue;
      const keys: string[] = [];
      let ready = 0;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [key, queue] of this.queues) {
        if (this.#batcherOf(key, stream) !== batcher) continue;
        keys.push(key);
        ready += queue.length;
        oldest = Math.min(oldest, (queue[0] as Item).enqueuedAt);
      }
      if (ready === 0) continue;
      const readyBytes = this.batcherBytes[batcher] ?? 0;
      const waited = now - oldest;
      const trigger: BatchTrigger | undefined =
        ready >= batch.maxRecords
          ? 'size'
          : readyBytes >= batch.maxBytes
            ? 'bytes'
            : waited >= batch.maxWaitMs
              ? 'window'
              : draining
                ? 'drain'
                : backlog
                  ? 'backlog'
                  : undefined;
      if (trigger === undefined) {
        nextWake = Math.min(nextWake, batch.maxWaitMs - waited);
        continue;
      }
      // The journal holds more than has been read: the batch is still coming, and the read
      // that brings it pumps again. Sending what was read so far would make batches of a few
      // hundred records where Lambda reading a backlogged shard gets full ones.
      if (trigger === 'window' && catchingUp && !draining) continue;
      // In stream order across the batcher's keys, up to the record and byte limits.
      const taken: Item[] = [];
      let bytes = 0;
      const heads = keys.map((key) => ({ key, queue: this.queues.get(key) as Item[], at: 0 }));
      for (;;) {
        let next: (typeof heads)[number] | undefined;
        for (const head of heads) {
          const item = head.queue[head.at];
          if (
            item &&
            (!next || (item.sequence as number) < (next.queue[next.at]?.sequence as number))
          )
            next = head;
        }
        if (!next || taken.length >= batch.maxRecords) break;
        const item = next.queue[next.at] as Item;
        if (taken.length > 0 && bytes + item.bytes > batch.maxBytes) break;
        bytes += item.bytes;
        taken.push(item);
        next.at += 1;
      }
      this.batcherBytes[batcher] = readyBytes - bytes;
      for (const head of heads) {
        head.queue.splice(0, head.at);
        if (head.queue.length === 0) this.queues.delete(head.key);
      }
      this.stats.batchesSentBy[trigger] += 1;
      this.busyBatchers.add(batcher);
      this.launch(taken, () => this.busyBatchers.delete(batcher));
    }
    if (nextWake !== Number.POSITIVE_INFINITY) {
      this.timer = setTimeout(() => this.pump(), nextWake);
    }
  }

  private async invoke(items: Item[]): Promise<void> {
    if (this.batch?.stream) {
      await this.invokeStream(items, this.batch.stream);
      return;
    }
    const { batchBuffers } = this.emulator;
    const batch = this.batch ? batchBody(items, batchBuffers) : undefined;
    const answered = await this.invokeWith(items, batch?.body ?? jsonOf(items[0] as Item));
    // A request that failed (timed out, say) may still be writing its body somewhere.
    if (answered && batch) batchBuffers.give(batch.buffer);
  }

  /**
   * A batch of a Kinesis event source mapping: the records in stream order, retried as
   * Lambda does (from the checkpoint a partial batch response sets, or whole after a function
   * error), until MaximumRetryAttempts or MaximumRecordAgeInSeconds (or the emulator's own
   * retry limit) is reached. Then the records that still failed are dead-lettered (on AWS,
   * the on-failure destination gets their shard and sequence numbers) and the others, which
   * the function did take, are settled.
   */
  private async invokeStream(items: Item[], stream: StreamSettings): Promise<void> {
    const { retry, log } = this.emulator;
    const batchBuffers = this.streamBodies as BufferPool;
    let batch = [...items].sort((a, b) => (a.sequence as number) - (b.sequence as number));
    const started = Date.now();
    let delay = retry.initialDelayMs;
    for (let attempt = 1; ; attempt += 1) {
      this.stats.invoked += 1;
      const { body, buffer } = streamBody(
        batch,
        this.emulator.streamEnvelopeOf((batch[0] as Item).definition, stream).open,
        batchBuffers,
      );
      const invokedAt = performance.now();
      const outcome = await invokeFunction({
        lambdaEndpoint: this.emulator.options.lambdaEndpoint,
        functionName: this.functionName,
        payload: body,
        payloadIsJson: true,
        timeoutMs: this.emulator.invokeTimeoutMs,
        signal: this.emulator.abort.signal,
      });
      this.stats.billedMs += Math.ceil(performance.now() - invokedAt);
      if (outcome.ok) batchBuffers.give(buffer);
      const answer = outcome.ok
        ? readStreamAnswer(
            outcome.body,
            batch.map((item) => item.sequenceNumber as string),
            stream.reportBatchItemFailures,
          )
        : ({ kind: 'failure', error: outcome.error } as const);
      if (answer.kind === 'success') {
        this.stats.succeeded += batch.length;
        this.emulator.settle(batch.map((item) => item.delivery));
        return;
      }
      let failed: Item[];
      let error: string;
      if (answer.kind === 'partial') {
        const taken = batch.slice(0, answer.from);
        this.stats.succeeded += taken.length;
        if (taken.length > 0) this.emulator.settle(taken.map((item) => item.delivery));
        batch = batch.slice(answer.from);
        failed = batch.filter((item) => answer.failed.has(item.sequenceNumber as string));
        error = `the function reported ${failed.length} of the batch's records failed`;
      } else {
        failed = batch;
        error = answer.error;
      }
      // A closed connection's records are retried too: the broker may have lost them.
      if (this.emulator.stopping) return;
      const oldest = Math.min(...batch.map((item) => item.enqueuedAt));
      const tooOld = stream.maxRecordAgeMs !== -1 && Date.now() - oldest > stream.maxRecordAgeMs;
      const tooMany = stream.maxRetryAttempts !== -1 && attempt > stream.maxRetryAttempts;
      if (tooOld || tooMany || Date.now() - started + delay > retry.maxElapsedMs) {
        const kept = new Set(failed);
        const taken = batch.filter((item) => !kept.has(item));
        this.stats.succeeded += taken.length;
        if (taken.length > 0) this.emulator.settle(taken.map((item) => item.delivery));
        await this.deadLetter(failed, error, attempt);
        return;
      }
      this.stats.retried += 1;
      log.warn('stream batch failed; retrying from its checkpoint', {
        function: this.functionKey,
        records: batch.length,
        failed: failed.length,
        attempt,
        retryInMs: delay,
        error,
      });
      await this.emulator.sleep(delay);
      if (this.emulator.stopping) return;
      delay = Math.min(delay * 2, retry.maxDelayMs);
    }
  }

  /** Invokes until the function takes the items or they are given up; true if it took them. */
  private async invokeWith(items: Item[], payload: Buffer): Promise<boolean> {
    const { retry, log } = this.emulator;
    const started = Date.now();
    let delay = retry.initialDelayMs;
    for (let attempt = 1; ; attempt += 1) {
      this.stats.invoked += 1;
      const invokedAt = performance.now();
      const outcome = await invokeFunction({
        lambdaEndpoint: this.emulator.options.lambdaEndpoint,
        functionName: this.functionName,
        payload,
        payloadIsJson: true,
        timeoutMs: this.emulator.invokeTimeoutMs,
        signal: this.emulator.abort.signal,
      });
      this.stats.billedMs += Math.ceil(performance.now() - invokedAt);
      if (outcome.ok) {
        this.stats.succeeded += items.length;
        this.emulator.settle(items.map((item) => item.delivery));
        return true;
      }
      // Stopping: leave them unacknowledged. A closed connection's messages are retried too:
      // the broker may have lost them.
      if (this.emulator.stopping) return false;
      if (Date.now() - started + delay > retry.maxElapsedMs) {
        await this.deadLetter(items, outcome.error, attempt);
        return false;
      }
      this.stats.retried += 1;
      log.warn('IoT rule action failed; retrying', {
        function: this.functionKey,
        records: items.length,
        attempt,
        retryInMs: delay,
        error: outcome.error,
      });
      await this.emulator.sleep(delay);
      if (this.emulator.stopping) return false;
      delay = Math.min(delay * 2, retry.maxDelayMs);
    }
  }

  private async deadLetter(items: Item[], error: string, attempts: number): Promise<void> {
    const { log } = this.emulator;
    try {
      const stored = await this.emulator.deadLetters.append(
        items.map((item) => ({
          rule: item.definition.id,
          sql: item.definition.rule.sql,
          function: this.functionKey,
          functionName: this.functionName,
          batched: this.batch !== undefined && this.batch.stream === undefined,
          ...(this.batch?.stream ? { stream: true } : {}),
          topic: item.delivery.topic,
          payloadBase64: item.buffer.toString('base64', item.jsonEnd, item.payloadEnd),
          event: this.batch?.stream
            ? this.emulator.streamRecordEvent(item, this.batch.stream)
            : JSON.parse(item.buffer.toString('utf8', item.jsonStart, item.jsonEnd)),
          error,
          attempts,
          receivedAt: new Date(item.delivery.receivedAt).toISOString(),
        })),
      );
      this.stats.deadLettered += items.length;
      log.error('IoT rule action failed for good; dead-lettered (see npm run dlq -- list)', {
        function: this.functionKey,
        records: items.length,
        attempts,
        error,
        ids: stored.map((record) => record.id),
      });
      this.emulator.settle(items.map((item) => item.delivery));
    } catch (failure) {
      // Unacknowledged, the messages come back when the emulator next connects.
      log.error('could not write the dead-letter store; the messages stay unacknowledged', {
        function: this.functionKey,
        error: failure,
      });
    }
  }
}

class Emulator {
  /** `stop()` was called: what a closed connection left is handed over before it stops. */
  draining = false;
  stopping = false;
  /** Cancels invocations under way (when `stop()` has waited long enough). */
  readonly abort = new AbortController();
  /** Cuts short the waits between retries. */
  readonly retryAbort = new AbortController();
  readonly retry: RetrySettings;
  readonly invokeTimeoutMs: number;
  private readonly ackHoldLimitMs: number;
  private readonly receiveMaximum: number;
  private readonly maxUnacknowledgedBytes: number;
  readonly deadLetters: DeadLetterStore;
  readonly log: EmulatorLog;
  private readonly dispatchers = new Map<string, FunctionDispatcher>();
  /** Rules by MQTT 5 subscription identifier (1-based index into `filters`). */
  private readonly rulesBySubscription = new Map<number, RuleDefinition[]>();
  private readonly filters: string[];
  private readonly allRules: RuleDefinition[];
  readonly jsonSlabs = new JsonSlabs();
  /** Bodies of batched invocations: more than the invocations usually in flight. */
  readonly batchBuffers = new BufferPool(8);
  private readonly counters = {
    messages: 0,
    acknowledged: 0,
    redelivered: 0,
    filtered: 0,
    notJson: 0,
    unrouted: 0,
    meteredMessages: 0,
    rulesTriggered: 0,
    actionsApplied: 0,
  };
  private readonly streamStats = new Map<string, StreamStats>();
  /** Stream rules whose output reads the message alone, compiled (see `compileOutputWriter`). */
  private readonly outputWriters = new Map<RuleDefinition, (message: RuleMessage) => Buffer>();
  private readonly partitionKeys = new Map<StreamSettings, (message: RuleMessage) => unknown>();
  private readonly streamEnvelopes = new Map<RuleDefinition, StreamEnvelope>();
  /** The next stream record's place (one shard locally). */
  private nextSequence = 0;
  /**
   * Deliveries on the current connection in the order the broker sent them, from
   * `unacknowledgedFrom` on. Mosquitto looks up each PUBACK by walking its in-flight list
   * from the oldest message, so acknowledging out of order with thousands in flight cost it
   * 70% of its CPU (perf, pipeline benchmark); acknowledged in order, each lookup ends at
   * the first entry.
   */
  private inFlight: Delivery[] = [];
  private unacknowledgedFrom = 0;
  private unacknowledged = 0;
  private unacknowledgedBytes = 0;
  private ackHoldTimer: NodeJS.Timeout | undefined;
  private ackHoldTimerFor: Delivery | undefined;
  /** The message whose wait let the messages behind it be acknowledged out of order. */
  private heldBackBy: Delivery | undefined;
  private idleWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private session: MqttSession | undefined;
  /** The broker's journal, when the emulator reads one. */
  private readonly journal: JournalReader | undefined;
  /** Filters whose rules read the journal. */
  private readonly journaledFilters: ReadonlySet<string>;
  private readonly journalRules: RuleDefinition[];
  /** The journaled rules each topic matches, as the broker's subscription ids told for the session. */
  private readonly journalRulesByTopic = new Map<string, RuleDefinition[]>();
  private journalUnsettledBytes = 0;

  constructor(
    readonly options: IotRulesEmulatorOptions,
    config: IotRulesConfig,
  ) {
    this.log = options.log;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.invokeTimeoutMs = options.invokeTimeoutMs ?? 30_000;
    this.ackHoldLimitMs = options.ackHoldLimitMs ?? ACK_HOLD_LIMIT_MS;
    this.receiveMaximum = options.receiveMaximum ?? receiveMaximumFor(config);
    this.maxUnacknowledgedBytes = options.maxUnacknowledgedBytes ?? MAX_UNACKNOWLEDGED_BYTES;
    this.deadLetters = new DeadLetterStore(options.deadLetterDir);
    this.filters = [...new Set(config.rules.map((definition) => definition.rule.from))];
    this.allRules = config.rules;
    this.journaledFilters = new Set(options.journal?.topics ?? []);
    this.journalRules = config.rules.filter((definition) =>
      this.journaledFilters.has(definition.rule.from),
    );
    if (options.journal) {
      this.journal = new JournalReader({
        dir: options.journal.dir,
        checkpointFile: options.journal.checkpointFile,
        log: options.log,
        onRecord: (record) => this.onJournalRecord(record),
      });
    }
    for (const [index, filter] of this.filters.entries()) {
      this.rulesBySubscription.set(
        index + 1,
        config.rules.filter((definition) => definition.rule.from === filter),
      );
    }
    for (const definition of config.rules) {
      if (!definition.stream) continue;
      const writer = compileOutputWriter(definition.rule);
      if (writer) this.outputWriters.set(definition, writer);
      const keyOf = compileMessageValue(definition.stream.partitionKey);
      if (keyOf) this.partitionKeys.set(definition.stream, keyOf);
    }
    for (const definition of config.rules) {
      if (this.dispatchers.has(definition.functionKey)) continue;
      const batch = config.batch.get(definition.functionKey);
      this.dispatchers.set(
        definition.functionKey,
        new FunctionDispatcher(
          definition.functionKey,
          definition.functionName,
          batch,
          batch?.maxInFlight ?? options.maxInFlightPerFunction ?? 4,
          this,
        ),
      );
    }
  }

  async connect(): Promise<void> {
    const { url, username, password } = this.options.mqtt;
    // Connects now and again after every disconnect; a stored session's queued messages come
    // right after CONNACK, and `onPublish` is wired up before they can arrive.
    const session = new MqttSession({
      url,
      username,
      password,
      clientId: this.options.clientId,
      sessionExpiryInterval: SESSION_NEVER_EXPIRES,
      receiveMaximum: this.receiveMaximum,
    });
    this.session = session;
    session.on('error', (error) => this.log.warn('IoT rules emulator MQTT error', { error }));
    session.on('publish', (message) => this.onPublish(message));
    session.on('close', () => this.onConnectionClosed());
    let subscribed: Promise<void> | undefined;
    session.on('connect', ({ sessionPresent }) => {
      this.log.info('IoT rules emulator connected', {
        broker: url,
        sessionPresent,
        filters: this.filters,
      });
      subscribed = this.subscribe(session);
      subscribed.catch((error: unknown) => {
        this.log.error('IoT rules emulator could not subscribe', { error });
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const onConnect = () => {
          session.off('error', onError);
          resolve();
        };
        // The first connection must work (the stack starts the broker first); after that,
        // the session reconnects by itself.
        const onError = (error: Error) => {
          session.off('connect', onConnect);
          reject(new Error(`IoT rules emulator cannot connect to ${url}: ${error.message}`));
        };
        session.once('connect', onConnect);
        session.on('error', onError);
      });
      // Without this, a first start would miss messages published before SUBACK.
      await subscribed;
      this.journal?.start();
    } catch (error) {
      this.stopping = true;
      await session.end();
      throw error;
    }
  }

  private async subscribe(session: MqttSession): Promise<void> {
    for (const [index, filter] of this.filters.entries()) {
      if (this.journaledFilters.has(filter)) {
        // Read from the journal: a session kept from before the journal stops receiving
        // them (what it already queued still comes, and is handled as always).
        await session.unsubscribe(filter);
        continue;
      }
      // Retain handling 2: AWS rules see messages as they are published, never a topic's
      // retained message replayed at subscribe time (which would re-ingest it each start).
      const reasonCode = await session.subscribe(filter, {
        subscriptionIdentifier: index + 1,
        retainHandling: 2,
      });
      if (reasonCode >= 0x80) {
        throw new Error(
          `the broker refused the subscription to '${filter}' (reason code ${reasonCode}): the emulator's MQTT account may not subscribe to it`,
        );
      }
    }
  }

  private onPublish(message: InboundPublish): void {
    const { topic, payload } = message;
    this.counters.messages += 1;
    const units = Math.max(
      1,
      Math.ceil((payload.length + Buffer.byteLength(topic)) / IOT_METERING_BYTES),
    );
    if (message.dup) this.counters.redelivered += 1;
    else this.counters.meteredMessages += units;
    const delivery: Delivery = {
      topic,
      receivedAt: Date.now(),
      messageId: message.messageId,
      bytes: payload.length,
      stale: false,
      outstanding: 0,
      settled: false,
      // AWS runs rules for QoS 0 messages too; the broker expects no PUBACK for them.
      acknowledged: message.qos === 0,
    };
    if (message.qos > 0) {
      this.inFlight.push(delivery);
      this.unacknowledged += 1;
      this.unacknowledgedBytes += delivery.bytes;
      // The stream batchers see the backlog at the pump this message's enqueue schedules.
      if (this.holdsTooMuch()) this.session?.pauseReading();
    }
    const ids = message.subscriptionIds;
    // The broker says which subscriptions, so which filters, the message matched.
    const matching =
      ids === undefined
        ? this.allRules.filter((definition) => topicMatches(definition.rule.from, topic))
        : ids.length === 1
          ? (this.rulesBySubscription.get(ids[0] as number) ?? [])
          : ids.flatMap((id) => this.rulesBySubscription.get(id) ?? []);
    this.dispatch(delivery, payload, matching, message.dup, units, localClientId(topic));
  }

  /**
   * A record of the broker's journal: the same rules as a message of the session, settled
   * by moving the journal's checkpoint instead of a PUBACK.
   */
  private onJournalRecord(record: JournalRecord): void {
    const { topic, payload } = record;
    this.counters.messages += 1;
    const units = Math.max(
      1,
      Math.ceil((payload.length + Buffer.byteLength(topic)) / IOT_METERING_BYTES),
    );
    this.counters.meteredMessages += units;
    const delivery: Delivery = {
      topic,
      receivedAt: record.receivedAt,
      journalSequence: record.sequence,
      messageId: 0,
      bytes: payload.length,
      stale: false,
      outstanding: 0,
      settled: false,
      acknowledged: true,
    };
    this.journalUnsettledBytes += delivery.bytes;
    let matching = this.journalRulesByTopic.get(topic);
    if (!matching) {
      matching = this.journalRules.filter((definition) =>
        topicMatches(definition.rule.from, topic),
      );
      // Topics of devices long gone are not kept for ever.
      if (this.journalRulesByTopic.size >= 100_000) this.journalRulesByTopic.clear();
      this.journalRulesByTopic.set(topic, matching);
    }
    this.dispatch(delivery, payload, matching, false, units, record.clientId);
    if (this.journalHoldsTooMuch()) this.journal?.pause();
  }

  /** Evaluates the message's rules and queues their outputs for the functions. */
  private dispatch(
    delivery: Delivery,
    payload: Buffer,
    matching: readonly RuleDefinition[],
    dup: boolean,
    units: number,
    clientId: string | undefined,
  ): void {
    const { topic } = delivery;
    if (matching.length === 0) this.counters.unrouted += 1;
    const items: Item[] = [];
    const ruleMessage = {
      topic,
      payload,
      clientId,
      timestamp: delivery.receivedAt,
    };
    for (const definition of matching) {
      const writeOutput = definition.stream && this.outputWriters.get(definition);
      if (definition.stream && writeOutput) {
        // A rule that reads the message alone always fires: its output is written directly.
        if (!dup) {
          this.counters.rulesTriggered += units;
          this.counters.actionsApplied += units;
        }
        items.push(
          this.streamRecord(
            definition,
            definition.stream,
            writeOutput(ruleMessage),
            delivery,
            payload,
          ),
        );
        continue;
      }
      const result = evaluateRule(definition.rule, ruleMessage);
      if (!dup) this.counters.rulesTriggered += units;
      if (result.fired) {
        if (!dup) this.counters.actionsApplied += units;
        if (definition.stream) {
          items.push(
            this.streamRecord(
              definition,
              definition.stream,
              ruleOutputJson(result.output),
              delivery,
              payload,
            ),
          );
          continue;
        }
        const written = this.jsonSlabs.bytesOf(result.output, payload);
        items.push({
          delivery,
          definition,
          buffer: written.buffer,
          jsonStart: written.jsonStart,
          jsonEnd: written.jsonEnd,
          payloadEnd: written.payloadEnd,
          bytes: written.jsonEnd - written.jsonStart,
          slab: written.slab,
          enqueuedAt: delivery.receivedAt,
        });
        continue;
      }
      if (result.reason === 'where') {
        this.counters.filtered += 1;
      } else {
        this.counters.notJson += 1;
        this.log.warn(
          'IoT rule did not fire: its SQL reads JSON fields and the payload is not a JSON object',
          {
            rule: definition.id,
            topic,
            reason: result.reason,
          },
        );
      }
    }
    delivery.outstanding = items.length;
    if (items.length === 0) {
      delivery.settled = true;
      if (delivery.journalSequence === undefined) this.acknowledgeSettled([delivery]);
      else this.settleJournal([delivery]);
      return;
    }
    for (const item of items) {
      (this.dispatchers.get(item.definition.functionKey) as FunctionDispatcher).enqueue(item);
    }
  }

  /**
   * The rule's Kinesis action: the output (its JSON, `data`) as the data of a record put on
   * the stream with the rule's partition key, as the event source mapping hands it to the
   * function.
   */
  private streamRecord(
    definition: RuleDefinition,
    stream: StreamSettings,
    data: Buffer,
    delivery: Delivery,
    payload: Buffer,
  ): Item {
    const partitionKey = this.partitionKeyOf(stream, delivery, payload);
    const sequence = this.nextSequence++;
    // A journal record's first stream record is numbered by its place in the journal.
    const sequenceNumber =
      delivery.journalSequence !== undefined && delivery.outstanding === 0
        ? sequenceNumberOf(delivery.journalSequence)
        : sequenceNumberOf(sequence, this.journal ? SESSION_SEQUENCE_HEADS : STREAM_SEQUENCE_HEADS);
    delivery.outstanding += 1;
    let stats = this.streamStats.get(stream.resource);
    if (!stats) {
      stats = { records: 0, bytes: 0, putPayloadUnits: 0 };
      this.streamStats.set(stream.resource, stats);
    }
    const recordBytes = data.length + Buffer.byteLength(partitionKey);
    stats.records += 1;
    stats.bytes += recordBytes;
    stats.putPayloadUnits += Math.max(1, Math.ceil(recordBytes / KINESIS_PAYLOAD_UNIT_BYTES));
    const partitionKeyJson = JSON.stringify(partitionKey);
    const [before, after] = compactRecordAround(
      partitionKeyJson,
      sequenceNumber,
      String(delivery.receivedAt / 1000),
    );
    // Digits, and the partition key: ASCII unless the key is not.
    const ascii = !NOT_ASCII.test(partitionKeyJson);
    // Short data (a one-reading message's output) in one string, written once: a write per
    // part (each through Buffer.write's argument checks) took more than making the text.
    const parts =
      data.length <= BASE64_DATA_BYTES
        ? [before + compactRecordData(data) + after]
        : [before, new RecordData(data), after];
    const written = this.jsonSlabs.partsOf(parts, payload, ascii);
    const aroundBytes = ascii
      ? before.length + after.length
      : Buffer.byteLength(before) + Buffer.byteLength(after);
    // The record's text in Lambda's event has the data in base64, between quotes.
    const inEvent = aroundBytes + 2 + 4 * Math.ceil(data.length / 3);
    return {
      delivery,
      definition,
      buffer: written.buffer,
      jsonStart: written.jsonStart,
      jsonEnd: written.jsonEnd,
      payloadEnd: written.payloadEnd,
      // The sequence number is in the event twice (its eventID ends with it).
      bytes:
        this.streamEnvelopeOf(definition, stream).recordBytes + inEvent + sequenceNumber.length,
      slab: written.slab,
      enqueuedAt: delivery.receivedAt,
      sequence,
      sequenceNumber,
    };
  }

  /** The stream's partition key expression on this message; the topic when it has none. */
  private partitionKeyOf(stream: StreamSettings, delivery: Delivery, payload: Buffer): string {
    const message = {
      topic: delivery.topic,
      payload,
      clientId: localClientId(delivery.topic),
      timestamp: delivery.receivedAt,
    };
    const keyOf = this.partitionKeys.get(stream);
    let key: unknown;
    if (keyOf) {
      key = keyOf(message);
    } else {
      const result = evaluateRule(stream.partitionKey, message);
      key = result.fired && (result.output as { partition_key?: unknown }).partition_key;
    }
    return String(key || delivery.topic);
  }

  /**
   * The text before a batch's records in the function host's form, and what the text of a
   * record in Lambda's event adds to its values in that form: made once per rule.
   */
  streamEnvelopeOf(definition: RuleDefinition, stream: StreamSettings): StreamEnvelope {
    let envelope = this.streamEnvelopes.get(definition);
    if (!envelope) {
      const text = localKinesisBatchOpen({
        shardId: 'shardId-000000000000',
        eventSourceArn: `arn:aws:kinesis:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stream/${stream.resource}`,
        invokeIdentityArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${definition.functionName}`,
        awsRegion: LOCAL_REGION,
      });
      // A record's size in Lambda's event, from one record made into the event's text.
      const sample = compactRecordText('"k"', '1', '""', '1');
      const [event] = expandKinesisBatch(
        JSON.parse(`${text}${sample}${LOCAL_KINESIS_BATCH_CLOSE}`),
      ).Records;
      envelope = {
        open: Buffer.from(text),
        recordBytes: Buffer.byteLength(JSON.stringify(event)) - sample.length - 1,
      };
      this.streamEnvelopes.set(definition, envelope);
    }
    return envelope;
  }

  /** The Kinesis record of a stream's item, as the function was given it. */
  streamRecordEvent(item: Item, stream: StreamSettings): unknown {
    const { open } = this.streamEnvelopeOf(item.definition, stream);
    return expandKinesisBatch(
      JSON.parse(
        `${open.toString('utf8')}${jsonOf(item).toString('utf8')}${LOCAL_KINESIS_BATCH_CLOSE}`,
      ),
    ).Records[0];
  }

  /** One rule output of each delivery is done with (taken or dead-lettered). */
  settle(deliveries: Delivery[]): void {
    const settled: Delivery[] = [];
    const journaled: Delivery[] = [];
    for (const delivery of deliveries) {
      delivery.outstanding -= 1;
      if (delivery.outstanding === 0 && !delivery.stale) {
        delivery.settled = true;
        if (delivery.journalSequence === undefined) settled.push(delivery);
        else journaled.push(delivery);
      }
    }
    if (settled.length > 0) this.acknowledgeSettled(settled);
    if (journaled.length > 0) this.settleJournal(journaled);
  }

  /** The journal's checkpoint moves past the settled records at its front. */
  private settleJournal(deliveries: Delivery[]): void {
    const journal = this.journal as JournalReader;
    const sequences: number[] = [];
    for (const delivery of deliveries) {
      sequences.push(delivery.journalSequence as number);
      this.journalUnsettledBytes -= delivery.bytes;
    }
    journal.settle(sequences);
    // Stopping, it reads nothing more (see `stop`).
    if (!this.draining && !this.journalHoldsTooMuch()) journal.resume();
    this.checkIdle();
  }

  /** At either limit on unsettled journal records: it reads no more until some are settled. */
  private journalHoldsTooMuch(): boolean {
    return (
      this.journal !== undefined &&
      (this.journal.unsettled >= this.receiveMaximum ||
        this.journalUnsettledBytes >= this.maxUnacknowledgedBytes)
    );
  }

  /**
   * Acknowledges the settled messages at the front of the broker's order. Messages settled
   * behind one that has held them back for `ackHoldLimitMs` are acknowledged out of order.
   */
  private acknowledgeSettled(justSettled: Delivery[]): void {
    const order = this.inFlight;
    const acknowledged: number[] = [];
    const acknowledge = (delivery: Delivery) => {
      delivery.acknowledged = true;
      acknowledged.push(delivery.messageId);
      this.unacknowledgedBytes -= delivery.bytes;
    };
    let from = this.unacknowledgedFrom;
    for (; from < order.length; from += 1) {
      const delivery = order[from] as Delivery;
      if (delivery.acknowledged) continue;
      if (!delivery.settled) break;
      acknowledge(delivery);
    }
    this.unacknowledgedFrom = from;
    const holding = order[from];
    if (holding) {
      const heldFor = Date.now() - holding.receivedAt;
      if (heldFor < this.ackHoldLimitMs) {
        if (this.ackHoldTimerFor !== holding) {
          clearTimeout(this.ackHoldTimer);
          this.ackHoldTimerFor = holding;
          this.ackHoldTimer = setTimeout(() => {
            // Timers may fire a millisecond early by Date.now(): forget this one so that the
            // check below arms another rather than waiting for a settle that may never come.
            this.ackHoldTimerFor = undefined;
            this.acknowledgeSettled([]);
          }, this.ackHoldLimitMs - heldFor);
          this.ackHoldTimer.unref();
        }
      } else if (this.heldBackBy !== holding) {
        // Once per holding message, everything settled behind it; after that, as they settle.
        this.heldBackBy = holding;
        for (let later = from + 1; later < order.length; later += 1) {
          const delivery = order[later] as Delivery;
          if (delivery.settled && !delivery.acknowledged) acknowledge(delivery);
        }
      } else {
        for (const delivery of justSettled) if (!delivery.acknowledged) acknowledge(delivery);
      }
    }
    if (from > 4096 && from * 2 > order.length) {
      this.inFlight = order.slice(from);
      this.unacknowledgedFrom = 0;
    }
    this.unacknowledged -= acknowledged.length;
    if (!this.holdsTooMuch()) this.session?.resumeReading();
    // Many PUBACKs in one write: one write per message cost the emulator a tenth of its CPU.
    if (acknowledged.length > 0 && this.session?.acknowledge(acknowledged)) {
      this.counters.acknowledged += acknowledged.length;
    }
    this.checkIdle();
  }

  /** At either limit on unacknowledged messages: it reads no more until some are acknowledged. */
  readingHeld(): boolean {
    return this.holdsTooMuch() || this.journalHoldsTooMuch();
  }

  /** The journal holds more records than the emulator has read, and it is reading them. */
  catchingUp(): boolean {
    return this.journal?.catchingUp === true;
  }

  private holdsTooMuch(): boolean {
    return (
      this.unacknowledged >= this.receiveMaximum ||
      this.unacknowledgedBytes >= this.maxUnacknowledgedBytes
    );
  }

  private onConnectionClosed(): void {
    // The broker delivers every unacknowledged message again on the new connection, where it
    // is handled afresh.
    // It may not: a broker killed before its next save lost what it acknowledged since. The
    // emulator's copies go on to the function (device-timestamped readings written twice are
    // one point).
    for (const delivery of this.inFlight) delivery.stale = true;
    this.inFlight = [];
    this.unacknowledgedFrom = 0;
    this.unacknowledged = 0;
    this.unacknowledgedBytes = 0;
    clearTimeout(this.ackHoldTimer);
    this.ackHoldTimerFor = undefined;
    this.heldBackBy = undefined;
    if (!this.stopping)
      this.log.warn('IoT rules emulator lost its broker connection; reconnecting');
    this.checkIdle();
  }

  checkIdle(): void {
    if (this.drainWaiters.length > 0 && this.drained()) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Nothing of a closed connection is held (queued or in an invocation). */
  private drained(): boolean {
    return ![...this.dispatchers.values()].some((dispatcher) => dispatcher.holdsStale());
  }

  private isIdle(): boolean {
    return (
      this.unacknowledged === 0 &&
      (this.journal?.unsettled ?? 0) === 0 &&
      [...this.dispatchers.values()].every((dispatcher) => !dispatcher.busy())
    );
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.retryAbort.signal;
      if (signal.aborted) {
        resolve();
        return;
      }
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  stats(): IotRulesEmulatorStats {
    return {
      connected: this.session?.connected ?? false,
      readingPaused: (this.session?.readingPaused ?? false) || (this.journal?.paused ?? false),
      ...(this.journal
        ? {
            journal: {
              read: this.journal.recordsRead,
              checkpoint: this.journal.checkpoint,
              unsettled: this.journal.unsettled,
              torn: this.journal.tornRecords,
            },
          }
        : {}),
      ...this.counters,
      functions: Object.fromEntries(
        [...this.dispatchers].map(([key, dispatcher]) => [
          key,
          { ...dispatcher.stats, batchesSentBy: { ...dispatcher.stats.batchesSentBy } },
        ]),
      ),
      streams: Object.fromEntries([...this.streamStats].map(([key, stats]) => [key, { ...stats }])),
    };
  }

  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    // Nothing more is read: the rest is read from the checkpoint at the next start.
    this.journal?.pause();
    // What a closed connection left goes to the function first (batching windows cut short),
    // within the stop timeout: the broker may not deliver it again.
    const drainTimeoutMs = this.options.stopTimeoutMs ?? 5000;
    for (const dispatcher of this.dispatchers.values()) dispatcher.pump();
    if (!this.drained()) {
      let drainTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          drainTimer = setTimeout(resolve, drainTimeoutMs);
        }),
      ]);
      clearTimeout(drainTimer);
    }
    this.stopping = true;
    // Invocations under way may finish and be acknowledged; waiting retries are not made.
    this.retryAbort.abort();
    const settled = Promise.all([...this.dispatchers.values()].map((d) => d.settle()));
    let timer: NodeJS.Timeout | undefined;
    const waitedTooLong = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.stopTimeoutMs ?? 5000);
    });
    await Promise.race([settled, waitedTooLong]);
    clearTimeout(timer);
    this.abort.abort();
    clearTimeout(this.ackHoldTimer);
    this.journal?.stop();
    await this.session?.end();
  }
}

/**
 * Starts the emulator: loads the rules, connects (waiting for the first CONNACK) and keeps
 * reconnecting if the broker goes away. Rejects if serverless.yml has a rule it cannot run or
 * the broker refuses the connection.
 */
export async function startIotRulesEmulator(
  options: IotRulesEmulatorOptions,
): Promise<RunningIotRulesEmulator> {
  const config = await loadIotRulesConfig(options);
  for (const warning of config.warnings) options.log.warn(warning);
  const emulator = new Emulator(options, config);
  await emulator.connect();
  return {
    stats: () => emulator.stats(),
    idle: () => emulator.idle(),
    stop: () => emulator.stop(),
  };
}
