import { alarmService } from '../../shared/alarms/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const alarms = alarmService();

export const handler = httpApi(
  'alarms',
  {
    'POST /api/alarm-rules': ({ caller, body }) => alarms.createRule(caller, body),
    'GET /api/alarm-rules': ({ caller }) => alarms.listRules(caller),
    'GET /api/alarm-rules/{id}': ({ caller, params }) => alarms.getRule(caller, params.id),
    'PATCH /api/alarm-rules/{id}': ({ caller, params, body }) =>
      alarms.updateRule(caller, params.id, body),
    'DELETE /api/alarm-rules/{id}': ({ caller, params }) => alarms.deleteRule(caller, params.id),
    'GET /api/alarms': ({ caller, query }) => alarms.listAlarms(caller, query),
    'GET /api/alarms/{id}': ({ caller, params }) => alarms.getAlarm(caller, params.id),
    'POST /api/alarms/{id}/ack': ({ caller, params }) => alarms.acknowledge(caller, params.id),
  },
  { authenticator: authenticator(), logger: logger() },
);
