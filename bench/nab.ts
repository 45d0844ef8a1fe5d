/**
 * Scores both anomaly detectors on the Numenta Anomaly Benchmark corpus and prints the NAB
 * scores for every profile, the scoring throughput and the advanced model's training time.
 *
 *   npx tsx bench/nab.ts [--nab DIR] [--scorer FILE] [--detector basic|advanced|both] [--keep]
 *
 * DIR is a NAB checkout (or a folder with its `data/` and `labels/combined_windows.json`):
 * `git clone https://github.com/numenta/NAB`. The results are written in NAB's layout
 * (`results/<detector>/<category>/<detector>_<file>.csv`), so NAB's own scorer can read them
 * too; the default scorer is `nab-score.mjs` next to the corpus.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { formatScoresCsv, parseReadingsCsv } from '../shared/ml/csv.ts';
import { scoreSeries } from '../shared/ml/score-series.ts';
import { measureThroughput, measureTraining } from './ml-throughput.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
const NAMES = { basic: 'easysmartBasic', advanced: 'easysmartAdvanced' } as const;

const { values } = parseArgs({
  options: {
    nab: { type: 'string', default: path.resolve(root, '../shared/datasets/nab') },
    scorer: { type: 'string' },
    detector: { type: 'string', default: 'both' },
    keep: { type: 'boolean', default: false },
  },
});
const nab = path.resolve(values.nab);
const scorer = path.resolve(values.scorer ?? path.join(nab, '../../tools/nab-score.mjs'));
const dataDir = path.join(nab, 'data');
const labels = path.join(nab, 'labels/combined_windows.json');
if (!existsSync(dataDir) || !existsSync(labels)) {
  console.error(
    `NAB corpus not found in ${nab} (need data/ and labels/combined_windows.json).\n` +
      'Get it with `git clone https://github.com/numenta/NAB` and pass --nab <that folder>.',
  );
  process.exit(2);
}
if (!existsSync(scorer)) {
  console.error(
    `NAB scorer not found at ${scorer}. Pass --scorer <nab-score.mjs>, or keep the results` +
      ' (--keep) and score them with NAB itself: `python run.py --score --normalize -d <name>`.',
  );
  process.exit(2);
}
if (!['basic', 'advanced', 'both'].includes(values.detector)) {
  console.error('--detector must be basic, advanced or both');
  process.exit(2);
}
const detectors = (values.detector === 'both' ? ['basic', 'advanced'] : [values.detector]) as Array<
  'basic' | 'advanced'
>;

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

const results = await mkdtemp(path.join(tmpdir(), 'easysmart-nab-'));
const summary: Record<
  string,
  { rows: number; scoringMs: number; trainingMs: number; trained: number }
> = {};
try {
  for (const detector of detectors) {
    const name = NAMES[detector];
    const stats = { rows: 0, scoringMs: 0, trainingMs: 0, trained: 0 };
    for (const { category, file } of files) {
      const readings = parseReadingsCsv(await readFile(path.join(dataDir, category, file), 'utf8'));
      const scored = await scoreSeries(
        readings.map((r) => ({ timeMs: r.timeMs, value: r.numericValue })),
        detector,
      );
      stats.rows += readings.length;
      stats.scoringMs += scored.scoringMs;
      stats.trainingMs += scored.trainingMs;
      if (scored.model) stats.trained += 1;
      const out = path.join(results, name, category);
      await mkdir(out, { recursive: true });
      await writeFile(path.join(out, `${name}_${file}`), formatScoresCsv(readings, scored.scores));
      process.stderr.write('.');
    }
    process.stderr.write(` ${detector} scored\n`);
    summary[detector] = stats;

    // The CLI must write byte-for-byte what the in-process run wrote.
    const first = files[0] as FileEntry;
    const cliOut = path.join(results, `cli-${detector}.csv`);
    await run(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'shared/ml/score-cli.ts'),
        path.join(dataDir, first.category, first.file),
        cliOut,
        '--detector',
        detector,
      ],
      { cwd: root },
    );
    const inProcess = await readFile(
      path.join(results, name, first.category, `${name}_${first.file}`),
      'utf8',
    );
    if ((await readFile(cliOut, 'utf8')) !== inProcess) {
      throw new Error(
        `score-cli output differs from the in-process run for ${first.file} (${detector})`,
      );
    }
  }

  console.log('\nNAB scores (normalised: 0 = no detections, 100 = perfect)\n');
  console.log(
    `| detector | ${PROFILES.join(' | ')} | windows detected (standard) | FP rows (standard) |`,
  );
  console.log(`|---|${PROFILES.map(() => '---:').join('|')}|---:|---:|`);
  for (const detector of detectors) {
    const { stdout } = await run(
      process.execPath,
      [
        scorer,
        '--data',
        dataDir,
        '--labels',
        labels,
        '--results',
        results,
        '--detector',
        NAMES[detector],
        '--profile',
        'all',
        '--json',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const report = JSON.parse(stdout) as {
      profiles: Record<
        string,
        { normalized: number; windows: number; windowsDetected: number; fp: number }
      >;
    };
    const cells = PROFILES.map((p) => (report.profiles[p]?.normalized ?? Number.NaN).toFixed(2));
    const std = report.profiles.standard;
    console.log(
      `| ${detector} | ${cells.join(' | ')} | ${std?.windowsDetected}/${std?.windows} | ${std?.fp} |`,
    );
  }

  console.log('\nScoring throughput on the corpus (in-process, one core)\n');
  for (const detector of detectors) {
    const s = summary[detector];
    if (!s) continue;
    const perSecond = Math.round((s.rows / s.scoringMs) * 1000);
    const training =
      detector === 'advanced'
        ? `, ${s.trained}/${files.length} models trained in ${(s.trainingMs / 1000).toFixed(1)} s`
        : '';
    console.log(
      `- ${detector}: ${s.rows} readings, ${perSecond.toLocaleString('en')} readings/s${training}`,
    );
  }

  if (detectors.includes('advanced')) {
    const training = await measureTraining(43_200);
    console.log(
      `\nAdvanced model training on one month of one-minute readings (43,200 synthetic points): ` +
        `${(training.durationMs / 1000).toFixed(1)} s (${training.epochs} epochs, backend ${training.backend})`,
    );
    const throughput = await measureThroughput(training.model);
    console.log(
      `Throughput on that series: basic ${throughput.basic.toLocaleString('en')} readings/s, ` +
        `advanced ${throughput.advanced.toLocaleString('en')} readings/s`,
    );
  }
} finally {
  if (values.keep) console.log(`\nresults kept in ${results}`);
  else await rm(results, { recursive: true, force: true });
}
