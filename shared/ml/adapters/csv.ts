/**
 * The `timestamp,value` CSV format of the Numenta Anomaly Benchmark, which is also what the
 * scoring CLI reads and writes. Timestamps and values are kept as their original text so the
 * output repeats the input exactly; only the score column is added.
 */

export interface CsvReading {
  /** 1-based line number in the source, for error messages. */
  line: number;
  timestamp: string;
  value: string;
  timeMs: number;
  numericValue: number;
}

export class CsvFormatError extends Error {
  override readonly name = 'CsvFormatError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/** `2014-04-01 00:00:00` (NAB, UTC), optionally with fractional seconds, or ISO 8601. */
export function parseTimestamp(text: string): number {
  const nab = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$/.exec(text);
  if (nab) {
    const [, y, mo, d, h, mi, s, frac] = nab;
    const ms = Date.UTC(
      Number(y),
      Number(mo) - 1,
      Number(d),
      Number(h),
      Number(mi),
      Number(s ?? 0),
      frac ? Math.round(Number(frac) * 1000) : 0,
    );
    return ms;
  }
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) return Date.parse(text);
  return Number.NaN;
}

function splitLine(line: string): string[] {
  return line.split(',').map((cell) => cell.trim());
}

/**
 * Rows are kept in file order even when a timestamp goes backwards (NAB has such rows, from
 * clock changes): the detectors score readings in arrival order.
 */
export function parseReadingsCsv(text: string): CsvReading[] {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const header = lines[0];
  if (header === undefined || header.trim() === '') {
    throw new CsvFormatError('empty file: expected a header "timestamp,value"', 1);
  }
  const columns = splitLine(header.replace(/^\uFEFF/, '')).map((c) => c.toLowerCase());
  const timeColumn = columns.indexOf('timestamp');
  const valueColumn = columns.indexOf('value');
  if (timeColumn < 0 || valueColumn < 0) {
    const missing = [timeColumn < 0 ? 'timestamp' : null, valueColumn < 0 ? 'value' : null]
      .filter(Boolean)
      .join(' and ');
    throw new CsvFormatError(`header "${header}" has no ${missing} column`, 1);
  }
  const readings: CsvReading[] = [];
  for (let i = 1; i < lines.length; i++) {
    const lineNumber = i + 1;
    const raw = lines[i] as string;
    if (raw.trim() === '') throw new CsvFormatError('empty row', lineNumber);
    const cells = splitLine(raw);
    if (cells.length !== columns.length) {
      throw new CsvFormatError(
        `expected ${columns.length} columns, found ${cells.length}`,
        lineNumber,
      );
    }
    const timestamp = cells[timeColumn] as string;
    const value = cells[valueColumn] as string;
    const timeMs = parseTimestamp(timestamp);
    if (!Number.isFinite(timeMs)) {
      throw new CsvFormatError(`invalid timestamp "${timestamp}"`, lineNumber);
    }
    const numericValue = value === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(numericValue)) {
      throw new CsvFormatError(`value "${value}" is not a finite number`, lineNumber);
    }
    readings.push({ line: lineNumber, timestamp, value, timeMs, numericValue });
  }
  return readings;
}

/** Fixed precision so the same scores always print the same text. */
export function formatScore(score: number): string {
  return score.toFixed(8);
}

export function formatScoresCsv(
  readings: readonly CsvReading[],
  scores: readonly number[],
): string {
  if (readings.length !== scores.length) {
    throw new RangeError(`${readings.length} readings but ${scores.length} scores`);
  }
  const out = ['timestamp,value,anomaly_score'];
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i] as CsvReading;
    out.push(`${r.timestamp},${r.value},${formatScore(scores[i] as number)}`);
  }
  return `${out.join('\n')}\n`;
}
