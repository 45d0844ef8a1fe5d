/**
 * How a detector state is kept in `ml_detector_states.state` (jsonb). A state is mostly long
 * arrays of doubles (its window, its daily profile of {mean, variance, count}): as JSON
 * numbers they are ~18 characters each, and PostgreSQL turns every one into a `numeric` on
 * the way in and back on the way out, which was most of the cost of saving and loading a
 * batch's states. So arrays of finite numbers, and arrays of objects with the same numeric
 * fields, are kept as base64 of their IEEE doubles, exactly; everything else as it is. A
 * stored state without packed arrays (one saved before) reads as it always did.
 */

/** Arrays shorter than this stay plain JSON (a marker costs more than it saves). */
const MIN_PACKED = 8;
const NUMBERS = '$f64';
const RECORDS = '$cols';

/** A value JSON keeps exactly: finite, and not -0 (JSON writes it as 0). */
const packable = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && !Object.is(value, -0);

function packNumbers(values: number[]): string {
  return Buffer.from(Float64Array.from(values).buffer).toString('base64');
}

function unpackNumbers(packed: string): number[] {
  const bytes = Buffer.from(packed, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return Array.from(new Float64Array(copy.buffer));
}

/** The same numeric fields in every element: their names, else null. */
function recordFields(values: unknown[]): string[] | null {
  const first = values[0];
  if (typeof first !== 'object' || first === null || Array.isArray(first)) return null;
  const fields = Object.keys(first);
  if (fields.length === 0) return null;
  for (const value of values) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    const keys = Object.keys(value);
    if (keys.length !== fields.length) return null;
    for (let i = 0; i < fields.length; i++) {
      if (keys[i] !== fields[i] || !packable((value as Record<string, unknown>)[keys[i] as string]))
        return null;
    }
  }
  return fields;
}

/** The state as stored: JSON text with its long numeric arrays packed. */
export function encodeDetectorState(state: unknown): string {
  return JSON.stringify(state, (_key, value: unknown) => {
    if (!Array.isArray(value) || value.length < MIN_PACKED) return value;
    if (value.every(packable)) return { [NUMBERS]: packNumbers(value) };
    const fields = recordFields(value);
    if (!fields) return value;
    return {
      [RECORDS]: Object.fromEntries(
        fields.map((field) => [
          field,
          packNumbers(value.map((item) => (item as Record<string, number>)[field] as number)),
        ]),
      ),
    };
  });
}

/** The state as the detector takes it, from what `encodeDetectorState` stored (or plain JSON). */
export function decodeDetectorState(stored: unknown): unknown {
  return decodeValue(stored);
}

/** Decodes packed arrays; `onProfile` puts back the arrays a split state keeps in its profile. */
function decodeValue(stored: unknown, onProfile?: (marker: ProfileMarker) => unknown): unknown {
  if (Array.isArray(stored)) return stored.map((item) => decodeValue(item, onProfile));
  if (typeof stored !== 'object' || stored === null) return stored;
  const record = stored as Record<string, unknown>;
  const keys = Object.keys(record);
  if (
    onProfile &&
    keys.length === 1 &&
    keys[0] === PROFILE &&
    typeof record[PROFILE] === 'object'
  ) {
    return onProfile(record[PROFILE] as ProfileMarker);
  }
  if (keys.length === 1 && typeof record[NUMBERS] === 'string') {
    return unpackNumbers(record[NUMBERS] as string);
  }
  if (keys.length === 1 && keys[0] === RECORDS && typeof record[RECORDS] === 'object') {
    const columns = Object.entries(record[RECORDS] as Record<string, string>).map(
      ([field, packed]) => [field, unpackNumbers(packed)] as const,
    );
    const length = columns[0]?.[1].length ?? 0;
    return Array.from({ length }, (_, i) =>
      Object.fromEntries(columns.map(([field, values]) => [field, values[i]])),
    );
  }
  const decoded: Record<string, unknown> = {};
  for (const key of keys) decoded[key] = decodeValue(record[key], onProfile);
  return decoded;
}

/**
 * A detector state kept in two parts, so that what changes with every reading is small. Its
 * long arrays of records (a detector's time-of-day profiles: one {mean, variance, count} per
 * bin of the day) go to a profile of doubles written rarely; everything else, with a marker
 * where each such array was, is the state written with every scored batch. A reading moves
 * only its own bin of a profile, so the profile as stored stays right but for a few records:
 * those that differ from it travel in the marker until there are more than
 * MAX_CHANGED_RECORDS of them, and then the whole profile is written again.
 */
export interface SplitDetectorState {
  /** JSON text of the state without its profiles (packed as `encodeDetectorState` packs). */
  state: string;
  /** The profile to store, or null when the stored one stands (its changes are in `state`). */
  profile: Buffer | null;
}

/** The profile a state was loaded with (or last saved with), to save only what changed. */
export interface StoredProfile {
  values: Float64Array;
  /** Where each profile array sits in `values`: a save with another layout writes it whole. */
  layout: string;
}

/** Arrays of records at least this long go to the profile. */
const MIN_PROFILE_RECORDS = 32;
/** Records differing from the stored profile carried in the state before it is rewritten. */
export const MAX_CHANGED_RECORDS = 8;
const PROFILE = '$profile';

interface ProfileMarker {
  /** Offset of the first record's first field in the profile, in doubles. */
  at: number;
  length: number;
  fields: string[];
  /** The records that differ from the stored profile, by index: their fields, packed. */
  changed?: Record<string, string>;
}

const layoutOf = (markers: ProfileMarker[]) =>
  markers.map(({ at, length, fields }) => `${at}:${length}:${fields.join(',')}`).join('|');

/**
 * The state as stored in two parts. `stored`: the profile the state was loaded with (null
 * when it has none stored); answers the profile now stored, for the next save.
 */
export function splitDetectorState(
  state: unknown,
  stored: StoredProfile | null,
): { split: SplitDetectorState; stored: StoredProfile | null } {
  const attempt = (base: StoredProfile | null) => {
    const markers: ProfileMarker[] = [];
    const values: number[] = [];
    let changedRecords = 0;
    const profileOf = (records: unknown[], fields: string[]): ProfileMarker => {
      const marker: ProfileMarker = { at: values.length, length: records.length, fields };
      let changed: Record<string, string> | undefined;
      for (let i = 0; i < records.length; i++) {
        const record = records[i] as Record<string, number>;
        let differs = false;
        for (let f = 0; f < fields.length; f++) {
          const v = record[fields[f] as string] as number;
          if (base && base.values[marker.at + i * fields.length + f] !== v) differs = true;
          values.push(v);
        }
        if (differs) {
          changed ??= {};
          changed[i] = packNumbers(fields.map((field) => record[field] as number));
          changedRecords += 1;
        }
      }
      if (changed) marker.changed = changed;
      markers.push(marker);
      return marker;
    };
    // A walk that builds what JSON.stringify then writes plainly: a replacer function
    // called on every value took as long as the rest of the save.
    const walk = (value: unknown): unknown => {
      if (typeof value !== 'object' || value === null) return value;
      if (Array.isArray(value)) {
        if (value.length < MIN_PACKED) return value.map(walk);
        if (value.every(packable)) return { [NUMBERS]: packNumbers(value) };
        const fields = recordFields(value);
        if (!fields) return value.map(walk);
        if (value.length >= MIN_PROFILE_RECORDS) return { [PROFILE]: profileOf(value, fields) };
        return {
          [RECORDS]: Object.fromEntries(
            fields.map((field) => [
              field,
              packNumbers(value.map((item) => (item as Record<string, number>)[field] as number)),
            ]),
          ),
        };
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value))
        out[key] = walk((value as Record<string, unknown>)[key]);
      return out;
    };
    const text = JSON.stringify(walk(state));
    return { text, markers, values, changedRecords };
  };
  if (stored) {
    const overlay = attempt(stored);
    if (
      overlay.changedRecords <= MAX_CHANGED_RECORDS &&
      layoutOf(overlay.markers) === stored.layout &&
      overlay.values.length === stored.values.length
    ) {
      return { split: { state: overlay.text, profile: null }, stored };
    }
  }
  const whole = attempt(null);
  if (whole.markers.length === 0)
    return { split: { state: whole.text, profile: null }, stored: null };
  const values = Float64Array.from(whole.values);
  return {
    split: { state: whole.text, profile: Buffer.from(values.buffer) },
    stored: { values, layout: layoutOf(whole.markers) },
  };
}

/**
 * The state as the detector takes it, from the two stored parts (`state` parsed from jsonb);
 * answers the profile as stored, for the next save. A state stored whole (no profile) reads
 * as `decodeDetectorState` reads it.
 */
export function joinDetectorState(
  state: unknown,
  profile: Uint8Array | null,
): { state: unknown; stored: StoredProfile | null } {
  let values: Float64Array | null = null;
  if (profile) {
    const copy = new Uint8Array(profile.length);
    copy.set(profile);
    values = new Float64Array(copy.buffer);
  }
  const markers: ProfileMarker[] = [];
  const joined = decodeValue(state, (marker) => {
    if (!values || marker.at + marker.length * marker.fields.length > values.length) {
      throw new Error('a detector state refers to a profile that is not stored');
    }
    markers.push(marker);
    const { at, fields } = marker;
    const from = values;
    const records = Array.from({ length: marker.length }, (_, i) => {
      const item: Record<string, number> = {};
      for (let f = 0; f < fields.length; f++)
        item[fields[f] as string] = from[at + i * fields.length + f] as number;
      return item;
    });
    for (const [index, packed] of Object.entries(marker.changed ?? {})) {
      const changed = unpackNumbers(packed);
      const item = records[Number(index)] as Record<string, number>;
      fields.forEach((field, f) => {
        item[field] = changed[f] as number;
      });
    }
    return records;
  });
  return {
    state: joined,
    stored: values && markers.length > 0 ? { values, layout: layoutOf(markers) } : null,
  };
}
