/**
 * The emulator's side of the broker's journal (local/services/mosquitto-journal.c, which has
 * the file format): reads the records the broker appended, in order, from a checkpoint of
 * its own, and moves that checkpoint past a record only once the emulator says it is settled
 * (every function its rules fired for took it, or it was dead-lettered). A segment whose
 * records are all settled is deleted, once the broker writes a later one.
 *
 * The checkpoint is written (not fsynced) whenever it moves: like the broker's writes, it
 * survives the process being killed, which is the fault the local stack emulates. Records
 * after the checkpoint are read again after a restart: delivery is at least once, as a
 * Kinesis event source mapping's is; a record keeps its sequence number and receive time,
 * so the function sees the same record again.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { EmulatorLog } from './emulator.ts';

export interface JournalRecord {
  /** Its place in the journal: consecutive from 0, kept across broker restarts. */
  sequence: number;
  /** When the broker received it (ms since the epoch). */
  receivedAt: number;
  qos: number;
  retain: boolean;
  /** The MQTT client id of the publisher. */
  clientId: string;
  topic: string;
  /** Valid only during the `onRecord` call (the read buffer is reused). */
  payload: Buffer;
}

export interface JournalReaderOptions {
  dir: string;
  /** The reader's own checkpoint: the sequence of the first record not yet settled. */
  checkpointFile: string;
  log: EmulatorLog;
  /** Called for each record in order; may call `pause()`. */
  onRecord: (record: JournalRecord) => void;
  /** How long it waits before looking again when it has read everything. Default 5 ms. */
  pollMs?: number;
}

const SEGMENT_NAME = /^(\d{20})\.seg$/;
/** Fixed fields after the record's length: receive time, flags, client id length. */
const HEADER_BYTES = 15;
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/**
 * Read at a time: about 500 one-reading records, each evaluated and queued in the same tick
 * (a few milliseconds). A much larger read holds the emulator's event loop long enough that
 * no invocation is sent and no answer read meanwhile (bench/README.md, Telemetry pipeline).
 */
const READ_BYTES = 64 * 1024;
const DIRECTORY_LOOK_MS = 50;

export function segmentName(start: number): string {
  return `${String(start).padStart(20, '0')}.seg`;
}

/** The starts of the journal's segments, ascending. */
export function segmentStarts(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const starts: number[] = [];
  for (const name of names) {
    const match = SEGMENT_NAME.exec(name);
    if (match) starts.push(Number(match[1]));
  }
  return starts.sort((a, b) => a - b);
}

interface OpenSegment {
  start: number;
  fd: number;
  ino: number;
  /** Bytes of whole records read so far. */
  offset: number;
  /** Records read so far. */
  records: number;
}

/**
 * The size of the record at `at` of `buffer[0, end)`: 0 when its length is not all there
 * yet (the record itself may not be either: check the size against `end`).
 */
function recordSize(buffer: Buffer, at: number, end: number): number {
  if (end - at < 4) return 0;
  const rest = buffer.readUInt32LE(at);
  if (rest < HEADER_BYTES - 4 + 2 || rest > MAX_RECORD_BYTES) {
    throw new Error(`a record of ${rest} bytes: the segment is damaged`);
  }
  return 4 + rest;
}

/** The whole record of `size` bytes at `at`. */
function readRecord(buffer: Buffer, at: number, size: number, sequence: number): JournalRecord {
  const flags = buffer[at + 12] as number;
  const clientLength = buffer.readUInt16LE(at + 13);
  let cursor = at + HEADER_BYTES;
  const clientId = buffer.toString('utf8', cursor, cursor + clientLength);
  cursor += clientLength;
  const topicLength = buffer.readUInt16LE(cursor);
  cursor += 2;
  const topic = buffer.toString('utf8', cursor, cursor + topicLength);
  cursor += topicLength;
  return {
    sequence,
    // Milliseconds since the epoch fit a double exactly: two 32-bit halves, no BigInt.
    receivedAt: buffer.readUInt32LE(at + 4) + buffer.readUInt32LE(at + 8) * 0x1_0000_0000,
    qos: flags & 3,
    retain: (flags & 4) !== 0,
    clientId,
    topic,
    payload: buffer.subarray(cursor, at + size),
  };
}

export class JournalReader {
  #buffer = Buffer.allocUnsafe(READ_BYTES);
  #segment: OpenSegment | undefined;
  /** The next record to read. */
  #next = 0;
  /** Records read and not yet settled, by sequence. */
  readonly #unsettled = new Set<number>();
  #checkpoint = 0;
  #checkpointFd: number | undefined;
  readonly #checkpointText = Buffer.alloc(21);
  /** Segments known, ascending by start: those before the checkpoint's are deleted. */
  #segments: number[] = [];
  #paused = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;
  readonly #pollMs: number;
  /** When the directory was last listed. */
  #lookedAt = 0;
  #catchingUp = false;
  /** Records read since it started. */
  recordsRead = 0;
  /** Torn records at the end of a segment (never acknowledged by the broker). */
  tornRecords = 0;

  constructor(private readonly options: JournalReaderOptions) {
    this.#pollMs = options.pollMs ?? 5;
  }

  /** Loads the checkpoint and starts reading from it. */
  start(): void {
    const { checkpointFile } = this.options;
    if (existsSync(checkpointFile)) {
      const text = readFileSync(checkpointFile, 'utf8').trim();
      const saved = Number(text);
      if (!Number.isSafeInteger(saved) || saved < 0) {
        throw new Error(`${checkpointFile}: not a journal checkpoint ('${text}')`);
      }
      this.#checkpoint = saved;
    }
    this.#next = this.#checkpoint;
    this.#checkpointFd = openSync(checkpointFile, existsSync(checkpointFile) ? 'r+' : 'w+', 0o600);
    this.#saveCheckpoint();
    this.#tick();
  }

  get checkpoint(): number {
    return this.#checkpoint;
  }

  get unsettled(): number {
    return this.#unsettled.size;
  }

  /**
   * The last read filled the read buffer: the journal holds more records than were read, and
   * the next tick reads on. Reading a stream with a backlog, Lambda gets a full batch at once
   * (the rules emulator's stream batchers wait for it rather than send what was read so far).
   */
  get catchingUp(): boolean {
    return this.#catchingUp && !this.#paused && !this.#stopped;
  }

  /** Read everything the broker has written so far (as of the last look). */
  get caughtUp(): boolean {
    return this.#unsettled.size === 0 && this.#timer !== undefined;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule(0);
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The records are settled: the checkpoint moves past every settled one at its front. */
  settle(sequences: readonly number[]): void {
    for (const sequence of sequences) this.#unsettled.delete(sequence);
    const before = this.#checkpoint;
    while (this.#checkpoint < this.#next && !this.#unsettled.has(this.#checkpoint)) {
      this.#checkpoint += 1;
    }
    if (this.#checkpoint === before) return;
    this.#saveCheckpoint();
    while (this.#segments.length >= 2 && (this.#segments[1] as number) <= this.#checkpoint) {
      const consumed = this.#segments.shift() as number;
      try {
        unlinkSync(path.join(this.options.dir, segmentName(consumed)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.options.log.warn('could not delete a consumed journal segment', { error });
        }
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#segment) closeSync(this.#segment.fd);
    this.#segment = undefined;
    if (this.#checkpointFd !== undefined) closeSync(this.#checkpointFd);
    this.#checkpointFd = undefined;
  }

  #saveCheckpoint(): void {
    if (this.#checkpointFd === undefined) return;
    // Fixed width, one write at offset 0: never a half-old, half-new number.
    this.#checkpointText.write(`${String(this.#checkpoint).padStart(20, '0')}\n`, 0, 'latin1');
    writeSync(this.#checkpointFd, this.#checkpointText, 0, this.#checkpointText.length, 0);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#scheduled) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      this.#timer = undefined;
      this.#tick();
    };
    if (delayMs === 0) setImmediate(run);
    else this.#timer = setTimeout(run, delayMs);
  }

  #tick(): void {
    if (this.#stopped || this.#paused) return;
    try {
      if (!this.#segment && !this.#openSegment()) {
        this.#idle();
        return;
      }
      const segment = this.#segment as OpenSegment;
      if (this.#readOnce(segment) > 0) {
        this.#schedule(0);
        return;
      }
      if (this.#paused) return;
      // At the end of what is written: the broker may have moved to a later segment. The
      // directory is listed (and the segment stat'ed) at most every DIRECTORY_LOOK_MS: in
      // between, a read every few milliseconds is all a waiting reader does.
      if (Date.now() - this.#lookedAt < DIRECTORY_LOOK_MS) {
        this.#schedule(this.#pollMs);
        return;
      }
      this.#segments = segmentStarts(this.options.dir);
      this.#lookedAt = Date.now();
      const later = this.#segments.find((start) => start > segment.start);
      if (later === undefined && !this.#replaced(segment)) {
        this.#schedule(this.#pollMs);
        return;
      }
      // What the broker wrote between the last read and the next segment's creation.
      while (this.#readOnce(segment) > 0) {
        if (this.#paused) return;
      }
      const leftover = fstatSync(segment.fd).size - segment.offset;
      if (leftover > 0) {
        this.tornRecords += 1;
        this.options.log.warn(
          'a journal segment ends in a torn record (its publisher was not acknowledged and sends it again)',
          { segment: segmentName(segment.start), bytes: leftover },
        );
      }
      closeSync(segment.fd);
      this.#segment = undefined;
      this.#schedule(0);
    } catch (error) {
      this.options.log.error('cannot read the broker journal; retrying', { error });
      this.#catchingUp = false;
      this.#schedule(1000);
    }
  }

  /** No segment to read yet: looks again after the poll interval. */
  #idle(): void {
    this.#segments = segmentStarts(this.options.dir);
    this.#lookedAt = Date.now();
    this.#schedule(this.#pollMs);
  }

  /** The broker replaced the segment (it had no whole record) with a new one of that name. */
  #replaced(segment: OpenSegment): boolean {
    try {
      return statSync(path.join(this.options.dir, segmentName(segment.start))).ino !== segment.ino;
    } catch {
      return true;
    }
  }

  /** Opens the segment holding the next record; false if there is none yet. */
  #openSegment(): boolean {
    this.#segments = segmentStarts(this.options.dir);
    let start: number | undefined;
    for (const candidate of this.#segments) {
      if (candidate <= this.#next) start = candidate;
    }
    if (start === undefined) {
      // Nothing at or before the next record: the journal was emptied, or the next segment
      // starts later than expected (a record the reader never saw would be missed).
      const first = this.#segments[0];
      if (first === undefined) return false;
      if (first !== this.#next) {
        this.options.log.warn('the broker journal continues at another record than expected', {
          expected: this.#next,
          found: first,
        });
        this.#next = first;
        if (this.#unsettled.size === 0) this.#checkpoint = first;
      }
      start = first;
    }
    const file = path.join(this.options.dir, segmentName(start));
    const fd = openSync(file, 'r');
    this.#segment = { start, fd, ino: fstatSync(fd).ino, offset: 0, records: 0 };
    // Skip the records before the next one (settled before a restart).
    const segment = this.#segment;
    while (segment.start + segment.records < this.#next) {
      if (this.#readOnce(segment, this.#next - segment.start - segment.records) === 0) break;
    }
    if (segment.start + segment.records < this.#next) {
      // The segment ends before the checkpoint: go on with the next one.
      const later = this.#segments.find((candidate) => candidate > start);
      closeSync(fd);
      this.#segment = undefined;
      if (later === undefined) return false;
      this.#next = Math.max(this.#next, later);
      return this.#openSegment();
    }
    return true;
  }

  /**
   * Reads whole records from the segment and hands them on (or, with `skip`, skips that
   * many); the number of records.
   */
  #readOnce(segment: OpenSegment, skip?: number): number {
    const got = readSync(segment.fd, this.#buffer, 0, this.#buffer.length, segment.offset);
    if (skip === undefined) this.#catchingUp = got === this.#buffer.length;
    let at = 0;
    let count = 0;
    while (at < got) {
      if (skip === undefined && this.#paused) break;
      if (skip !== undefined && count >= skip) break;
      const size = recordSize(this.#buffer, at, got);
      if (size === 0) break;
      if (at + size > got) {
        // A record larger than the buffer: a bigger buffer, and read again.
        if (at === 0 && size > this.#buffer.length) {
          this.#buffer = Buffer.allocUnsafe(size);
          return this.#readOnce(segment, skip);
        }
        break;
      }
      const recordAt = at;
      at += size;
      count += 1;
      segment.records += 1;
      if (skip !== undefined) continue;
      const sequence = segment.start + segment.records - 1;
      this.#next = sequence + 1;
      this.#unsettled.add(sequence);
      this.recordsRead += 1;
      this.options.onRecord(readRecord(this.#buffer, recordAt, size, sequence));
    }
    segment.offset += at;
    return count;
  }
}
