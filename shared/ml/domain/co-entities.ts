import type { CoEntityWindows, InputEncoding } from './model.ts';
import type { HistoryPoint } from './training.ts';

/**
 * Other entities of the same device as model inputs. Their readings need not share the
 * entity's timestamps (separate state messages, different reporting rates), so each is
 * aligned "as of": with the entity's reading at time t goes the other entity's latest value
 * at or before t. The model reads, per other entity, those values at the entity's last
 * `coWindow` readings. Training, calibration, the quality gate and the ingestion scorer all
 * take the windows from this one definition, so what a model learnt is what it is given.
 */

/** Another entity's readings over (at least) the time of the entity's history, in time order. */
export interface CoEntitySeries {
  entityId: string;
  points: readonly HistoryPoint[];
}

/** For each of `times` (ascending), the latest value of `points` at or before it; null before the first. */
export function valuesAsOf(
  times: readonly number[],
  points: readonly HistoryPoint[],
): Array<number | null> {
  const out: Array<number | null> = new Array(times.length).fill(null);
  let j = -1;
  for (let i = 0; i < times.length; i++) {
    const t = times[i] as number;
    while (j + 1 < points.length && (points[j + 1] as HistoryPoint).timeMs <= t) j += 1;
    if (j >= 0) out[i] = (points[j] as HistoryPoint).value;
  }
  return out;
}

/** The other entities' values aligned to an entity's history, from which a model's windows are cut. */
export class AlignedCoEntities {
  readonly #columns = new Map<string, Array<number | null>>();

  constructor(history: readonly HistoryPoint[], series: readonly CoEntitySeries[]) {
    const times = history.map((p) => p.timeMs);
    for (const { entityId, points } of series) {
      this.#columns.set(entityId, valuesAsOf(times, points));
    }
  }

  /**
   * The windows the model reads with the entity's reading `t` (an index into the history),
   * or undefined when the model reads no other entity.
   */
  windowsAt(t: number, model: InputEncoding): CoEntityWindows | undefined {
    const entities = model.coEntities;
    if (!entities || entities.length === 0) return undefined;
    const k = model.coWindow ?? 0;
    return entities.map(({ entityId }) => {
      const column = this.#columns.get(entityId);
      if (!column) throw new RangeError(`no readings of ${entityId} were given`);
      return t + 1 >= k ? column.slice(t + 1 - k, t + 1) : [];
    });
  }
}

/**
 * What the ingestion scorer keeps of one entity's other entities between batches: per other
 * entity its aligned values at the entity's recent readings (the newest last), as many as a
 * model can read.
 */
export type CoEntityBuffers = Record<string, Array<number | null>>;

/** Appends the values aligned with a new reading and returns the model's windows. */
export function pushAligned(
  buffers: CoEntityBuffers,
  aligned: ReadonlyMap<string, number | null>,
  model: InputEncoding,
  keep: number,
): CoEntityWindows | undefined {
  for (const [entityId, value] of aligned) {
    const buffer = buffers[entityId] ?? [];
    buffer.push(value);
    while (buffer.length > keep) buffer.shift();
    buffers[entityId] = buffer;
  }
  const entities = model.coEntities;
  if (!entities || entities.length === 0) return undefined;
  const k = model.coWindow ?? 0;
  return entities.map(({ entityId }) => {
    const buffer = buffers[entityId] ?? [];
    return buffer.length >= k ? buffer.slice(buffer.length - k) : [];
  });
}
