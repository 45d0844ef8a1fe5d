import { base64url, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

const stack = useTestStack();
const { handler } = await import('../functions/auth/handler.ts');
const admin = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 2 });
afterAll(() => admin.end());

async function register(overrides: Record<string, unknown> = {}) {
  const name = unique('user');
  const body = {
    tenant_name: unique('Acme'),
    username: name,
    email: `${name}@example.com`,
    password: 'correct horse battery',
    ...overrides,
  };
  return { body, response: await callRoute(handler, 'POST /api/auth/register', { body }) };
}

const me = (token: string) => callRoute(handler, 'GET /api/auth/me', { token });

describe('register, login and me', () => {
  it('registers a tenant on the free plan with its owner and returns a working token', async () => {
    const { body, response } = await register();
    expect(response.status).toBe(201);
    expect(response.body.user).toMatchObject({ username: body.username, role: 'owner' });
    expect(response.body.user).not.toHaveProperty('password');
    expect(response.body.tenant).toMatchObject({
      name: body.tenant_name,
      plan: 'free',
      status: 'active',
    });
    const who = await me(response.body.token);
    expect(who.status).toBe(200);
    expect(who.body.user.id).toBe(response.body.user.id);
    expect(who.body.tenant.id).toBe(response.body.tenant.id);
  });

  it('logs in by username or email, case-insensitively, with a 1 h bearer token', async () => {
    const { body } = await register();
    for (const login of [body.username, body.email.toUpperCase()]) {
      const response = await callRoute(handler, 'POST /api/auth/login', {
        body: { username: login, password: body.password },
      });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
      const [, payload] = response.body.token.split('.');
      const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
      expect(claims.exp - claims.iat).toBe(3600);
      expect(claims).toMatchObject({ iss: 'easysmart', aud: 'easysmart-api' });
      expect((await me(response.body.token)).status).toBe(200);
    }
  });

  it('refuses a wrong password or unknown user with the same 401', async () => {
    const { body } = await register();
    const wrong = await callRoute(handler, 'POST /api/auth/login', {
      body: { username: body.username, password: 'not the password' },
    });
    const unknown = await callRoute(handler, 'POST /api/auth/login', {
      body: { username: unique('nobody'), password: 'whatever123' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.error.code).toBe('unauthorized');
  });

  it('publishes the verification key as a JWKS without the private part', async () => {
    const response = await callRoute(handler, 'GET /.well-known/jwks.json');
    expect(response.status).toBe(200);
    expect(response.body.keys).toHaveLength(1);
    expect(response.body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(response.body.keys[0]).not.toHaveProperty('d');
  });
});

describe('bad sign-up input gets a 4xx with a code and writes nothing', () => {
  // Each refused request names its own tenant and user, so the test can prove none exists.
  const marker = unique('refused');
  const valid = (n: number) => ({
    tenant_name: `${marker}-${n}`,
    username: `${marker}-${n}`,
    email: `${marker}-${n}@example.com`,
    password: 'longenough',
  });
  const cases: Array<
    [string, { rawBody?: string; body?: unknown; headers?: Record<string, string> }, number, string]
  > = [
    [
      'malformed JSON',
      { rawBody: `${JSON.stringify(valid(0)).slice(0, -1)},` },
      400,
      'invalid_json',
    ],
    ['no body', { rawBody: '' }, 400, 'invalid_body'],
    ['a JSON array', { body: [valid(1)] }, 400, 'validation_failed'],
    ['missing fields', { body: { username: `${marker}-2` } }, 400, 'validation_failed'],
    [
      'wrong-typed fields',
      { body: { ...valid(3), tenant_name: 5, email: true, password: 12345678 } },
      400,
      'validation_failed',
    ],
    [
      'an over-long tenant name',
      { body: { ...valid(4), tenant_name: 'x'.repeat(256) } },
      400,
      'validation_failed',
    ],
    [
      'an over-long username',
      { body: { ...valid(5), username: 'u'.repeat(101) } },
      400,
      'validation_failed',
    ],
    ['a bad email', { body: { ...valid(6), email: 'not-an-email' } }, 400, 'validation_failed'],
    ['a short password', { body: { ...valid(7), password: 'short' } }, 400, 'weak_password'],
    [
      'a password over 72 bytes',
      { body: { ...valid(8), password: 'é'.repeat(37) } },
      400,
      'password_too_long',
    ],
    ['an unknown field', { body: { ...valid(9), plan: 'industrial' } }, 400, 'validation_failed'],
    [
      'a non-JSON content type',
      {
        rawBody: JSON.stringify(valid(10)),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      415,
      'unsupported_media_type',
    ],
    [
      'a huge body',
      { rawBody: JSON.stringify({ ...valid(11), padding: 'x'.repeat(70_000) }) },
      413,
      'body_too_large',
    ],
  ];

  it.each(cases)('%s', async (_, request, status, code) => {
    const response = await callRoute(handler, 'POST /api/auth/register', request);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
    expect(typeof response.body.error.message).toBe('string');
  });

  it('none of the refused requests created a tenant or a user', async () => {
    const tenants = await admin.query(`SELECT count(*) FROM tenants WHERE name LIKE $1`, [
      `${marker}%`,
    ]);
    const users = await admin.query(
      `SELECT count(*) FROM users WHERE username LIKE $1 OR email LIKE $1`,
      [`${marker}%`],
    );
    expect(Number(tenants.rows[0].count)).toBe(0);
    expect(Number(users.rows[0].count)).toBe(0);
  });

  it('a password of exactly 72 bytes is accepted and must match in full', async () => {
    const password = 'é'.repeat(36);
    const { body, response } = await register({ password });
    expect(response.status).toBe(201);
    const almost = await callRoute(handler, 'POST /api/auth/login', {
      body: { username: body.username, password: 'é'.repeat(35) },
    });
    expect(almost.status).toBe(401);
  });

  it('a taken username or email is a 409 and creates no second tenant', async () => {
    const { body } = await register();
    const sameName = await register({ username: body.username.toUpperCase() });
    expect(sameName.response.status).toBe(409);
    expect(sameName.response.body.error.code).toBe('username_taken');
    const sameEmail = await register({ email: body.email });
    expect(sameEmail.response.status).toBe(409);
    expect(sameEmail.response.body.error.code).toBe('email_taken');
    const tenants = await admin.query('SELECT count(*) FROM tenants WHERE name = ANY($1)', [
      [sameName.body.tenant_name, sameEmail.body.tenant_name],
    ]);
    expect(Number(tenants.rows[0].count)).toBe(0);
  });
});

describe('forged or broken tokens are refused with 401', () => {
  let genuine: string;
  let claims: Record<string, unknown>;
  let kid: string;

  beforeAll(async () => {
    const { response } = await register();
    genuine = response.body.token;
    const [header, payload] = genuine.split('.') as [string, string];
    claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
    kid = JSON.parse(new TextDecoder().decode(base64url.decode(header))).kid;
  });

  const realKey = async () => importJWK(JSON.parse(stack.jwtPrivateJwk), 'ES256');
  const sign = async (
    payload: Record<string, unknown>,
    key?: CryptoKey | Uint8Array,
    header: Record<string, unknown> = {},
  ) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid, ...header })
      .sign(key ?? (await realKey()));

  const forgeries: Array<[string, () => Promise<string>]> = [
    [
      'alg none',
      async () => {
        const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid }));
        return `${header}.${base64url.encode(JSON.stringify(claims))}.`;
      },
    ],
    [
      'signed with another key',
      async () => sign(claims, (await generateKeyPair('ES256')).privateKey),
    ],
    [
      'HS256 with the public key as secret',
      async () => {
        const publicJwk = await exportJWK((await generateKeyPair('ES256')).publicKey);
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', kid })
          .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
      },
    ],
    ['expired', async () => sign({ ...claims, iat: 1_000, exp: 2_000 })],
    [
      'without exp',
      async () => {
        const { exp: _, ...rest } = claims;
        return sign(rest);
      },
    ],
    ['wrong issuer', async () => sign({ ...claims, iss: 'someone-else' })],
    ['wrong audience', async () => sign({ ...claims, aud: 'another-api' })],
    [
      'tampered payload',
      async () => {
        const [header, , signature] = genuine.split('.');
        const raised = base64url.encode(JSON.stringify({ ...claims, tid: Number(claims.tid) + 1 }));
        return `${header}.${raised}.${signature}`;
      },
    ],
    ['garbage', async () => 'not.a.jwt'],
  ];

  it('the genuine token works', async () => {
    expect((await me(genuine)).status).toBe(200);
  });

  it.each(forgeries)('%s', async (_, forge) => {
    const response = await me(await forge());
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe('unauthorized');
    expect(response.headers['www-authenticate']).toBe('Bearer');
  });

  it('no Authorization header, or another scheme', async () => {
    expect((await callRoute(handler, 'GET /api/auth/me')).status).toBe(401);
    const basic = await callRoute(handler, 'GET /api/auth/me', {
      headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });
});

describe('users and roles', () => {
  it('an owner adds a viewer who can read but not change anything', async () => {
    const { response } = await register();
    const owner = response.body.token;
    const viewerName = unique('viewer');
    const added = await callRoute(handler, 'POST /api/users', {
      token: owner,
      body: {
        username: viewerName,
        email: `${viewerName}@example.com`,
        password: 'viewer-password',
        role: 'viewer',
      },
    });
    expect(added.status).toBe(201);
    expect(added.body.user.role).toBe('viewer');
    const login = await callRoute(handler, 'POST /api/auth/login', {
      body: { username: viewerName, password: 'viewer-password' },
    });
    const viewer = login.body.token;
    expect((await callRoute(handler, 'GET /api/users', { token: viewer })).status).toBe(200);
    const escalate = await callRoute(handler, 'PATCH /api/users/{id}', {
      token: viewer,
      params: { id: String(added.body.user.id) },
      body: { role: 'owner' },
    });
    expect(escalate.status).toBe(403);
    expect(escalate.body.error.code).toBe('insufficient_role');
    const me2 = await me(viewer);
    expect(me2.body.user.role).toBe('viewer');
  });

  it('the free plan caps users, and the last owner cannot be removed or demoted', async () => {
    const { response } = await register();
    const owner = response.body.token;
    const ownerId = String(response.body.user.id);
    const name = unique('admin');
    const second = await callRoute(handler, 'POST /api/users', {
      token: owner,
      body: {
        username: name,
        email: `${name}@example.com`,
        password: 'admin-password',
        role: 'admin',
      },
    });
    expect(second.status).toBe(201);
    const third = unique('third');
    const refused = await callRoute(handler, 'POST /api/users', {
      token: owner,
      body: {
        username: third,
        email: `${third}@example.com`,
        password: 'third-password',
        role: 'viewer',
      },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('plan_limit_reached');
    const demote = await callRoute(handler, 'PATCH /api/users/{id}', {
      token: owner,
      params: { id: ownerId },
      body: { role: 'admin' },
    });
    expect(demote.status).toBe(409);
    expect(demote.body.error.code).toBe('last_owner');
    expect((await me(owner)).body.user.role).toBe('owner');
  });

  it('a deleted user’s token stops working before it expires', async () => {
    const { response } = await register();
    const owner = response.body.token;
    const name = unique('temp');
    const added = await callRoute(handler, 'POST /api/users', {
      token: owner,
      body: {
        username: name,
        email: `${name}@example.com`,
        password: 'temp-password',
        role: 'admin',
      },
    });
    const login = await callRoute(handler, 'POST /api/auth/login', {
      body: { username: name, password: 'temp-password' },
    });
    const removed = await callRoute(handler, 'DELETE /api/users/{id}', {
      token: owner,
      params: { id: String(added.body.user.id) },
    });
    expect(removed.status).toBe(204);
    expect((await me(login.body.token)).status).toBe(401);
  });
});
