import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';
import { maintenanceService } from '../../shared/maintenance/composition.ts';

const maintenance = maintenanceService();

export const handler = httpApi(
  'maintenance',
  {
    'POST /api/devices/{id}/maintenance': async ({ caller, params, body }) => ({
      event: await maintenance.recordEvent(caller, params.id, body),
    }),
    'GET /api/devices/{id}/maintenance': async ({ caller, params }) => ({
      events: await maintenance.events(caller, params.id),
    }),
    'PUT /api/devices/{id}/entities/{entity_id}/limit': ({ caller, params, body }) =>
      maintenance.setLimit(caller, params.id, params.entity_id, body),
    'GET /api/devices/{id}/health': ({ caller, params }) => maintenance.health(caller, params.id),
    'GET /api/maintenance/devices': async ({ caller }) => ({
      devices: await maintenance.devicesRul(caller),
    }),
    'GET /api/maintenance/models': async ({ caller }) => ({
      models: await maintenance.models(caller),
    }),
    'POST /api/maintenance/models': async ({ caller, body }) => ({
      request: await maintenance.requestTraining(caller, {
        deviceType: body.device_type,
        stepUnit: body.step_unit,
      }),
    }),
  },
  { authenticator: authenticator(), logger: logger() },
);
