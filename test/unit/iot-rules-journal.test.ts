/**
 * The journal reader on segment files written here byte by byte in the broker plugin's
 * format (local/services/mosquitto-journal.c): torn records at a segment's end, a segment
 * replaced under the reader, the checkpoint and the deletion of consumed segments.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  filtersOverlap,
  journaledFilters,
  loadIotRulesConfig,
} from '../../local/iot-rules/config.ts';
import { JournalReader, type JournalRecord, segmentName } from '../../local/iot-rules/journal.ts';

const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

/** One record as the plugin writes it. */
function recordBytes(topic: string, payload: string, receivedAt = 1_700_000_000_000): Buffer {
  const clientId = Buffer.from(topic.split('/')[1] ?? '');
  const topicBytes = Buffer.from(topic);
  const body = Buffer.from(payload);
  const header = Buffer.alloc(15);
  header.writeUInt32LE(11 + clientId.length + 2 + topicBytes.length + body.length, 0);
  header.writeBigUInt64LE(BigInt(receivedAt), 4);
  header[12] = 1;
  header.writeUInt16LE(clientId.length, 13);
  const topicLength = Buffer.alloc(2);
  topicLength.writeUInt16LE(topicBytes.length);
  return Buffer.concat([header, clientId, topicLength, topicBytes, body]);
}

const dirs: string[] = [];
const readers: JournalReader[] = [];
afterEach(() => {
  for (const reader of readers.splice(0)) reader.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function journal() {
  const dir = mkdtempSync(path.join(tmpdir(), 'easysmart-journal-unit-'));
  dirs.push(dir);
  const checkpointFile = path.join(dir, 'checkpoint');
  const records: JournalRecord[] = [];
  const open = (onRecord?: (record: JournalRecord) => void) => {
    const reader = new JournalReader({
      dir,
      checkpointFile,
      log: quietLog,
      pollMs: 1,
      onRecord: (record) => {
        // The payload's buffer is reused after the call.
        records.push({ ...record, payload: Buffer.from(record.payload) });
        onRecord?.(record);
      },
    });
    readers.push(reader);
    reader.start();
    return reader;
  };
  const append = (start: number, ...parts: Buffer[]) =>
    appendFileSync(path.join(dir, segmentName(start)), Buffer.concat(parts));
  return { dir, checkpointFile, records, open, append };
}

describe('journal reader', () => {
  it('reads records in order with their sequence, publisher and receive time, across segments', async () => {
    const { records, open, append } = journal();
    append(
      0,
      recordBytes('devices/a/telemetry', '{"n":0}', 1000),
      recordBytes('devices/b/telemetry', 'x'),
    );
    open();
    await vi.waitFor(() => expect(records).toHaveLength(2));
    append(2, recordBytes('devices/a/telemetry', '{"n":2}'));
    await vi.waitFor(() => expect(records).toHaveLength(3));
    expect(records.map((r) => [r.sequence, r.clientId, r.topic, r.payload.toString()])).toEqual([
      [0, 'a', 'devices/a/telemetry', '{"n":0}'],
      [1, 'b', 'devices/b/telemetry', 'x'],
      [2, 'a', 'devices/a/telemetry', '{"n":2}'],
    ]);
    expect(records[0]).toMatchObject({ receivedAt: 1000, qos: 1, retain: false });
  });

  it('waits for a record still being written, and ends a segment at a torn record once a later one exists', async () => {
    const { records, open, append } = journal();
    const whole = recordBytes('devices/a/telemetry', 'first');
    const torn = recordBytes('devices/a/telemetry', 'torn by a crash');
    append(0, whole, torn.subarray(0, 10));
    const reader = open();
    await vi.waitFor(() => expect(records).toHaveLength(1));
    // Only a part of the next record: not read yet, nor given up while no later segment exists.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(records).toHaveLength(1);
    expect(reader.tornRecords).toBe(0);
    // The broker restarted: its new segment continues after the last whole record.
    append(1, recordBytes('devices/a/telemetry', 'after the restart'));
    await vi.waitFor(() => expect(records).toHaveLength(2));
    expect(records[1]).toMatchObject({ sequence: 1 });
    expect(records[1]?.payload.toString()).toBe('after the restart');
    expect(reader.tornRecords).toBe(1);
  });

  it('moves its checkpoint only past settled records, reads on from it after a restart, and deletes consumed segments', async () => {
    const { dir, records, open, append, checkpointFile } = journal();
    append(0, ...[0, 1, 2].map((n) => recordBytes('devices/a/telemetry', String(n))));
    append(3, ...[3, 4].map((n) => recordBytes('devices/a/telemetry', String(n))));
    const first = open();
    await vi.waitFor(() => expect(records).toHaveLength(5));
    first.settle([1, 2, 3]);
    expect(first.checkpoint).toBe(0);
    first.settle([0]);
    expect(first.checkpoint).toBe(4);
    expect(Number(readFileSync(checkpointFile, 'utf8'))).toBe(4);
    // Segment 0's records are all settled and segment 3 exists: segment 0 is gone.
    expect(readdirSync(dir).filter((name) => name.endsWith('.seg'))).toEqual([segmentName(3)]);
    first.stop();

    records.length = 0;
    const second = open();
    await vi.waitFor(() => expect(records).toHaveLength(1));
    expect(records[0]).toMatchObject({ sequence: 4 });
    second.settle([4]);
    // The newest segment stays: the broker names its next one after it.
    expect(readdirSync(dir).filter((name) => name.endsWith('.seg'))).toEqual([segmentName(3)]);
  });

  it('stops handing records on when paused, and goes on where it stopped', async () => {
    const { records, open, append } = journal();
    append(
      0,
      ...Array.from({ length: 10 }, (_, n) => recordBytes('devices/a/telemetry', String(n))),
    );
    // Called from inside the first read, before `open` returns.
    const reader = open((record) => {
      if (record.sequence === 3) readers.at(-1)?.pause();
    });
    await vi.waitFor(() => expect(records).toHaveLength(4));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(records).toHaveLength(4);
    reader.resume();
    await vi.waitFor(() => expect(records).toHaveLength(10));
    expect(records.map((r) => r.sequence)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('says it is catching up while the journal holds more than one read brings, until it has read it all', async () => {
    const { records, open, append } = journal();
    // About 200 KB: several reads' worth.
    const padding = 'x'.repeat(80);
    append(
      0,
      ...Array.from({ length: 2000 }, (_, n) =>
        recordBytes('devices/a/telemetry', `${n}${padding}`),
      ),
    );
    const seen: boolean[] = [];
    let pausedAt: boolean | undefined;
    const reader = open((record) => {
      const current = readers.at(-1) as JournalReader;
      seen.push(current.catchingUp);
      if (record.sequence === 10) {
        // Paused, it reads nothing more, so nothing is on its way.
        current.pause();
        pausedAt = current.catchingUp;
      }
    });
    await vi.waitFor(() => expect(records).toHaveLength(11));
    expect(seen[0]).toBe(true);
    expect(pausedAt).toBe(false);
    reader.resume();
    await vi.waitFor(() => expect(records).toHaveLength(2000));
    // The last read reached the end of what the broker wrote.
    expect(seen.at(-1)).toBe(false);
    expect(reader.catchingUp).toBe(false);
  });

  it('reads a segment the broker replaced (it held no whole record) from its start', async () => {
    const { dir, records, open } = journal();
    const file = path.join(dir, segmentName(0));
    appendFileSync(file, recordBytes('devices/a/telemetry', 'torn').subarray(0, 8));
    const reader = open();
    await new Promise((resolve) => setTimeout(resolve, 20));
    rmSync(file);
    appendFileSync(file, recordBytes('devices/a/telemetry', 'whole'));
    await vi.waitFor(() => expect(records).toHaveLength(1));
    expect(records[0]).toMatchObject({ sequence: 0 });
    expect(records[0]?.payload.toString()).toBe('whole');
    expect(reader.tornRecords).toBe(1);
  });
});

describe('which rules read the journal', () => {
  it('every rule of serverless.yml but the status rule, whose topic carries the last wills the broker publishes', async () => {
    const config = await loadIotRulesConfig({
      serverlessYmlPath: path.resolve(import.meta.dirname, '../../serverless.yml'),
      stage: 'local',
    });
    expect(journaledFilters(config).sort()).toEqual([
      'devices/+/+/state',
      'devices/+/discovery',
      'devices/+/telemetry',
    ]);
  });

  it('filters overlap when one topic could match both', () => {
    expect(filtersOverlap('devices/+/status', 'devices/+/status')).toBe(true);
    expect(filtersOverlap('devices/#', 'devices/+/status')).toBe(true);
    expect(filtersOverlap('devices/+/+', 'devices/+/status')).toBe(true);
    expect(filtersOverlap('devices/a/+', 'devices/+/status')).toBe(true);
    expect(filtersOverlap('devices/+/+/state', 'devices/+/status')).toBe(false);
    expect(filtersOverlap('devices/+/telemetry', 'devices/+/status')).toBe(false);
    expect(filtersOverlap('devices/+', 'devices/+/status')).toBe(false);
  });
});
