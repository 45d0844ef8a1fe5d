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
