import { z } from 'zod';
import { ALARM_STATUSES, conditionSchema, SEVERITIES } from '../domain/model.ts';

/** The alarm routes' query and answer shapes, for the route table. */

const positiveId = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
  .transform(Number)
  .refine((id) => id <= 2_147_483_647, 'must be at most 2147483647');

export const alarmQuery = z.strictObject({
  status: z.enum(ALARM_STATUSES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  device_id: positiveId.optional(),
  limit: z
    .string()
    .regex(/^[0-9]{1,4}$/, 'must be an integer from 1 to 1000')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, 'must be from 1 to 1000')
    .optional(),
});

const isoTime = z.string().describe('ISO 8601 time, UTC');
const severity = z.enum(SEVERITIES).meta({ id: 'AlarmSeverity' });
const status = z.enum(ALARM_STATUSES).meta({ id: 'AlarmStatus' });

export const alarmRule = z
  .looseObject({
    id: z.number().int(),
    name: z.string(),
    device_id: z.number().int().nullable(),
    device_type: z.string().nullable(),
    entity_id: z.string().nullable(),
    severity,
    condition: conditionSchema,
    notify: z.object({
      webhooks: z.array(z.object({ url: z.string() })).describe('Secrets are write-only'),
      emails: z.array(z.string()),
    }),
    quiet_minutes: z.number().int(),
    enabled: z.boolean(),
    created_at: isoTime,
    updated_at: isoTime,
  })
  .meta({ id: 'AlarmRule' });

export const alarm = z
  .looseObject({
    id: z.number().int(),
    rule_id: z.number().int().nullable(),
    rule_name: z.string(),
    device_id: z.number().int(),
    entity_id: z.string().nullable(),
    severity,
    status,
    count: z.number().int(),
    value: z.unknown(),
    reason: z.string().nullable(),
    started_at: isoTime,
    last_at: isoTime,
    acknowledged_by: z.number().int().nullable(),
    acknowledged_at: isoTime.nullable(),
    cleared_at: isoTime.nullable(),
  })
  .meta({ id: 'Alarm' });

export const alarmDetail = alarm
  .extend({
    history: z.array(
      z.looseObject({
        type: z.enum(['raised', 'repeated', 'acknowledged', 'cleared']),
        at: isoTime,
        value: z.unknown(),
        user_id: z.number().int().nullable(),
        reason: z.string().nullable(),
      }),
    ),
    deliveries: z.array(
      z.looseObject({
        id: z.number().int(),
        event: z.string(),
        channel: z.enum(['webhook', 'email']),
        target: z.string(),
        status: z.enum(['pending', 'delivered', 'dead', 'suppressed']),
        attempts: z.number().int(),
        last_status: z.number().int().nullable(),
        last_error: z.string().nullable(),
        created_at: isoTime,
        delivered_at: isoTime.nullable(),
        next_attempt_at: isoTime.nullable(),
      }),
    ),
  })
  .meta({ id: 'AlarmDetail' });
