import { commandService } from '../../shared/commands/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { deviceService } from '../../shared/devices/composition.ts';
import { httpApi, route } from '../../shared/http/api.ts';
import {
  commandBody,
  commandParams,
  devicePatchBody,
  entityParams,
  idParam,
  newDeviceBody,
  telemetryQuery,
} from '../../shared/http/schemas.ts';

const devices = deviceService();
const commands = commandService();

export const handler = httpApi(
  {
    'GET /api/devices': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: await devices.list(caller),
    })),
    'POST /api/devices': route(
      { access: 'write', body: newDeviceBody },
      async ({ caller, body }) => ({
        status: 201,
        body: await devices.register(caller, body),
      }),
    ),
    'GET /api/devices/{id}': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: await devices.get(caller, params.id),
      }),
    ),
    'PATCH /api/devices/{id}': route(
      { access: 'write', params: idParam, body: devicePatchBody },
      async ({ caller, params, body }) => ({
        status: 200,
        body: await devices.update(caller, params.id, body),
      }),
    ),
    'DELETE /api/devices/{id}': route(
      { access: 'write', params: idParam },
      async ({ caller, params }) => {
        await devices.remove(caller, params.id);
        return { status: 204 };
      },
    ),
    'GET /api/devices/{id}/telemetry': route(
      { access: 'read', params: idParam, query: telemetryQuery },
      async ({ caller, params, query }) => ({
        status: 200,
        body: await devices.telemetry(caller, params.id, query),
      }),
    ),
    'POST /api/devices/{id}/entities/{entity_id}/commands': route(
      { access: 'write', params: entityParams, body: commandBody },
      async ({ caller, params, body }) => {
        const command = await commands.send(caller, params.id, params.entity_id, body.value);
        return { status: 202, body: command };
      },
    ),
    'GET /api/devices/{id}/commands': route(
      { access: 'read', params: idParam },
      async ({ caller, params }) => ({
        status: 200,
        body: { commands: await commands.list(caller, params.id) },
      }),
    ),
    'GET /api/devices/{id}/commands/{command_id}': route(
      { access: 'read', params: commandParams },
      async ({ caller, params }) => ({
        status: 200,
        body: await commands.get(caller, params.id, params.command_id),
      }),
    ),
  },
  { authenticator: authenticator(), logger: logger() },
);
