import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A message whose rule fired but whose function kept failing until the emulator gave up. */
export interface DeadLetter {
  id: string;
  /** When it was dead-lettered (ISO 8601). */
  time: string;
  /** The rule's id (`<function>#<n>` or the iot event's name) and its SQL. */
  rule: string;
  sql: string;
  /** The function's key in serverless.yml and the name it was invoked by. */
  function: string;
  functionName: string;
  /** Whether the function takes arrays of rule outputs (emulator batching). */
  batched: boolean;
  /** Whether the function reads a stream: `event` is then the Kinesis record. */
  stream?: boolean;
  topic: string;
  payloadBase64: string;
  /**
   * The rule's SELECT output: what the function is invoked with (wrapped in an array if
   * batched); for a stream, the Kinesis record holding it.
   */
  event: unknown;
  error: string;
  attempts: number;
  /** When the broker delivered the message to the emulator (ISO 8601). */
  receivedAt: string;
}

export type NewDeadLetter = Omit<DeadLetter, 'id' | 'time'>;

const FILE = 'dead-letters.jsonl';
const LOCK = 'dead-letters.lock';

function newId(now: number): string {
  return `${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * JSON lines in `<dir>/dead-letters.jsonl`, one record per dead-lettered message. The
 * emulator appends while the operator CLI may rewrite the file to remove records, so both go
 * through a lock file holding the owner's pid (a lock whose owner died is taken over).
 */
export class DeadLetterStore {
  readonly file: string;
  private readonly lock: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, FILE);
    this.lock = path.join(dir, LOCK);
  }

  async append(records: NewDeadLetter[]): Promise<DeadLetter[]> {
    const now = Date.now();
    const time = new Date(now).toISOString();
    const stored = records.map((record) => ({ id: newId(now), time, ...record }));
    if (stored.length === 0) return stored;
    await this.locked(() =>
      appendFile(this.file, stored.map((record) => `${JSON.stringify(record)}\n`).join('')),
    );
    return stored;
  }

  async list(): Promise<DeadLetter[]> {
    return (await this.readLines()).flatMap((line) => {
      const record = parseLine(line);
      return record ? [record] : [];
    });
  }

  /** Removes the records with these ids; returns the ids it found and removed. */
  async remove(ids: Iterable<string>): Promise<string[]> {
    const wanted = new Set(ids);
    return this.locked(async () => {
      const lines = await this.readLines();
      const removed: string[] = [];
      // Lines that do not parse (a write cut short by a crash) are kept for a human to see.
      const kept = lines.filter((line) => {
        const record = parseLine(line);
        if (record && wanted.has(record.id)) {
          removed.push(record.id);
          return false;
        }
        return true;
      });
      if (removed.length > 0) {
        const temporary = `${this.file}.${process.pid}.tmp`;
        await writeFile(temporary, kept.map((line) => `${line}\n`).join(''));
        await rename(temporary, this.file);
      }
      return removed;
    });
  }

  private async readLines(): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return text.split('\n').filter((line) => line.trim() !== '');
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const handle = await open(this.lock, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number.parseInt(await readFile(this.lock, 'utf8').catch(() => ''), 10);
      // An empty lock file is one being written this instant; only a dead owner is stale.
      if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
        await rm(this.lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `dead-letter store ${this.dir} is locked by process ${owner || '?'}; if no emulator or dlq command is running, delete ${this.lock}`,
        );
      }
      await sleep(20);
    }
    try {
      return await work();
    } finally {
      await rm(this.lock, { force: true });
    }
  }
}

function parseLine(line: string): DeadLetter | undefined {
  try {
    const record = JSON.parse(line) as DeadLetter;
    return record && typeof record.id === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}
