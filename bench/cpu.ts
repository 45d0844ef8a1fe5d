/**
 * CPU time of the processes a benchmark runs, read from /proc (Linux), so that a run says
 * where its time went, not only how fast it was.
 */
import { readFileSync } from 'node:fs';
import { commandOf, descendantsOf } from '../test/support/processes.ts';

const TICKS_PER_SECOND = 100;

/** User plus system CPU seconds of a process (all its threads), or 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5); the slice starts at field 3.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

const PARTS: Array<[RegExp, string]> = [
  [/influxd/, 'InfluxDB'],
  [/mosquitto/, 'Mosquitto'],
  [/serverless\.js offline/, 'functions (serverless-offline)'],
  [/postgres/, 'PostgreSQL'],
  [/local\/start\.ts/, 'supervisor and IoT rules emulator'],
];

export type CpuSample = Map<string, number>;

/** CPU seconds so far by part: this process (the load generator) and the stack's processes. */
export function sampleCpu(stackPid: number): CpuSample {
  const sample: CpuSample = new Map([['load generator (this benchmark)', cpuSeconds(process.pid)]]);
  for (const pid of descendantsOf(stackPid)) {
    const command = commandOf(pid);
    const part = PARTS.find(([pattern]) => pattern.test(command))?.[1];
    if (part) sample.set(part, (sample.get(part) ?? 0) + cpuSeconds(pid));
  }
  return sample;
}

/** CPU seconds each part used between two samples, largest first. */
export function cpuBetween(before: CpuSample, after: CpuSample): Array<[string, number]> {
  return [...after]
    .map(([part, seconds]): [string, number] => [part, seconds - (before.get(part) ?? 0)])
    .filter(([, seconds]) => seconds > 0)
    .sort((a, b) => b[1] - a[1]);
}

const total = (sample: CpuSample) =>
  [...sample.values()].reduce((sum, seconds) => sum + seconds, 0);

/**
 * Waits until the stack has used under `maxCores` for `forMs` in a row (InfluxDB compacting
 * what the previous phase wrote, say), so that a phase is not charged for the one before.
 * Gives up quietly after `timeoutMs`.
 */
export async function waitUntilQuiet(
  stackPid: number,
  { maxCores = 0.1, forMs = 1000, timeoutMs = 60_000 } = {},
): Promise<void> {
  const started = performance.now();
  let quietSince = performance.now();
  let last = total(sampleCpu(stackPid));
  while (performance.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = total(sampleCpu(stackPid));
    if (now - last > maxCores * 0.25) quietSince = performance.now();
    last = now;
    if (performance.now() - quietSince >= forMs) return;
  }
}
