import { z } from 'zod';
import { type Route, route } from '../../http/api.ts';
import { idParam } from '../../http/schemas.ts';
import { ALARM_STATUSES, newRuleSchema, rulePatchSchema, SEVERITIES } from '../domain/model.ts';
import type { AlarmService } from '../domain/service.ts';

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

/**
 * The alarm routes. Roles: everyone signed in reads rules and alarms; owners and admins
 * create, change and delete rules and acknowledge alarms (a viewer watches, an operator
 * with an admin role acts).
 */
export function alarmRoutes(alarms: AlarmService): Record<string, Route> {
  return {
    'POST /api/alarm-rules': route(
      { access: 'write', body: newRuleSchema },
      async ({ caller, body }) => ({ status: 201, body: await alarms.createRule(caller, body) }),
    ),
    'GET /api/alarm-rules': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: await alarms.listRules(caller),
    })),
    'GET /api/alarm-rules/{id}': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: await alarms.getRule(caller, params.id),
      }),
    ),
    'PATCH /api/alarm-rules/{id}': route(
      { access: 'write', params: idParam, body: rulePatchSchema },
      async ({ caller, params, body }) => ({
        status: 200,
        body: await alarms.updateRule(caller, params.id, body),
      }),
    ),
    'DELETE /api/alarm-rules/{id}': route(
      { access: 'write', params: idParam },
      async ({ caller, params }) => {
        await alarms.deleteRule(caller, params.id);
        return { status: 204 };
      },
    ),
    'GET /api/alarms': route({ access: 'read', query: alarmQuery }, async ({ caller, query }) => ({
      status: 200,
      body: await alarms.listAlarms(caller, query),
    })),
    'GET /api/alarms/{id}': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: await alarms.getAlarm(caller, params.id),
      }),
    ),
    'POST /api/alarms/{id}/ack': route(
      { access: 'write', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: await alarms.acknowledge(caller, params.id),
      }),
    ),
  };
}
