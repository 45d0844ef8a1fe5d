import { z } from 'zod';
import { DEVICE_ID_PATTERN } from '../devices/model.ts';

const text = (max: number) => z.string().trim().min(1).max(max);

export const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
    .transform(Number),
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
  password: z.string().min(8, 'must be at least 8 characters').max(1024),
});

export const loginBody = z.strictObject({
  username: z.string().min(1).max(255),
  password: z.string().min(1).max(1024),
});

export const roleSchema = z.enum(['owner', 'admin', 'viewer']);

export const addUserBody = registerBody.omit({ tenant_name: true }).extend({ role: roleSchema });
export const changeRoleBody = z.strictObject({ role: roleSchema });

const deviceConfig = z
  .record(z.string(), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 16_384, 'must be at most 16 KiB as JSON');

export const newDeviceBody = z.strictObject({
  device_id: z
    .string()
    .regex(DEVICE_ID_PATTERN, 'must be 1-128 characters of letters, digits, ":", "_" or "-"'),
  name: text(255),
  type: text(100),
  location: text(255).nullish(),
  config: deviceConfig.nullish(),
});

export const devicePatchBody = z
  .strictObject({
    name: text(255).optional(),
    type: text(100).optional(),
    location: text(255).nullable().optional(),
    config: deviceConfig.nullable().optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one field is required');

const instant = z
  .string()
  .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO 8601 time')
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
export const commandParams = idParam.extend({ command_id: z.uuid() });
export const commandBody = z.strictObject({
  value: z.union([z.boolean(), z.number(), z.string().max(1024)]),
});

export const trainModelBody = z.strictObject({
  device_id: z.number().int().positive(),
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
});
