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
 * A detector state kept in two parts, so that what a batch reads and writes is small. Its
 * long arrays of records (a detector's time-of-day profiles: one {mean, variance, count} per
 * bin of the day) go to a profile of doubles, stored bin by bin: block i holds record i of
 * every such array, so a batch loads only the blocks of its readings' bins. Everything else,
 * with a marker where each such array was, is the state written with every scored batch. A
 * reading moves only its own bin, so the profile as stored stays right but for a few blocks:
 * those that differ from it travel in the state until there are more than
 * MAX_CHANGED_BLOCKS of them, and then they are written into the stored profile.
 */
export interface SplitDetectorState {
  /** JSON text of the state without its profiles (packed as `encodeDetectorState` packs). */
  state: string;
  /** The whole profile to store, or null when the stored one stands. */
  profile: Buffer | null;
  /** Runs of blocks to write into the stored profile (at their byte offset), or null. */
  blocks: Array<{ at: number; bytes: Buffer }> | null;
  /** Records in each profile array (blocks in the profile). */
  records: number;
}

/**
 * What a state was loaded with, for its next save: the stored profile's blocks that were
 * loaded (by index) and the blocks the state carried (changed since the profile was stored).
 */
export interface StoredProfile {
  layout: string;
  loaded: Map<number, Float64Array>;
  carried: Set<number>;
  /** Whether every block was loaded or carried (the profile is known whole). */
  whole: boolean;
}

/** Which blocks of the stored profile come with a state: all, none, or a run of them. */
export type ProfilePart = 'whole' | 'none' | { first: number };

/** Arrays of records at least this long go to the profile. */
const MIN_PROFILE_RECORDS = 32;
/** Blocks differing from the stored profile carried in the state before they are written. */
export const MAX_CHANGED_BLOCKS = 4;
const PROFILE = '$profile';

interface ProfileMarker {
  /** Offset of the array's record in a block, in doubles. */
  offset: number;
  length: number;
  fields: string[];
  /** Doubles in a block (on every marker; the first carries the changed blocks). */
  block: number;
  /** The blocks that differ from the stored profile, by index: their doubles, packed. */
  changed?: Record<string, string>;
}

const layoutOf = (markers: ProfileMarker[]) =>
  markers
    .map(({ offset, length, fields, block }) => `${offset}:${length}:${block}:${fields}`)
    .join('|');

/**
 * The numeric fields shared by every record present in a long array (holes allowed: the
 * records of a profile not loaded), and whether it has holes; null when it is not one.
 */
function profileFields(values: unknown[]): { fields: string[]; holes: boolean } | null {
  if (values.length < MIN_PROFILE_RECORDS) return null;
  let fields: string[] | null = null;
  let holes = false;
  for (let i = 0; i < values.length; i++) {
    if (!(i in values)) {
      holes = true;
      continue;
    }
    const value = values[i];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    const keys = Object.keys(value);
    if (!fields) {
      if (keys.length === 0) return null;
      fields = keys;
    }
    if (keys.length !== fields.length) return null;
    for (let f = 0; f < fields.length; f++) {
      if (keys[f] !== fields[f] || !packable((value as Record<string, unknown>)[keys[f] as string]))
        return null;
    }
  }
  return fields ? { fields, holes } : null;
}

function hasHoles(values: unknown[]): boolean {
  for (let i = 0; i < values.length; i++) if (!(i in values)) return true;
  return false;
}

function packRecords(value: unknown[], fields: string[]) {
  return {
    [RECORDS]: Object.fromEntries(
      fields.map((field) => [
        field,
        packNumbers(value.map((item) => (item as Record<string, number>)[field] as number)),
      ]),
    ),
  };
}

/**
 * The state as stored in two parts. `stored`: what the state was loaded with (null when it
 * was loaded whole or is new). A state whose profile was loaded in part must be saved on
 * that profile: its missing blocks are what is stored.
 */
export function splitDetectorState(
  state: unknown,
  stored: StoredProfile | null,
): SplitDetectorState {
  const arrays: Array<{ records: unknown[]; marker: ProfileMarker }> = [];
  let block = 0;
  let holes = false;
  // A walk that builds what JSON.stringify then writes plainly: a replacer function
  // called on every value took as long as the rest of the save.
  const walk = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) {
      if (value.length < MIN_PACKED) return value.map(walk);
      const profile = profileFields(value);
      const length = arrays[0]?.marker.length ?? value.length;
      if (profile && value.length === length) {
        const marker: ProfileMarker = { offset: block, length, fields: profile.fields, block: 0 };
        block += profile.fields.length;
        holes ||= profile.holes;
        arrays.push({ records: value, marker });
        return { [PROFILE]: marker };
      }
      if (profile?.holes || (!profile && hasHoles(value))) {
        throw new Error('a profile array not loaded, or not like the others, cannot be saved');
      }
      if (value.every(packable)) return { [NUMBERS]: packNumbers(value) };
      const fields = recordFields(value);
      return fields ? packRecords(value, fields) : value.map(walk);
    }
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) out[key] = walk((value as Record<string, unknown>)[key]);
    return out;
  };
  const tree = walk(state);
  const markers = arrays.map(({ marker }) => marker);
  for (const marker of markers) marker.block = block;
  const records = markers[0]?.length ?? 0;
  const blockOf = (i: number): Float64Array => {
    const values = new Float64Array(block);
    for (const { records: array, marker } of arrays) {
      const record = array[i] as Record<string, number>;
      marker.fields.forEach((field, f) => {
        values[marker.offset + f] = record[field] as number;
      });
    }
    return values;
  };
  /** How many of the profile arrays have record i (the others have a hole there). */
  const present = (i: number) =>
    arrays.reduce((n, { records: array }) => n + (i in array ? 1 : 0), 0);
  const base = stored && stored.layout === layoutOf(markers) ? stored : null;
  if (holes && !base) throw new Error('a profile loaded in part is saved on another layout');
  if (markers.length === 0 || (!holes && !base?.whole)) {
    // New, or loaded whole under another layout: the whole profile.
    const profile = new Float64Array(records * block);
    for (let i = 0; i < records; i++) profile.set(blockOf(i), i * block);
    return {
      state: JSON.stringify(tree),
      profile: markers.length > 0 ? Buffer.from(profile.buffer) : null,
      blocks: null,
      records,
    };
  }
  const known = base as StoredProfile;
  const changed = new Map<number, Float64Array>();
  for (let i = 0; i < records; i++) {
    const loaded = known.loaded.get(i);
    const carried = known.carried.has(i);
    const count = present(i);
    if (count === 0 && !loaded && !carried) continue;
    if (!loaded && !carried) {
      // Only a state known whole (a new detector) has blocks the load did not bring.
      if (holes) throw new Error(`profile block ${i} was not loaded but is there`);
      continue;
    }
    if (count < arrays.length) throw new Error(`profile block ${i} was loaded but is missing`);
    const values = blockOf(i);
    if (carried || (loaded && values.some((v, f) => v !== loaded[f]))) changed.set(i, values);
  }
  if (changed.size <= MAX_CHANGED_BLOCKS) {
    const first = markers[0] as ProfileMarker;
    if (changed.size > 0) {
      first.changed = Object.fromEntries(
        [...changed].map(([i, values]) => [i, Buffer.from(values.buffer).toString('base64')]),
      );
    }
    return { state: JSON.stringify(tree), profile: null, blocks: null, records };
  }
  // Written into the stored profile, in runs of adjacent blocks.
  const blocks: Array<{ at: number; bytes: Buffer }> = [];
  const indices = [...changed.keys()].sort((a, b) => a - b);
  for (let r = 0; r < indices.length; ) {
    let end = r;
    while (
      end + 1 < indices.length &&
      (indices[end + 1] as number) === (indices[end] as number) + 1
    )
      end++;
    const run = new Float64Array((end - r + 1) * block);
    for (let k = r; k <= end; k++)
      run.set(changed.get(indices[k] as number) as Float64Array, (k - r) * block);
    blocks.push({ at: (indices[r] as number) * block * 8, bytes: Buffer.from(run.buffer) });
    r = end + 1;
  }
  return { state: JSON.stringify(tree), profile: null, blocks, records };
}

/**
 * The state as the detector takes it, from the two stored parts (`state` parsed from jsonb)
 * and the `part` of the stored profile that came with it (`profile`: those blocks). Blocks
 * not loaded are holes in the profile arrays. Answers what to hand back to its save. A state
 * stored whole (no profile) reads as `decodeDetectorState` reads it.
 */
export function joinDetectorState(
  state: unknown,
  profile: Uint8Array | null,
  part: ProfilePart = 'whole',
): { state: unknown; stored: StoredProfile | null } {
  const arrays: Array<{ records: Array<Record<string, number>>; marker: ProfileMarker }> = [];
  const joined = decodeValue(state, (marker) => {
    const records = new Array<Record<string, number>>(marker.length);
    arrays.push({ records, marker });
    return records;
  });
  if (arrays.length === 0) return { state: joined, stored: null };
  const first = (arrays[0] as (typeof arrays)[number]).marker;
  const { block, length } = first;
  const loaded = new Map<number, Float64Array>();
  if (part !== 'none') {
    if (!profile) throw new Error('a detector state refers to a profile that is not stored');
    const copy = new Uint8Array(profile.length);
    copy.set(profile);
    const values = new Float64Array(copy.buffer);
    const from = part === 'whole' ? 0 : part.first;
    const count = values.length / block;
    if (
      !Number.isInteger(count) ||
      from + count > length ||
      (part === 'whole' && count !== length)
    ) {
      throw new Error('a detector state’s profile does not match it');
    }
    for (let k = 0; k < count; k++)
      loaded.set(from + k, values.subarray(k * block, (k + 1) * block));
  }
  const put = (i: number, values: Float64Array) => {
    for (const { records, marker } of arrays) {
      const record: Record<string, number> = {};
      marker.fields.forEach((field, f) => {
        record[field] = values[marker.offset + f] as number;
      });
      records[i] = record;
    }
  };
  for (const [i, values] of loaded) put(i, values);
  const carried = new Set<number>();
  for (const [index, packed] of Object.entries(first.changed ?? {})) {
    carried.add(Number(index));
    put(Number(index), Float64Array.from(unpackNumbers(packed)));
  }
  let whole = true;
  for (let i = 0; i < length && whole; i++) whole = loaded.has(i) || carried.has(i);
  return {
    state: joined,
    stored: { layout: layoutOf(arrays.map(({ marker }) => marker)), loaded, carried, whole },
  };
}
