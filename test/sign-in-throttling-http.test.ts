import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * Sign-in and sign-up throttling seen from outside: requests to the auth function only, from
 * the source addresses API Gateway reports, with the default sign-in policy. Written through
 * the routes alone so that it runs against any version of the accounts code (the injected-
 * clock tests of the backoff itself are in sign-in-throttling.test.ts).
 */
const stack = useTestStack({
  // A real cost per check and a queue small enough for a burst of sign-ins to overflow it.
  BCRYPT_ROUNDS: '8',
  BCRYPT_CONCURRENCY: '1',
  BCRYPT_MAX_QUEUED: '4',
  SIGNUP_SOURCE_FREE_ATTEMPTS: '3',
});
const { handler: auth } = await import('../functions/auth/handler.ts');
const pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
afterAll(() => pool.end());

const OWNER_PASSWORD = 'the-owner-password';

/** A new tenant's owner, signed up from an address of its own; returns the username. */
async function newOwner(): Promise<string> {
  const username = unique('owner');
  const response = await callRoute(auth, 'POST /api/auth/register', {
    sourceIp: unique('10.7.9'),
    body: {
      tenant_name: unique('Plant'),
      username,
      email: `${username}@example.com`,
      password: OWNER_PASSWORD,
    },
  });
  expect(response.status).toBe(201);
  return username;
}

const signIn = async (username: string, password: string, sourceIp: string) =>
  (await callRoute(auth, 'POST /api/auth/login', { body: { username, password }, sourceIp }))
    .status;

describe('sign-in throttling through the auth function', () => {
  it('wrong passwords from one address never keep the owner out at another', async () => {
    const owner = await newOwner();
    const attacker = unique('10.7.0');
    for (let i = 0; i < 10; i++) {
      expect([401, 429]).toContain(await signIn(owner, 'guess-number-one', attacker));
    }
    expect(await signIn(owner, OWNER_PASSWORD, unique('10.7.1'))).toBe(200);
  });

  it('an unknown username is throttled as a known one is, so a 429 reveals no account', async () => {
    for (const username of [await newOwner(), unique('nobody')]) {
      const source = unique('10.8.0');
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await signIn(username, 'some-guess-here', source));
      expect(statuses.slice(0, 5), username).toEqual([401, 401, 401, 401, 401]);
      expect(statuses, username).toContain(429);
    }
  });

  it('parallel wrong guesses get no more checks than sequential ones would', async () => {
    const owner = await newOwner();
    const source = unique('10.9.0');
    // Three of the five free attempts used one by one, then five at once: two more checks.
    for (let i = 0; i < 3; i++) expect(await signIn(owner, 'sequential-guess', source)).toBe(401);
    const statuses = await Promise.all(
      Array.from({ length: 5 }, () => signIn(owner, 'parallel-guess', source)),
    );
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(2);
    expect(statuses.every((status) => status === 401 || status === 429)).toBe(true);
  });
});

describe('through the auth function', () => {
  it('100 parallel sign-ins are answered 401 or 503 with Retry-After, never 500', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        callRoute(auth, 'POST /api/auth/login', {
          body: { username: unique('nobody'), password: 'some-password' },
          sourceIp: `10.4.${Math.floor(i / 200)}.${i % 200}`,
        }),
      ),
    );
    const statuses = results.map((result) => result.status);
    expect(statuses.every((status) => status === 401 || status === 503)).toBe(true);
    const busy = results.filter((result) => result.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const answer of busy) {
      expect(answer.body.error.code).toBe('busy');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    }
  });

  it('sign-up is rate-limited per source address', async () => {
    const signUp = (sourceIp: string) => {
      const username = unique('owner');
      return callRoute(auth, 'POST /api/auth/register', {
        sourceIp,
        body: {
          tenant_name: unique('Plant'),
          username,
          email: `${username}@example.com`,
          password: 'owner-password',
        },
      });
    };
    const source = unique('10.5.0');
    for (let i = 0; i < 3; i++) expect((await signUp(source)).status).toBe(201);
    const refused = await signUp(source);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_attempts');
    // A minute from the third sign-up, less the time this machine took since.
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(30);
    expect((await signUp(unique('10.5.1'))).status).toBe(201);
  });

  it('short and common passwords are refused, and nothing is created', async () => {
    for (const password of ['password', '12345678', 'qwertyuiop', 'Password123', 'short-pw']) {
      const username = unique('weak');
      const response = await callRoute(auth, 'POST /api/auth/register', {
        sourceIp: unique('10.6.0'),
        body: {
          tenant_name: unique('Plant'),
          username,
          email: `${username}@example.com`,
          password,
        },
      });
      expect(response.status, password).toBe(400);
      expect(response.body.error.code).toBe('weak_password');
      const { rowCount } = await pool.query('SELECT 1 FROM auth_find_user($1)', [username]);
      expect(rowCount).toBe(0);
    }
  });
});
