/**
 * What the local stack's rules emulator has counted so far (messages, rule actions, stream
 * records, invocations and why each batch went), asked for with SIGUSR2, which has the
 * stack write them to its data directory.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type {
  BatchTrigger,
  FunctionStats,
  IotRulesEmulatorStats,
} from '../local/iot-rules/emulator.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The stack's emulator statistics now; `dataDir` is the stack's, holding its stack.json. */
export async function rulesEmulatorStats(dataDir: string): Promise<IotRulesEmulatorStats> {
  const { pid } = JSON.parse(await readFile(path.join(dataDir, 'stack.json'), 'utf8'));
  const statsFile = path.join(dataDir, 'iot-rules-stats.json');
  await rm(statsFile, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let tries = 0; tries < 1200; tries++) {
    await sleep(25);
    const text = await readFile(statsFile, 'utf8').catch(() => '');
    try {
      if (text) return JSON.parse(text);
    } catch {
      // caught mid-write: read it again
    }
  }
  throw new Error('the stack did not write the rules emulator statistics');
}

/**
 * How the emulated event source mapping batched a run: invocations, records per invocation
 * and what sent each batch (BatchSize, the byte limit, the window, a backlog), so a run
 * says whether batches filled or waited.
 */
export function eventSourceMapping(
  before: IotRulesEmulatorStats,
  after: IotRulesEmulatorStats,
): string {
  const ingest = (stats: IotRulesEmulatorStats) => stats.functions.ingest as FunctionStats;
  const [from, to] = [ingest(before), ingest(after)];
  const invoked = to.invoked - from.invoked;
  const records = to.succeeded - from.succeeded;
  const sentBy = Object.entries(to.batchesSentBy)
    .map(([trigger, count]) => [
      trigger,
      count - (from.batchesSentBy[trigger as BatchTrigger] ?? 0),
    ])
    .filter(([, count]) => (count as number) > 0)
    .map(([trigger, count]) => `${trigger} ${count}`)
    .join(', ');
  const invocationMs = (to.billedMs - from.billedMs) / Math.max(1, invoked);
  // Failed invocations (a batch held past the rules stage's limit) are tried again.
  const retried = to.retried - from.retried;
  return `event source mapping: ${invoked} invocations, ${Math.round(records / Math.max(1, invoked))} records and ${Math.round(invocationMs)} ms each; batches sent by ${sentBy || 'none'}${retried > 0 ? `; ${retried} retried` : ''}`;
}
