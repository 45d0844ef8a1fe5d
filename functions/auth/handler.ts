import { accountService } from '../../shared/accounts/composition.ts';
import { accessTokens, authenticator, logger } from '../../shared/composition.ts';
import { httpApi, route, sourceOf } from '../../shared/http/api.ts';
import {
  addUserBody,
  changePasswordBody,
  changeRoleBody,
  idParam,
  loginBody,
  registerBody,
} from '../../shared/http/schemas.ts';

const tokens = accessTokens();
const accounts = accountService();

export const handler = httpApi(
  {
    'POST /api/auth/register': route(
      { access: 'public', body: registerBody },
      async ({ body, event }) => ({
        status: 201,
        body: await accounts.register(body, sourceOf(event)),
      }),
    ),
    'POST /api/auth/login': route(
      { access: 'public', body: loginBody },
      async ({ body, event }) => ({
        status: 200,
        body: await accounts.login(body, sourceOf(event)),
      }),
    ),
    'POST /api/auth/password': route(
      { access: 'read', body: changePasswordBody },
      async ({ caller, body, event }) => ({
        status: 200,
        body: await accounts.changePassword(caller, body, sourceOf(event)),
      }),
    ),
    'POST /api/auth/logout': route({ access: 'read' }, async ({ caller }) => {
      await accounts.logout(caller);
      return { status: 204 };
    }),
    'GET /.well-known/jwks.json': route({ access: 'public' }, async () => ({
      status: 200,
      body: tokens.jwks(),
      headers: { 'cache-control': 'public, max-age=300' },
    })),
    'GET /api/auth/me': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: await accounts.me(caller),
    })),
    'GET /api/tenant': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: await accounts.tenantOverview(caller),
    })),
    'GET /api/users': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: { users: await accounts.listUsers(caller) },
    })),
    'POST /api/users': route({ access: 'write', body: addUserBody }, async ({ caller, body }) => ({
      status: 201,
      body: { user: await accounts.addUser(caller, body) },
    })),
    'PATCH /api/users/{id}': route(
      { access: 'write', params: idParam, body: changeRoleBody },
      async ({ caller, params, body }) => ({
        status: 200,
        body: { user: await accounts.changeUserRole(caller, params.id, body.role) },
      }),
    ),
    'DELETE /api/users/{id}': route(
      { access: 'write', params: idParam },
      async ({ caller, params }) => {
        await accounts.removeUser(caller, params.id);
        return { status: 204 };
      },
    ),
  },
  { authenticator: authenticator(), logger: logger() },
);
