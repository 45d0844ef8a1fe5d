import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Tests wait for events, markers, counts or an injected clock, never for a fixed time: a
 * sleep long enough to stand in for an event is a flake under load and dead time when quiet.
 * Short pauses (under 100 ms) remain allowed for polling loops with a deadline and for
 * pacing bytes or simulated work.
 */
const testRoot = path.join(import.meta.dirname, '..');
const LONGEST_PAUSE_MS = 100;
const SLEEP =
  /(?:setTimeout\(\s*\w+\s*,\s*([\d_]+)\s*\))|(?:(?:sleep|delay|setTimeoutPromise)\(\s*([\d_]+)\s*[,)])/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function fixedSleeps(source: string): number[] {
  return [...source.matchAll(SLEEP)]
    .map((match) => Number((match[1] ?? match[2] ?? '0').replaceAll('_', '')))
    .filter((ms) => ms >= LONGEST_PAUSE_MS);
}

describe('waits in tests', () => {
  it('finds a fixed sleep written in any of the usual ways', () => {
    expect(fixedSleeps('await new Promise((r) => setTimeout(r, 1000));')).toEqual([1000]);
    expect(fixedSleeps('await new Promise((resolve) => setTimeout(resolve, 2_000))')).toEqual([
      2000,
    ]);
    expect(fixedSleeps('await sleep(500, signal); await delay(250);')).toEqual([500, 250]);
    expect(fixedSleeps('await new Promise((r) => setTimeout(r, 25));')).toEqual([]);
  });

  it('no test file sleeps for a fixed time of 100 ms or more', () => {
    const offenders = testFiles(testRoot)
      .filter((file) => file !== import.meta.filename)
      .flatMap((file) =>
        fixedSleeps(readFileSync(file, 'utf8')).map(
          (ms) => `${path.relative(testRoot, file)}: ${ms} ms`,
        ),
      );
    expect(offenders, 'wait for an event, a count or an injected clock instead').toEqual([]);
  });
});
