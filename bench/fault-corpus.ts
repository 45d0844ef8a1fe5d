/**
 * A second labelled corpus for the anomaly detectors, generated here so that it needs no
 * download: industrial sensor signals (temperature with a daily cycle, vibration of a machine
 * that runs two shifts, a pump that cycles, line pressure with setpoint changes at each shift,
 * a power meter with a weekly pattern, humidity that wanders) with the faults that such
 * sensors show injected at random times and sizes: spikes, level shifts, slow drifts, stuck
 * values, noise bursts, a lost duty cycle and dropouts to zero. Some series have no fault.
 *
 * It is written in NAB's layout (`data/<category>/<file>.csv` and
 * `labels/combined_windows.json`, windows sized and centred as NAB sizes them), so the same
 * independent scorer and profiles apply. Everything follows from `seed`: the corpus is the
 * same on every machine.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from '../shared/ml/domain/seeded-random.ts';

const FIVE_MINUTES = 300_000;
const DAY = 288; // readings per day
const LENGTH = 14 * DAY; // two weeks of five-minute readings, as NAB's artificial files
const START = Date.UTC(2026, 2, 2); // a Monday

type Random = () => number;

function gaussian(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A clean signal and the typical size of its noise, which fault sizes are measured in. */
interface Signal {
  values: number[];
  noise: number;
  /** Whether the signal has an on/off duty cycle a `cycle-lost` fault can break. */
  cycles: boolean;
}

const hourOf = (i: number) => ((i % DAY) / DAY) * 24;

const signals: Record<string, (random: Random) => Signal> = {
  temperature: (random) => {
    const noise = 0.3 + 0.2 * random();
    let ar = 0;
    const values = Array.from({ length: LENGTH }, (_, i) => {
      ar = 0.8 * ar + gaussian(random) * noise * 0.6;
      return 55 + 8 * Math.sin((2 * Math.PI * (i - DAY / 4)) / DAY) + ar;
    });
    return { values, noise, cycles: false };
  },
  vibration: (random) => {
    const noise = 0.15 + 0.1 * random();
    const values = Array.from({ length: LENGTH }, (_, i) => {
      const running = hourOf(i) >= 6 && hourOf(i) < 22;
      return (running ? 2.5 : 0.3) + Math.abs(gaussian(random)) * noise * (running ? 1 : 0.3);
    });
    return { values, noise, cycles: true };
  },
  pump: (random) => {
    const noise = 0.4 + 0.3 * random();
    const period = 18 + Math.floor(random() * 12); // 1.5 to 2.5 hours
    const values = Array.from({ length: LENGTH }, (_, i) => {
      const on = i % period < period / 3;
      return (on ? 42 : 3) + gaussian(random) * noise;
    });
    return { values, noise, cycles: true };
  },
  pressure: (random) => {
    const noise = 0.03 + 0.02 * random();
    const setpoints = [4.0, 4.6, 4.3];
    const values = Array.from({ length: LENGTH }, (_, i) => {
      const shift = Math.floor(hourOf(i) / 8);
      return (setpoints[shift] as number) + gaussian(random) * noise;
    });
    return { values, noise, cycles: false };
  },
  power: (random) => {
    const noise = 3 + 2 * random();
    const values = Array.from({ length: LENGTH }, (_, i) => {
      const weekday = Math.floor(i / DAY) % 7 < 5;
      const day = Math.max(0, Math.sin((Math.PI * (hourOf(i) - 6)) / 14));
      return 120 + (weekday ? 180 : 40) * day + gaussian(random) * noise;
    });
    return { values, noise, cycles: false };
  },
  humidity: (random) => {
    const noise = 0.5 + 0.3 * random();
    let walk = 0;
    const values = Array.from({ length: LENGTH }, (_, i) => {
      walk = 0.995 * walk + gaussian(random) * 0.3;
      return 45 + walk + 4 * Math.sin((2 * Math.PI * i) / DAY) + gaussian(random) * noise;
    });
    return { values, noise, cycles: false };
  },
};

type Fault = (values: number[], at: number, size: number, random: Random, s: Signal) => void;

const faults: Record<string, Fault> = {
  spike: (values, at, size, random) => {
    const width = 1 + Math.floor(random() * 3);
    const sign = random() < 0.8 ? 1 : -1;
    for (let i = at; i < at + width; i++) values[i] = (values[i] as number) + sign * size;
  },
  'level shift': (values, at, size, random) => {
    const sign = random() < 0.5 ? 1 : -1;
    for (let i = at; i < values.length; i++) values[i] = (values[i] as number) + sign * size;
  },
  drift: (values, at, size) => {
    const ramp = 2 * DAY;
    for (let i = at; i < values.length; i++) {
      values[i] = (values[i] as number) + size * 1.5 * Math.min(1, (i - at) / ramp);
    }
  },
  stuck: (values, at, _size, random) => {
    const held = values[at] as number;
    const length = DAY / 2 + Math.floor(random() * DAY);
    for (let i = at; i < Math.min(values.length, at + length); i++) values[i] = held;
  },
  'noise burst': (values, at, size, random) => {
    const length = 50 + Math.floor(random() * 100);
    for (let i = at; i < Math.min(values.length, at + length); i++) {
      values[i] = (values[i] as number) + gaussian(random) * size * 0.6;
    }
  },
  'cycle lost': (values, at, _size, random, s) => {
    // The machine stays in its current state: a motor that does not stop, a pump that sticks.
    const length = DAY / 3 + Math.floor(random() * DAY);
    const level = values[at] as number;
    for (let i = at; i < Math.min(values.length, at + length); i++) {
      values[i] = level + gaussian(random) * s.noise;
    }
  },
  dropout: (values, at, _size, random) => {
    const length = 3 + Math.floor(random() * 30);
    for (let i = at; i < Math.min(values.length, at + length); i++) values[i] = 0;
  },
};

const pad = (n: number) => String(n).padStart(2, '0');
function timestamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export interface CorpusSummary {
  files: number;
  readings: number;
  faults: Record<string, number>;
}

/** Writes the corpus under `dir` (`data/` and `labels/`); returns what it contains. */
export async function writeFaultCorpus(dir: string, seed = 1): Promise<CorpusSummary> {
  const random = mulberry32(seed);
  const labels: Record<string, Array<[string, string]>> = {};
  const summary: CorpusSummary = { files: 0, readings: 0, faults: {} };
  for (const [kind, make] of Object.entries(signals)) {
    await mkdir(path.join(dir, 'data', kind), { recursive: true });
    for (let variant = 1; variant <= 4; variant++) {
      const signal = make(random);
      const values = signal.values;
      // One series in four has no fault: any alarm on it is a false positive.
      const count = variant === 1 ? 0 : 1 + Math.floor(random() * 3);
      const names = Object.keys(faults).filter((f) => signal.cycles || f !== 'cycle lost');
      // Faults start after the probationary 15% and far enough apart that windows do not overlap.
      const slots = Array.from({ length: count }, (_, k) => {
        const span = (0.75 * LENGTH) / count;
        return Math.floor(0.2 * LENGTH + k * span + random() * span * 0.5);
      });
      const starts: number[] = [];
      for (const at of slots) {
        const name = names[Math.floor(random() * names.length)] as string;
        const size = signal.noise * (4 + 6 * random());
        (faults[name] as Fault)(values, at, size, random, signal);
        summary.faults[name] = (summary.faults[name] ?? 0) + 1;
        starts.push(at);
      }
      const file = `${kind}_${variant}.csv`;
      const times = values.map((_, i) => START + i * FIVE_MINUTES);
      const width = count > 0 ? Math.floor((0.1 * LENGTH) / count) : 0;
      labels[`${kind}/${file}`] = starts.map((at) => {
        const from = Math.max(0, at - Math.floor(width / 2));
        const to = Math.min(LENGTH - 1, from + width);
        return [
          `${timestamp(times[from] as number)}.000000`,
          `${timestamp(times[to] as number)}.000000`,
        ];
      });
      const rows = values.map((v, i) => `${timestamp(times[i] as number)},${v.toFixed(4)}`);
      await writeFile(path.join(dir, 'data', kind, file), `timestamp,value\n${rows.join('\n')}\n`);
      summary.files += 1;
      summary.readings += values.length;
    }
  }
  await mkdir(path.join(dir, 'labels'), { recursive: true });
  await writeFile(
    path.join(dir, 'labels', 'combined_windows.json'),
    `${JSON.stringify(labels, null, 2)}\n`,
  );
  return summary;
}
