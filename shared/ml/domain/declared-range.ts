/**
 * What the advanced detector learns from an entity's declared measuring range (a sensor's
 * span, a number entity's settable range: the entity's `config.min`/`config.max`). The range
 * is cut into equal bands; the detector counts how often each band holds the reading and
 * which band-to-band transitions it has seen. Two signals follow:
 *
 * - a reading in a band the entity often sits in is an ordinary operating level, so the
 *   statistics' surprise there is damped (most false alarms are noise at a usual level);
 * - a transition between two bands never seen before is a new behaviour of the machine and
 *   alarms by itself, once per incident (later new transitions close behind it are the same
 *   incident).
 *
 * The state is a few dozen numbers and each reading costs O(1). Without a declared range the
 * detector has no bands and behaves exactly as before.
 */

export interface DeclaredRange {
  min: number;
  max: number;
}

export interface BandConfig {
  /** Equal bands the declared range is cut into (at most 31, one bit each in `seen`). */
  bands: number;
  /** A band that held more than this fraction of the earlier readings is a usual level. */
  usualShare: number;
  /** Factor on the statistics' surprise for a reading in a usual band. */
  usualDamping: number;
  /** Readings after a new transition during which further new transitions are the same incident. */
  rest: number;
  /** Surprise (nats) of a new transition: it alarms on its own. */
  transitionSurprise: number;
}

export const DEFAULT_BAND_CONFIG: BandConfig = {
  bands: 8,
  usualShare: 0.05,
  usualDamping: 0.5,
  rest: 30,
  transitionSurprise: 64,
};

export interface BandState {
  /** The declared range the bands were cut from; a different range starts afresh. */
  min: number;
  max: number;
  /** Readings seen in each band, and in all. */
  counts: number[];
  total: number;
  /** Per band, a bit for every band a reading has moved to from it. */
  seen: number[];
  /** Band of the previous reading; null before the first. */
  last: number | null;
  /** Readings left in the current incident's rest period. */
  rest: number;
}

/** The entity's declared range from its configuration, or null when it declares none. */
export function declaredRangeOf(
  config: Record<string, unknown> | null | undefined,
): DeclaredRange | null {
  const min = config?.min;
  const max = config?.max;
  if (typeof min !== 'number' || typeof max !== 'number') return null;
  if (!Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) return null;
  return { min, max };
}

export function newBandState(range: DeclaredRange, config: BandConfig): BandState {
  return {
    min: range.min,
    max: range.max,
    counts: new Array(config.bands).fill(0),
    total: 0,
    seen: new Array(config.bands).fill(0),
    last: null,
    rest: config.rest,
  };
}

export function bandStateFits(state: BandState, range: DeclaredRange, config: BandConfig): boolean {
  return (
    state.min === range.min &&
    state.max === range.max &&
    Array.isArray(state.counts) &&
    state.counts.length === config.bands &&
    Array.isArray(state.seen) &&
    state.seen.length === config.bands
  );
}

export interface BandSignals {
  /** Whether the reading sits in a band that held many of the earlier readings. */
  usual: boolean;
  /** Whether the reading opens an incident with a transition never seen before. */
  newTransition: boolean;
}

/** The reading's signals from the state before it, then the reading folded in. */
export function observeBand(state: BandState, config: BandConfig, value: number): BandSignals {
  const width = (state.max - state.min) / config.bands;
  const band = Math.max(0, Math.min(config.bands - 1, Math.floor((value - state.min) / width)));
  const usual = state.total > 0 && (state.counts[band] as number) / state.total > config.usualShare;
  const bit = 1 << band;
  const novel = state.last !== null && ((state.seen[state.last] as number) & bit) === 0;
  const newTransition = novel && state.rest === 0;
  state.rest = novel ? config.rest : Math.max(0, state.rest - 1);
  if (state.last !== null) state.seen[state.last] = (state.seen[state.last] as number) | bit;
  state.counts[band] = (state.counts[band] as number) + 1;
  state.total += 1;
  state.last = band;
  return { usual, newTransition };
}
