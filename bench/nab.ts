/**
 * Scores both anomaly detectors on a labelled corpus and prints the NAB scores for every
 * profile (the advanced detector once per training seed and per range protocol, with the
 * mean and spread), how many models the quality gate rejected, the scoring throughput, the
 * detector's state size and the advanced model's training time.
 *
 *   npx tsx bench/nab.ts [--corpus nab|faults] [--nab DIR] [--scorer FILE]
 *                        [--detector basic|advanced|both] [--seeds 1,2,3,4,5]
 *                        [--range given|learnt|both] [--keep]
 *
 * `--range given` hands the advanced detector each file's minimum and maximum as the
 * entity's measuring range before the first reading, as NAB's runner hands every detector
 * (`inputMin`/`inputMax`); `--range learnt` gives it none, so it learns the range from the
 * readings as they come; `both` (the default) runs the two.
 *
 * `--corpus nab` (the default) is the Numenta Anomaly Benchmark: DIR is a NAB checkout (or a
 * folder with its `data/` and `labels/combined_windows.json`): `git clone
 * https://github.com/numenta/NAB`. `--corpus faults` is the industrial fault corpus that
 * `fault-corpus.ts` generates (no download). The results are written in NAB's layout
 * (`results/<detector>/<category>/<detector>_<file>.csv`), so NAB's own scorer can read them
 * too; the default scorer is `nab-score.mjs` next to the NAB corpus.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { formatScoresCsv, parseReadingsCsv } from '../shared/ml/adapters/csv.ts';
import { isMeasuringRange, type MeasuringRange } from '../shared/ml/domain/measuring-range.ts';
import { scoreSeries } from '../shared/ml/domain/score-series.ts';
import { DEFAULT_TRAINING } from '../shared/ml/domain/training.ts';
import { datasetBesideCheckout } from './datasets.ts';
import { writeFaultCorpus } from './fault-corpus.ts';
import { measureThroughput, measureTraining } from './ml-throughput.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
type Profile = (typeof PROFILES)[number];

const { values } = parseArgs({
  options: {
    corpus: { type: 'string', default: 'nab' },
    nab: { type: 'string', default: datasetBesideCheckout('nab') },
    scorer: { type: 'string' },
    detector: { type: 'string', default: 'both' },
    seeds: { type: 'string', default: String(DEFAULT_TRAINING.seed) },
    range: { type: 'string', default: 'both' },
    keep: { type: 'boolean', default: false },
  },
});
const fail = (message: string): never => {
  console.error(message);
  process.exit(2);
};
if (!['nab', 'faults'].includes(values.corpus)) fail('--corpus must be nab or faults');
if (!['basic', 'advanced', 'both'].includes(values.detector)) {
  fail('--detector must be basic, advanced or both');
}
if (!['given', 'learnt', 'both'].includes(values.range))
  fail('--range must be given, learnt or both');
const protocols = (values.range === 'both' ? ['given', 'learnt'] : [values.range]) as Protocol[];
const seeds = values.seeds.split(',').map((s) => Number(s.trim()));
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) fail('--seeds must be integers, e.g. 1,2,3');
const nab = path.resolve(values.nab);
const scorer = path.resolve(values.scorer ?? path.join(nab, '../../tools/nab-score.mjs'));
if (!existsSync(scorer)) {
  fail(
    `NAB scorer not found at ${scorer}. Pass --scorer <nab-score.mjs>, or keep the results` +
      ' (--keep) and score them with NAB itself: `python run.py --score --normalize -d <name>`.',
  );
}

const results = await mkdtemp(path.join(tmpdir(), 'easysmart-nab-'));
let corpus = nab;
if (values.corpus === 'faults') {
  corpus = path.join(results, 'corpus');
  const made = await writeFaultCorpus(corpus);
  console.log(
    `Industrial fault corpus: ${made.files} files, ${made.readings.toLocaleString('en')} readings, faults ` +
      Object.entries(made.faults)
        .map(([name, n]) => `${name} ${n}`)
        .join(', '),
  );
}
const dataDir = path.join(corpus, 'data');
const labels = path.join(corpus, 'labels/combined_windows.json');
if (!existsSync(dataDir) || !existsSync(labels)) {
  fail(
    `NAB corpus not found in ${corpus} (need data/ and labels/combined_windows.json).\n` +
      'Get it with `git clone https://github.com/numenta/NAB` and pass --nab <that folder>.',
  );
}

interface FileEntry {
  category: string;
  file: string;
}
const files: FileEntry[] = [];
for (const category of (await readdir(dataDir, { withFileTypes: true })).filter((d) =>
  d.isDirectory(),
)) {
  for (const file of (await readdir(path.join(dataDir, category.name))).sort()) {
    if (file.endsWith('.csv')) files.push({ category: category.name, file });
  }
}
files.sort((a, b) => `${a.category}/${a.file}`.localeCompare(`${b.category}/${b.file}`));

/** Whether the advanced detector is handed each file's min/max as its measuring range. */
type Protocol = 'given' | 'learnt';
const PROTOCOL_LABEL: Record<Protocol, string> = {
  given: "range given (the file's min/max)",
  learnt: 'range learnt online',
};

interface Run {
  label: string;
  /** The results' file-name prefix. */
  name: string;
  detector: 'basic' | 'advanced';
  seed: number | null;
  protocol: Protocol | null;
  rows: number;
  stateBytes: number;
  files: number;
  scoringMs: number;
  trainingMs: number;
  trained: number;
  rejected: number;
  profiles?: Record<Profile, number>;
  windows?: string;
  fp?: number;
}

/** The file's minimum and maximum, as NAB's runner computes them; null for a constant file. */
function fileRange(readings: { numericValue: number }[]): MeasuringRange | null {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const { numericValue } of readings) {
    min = Math.min(min, numericValue);
    max = Math.max(max, numericValue);
  }
  const range = { min, max };
  return isMeasuringRange(range) ? range : null;
}

async function scoreCorpus(r: Run): Promise<void> {
  for (const { category, file } of files) {
    const readings = parseReadingsCsv(await readFile(path.join(dataDir, category, file), 'utf8'));
    const scored = await scoreSeries(
      readings.map((x) => ({ timeMs: x.timeMs, value: x.numericValue })),
      r.detector,
      r.seed === null ? {} : { seed: r.seed },
      r.protocol === 'given' ? fileRange(readings) : null,
    );
    r.rows += readings.length;
    r.stateBytes += scored.stateBytes;
    r.files += 1;
    r.scoringMs += scored.scoringMs;
    r.trainingMs += scored.trainingMs;
    if (scored.model) r.trained += 1;
    if (scored.verdict && !scored.verdict.accepted) r.rejected += 1;
    const out = path.join(results, r.name, category);
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, `${r.name}_${file}`), formatScoresCsv(readings, scored.scores));
    process.stderr.write('.');
  }
  process.stderr.write(` ${r.label} scored\n`);

  // The CLI (which trains with the default seed) must write byte-for-byte what this run wrote.
  if (r.detector === 'advanced' && r.seed !== DEFAULT_TRAINING.seed) return;
  const first = files[0] as FileEntry;
  const cliOut = path.join(results, `cli-${r.name}.csv`);
  const firstRange =
    r.protocol === 'given'
      ? fileRange(
          parseReadingsCsv(await readFile(path.join(dataDir, first.category, first.file), 'utf8')),
        )
      : null;
  await run(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(root, 'shared/ml/score-cli.ts'),
      path.join(dataDir, first.category, first.file),
      cliOut,
      '--detector',
      r.detector,
      ...(firstRange ? ['--range', `${firstRange.min},${firstRange.max}`] : []),
    ],
    { cwd: root },
  );
  const inProcess = await readFile(
    path.join(results, r.name, first.category, `${r.name}_${first.file}`),
    'utf8',
  );
  if ((await readFile(cliOut, 'utf8')) !== inProcess) {
    throw new Error(
      `score-cli output differs from the in-process run for ${first.file} (${r.label})`,
    );
  }
}

async function nabScores(r: Run): Promise<void> {
  const { stdout } = await run(
    process.execPath,
    [
      scorer,
      ...['--data', dataDir, '--labels', labels, '--results', results, '--detector', r.name],
      ...['--profile', 'all', '--json'],
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const report = JSON.parse(stdout) as {
    profiles: Record<
      string,
      { normalized: number; windows: number; windowsDetected: number; fp: number }
    >;
  };
  r.profiles = Object.fromEntries(
    PROFILES.map((p) => [p, report.profiles[p]?.normalized ?? Number.NaN]),
  ) as Record<Profile, number>;
  const std = report.profiles.standard;
  r.windows = `${std?.windowsDetected}/${std?.windows}`;
  r.fp = std?.fp;
}

const runs: Run[] = [];
const fresh = (
  label: string,
  name: string,
  detector: Run['detector'],
  seed: number | null,
  protocol: Protocol | null,
) => ({
  label,
  name,
  detector,
  seed,
  protocol,
  rows: 0,
  stateBytes: 0,
  files: 0,
  scoringMs: 0,
  trainingMs: 0,
  trained: 0,
  rejected: 0,
});
// Basic has no training and no randomness: one run is every run.
if (values.detector !== 'advanced') {
  runs.push(fresh('basic', 'easysmartBasic', 'basic', null, null));
}
if (values.detector !== 'basic') {
  for (const protocol of protocols) {
    for (const seed of seeds) {
      const name = `easysmartAdvanced${protocol === 'given' ? 'Range' : ''}Seed${seed}`;
      const label = `advanced, ${PROTOCOL_LABEL[protocol]}, seed ${seed}`;
      runs.push(fresh(label, name, 'advanced', seed, protocol));
    }
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));

try {
  for (const r of runs) {
    await scoreCorpus(r);
    await nabScores(r);
  }

  console.log(
    `\nNAB scores on the ${values.corpus} corpus (normalised: 0 = no detections, 100 = perfect)\n`,
  );
  console.log(
    `| detector | ${PROFILES.join(' | ')} | windows detected (standard) | FP rows (standard) | models rejected by the gate |`,
  );
  console.log(`|---|${PROFILES.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const r of runs) {
    const cells = PROFILES.map((p) => (r.profiles?.[p] ?? Number.NaN).toFixed(2));
    const rejected = r.detector === 'advanced' ? `${r.rejected}/${r.trained}` : '';
    console.log(`| ${r.label} | ${cells.join(' | ')} | ${r.windows} | ${r.fp} | ${rejected} |`);
  }
  const advanced = runs.filter((r) => r.detector === 'advanced');
  for (const protocol of protocols) {
    const own = advanced.filter((r) => r.protocol === protocol);
    if (own.length < 2) continue;
    const cells = PROFILES.map((p) => {
      const xs = own.map((r) => r.profiles?.[p] ?? Number.NaN);
      return `${mean(xs).toFixed(2)} ± ${sd(xs).toFixed(2)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
    });
    console.log(
      `| advanced, ${PROTOCOL_LABEL[protocol]}, mean ± sd (min-max) over seeds ${seeds.join(',')} | ${cells.join(' | ')} | | | |`,
    );
  }

  console.log('\nScoring throughput on the corpus (in-process, one core)\n');
  for (const r of runs) {
    const perSecond = Math.round((r.rows / r.scoringMs) * 1000);
    const training =
      r.detector === 'advanced'
        ? `, ${r.trained}/${files.length} models trained in ${(r.trainingMs / 1000).toFixed(1)} s`
        : '';
    const state = Math.round(r.stateBytes / Math.max(1, r.files));
    console.log(
      `- ${r.label}: ${r.rows} readings, ${perSecond.toLocaleString('en')} readings/s, ` +
        `state after the last reading ${state.toLocaleString('en')} bytes of JSON per file (mean)${training}`,
    );
  }

  if (advanced.length > 0) {
    const training = await measureTraining(43_200);
    console.log(
      `\nAdvanced model training on one month of one-minute readings (43,200 synthetic points): ` +
        `${(training.durationMs / 1000).toFixed(1)} s (${training.epochs} epochs, backend ${training.backend})`,
    );
    const throughput = await measureThroughput(training.model);
    console.log(
      `Throughput on that series: basic ${throughput.basic.toLocaleString('en')} readings/s, ` +
        `advanced ${throughput.advanced.toLocaleString('en')}, ` +
        `advanced with a measuring range ${throughput.advancedWithRange.toLocaleString('en')} readings/s`,
    );
  }
} finally {
  if (values.keep) console.log(`\nresults kept in ${results}`);
  else await rm(results, { recursive: true, force: true });
}
