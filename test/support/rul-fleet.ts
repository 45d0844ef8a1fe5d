import { CMAPSS_FEATURES, type CmapssUnit, parseCmapss } from '../../bench/cmapss.ts';
import type { RunToFailure } from '../../shared/maintenance/domain/rul-training.ts';

/** A small deterministic generator (an LCG): the same seed gives the same fleet. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Roughly standard normal noise (sum of four uniforms). */
export function gaussian(random: () => number): number {
  return (random() + random() + random() + random() - 2) * Math.sqrt(3);
}

export const FLEET_ENTITIES = ['temperature', 'vibration', 'humidity', 'setpoint'];

/**
 * A fleet that wears out like C-MAPSS engines: lives of 100-220 steps; temperature and
 * vibration stay at a unit-specific level and then drift away exponentially in the last
 * 60 steps; humidity is noise; the setpoint never changes.
 */
export function fleet(units: number, seed: number, life?: () => number): RunToFailure[] {
  const random = seeded(seed);
  return Array.from({ length: units }, (_, u) => {
    const steps = life?.() ?? 100 + Math.floor(random() * 120);
    const offset = gaussian(random) * 0.3;
    const rows = Array.from({ length: steps }, (_, i) => {
      const wear = Math.exp((i - steps) / 20);
      return [
        70 + offset + 8 * wear + gaussian(random) * 0.4,
        2 - offset * 0.5 + 3 * wear + gaussian(random) * 0.15,
        40 + gaussian(random) * 5,
        21,
      ];
    });
    return { id: `unit-${u}`, rows };
  });
}

/**
 * Engines in NASA's C-MAPSS text format (`unit cycle setting1..3 sensor1..21`), read back
 * with the benchmark's reader: the settings jitter around one operating condition, a third of
 * the sensors are constant, and the rest degrade exponentially towards failure (some rise,
 * some fall, each with its own noise), as FD001's do. Lives are 120-200 cycles.
 */
export function cmapssEngines(units: number, seed: number): CmapssUnit[] {
  const random = seeded(seed);
  const lines: string[] = [];
  for (let u = 1; u <= units; u++) {
    const life = 120 + Math.floor(random() * 80);
    const offset = gaussian(random) * 0.2;
    for (let cycle = 1; cycle <= life; cycle++) {
      const wear = Math.exp((cycle - life) / 25);
      const settings = [gaussian(random) * 0.002, gaussian(random) * 0.0003, 100];
      const sensors = Array.from({ length: 21 }, (_, s) => {
        if (s % 3 === 0) return 500 + s;
        const direction = s % 2 === 0 ? 1 : -1;
        return 100 + 10 * s + direction * (offset + 4 * wear) + gaussian(random) * 0.3;
      });
      lines.push(
        [u, cycle, ...settings, ...sensors].map((v) => String(Number(v.toFixed(4)))).join(' '),
      );
    }
  }
  return parseCmapss(lines.join('\n'));
}

export { CMAPSS_FEATURES };
