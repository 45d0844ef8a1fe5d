import { z } from 'zod';
import { DEVICE_ID_PATTERN, MAX_BULK_DEVICES } from '../identifiers.ts';
import {
  ARCHITECTURE_SIZES,
  type ArchitectureSize,
  DEFAULT_CO_WINDOW,
  DEFAULT_SETTINGS,
  MAX_CO_ENTITIES,
  MAX_CO_WINDOW,
  MAX_UPLOAD_WEIGHT_BYTES,
  MAX_WINDOW,
  MIN_WINDOW,
  MODEL_FAMILIES,
} from '../ml/domain/families.ts';

// In a `u` regex a paired surrogate is one astral code point, so \p{Cs} matches only lone ones.
const LONE_SURROGATE = /\p{Cs}/u;

/** PostgreSQL's `serial` ids are 32-bit: a larger number names nothing and must not reach SQL. */
export const MAX_DATABASE_ID = 2_147_483_647;

/**
 * Text PostgreSQL can store: it refuses NUL in `text` and `jsonb`, and a lone UTF-16
 * surrogate has no UTF-8 form (jsonb refuses its escape, text would get U+FFFD instead).
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** True when every string in a JSON value, keys included, is storable text. */
export function isStorableJson(value: unknown): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (Array.isArray(value)) return value.every(isStorableJson);
  if (value && typeof value === 'object') {
    return Object.entries(value).every(
      ([key, item]) => isStorableText(key) && isStorableJson(item),
    );
  }
  return true;
}

const STORABLE = 'must not contain NUL characters or unpaired surrogates';
export const storableString = () => z.string().refine(isStorableText, STORABLE);
const text = (max: number) => storableString().trim().min(1).max(max);

/** A database id as JSON sends it (`POST /api/ml/models`, WebSocket messages). */
export const databaseId = z.number().int().positive().max(MAX_DATABASE_ID);

export const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
    .transform(Number)
    .refine((id) => id <= MAX_DATABASE_ID, `must be at most ${MAX_DATABASE_ID}`),
});

export const registerBody = z.strictObject({
  tenant_name: text(255),
  username: z
    .string()
    .min(3)
    .max(100)
    .regex(/^[a-zA-Z0-9._-]+$/, 'may contain letters, digits, dot, underscore and hyphen'),
  email: z.email().max(255),
  // The byte limit is bcrypt's and is checked where the password is hashed (code password_too_long).
  // Length and common-password rules are the password policy's (accounts/password-policy.ts).
  password: storableString().max(1024),
});

export const loginBody = z.strictObject({
  username: storableString().min(1).max(255),
  password: storableString().min(1).max(1024),
});

export const changePasswordBody = z.strictObject({
  current_password: storableString().min(1).max(1024),
  new_password: storableString().max(1024),
});

export const roleSchema = z.enum(['owner', 'admin', 'viewer']);

export const addUserBody = registerBody.omit({ tenant_name: true }).extend({ role: roleSchema });
export const changeRoleBody = z.strictObject({ role: roleSchema });

const deviceConfig = z
  .record(z.string(), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 16_384, 'must be at most 16 KiB as JSON')
  .refine(isStorableJson, `strings ${STORABLE}`);

export const newDeviceBody = z.strictObject({
  device_id: z
    .string()
    .regex(DEVICE_ID_PATTERN, 'must be 1-128 characters of letters, digits, ":", "_" or "-"'),
  name: text(255),
  type: text(100),
  location: text(255).nullish(),
  config: deviceConfig.nullish(),
});

/**
 * `POST /api/devices/bulk`: a JSON array of `POST /api/devices` bodies, or the rows of a
 * CSV file (columns device_id, name, type and optionally location). Each row is checked on
 * its own, so a bad row is reported with its number instead of failing the whole body.
 */
export const bulkDevicesBody = z
  .array(z.unknown())
  .min(1)
  .max(MAX_BULK_DEVICES)
  .transform((rows) =>
    rows.map((input, index) => {
      const row = index + 1;
      const parsed = newDeviceBody.safeParse(input);
      if (parsed.success) return { row, device: parsed.data } as const;
      const deviceId = (input as { device_id?: unknown } | null)?.device_id;
      return {
        row,
        ...(typeof deviceId === 'string' ? { device_id: deviceId.slice(0, 128) } : {}),
        problem: {
          code: 'validation_failed',
          message: parsed.error.issues
            .slice(0, 5)
            .map((issue) => `${issue.path.length ? issue.path.join('.') : 'row'}: ${issue.message}`)
            .join('; '),
        },
      };
    }),
  );

export const devicePatchBody = z
  .strictObject({
    name: text(255).optional(),
    type: text(100).optional(),
    location: text(255).nullable().optional(),
    config: deviceConfig.nullable().optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one field is required');

/** InfluxDB's timestamps are signed 64-bit nanoseconds: roughly 1677 to 2262. */
export const EARLIEST_INSTANT = Date.parse('1970-01-01T00:00:00Z');
export const LATEST_INSTANT = Date.parse('2262-01-01T00:00:00Z');
/** The longest `every` InfluxDB can group by without overflowing: 10 years is plenty. */
const MAX_EVERY_SECONDS = 3650 * 86_400;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const;

const instant = z
  .string()
  .max(64)
  .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO 8601 time')
  .refine((value) => {
    const ms = Date.parse(value);
    return ms >= EARLIEST_INSTANT && ms < LATEST_INSTANT;
  }, 'must be between 1970-01-01 and 2262-01-01')
  .transform((value) => new Date(value));

export const telemetryQuery = z
  .object({
    entity_id: z
      .string()
      .regex(
        /^[a-zA-Z0-9_-]{1,100}(,[a-zA-Z0-9_-]{1,100}){0,49}$/,
        'one or more entity ids, comma-separated',
      )
      .transform((value) => value.split(','))
      .optional(),
    from: instant.optional(),
    to: instant.optional(),
    every: z
      .string()
      .regex(/^[1-9][0-9]{0,5}(s|m|h|d|w)$/, 'a duration such as 30s, 5m, 1h or 1d')
      .refine(
        (value) =>
          Number(value.slice(0, -1)) * UNIT_SECONDS[value.slice(-1) as keyof typeof UNIT_SECONDS] <=
          MAX_EVERY_SECONDS,
        'must be at most 3650d',
      )
      .optional(),
    fn: z.enum(['mean', 'min', 'max', 'count', 'last']).optional(),
  })
  .transform(({ entity_id, from, to, every, fn }) => {
    const end = to ?? new Date();
    return {
      entityIds: entity_id,
      from: from ?? new Date(end.getTime() - 3_600_000),
      to: end,
      every,
      fn,
    };
  });

export const entityParams = idParam.extend({
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
});
export const measuringRangeBody = z
  .strictObject({
    min: z
      .number()
      .refine(Number.isFinite, 'must be finite')
      .optional()
      .describe('Lowest value the sensor measures, in the entity’s unit'),
    max: z
      .number()
      .refine(Number.isFinite, 'must be finite')
      .optional()
      .describe('Highest value the sensor measures, in the entity’s unit'),
  })
  .describe('Both bounds set the range; neither clears it');
export const commandParams = idParam.extend({ command_id: z.uuid() });
export const commandBody = z.strictObject({
  value: z.union([z.boolean(), z.number(), storableString().max(1024)]),
});

/** `version`: an earlier model of the entity, to roll the device back to it. */
export const edgeModelBody = z.strictObject({
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
  version: z.string().min(1).max(100).optional(),
});

const modelSettingsFields = {
  family: z.enum(MODEL_FAMILIES),
  window_size: z.number().int().min(MIN_WINDOW).max(MAX_WINDOW),
  size: z.enum(Object.keys(ARCHITECTURE_SIZES) as [ArchitectureSize, ...ArchitectureSize[]]),
  co_entities: z
    .array(z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'))
    .max(MAX_CO_ENTITIES)
    .refine((ids) => new Set(ids).size === ids.length, 'names an entity twice'),
  co_window: z.number().int().min(1).max(MAX_CO_WINDOW),
};

/**
 * Settings given here override what was chosen for the device's type; none given: the
 * type's choice, else the platform's default model (a medium dense network over 24 readings).
 */
export const trainModelBody = z.strictObject({
  device_id: databaseId,
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
  family: modelSettingsFields.family.optional(),
  window_size: modelSettingsFields.window_size.optional(),
  size: modelSettingsFields.size.optional(),
  co_entities: modelSettingsFields.co_entities.optional(),
  co_window: modelSettingsFields.co_window.optional(),
});

/** The family and settings for an entity on every device of a type; omitted: the defaults. */
export const typeSettingsBody = z.strictObject({
  device_type: z.string().trim().min(1).max(100),
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
  family: modelSettingsFields.family.default(DEFAULT_SETTINGS.family),
  window_size: modelSettingsFields.window_size.default(DEFAULT_SETTINGS.windowSize),
  size: modelSettingsFields.size.default(DEFAULT_SETTINGS.size),
  co_entities: modelSettingsFields.co_entities.default([]),
  co_window: modelSettingsFields.co_window.default(DEFAULT_CO_WINDOW),
});

const finiteNumber = z.number().refine(Number.isFinite, 'must be finite');

/**
 * A tenant's TensorFlow.js Layers model: `model_json` is the saved model.json, `weights` its
 * weight files concatenated in manifest order (base64); `input` says how the platform feeds
 * the entity's readings to it. The network itself is checked by the ml context.
 */
export const uploadModelBody = z.strictObject({
  device_id: databaseId,
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
  model_json: z.record(z.string(), z.unknown()),
  weights: z
    .string()
    .min(1)
    .max(Math.ceil(MAX_UPLOAD_WEIGHT_BYTES / 3) * 4, 'too many weights'),
  input: z.strictObject({
    window_size: z.number().int().min(2).max(MAX_WINDOW),
    encoding: z.enum(['relative', 'standardised']),
    time_of_day: z.boolean(),
    normalisation: z.strictObject({
      mean: finiteNumber,
      std: finiteNumber.refine((v) => v > 0, 'must be above 0'),
    }),
  }),
});
