/**
 * Operator CLI for the IoT rules emulator's dead letters (messages whose function kept
 * failing): `npm run dlq -- list [--json] | replay [ID...|--all] | purge [ID...|--all]`.
 *
 * Works on `${LOCAL_DATA_DIR:-.local}/dead-letters`; `replay` invokes the functions through
 * the Lambda endpoint of the stack running in this folder, which it records in `stack.json`.
 */
import path from 'node:path';
import { config } from '../shared/config.ts';
import { type DeadLetter, DeadLetterStore } from './iot-rules/dead-letter-store.ts';
import { invokeFunction, readStreamAnswer } from './iot-rules/lambda.ts';
import { readRunningStack } from './stack-file.ts';

const USAGE = `usage: npm run dlq -- list [--json]
       npm run dlq -- replay ID... | --all
       npm run dlq -- purge ID... | --all`;

class UsageError extends Error {}

async function lambdaEndpoint(dataDir: string): Promise<string> {
  return (await readRunningStack(dataDir)).lambdaEndpoint;
}

/** The records named on the command line (or all of them with --all), in store order. */
function select(
  records: DeadLetter[],
  args: string[],
): { chosen: DeadLetter[]; missing: string[] } {
  const all = args.includes('--all');
  const ids = args.filter((arg) => arg !== '--all');
  if (all === ids.length > 0)
    throw new UsageError('name the records to act on by id, or pass --all');
  if (all) return { chosen: records, missing: [] };
  const wanted = new Set(ids);
  const chosen = records.filter((record) => wanted.has(record.id));
  const found = new Set(chosen.map((record) => record.id));
  return { chosen, missing: ids.filter((id) => !found.has(id)) };
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function printTable(records: DeadLetter[]): void {
  if (records.length === 0) {
    console.log('no dead letters');
    return;
  }
  const rows = records.map((record) => [
    record.id,
    record.time,
    record.function,
    record.topic,
    String(record.attempts),
    truncate(record.error.replace(/\s+/g, ' '), 80),
  ]);
  const header = ['ID', 'TIME', 'FUNCTION', 'TOPIC', 'ATTEMPTS', 'ERROR'];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  for (const row of [header, ...rows]) {
    console.log(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    );
  }
  console.log(`${records.length} dead letter${records.length === 1 ? '' : 's'}`);
}

async function main(args: string[]): Promise<number> {
  const dataDir = path.resolve(config().localDataDir);
  const store = new DeadLetterStore(path.join(dataDir, 'dead-letters'));
  const [command, ...rest] = args;
  switch (command) {
    case 'list': {
      const unknown = rest.filter((arg) => arg !== '--json');
      if (unknown.length > 0)
        throw new UsageError(`list takes only --json, not ${unknown.join(' ')}`);
      const records = await store.list();
      if (rest.includes('--json')) console.log(JSON.stringify(records, null, 2));
      else printTable(records);
      return 0;
    }
    case 'purge': {
      const { chosen, missing } = select(await store.list(), rest);
      for (const id of missing) console.error(`${id}: no such dead letter`);
      const removed = await store.remove(chosen.map((record) => record.id));
      console.log(`purged ${removed.length} dead letter${removed.length === 1 ? '' : 's'}`);
      return missing.length > 0 ? 1 : 0;
    }
    case 'replay': {
      const { chosen, missing } = select(await store.list(), rest);
      for (const id of missing) console.error(`${id}: no such dead letter`);
      if (chosen.length === 0) {
        console.log('nothing to replay');
        return missing.length > 0 ? 1 : 0;
      }
      const endpoint = await lambdaEndpoint(dataDir);
      let failed = 0;
      // One at a time and in store order, which keeps each topic's records in order.
      for (const record of chosen) {
        const outcome = await invokeFunction({
          lambdaEndpoint: endpoint,
          functionName: record.functionName,
          payload: record.stream
            ? { Records: [record.event] }
            : record.batched
              ? [record.event]
              : record.event,
          timeoutMs: 30_000,
        });
        const sequenceNumber = (record.event as { kinesis?: { sequenceNumber?: string } })?.kinesis
          ?.sequenceNumber;
        const answer =
          outcome.ok && record.stream
            ? readStreamAnswer(outcome.body, [String(sequenceNumber)], true)
            : undefined;
        if (outcome.ok && (!answer || answer.kind === 'success')) {
          await store.remove([record.id]);
          console.log(`${record.id}: replayed to ${record.function}`);
        } else {
          failed += 1;
          const error = outcome.ok ? 'the function reported the record failed' : outcome.error;
          console.error(`${record.id}: ${record.function} failed again, kept: ${error}`);
        }
      }
      console.log(`replayed ${chosen.length - failed} of ${chosen.length}`);
      return failed > 0 || missing.length > 0 ? 1 : 0;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`${error.message}\n${USAGE}`);
    process.exitCode = 2;
  } else {
    console.error(`dlq: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    process.exitCode = 1;
  }
}
