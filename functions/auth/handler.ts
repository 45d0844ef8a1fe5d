import { accountService } from '../../shared/accounts/composition.ts';
import { accessTokens, authenticator, logger } from '../../shared/composition.ts';
import { httpApi, sourceOf } from '../../shared/http/api.ts';

const tokens = accessTokens();
const accounts = accountService();

export const handler = httpApi(
  'auth',
  {
    'POST /api/auth/register': ({ body, event }) => accounts.register(body, sourceOf(event)),
    'POST /api/auth/login': ({ body, event }) => accounts.login(body, sourceOf(event)),
    'POST /api/auth/password': ({ caller, body, event }) =>
      accounts.changePassword(caller, body, sourceOf(event)),
    'POST /api/auth/logout': async ({ caller }) => {
      await accounts.logout(caller);
    },
    // jose types every JWK member as optional; the key was checked to be a P-256 key (kty EC).
    'GET /.well-known/jwks.json': async () => tokens.jwks() as { keys: Array<{ kty: string }> },
    'GET /api/auth/me': ({ caller }) => accounts.me(caller),
    'GET /api/tenant': ({ caller }) => accounts.tenantOverview(caller),
    'GET /api/users': async ({ caller }) => ({ users: await accounts.listUsers(caller) }),
    'POST /api/users': async ({ caller, body }) => ({
      user: await accounts.addUser(caller, body),
    }),
    'PATCH /api/users/{id}': async ({ caller, params, body }) => ({
      user: await accounts.changeUserRole(caller, params.id, body.role),
    }),
    'DELETE /api/users/{id}': async ({ caller, params }) => {
      await accounts.removeUser(caller, params.id);
    },
  },
  { authenticator: authenticator(), logger: logger() },
);
