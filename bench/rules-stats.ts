/**
 * What the local stack's rules emulator has counted so far (messages, rule actions, stream
 * records, invocations and why each batch went), asked for with SIGUSR2, which has the
 * stack write them to its data directory.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { IotRulesEmulatorStats } from '../local/iot-rules/emulator.ts';

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
