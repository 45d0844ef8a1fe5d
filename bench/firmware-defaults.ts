import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The firmware's default batching, read from its C++ core (`CoreOptions` in
 * firmware/core/device.hpp, and the `constexpr` constants it names in firmware/core/*.hpp),
 * so the cost model replays what the firmware sends without a second copy of its numbers.
 */
export interface FirmwareBatching {
  /** Readings per telemetry message at most; 1 means one state message per reading. */
  readings: number;
  /** How long the oldest reading of a partial batch waits, when the firmware has such a limit. */
  maxAgeMs: number | undefined;
  /** Where the numbers were read. */
  source: string;
}

const NUMBER = /^(\d+)(?:[uU]?[lL]{0,2})?$/;

export async function firmwareBatching(repoRoot: string): Promise<FirmwareBatching> {
  const core = path.join(repoRoot, 'firmware', 'core');
  const device = await readFile(path.join(core, 'device.hpp'), 'utf8');
  const options = /struct CoreOptions\s*\{([\s\S]*?)\n\};/.exec(device)?.[1];
  if (!options) throw new Error('firmware/core/device.hpp has no struct CoreOptions');
  const constants = new Map<string, { value: string; file: string }>();
  for (const file of (await readdir(core)).filter((name) => name.endsWith('.hpp'))) {
    const text = await readFile(path.join(core, file), 'utf8');
    for (const match of text.matchAll(/constexpr\s+[\w:]+\s+(\w+)\s*=\s*([^;]+);/g)) {
      constants.set(match[1] as string, { value: (match[2] as string).trim(), file });
    }
  }
  const sources = new Set<string>(['firmware/core/device.hpp']);
  const resolve = (expression: string): number => {
    const text = expression.trim();
    const literal = NUMBER.exec(text.replace(/'/g, ''));
    if (literal) return Number(literal[1]);
    const constant = constants.get(text);
    if (!constant) throw new Error(`cannot read the firmware default ${text}`);
    sources.add(`firmware/core/${constant.file}`);
    return resolve(constant.value);
  };
  const field = (name: string) =>
    new RegExp(`\\b${name}\\s*=\\s*([^;]+);`).exec(options)?.[1] ?? undefined;
  const batch = field('batch');
  if (batch === undefined) throw new Error('CoreOptions has no batch default');
  const age = field('batchMaxAgeMs');
  return {
    readings: resolve(batch),
    maxAgeMs: age === undefined ? undefined : resolve(age),
    source: [...sources].join(', '),
  };
}

/** A message a device sends: its topic's kind and, per sampling round, the entities read. */
export interface DeviceMessage {
  atMs: number;
  kind: 'state' | 'telemetry';
  rounds: Array<{ atMs: number; entities: number[] }>;
}

/**
 * What one device sends from `fromMs` to `toMs`: it samples `entities` readings every
 * `intervalMs` from `phaseMs` on, and flushes as the firmware core does: with batch 1, one
 * state message per reading; otherwise a telemetry message of up to `readings` readings as
 * soon as that many wait, or once the oldest has waited `maxAgeMs`.
 */
export function deviceMessages(
  batching: FirmwareBatching,
  options: { entities: number; intervalMs: number; phaseMs: number; fromMs: number; toMs: number },
): DeviceMessage[] {
  const messages: DeviceMessage[] = [];
  const waiting: Array<{ atMs: number; entity: number }> = [];
  const send = (atMs: number, count: number) => {
    const taken = waiting.splice(0, count);
    const rounds: DeviceMessage['rounds'] = [];
    for (const reading of taken) {
      const last = rounds.at(-1);
      if (last && last.atMs === reading.atMs) last.entities.push(reading.entity);
      else rounds.push({ atMs: reading.atMs, entities: [reading.entity] });
    }
    if (atMs >= options.fromMs && atMs < options.toMs) {
      messages.push({ atMs, kind: batching.readings > 1 ? 'telemetry' : 'state', rounds });
    }
  };
  for (let at = options.phaseMs; at < options.toMs; at += options.intervalMs) {
    // A partial batch that ages out before this round goes first.
    const oldest = waiting[0];
    if (batching.readings > 1 && oldest && batching.maxAgeMs !== undefined) {
      const due = oldest.atMs + batching.maxAgeMs;
      if (due <= at) send(due, waiting.length);
    }
    for (let entity = 0; entity < options.entities; entity++) waiting.push({ atMs: at, entity });
    const batch = Math.max(1, batching.readings);
    while (waiting.length >= batch) send(at, batch);
  }
  return messages;
}
