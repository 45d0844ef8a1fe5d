import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi, route } from '../../shared/http/api.ts';
import { entityParams, idParam } from '../../shared/http/schemas.ts';
import { maintenanceService } from '../../shared/maintenance/composition.ts';
import {
  entityLimitBody,
  maintenanceEventBody,
  trainFleetBody,
} from '../../shared/maintenance/schemas.ts';

const maintenance = maintenanceService();

export const handler = httpApi(
  {
    'POST /api/devices/{id}/maintenance': route(
      { access: 'write', params: idParam, body: maintenanceEventBody },
      async ({ caller, params, body }) => ({
        status: 201,
        body: { event: await maintenance.recordEvent(caller, params.id, body) },
      }),
    ),
    'GET /api/devices/{id}/maintenance': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: { events: await maintenance.events(caller, params.id) },
      }),
    ),
    'PUT /api/devices/{id}/entities/{entity_id}/limit': route(
      { access: 'write', params: entityParams, body: entityLimitBody },
      async ({ caller, params, body }) => ({
        status: 200,
        body: await maintenance.setLimit(caller, params.id, params.entity_id, body),
      }),
    ),
    'GET /api/devices/{id}/health': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: await maintenance.health(caller, params.id),
      }),
    ),
    'GET /api/maintenance/devices': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: { devices: await maintenance.devicesRul(caller) },
    })),
    'GET /api/maintenance/models': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: { models: await maintenance.models(caller) },
    })),
    'POST /api/maintenance/models': route(
      { access: 'write', body: trainFleetBody },
      async ({ caller, body }) => ({
        status: 202,
        body: {
          request: await maintenance.requestTraining(caller, {
            deviceType: body.device_type,
            stepUnit: body.step_unit,
          }),
        },
      }),
    ),
  },
  { authenticator: authenticator(), logger: logger() },
);
