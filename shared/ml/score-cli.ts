import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CsvFormatError, formatScoresCsv, parseReadingsCsv } from './adapters/csv.ts';
import { isMeasuringRange, type MeasuringRange } from './domain/measuring-range.ts';
import { scoreSeries } from './domain/score-series.ts';

/**
 * `ml:score INPUT.csv OUTPUT.csv [--detector basic|advanced] [--backend wasm|cpu|tensorflow]
 * [--range MIN,MAX]` Reads `timestamp,value` rows and writes `timestamp,value,anomaly_score`
 * rows in the same order; `--range` is the series' measuring range (advanced only). Exit
 * status 2 for a usage error, 1 for unreadable or malformed input.
 */

const USAGE =
  'usage: ml:score INPUT.csv OUTPUT.csv [--detector basic|advanced] [--backend wasm|cpu|tensorflow] [--range MIN,MAX]';

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { input, output, detector, backend, range } = parsed;
  let text: string;
  try {
    text = await readFile(input, 'utf8');
  } catch (error) {
    process.stderr.write(`cannot read ${input}: ${(error as Error).message}\n`);
    return 1;
  }
  let readings: ReturnType<typeof parseReadingsCsv>;
  try {
    readings = parseReadingsCsv(text);
  } catch (error) {
    if (error instanceof CsvFormatError) {
      process.stderr.write(`${input}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const result = await scoreSeries(
    readings.map((r) => ({ timeMs: r.timeMs, value: r.numericValue })),
    detector,
    backend ? { backend } : {},
    range,
  );
  if (result.trainingError) {
    process.stderr.write(
      `no model trained (${result.trainingError.message}); scored with the basic signals only\n`,
    );
  }
  await writeFile(output, formatScoresCsv(readings, result.scores));
  return 0;
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      detector: { type: 'string', default: 'basic' },
      backend: { type: 'string' },
      range: { type: 'string' },
    },
  });
  if (positionals.length !== 2) throw new Error('expected INPUT.csv and OUTPUT.csv');
  const detector = values.detector;
  if (detector !== 'basic' && detector !== 'advanced') {
    throw new Error(`--detector must be basic or advanced, not "${detector}"`);
  }
  let range: MeasuringRange | null = null;
  if (values.range !== undefined) {
    const [min, max] = values.range
      .split(',')
      .map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
    range = { min: min as number, max: max as number };
    if (!isMeasuringRange(range) || values.range.split(',').length !== 2) {
      throw new Error(`--range must be MIN,MAX with MIN < MAX, not "${values.range}"`);
    }
    if (detector !== 'advanced') throw new Error('--range needs --detector advanced');
  }
  return {
    input: positionals[0] as string,
    output: positionals[1] as string,
    detector: detector as 'basic' | 'advanced',
    backend: values.backend,
    range,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
