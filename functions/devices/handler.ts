import { accessTokens, logger } from '../../shared/composition.ts';
import { deviceService } from '../../shared/devices/composition.ts';
import { httpApi, route } from '../../shared/http/api.ts';
import { devicePatchBody, idParam, newDeviceBody } from '../../shared/http/schemas.ts';

const devices = deviceService();

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
  },
  { tokens: accessTokens(), logger: logger() },
);
