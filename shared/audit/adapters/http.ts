import { z } from 'zod';
import { type Route, route } from '../../http/api.ts';
import type { AuditService } from '../domain/audit.ts';

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

/** `GET /api/audit`: owners and admins read their tenant's trail, newest first. */
export function auditRoutes(audit: AuditService): Record<string, Route> {
  return {
    'GET /api/audit': route({ access: 'write', query: auditQuery }, async ({ caller, query }) => ({
      status: 200,
      body: await audit.list(caller, {
        actor: query.actor,
        action: query.action,
        from: query.from,
        to: query.to,
        before: query.cursor,
        limit: query.limit ?? 100,
      }),
    })),
  };
}
