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
  if (Array.isArray(stored)) return stored.map(decodeDetectorState);
  if (typeof stored !== 'object' || stored === null) return stored;
  const record = stored as Record<string, unknown>;
  const keys = Object.keys(record);
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
  for (const key of keys) decoded[key] = decodeDetectorState(record[key]);
  return decoded;
}
