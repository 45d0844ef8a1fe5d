import { z } from 'zod';

/** `GET /api/audit`'s query and answer, for the route table. */

const instant = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid time');

export const auditQuery = z.strictObject({
  actor: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,100}$/, 'a user id or a username')
    .optional(),
  action: z
    .string()
    .regex(
      /^[a-z_]{1,50}(\.[a-z_]{0,50})?$/,
      'an action such as alarm_rule.create, or a prefix such as alarm_rule.',
    )
    .optional(),
  from: instant.optional(),
  to: instant.optional(),
  cursor: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, 'the next_cursor of the previous page')
    .transform(Number)
    .optional(),
  limit: z
    .string()
    .regex(/^[0-9]{1,3}$/, 'an integer from 1 to 500')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 500, 'from 1 to 500')
    .optional(),
});

const change = z.object({ before: z.unknown(), after: z.unknown() });

export const auditPage = z.object({
  entries: z.array(
    z
      .looseObject({
        id: z.number().int(),
        at: z.string().describe('ISO 8601 time, UTC'),
        user_id: z.number().int().nullable(),
        username: z.string().nullable(),
        action: z.string(),
        target: z.string().nullable(),
        source: z.string().nullable().describe('The address the request came from'),
        details: z.record(z.string(), z.unknown()).nullable(),
        changes: z
          .record(z.string(), change)
          .nullable()
          .describe('Changed fields, before and after'),
      })
      .meta({ id: 'AuditEntry' }),
  ),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next (older) page'),
});
