/**
 * Reader for NASA's C-MAPSS turbofan files (Saxena et al., PHM08): one row per engine cycle,
 * space-separated, `unit cycle setting1..3 sensor1..21`; the truth file holds one remaining
 * life per test unit, in unit order.
 */

export const CMAPSS_SETTINGS = 3;
export const CMAPSS_SENSORS = 21;
const COLUMNS = 2 + CMAPSS_SETTINGS + CMAPSS_SENSORS;

/** Column names of a row after unit and cycle, as the platform's entities would be named. */
export const CMAPSS_FEATURES: readonly string[] = [
  ...Array.from({ length: CMAPSS_SETTINGS }, (_, i) => `setting_${i + 1}`),
  ...Array.from({ length: CMAPSS_SENSORS }, (_, i) => `sensor_${i + 1}`),
];

export interface CmapssUnit {
  unit: number;
  /** Cycle numbers, ascending from 1. */
  cycles: number[];
  /** One row per cycle, in `CMAPSS_FEATURES` order. */
  rows: number[][];
}

export function parseCmapss(text: string): CmapssUnit[] {
  const units = new Map<number, CmapssUnit>();
  const lines = text.split(/\r?\n/);
  lines.forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const fields = trimmed.split(/\s+/).map(Number);
    if (fields.length !== COLUMNS || fields.some((v) => !Number.isFinite(v))) {
      throw new SyntaxError(
        `line ${index + 1}: expected ${COLUMNS} numbers (unit, cycle, 3 settings, 21 sensors)`,
      );
    }
    const [unit, cycle] = fields as [number, number];
    let entry = units.get(unit);
    if (entry === undefined) {
      entry = { unit, cycles: [], rows: [] };
      units.set(unit, entry);
    }
    const previous = entry.cycles[entry.cycles.length - 1];
    if (previous !== undefined && cycle !== previous + 1) {
      throw new SyntaxError(
        `line ${index + 1}: unit ${unit} jumps from cycle ${previous} to ${cycle}`,
      );
    }
    entry.cycles.push(cycle);
    entry.rows.push(fields.slice(2));
  });
  return [...units.values()].sort((a, b) => a.unit - b.unit);
}

/** One true remaining life per line, in the order of the test units. */
export function parseCmapssTruth(text: string): number[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line, index) => {
      const value = Number(line);
      if (!Number.isInteger(value) || value < 0) {
        throw new SyntaxError(`truth line ${index + 1}: expected a whole number of cycles`);
      }
      return value;
    });
}

/**
 * PHM08 challenge score for one prediction: d = predicted - true; late predictions
 * (d > 0) cost exp(d/10) - 1, early ones exp(-d/13) - 1.
 */
export function phm08Score(predicted: number, actual: number): number {
  const d = predicted - actual;
  return d < 0 ? Math.exp(-d / 13) - 1 : Math.exp(d / 10) - 1;
}
