import { commandService } from '../../shared/commands/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { deviceService } from '../../shared/devices/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const devices = deviceService();
const commands = commandService();

export const handler = httpApi(
  'devices',
  {
    'GET /api/devices': ({ caller }) => devices.list(caller),
    'POST /api/devices': ({ caller, body }) => devices.register(caller, body),
    'POST /api/devices/bulk': ({ caller, body }) => devices.registerMany(caller, body),
    'GET /api/devices/{id}': ({ caller, params }) => devices.get(caller, params.id),
    'PATCH /api/devices/{id}': ({ caller, params, body }) =>
      devices.update(caller, params.id, body),
    'DELETE /api/devices/{id}': ({ caller, params }) => devices.remove(caller, params.id),
    'GET /api/devices/{id}/telemetry': ({ caller, params, query }) =>
      devices.telemetry(caller, params.id, query),
    'POST /api/devices/{id}/entities/{entity_id}/commands': ({ caller, params, body }) =>
      commands.send(caller, { devicePk: params.id, entityId: params.entity_id, value: body.value }),
    'PUT /api/devices/{id}/entities/{entity_id}/measuring-range': ({ caller, params, body }) =>
      devices.setMeasuringRange(caller, params.id, params.entity_id, body),
    'GET /api/devices/{id}/commands': async ({ caller, params }) => ({
      commands: await commands.list(caller, params.id),
    }),
    'GET /api/devices/{id}/commands/{command_id}': ({ caller, params }) =>
      commands.get(caller, params.id, params.command_id),
  },
  { authenticator: authenticator(), logger: logger() },
);
