import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import {
  type DocumentedOperation,
  documentedOperations,
  FIXTURE_PASSWORD,
  inProcessApi,
  seedTenant,
  type Tenant,
} from './support/api-fixtures.ts';
import { unique } from './support/stack-env.ts';

/**
 * The authorisation matrix, generated from the served OpenAPI document: every route and
 * method × every role × every form of `{id}`, asserting the status and that no answer ever
 * carries the other tenant's data. A route added to the document is in the matrix at once.
 */
const { handlers, admin } = await inProcessApi();

const SOURCE = '10.77.0.1';
const ROLES = ['owner', 'admin', 'viewer', 'other tenant', 'deleted user', 'demoted user'] as const;
type Role = (typeof ROLES)[number];
const ID_FORMS = ['own', 'foreign', 'missing', 'huge', 'negative', 'non-numeric'] as const;
type IdForm = (typeof ID_FORMS)[number];
const INVALID_IDS: Partial<Record<IdForm, string>> = {
  huge: '99999999999',
  negative: '-1',
  'non-numeric': 'abc',
};
const MISSING_ID = '2147483000';

let a: Tenant;
let b: Tenant;
const staleTokens: Partial<Record<Role, string>> = {};
const freshTokens = new Map<Role, string>();

function handlerOf(routeKey: string) {
  const handler = handlers.get(routeKey);
  if (!handler) throw new Error(`no function serves ${routeKey}`);
  return handler;
}

async function login(username: string): Promise<string> {
  const response = await callRoute(handlerOf('POST /api/auth/login'), 'POST /api/auth/login', {
    sourceIp: SOURCE,
    body: { username, password: FIXTURE_PASSWORD },
  });
  if (response.status !== 200) throw new Error(`login ${username}: ${response.status}`);
  return response.body.token;
}

const tenantOf = (role: Role) => (role === 'other tenant' ? b : a);

async function tokenOf(role: Role): Promise<string> {
  const stale = staleTokens[role];
  if (stale) return stale;
  const cached = freshTokens.get(role);
  if (cached) return cached;
  const tenant = tenantOf(role);
  const user = role === 'admin' ? tenant.admin : role === 'viewer' ? tenant.viewer : tenant.owner;
  const token = await login(user.username);
  freshTokens.set(role, token);
  return token;
}

/** A user of tenant A whose token was issued before `change` happened to them. */
async function userWithStaleToken(change: 'delete' | 'demote'): Promise<string> {
  const owner = await tokenOf('owner');
  const username = unique(`${a.marker}-${change}`);
  const added = await callRoute(handlerOf('POST /api/users'), 'POST /api/users', {
    token: owner,
    body: { username, email: `${username}@example.com`, password: FIXTURE_PASSWORD, role: 'admin' },
  });
  const token = await login(username);
  const params = { id: String(added.body.user.id) };
  const answer =
    change === 'delete'
      ? await callRoute(handlerOf('DELETE /api/users/{id}'), 'DELETE /api/users/{id}', {
          token: owner,
          params,
        })
      : await callRoute(handlerOf('PATCH /api/users/{id}'), 'PATCH /api/users/{id}', {
          token: owner,
          params,
          body: { role: 'viewer' },
        });
  if (answer.status >= 300) throw new Error(`${change}: ${answer.status}`);
  return token;
}

/** The collection an `{id}` names: the path segment before it. */
function collectionOf(operation: DocumentedOperation): string | undefined {
  const segments = operation.path.split('/');
  const at = segments.indexOf('{id}');
  return at > 0 ? segments[at - 1] : undefined;
}

/** A resource of `tenant` in `collection` that the request may use up (DELETE gets a new one). */
async function ownId(collection: string, tenant: Tenant, method: string): Promise<string | null> {
  const owner = await tokenOf(tenant === a ? 'owner' : 'other tenant');
  if (collection === 'devices') {
    if (method !== 'DELETE') return String(tenant.device.id);
    const created = await callRoute(handlerOf('POST /api/devices'), 'POST /api/devices', {
      token: owner,
      body: {
        device_id: unique(`${tenant.marker}-spare`),
        name: `${tenant.marker} spare`,
        type: 'x',
      },
    });
    return String(created.body.device.id);
  }
  if (collection === 'users') {
    if (method !== 'DELETE') return String(tenant.viewer.userId);
    const username = unique(`${tenant.marker}-spare`);
    const added = await callRoute(handlerOf('POST /api/users'), 'POST /api/users', {
      token: owner,
      body: {
        username,
        email: `${username}@example.com`,
        password: FIXTURE_PASSWORD,
        role: 'viewer',
      },
    });
    return String(added.body.user.id);
  }
  // A collection this matrix has no fixture for yet: only the forms that need none run.
  return null;
}

/**
 * The example body with every unique-per-platform value made unique, and a numeric
 * `device_id` naming the caller's own device.
 */
function uniqueBody(example: Record<string, unknown> | undefined, caller: Tenant) {
  if (!example) return undefined;
  const body: Record<string, unknown> = { ...example };
  if (typeof body.device_id === 'number') body.device_id = caller.device.id;
  for (const key of ['tenant_name', 'username', 'device_id']) {
    if (typeof body[key] === 'string') body[key] = unique(String(body[key]).replace(/\s+/g, '_'));
  }
  if (typeof body.email === 'string') body.email = `${unique('m')}-${body.email}`;
  return body;
}

interface Case {
  operation: DocumentedOperation;
  role: Role;
  form: IdForm | null;
}

function expectedStatus(c: Case): number | 'documented' {
  if (c.operation.roles.length === 0) return 'documented';
  if (c.role === 'deleted user' || c.role === 'demoted user') return 401;
  const roleName = c.role === 'other tenant' ? 'owner' : c.role;
  if (!c.operation.roles.includes(roleName)) return 403;
  if (c.form && INVALID_IDS[c.form]) return 400;
  if (c.form === 'foreign' || c.form === 'missing') return 404;
  return 'documented';
}

const counts = { requests: 0, serverErrors: 0, leaks: 0 };

async function run(c: Case): Promise<string | null> {
  const { operation, role, form } = c;
  const caller = tenantOf(role);
  const other = caller === a ? b : a;
  const params: Record<string, string> = {};
  for (const name of operation.pathParams) {
    if (name === 'id') {
      const collection = collectionOf(operation) ?? '';
      if (form === 'own') {
        const id = await ownId(collection, caller, operation.method);
        if (id === null) return null;
        params.id = id;
      } else if (form === 'foreign') {
        const id = await ownId(collection, other, 'GET');
        if (id === null) return null;
        params.id = id;
      } else {
        params.id = form === 'missing' ? MISSING_ID : (INVALID_IDS[form as IdForm] as string);
      }
    } else if (name === 'entity_id') {
      params.entity_id = 'relay';
    } else if (name === 'command_id') {
      params.command_id =
        form === 'own' ? caller.commandId : form === 'foreign' ? other.commandId : randomUUID();
    } else if (name === 'pattern_id' || name === 'job_id') {
      // The fixtures hold no discovered pattern or job (test/patterns-api.test.ts covers the
      // own ones); with another's or a missing device the device decides the answer.
      if (form === 'own') return null;
      params[name] = MISSING_ID;
    } else {
      params[name] = 'x';
    }
  }
  const body = uniqueBody(operation.example, caller);
  const response = await callRoute(handlerOf(operation.routeKey), operation.routeKey, {
    token: await tokenOf(role),
    sourceIp: SOURCE,
    params,
    ...(body ? { body } : {}),
  });
  counts.requests++;
  // Sign-out and password changes end the caller's sessions: the next case signs in again.
  if (operation.routeKey.startsWith('POST /api/auth/')) freshTokens.delete(role);
  const label = `${operation.routeKey} as ${role}${form ? ` with ${form} id` : ''}`;
  const problems: string[] = [];
  if (response.status >= 500) {
    counts.serverErrors++;
    problems.push(`answered ${response.status}`);
  }
  if (JSON.stringify(response.body ?? '').includes(other.marker)) {
    counts.leaks++;
    problems.push("carries the other tenant's data");
  }
  const expected = expectedStatus(c);
  if (expected === 'documented') {
    if (!operation.statuses.has(response.status)) problems.push(`undocumented ${response.status}`);
    if (operation.roles.length > 0 && [401, 404].includes(response.status)) {
      problems.push(`answered ${response.status} for its own resource`);
    }
  } else if (response.status !== expected) {
    problems.push(`expected ${expected}, got ${response.status} ${JSON.stringify(response.body)}`);
  }
  return problems.length ? `${label}: ${problems.join('; ')}` : null;
}

beforeAll(async () => {
  [a, b] = [await seedTenant(handlers, admin, SOURCE), await seedTenant(handlers, admin, SOURCE)];
  staleTokens['deleted user'] = await userWithStaleToken('delete');
  staleTokens['demoted user'] = await userWithStaleToken('demote');
});

describe('authorisation matrix generated from the OpenAPI document', () => {
  it('every route × method × role × id form answers as documented and never leaks', async () => {
    const operations = documentedOperations();
    expect(operations.length).toBeGreaterThan(20);
    const failures: string[] = [];
    // Routes that end sessions run last, so every other row sees the fixtures' sessions.
    const ordered = [...operations].sort(
      (x, y) => Number(x.method === 'DELETE') - Number(y.method === 'DELETE'),
    );
    for (const operation of ordered) {
      for (const role of ROLES) {
        const forms = operation.pathParams.includes('id') ? ID_FORMS : [null];
        for (const form of forms) {
          const failure = await run({ operation, role, form });
          if (failure) failures.push(failure);
        }
      }
    }
    console.info(
      `authorisation matrix: ${operations.length} operations, ${counts.requests} requests, ` +
        `${counts.serverErrors} answered 5xx, ${counts.leaks} carried another tenant's data`,
    );
    expect(failures).toEqual([]);
    expect(counts.serverErrors).toBe(0);
    expect(counts.leaks).toBe(0);
  }, 180_000);
});
