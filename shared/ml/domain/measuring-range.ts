/**
 * What the advanced detector learns from an entity's measuring range: the span its sensor
 * measures (a transmitter's span, OPC UA's `EURange`), declared by the device in its
 * discovery or set by the tenant. Two signals follow from it, and neither exists without it:
 *
 * - a new level: the span is cut into fine cells, and a reading at least two cells away
 *   from every level the entity has shown before is something the machine has never done.
 *   It alarms by itself, once per incident (new levels close behind it are the same one);
 * - a usual level: the span is also cut into a few wide bands, and the statistics' surprise
 *   is damped in a band the entity often sits in, where most false alarms are noise.
 *
 * A range learnt from the readings cannot do this: its cells would move as it widens. The
 * state is a few words of bits and a dozen numbers, and each reading costs O(1).
 */

export interface MeasuringRange {
  min: number;
  max: number;
}

export interface MeasuringRangeConfig {
  /** Equal cells the span is cut into for the levels shown (a multiple of 32). */
  cells: number;
  /** A reading this many cells or more from every level shown before is a new level. */
  newLevelGap: number;
  /** Readings after a new level during which further new levels are the same incident. */
  rest: number;
  /** Surprise (nats) of a new level: it alarms on its own. */
  newLevelSurprise: number;
  /** Equal bands the span is cut into for usual levels. */
  bands: number;
  /** A band that held more than this fraction of the earlier readings is a usual level. */
  usualShare: number;
  /** Factor on the statistics' surprise for a reading in a usual band. */
  usualDamping: number;
}

export const DEFAULT_MEASURING_RANGE_CONFIG: MeasuringRangeConfig = {
  cells: 128,
  newLevelGap: 2,
  rest: 30,
  newLevelSurprise: 64,
  bands: 8,
  usualShare: 0.05,
  usualDamping: 0.5,
};

export interface MeasuringRangeState {
  /** The range the cells were cut from; another range starts afresh. */
  min: number;
  max: number;
  /** One bit per cell a reading has fallen in, 32 cells a word. */
  shown: number[];
  /** Readings seen in each band, and in all. */
  bandCounts: number[];
  total: number;
  /** Readings left in the current incident's rest period. */
  rest: number;
}

/** A range the detector can use: finite, with max above min. */
export function isMeasuringRange(value: unknown): value is MeasuringRange {
  if (typeof value !== 'object' || value === null) return false;
  const { min, max } = value as Record<string, unknown>;
  return (
    typeof min === 'number' &&
    typeof max === 'number' &&
    Number.isFinite(min) &&
    Number.isFinite(max) &&
    max > min
  );
}

export function newMeasuringRangeState(
  range: MeasuringRange,
  config: MeasuringRangeConfig,
): MeasuringRangeState {
  return {
    min: range.min,
    max: range.max,
    shown: new Array(Math.ceil(config.cells / 32)).fill(0),
    bandCounts: new Array(config.bands).fill(0),
    total: 0,
    // No new level before the first readings have shown where the entity sits.
    rest: config.rest,
  };
}

/** Whether a stored state was cut from this range with this configuration. */
export function measuringRangeStateFits(
  state: unknown,
  range: MeasuringRange,
  config: MeasuringRangeConfig,
): state is MeasuringRangeState {
  if (typeof state !== 'object' || state === null) return false;
  const s = state as Partial<MeasuringRangeState>;
  return (
    s.min === range.min &&
    s.max === range.max &&
    Array.isArray(s.shown) &&
    s.shown.length === Math.ceil(config.cells / 32) &&
    Array.isArray(s.bandCounts) &&
    s.bandCounts.length === config.bands &&
    typeof s.total === 'number' &&
    typeof s.rest === 'number'
  );
}

export interface MeasuringRangeSignals {
  /** Whether the reading sits in a band that held many of the earlier readings. */
  usual: boolean;
  /** Whether the reading opens an incident at a level never shown before. */
  newLevel: boolean;
}

function slot(value: number, state: MeasuringRangeState, slots: number): number {
  const at = Math.floor(((value - state.min) / (state.max - state.min)) * slots);
  return Math.max(0, Math.min(slots - 1, at));
}

function isShown(state: MeasuringRangeState, cell: number): boolean {
  return (((state.shown[cell >>> 5] as number) >>> (cell & 31)) & 1) === 1;
}

/** The reading's signals from the state before it, then the reading folded in. */
export function observeMeasuringRange(
  state: MeasuringRangeState,
  config: MeasuringRangeConfig,
  value: number,
): MeasuringRangeSignals {
  const band = slot(value, state, config.bands);
  const usual =
    state.total > 0 && (state.bandCounts[band] as number) / state.total > config.usualShare;
  const cell = slot(value, state, config.cells);
  let novel = state.total > 0;
  for (let d = 1 - config.newLevelGap; novel && d < config.newLevelGap; d++) {
    const near = cell + d;
    if (near >= 0 && near < config.cells && isShown(state, near)) novel = false;
  }
  const newLevel = novel && state.rest === 0;
  state.rest = novel ? config.rest : Math.max(0, state.rest - 1);
  state.shown[cell >>> 5] = ((state.shown[cell >>> 5] as number) | (1 << (cell & 31))) >>> 0;
  state.bandCounts[band] = (state.bandCounts[band] as number) + 1;
  state.total = Math.min(1e9, state.total + 1);
  return { usual, newLevel };
}
