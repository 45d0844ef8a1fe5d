import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { BcryptPasswordHasher } from '../shared/accounts/adapters/bcrypt-password-hasher.ts';
import { AccessTokens } from '../shared/accounts/adapters/jose-access-tokens.ts';
import { PostgresAccountStore } from '../shared/accounts/adapters/postgres-account-store.ts';
import { PostgresThrottleStore } from '../shared/accounts/adapters/postgres-throttle-store.ts';
import {
  AccountService,
  type ThrottlePolicies,
} from '../shared/accounts/domain/account-service.ts';
import { WorkQueue } from '../shared/accounts/domain/work-queue.ts';
import { Throttled, Unauthenticated } from '../shared/domain-errors.ts';
import { unique, useTestStack } from './support/stack-env.ts';

const stack = useTestStack();
const pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 5 });
afterAll(() => pool.end());

/** Time is this test's: waits are steps of the clock, not sleeps. */
const clock = { ms: Date.parse('2026-06-01T08:00:00Z'), now: () => clock.ms };
const HOUR_MS = 3_600_000;
const policies: ThrottlePolicies = {
  accountFromSource: {
    freeAttempts: 5,
    baseDelayMs: 1000,
    maxDelayMs: 900_000,
    forgetAfterMs: HOUR_MS,
  },
  account: { freeAttempts: 20, baseDelayMs: 1000, maxDelayMs: 60_000, forgetAfterMs: HOUR_MS },
  source: { freeAttempts: 50, baseDelayMs: 1000, maxDelayMs: 900_000, forgetAfterMs: HOUR_MS },
  signUpSource: {
    freeAttempts: 5,
    baseDelayMs: 60_000,
    maxDelayMs: HOUR_MS,
    forgetAfterMs: HOUR_MS,
  },
};
let bcryptChecks = 0;
class CountingHasher extends BcryptPasswordHasher {
  override verify(password: string, hash: string | undefined) {
    bcryptChecks++;
    return super.verify(password, hash);
  }
}
const accounts = new AccountService({
  store: new PostgresAccountStore(pool),
  passwords: new CountingHasher(4),
  passwordWork: new WorkQueue(2, 1000),
  tokens: new AccessTokens({
    issuer: 'easysmart',
    audience: 'easysmart-api',
    ttlSeconds: 3600,
    privateJwk: stack.jwtPrivateJwk,
  }),
  throttle: new PostgresThrottleStore(pool),
  policies,
  liveSessions: { endLiveSessions: async () => {} },
  clock,
});

async function newOwner() {
  const username = unique('owner');
  await accounts.register(
    {
      tenant_name: unique('Plant'),
      username,
      email: `${username}@example.com`,
      password: 'the-owner-password',
    },
    unique('signup-source'),
  );
  return username;
}

/** The answer a sign-in gets, as status, code and Retry-After seconds. */
async function attempt(username: string, password: string, source: string) {
  try {
    await accounts.login({ username, password }, source);
    return { status: 200 };
  } catch (error) {
    if (error instanceof Throttled) {
      return { status: 429, code: error.code, retryAfter: error.retryAfterSeconds };
    }
    if (error instanceof Unauthenticated) return { status: 401 };
    throw error;
  }
}

describe('sign-in backoff (injected clock)', () => {
  it('wrong passwords slow down the address they come from, exponentially, and never the owner elsewhere', async () => {
    const owner = await newOwner();
    const attacker = unique('10.0.0');
    for (let i = 0; i < 5; i++) {
      expect(await attempt(owner, 'guess-number-one', attacker)).toEqual({ status: 401 });
    }
    // Even the right password waits now, from that address.
    expect(await attempt(owner, 'the-owner-password', attacker)).toEqual({
      status: 429,
      code: 'too_many_attempts',
      retryAfter: 1,
    });
    // The owner, elsewhere, is not locked out.
    expect(await attempt(owner, 'the-owner-password', unique('10.9.9'))).toEqual({ status: 200 });

    // Each further check from the attacker's address doubles its wait.
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const refused = await attempt(owner, 'another-guess', attacker);
      expect(refused.status).toBe(429);
      waits.push(refused.retryAfter as number);
      clock.ms += (refused.retryAfter as number) * 1000;
      expect(await attempt(owner, 'another-guess', attacker)).toEqual({ status: 401 });
    }
    expect(waits).toEqual([1, 2, 4, 8, 16]);
  });

  it('a login from many addresses waits at most a minute: no attacker can keep its owner out', async () => {
    const owner = await newOwner();
    let longest = 0;
    for (let i = 0; i < 40; i++) {
      const answer = await attempt(owner, 'distributed-guess', unique('10.1.0'));
      if (answer.status === 429) {
        longest = Math.max(longest, answer.retryAfter as number);
        clock.ms += (answer.retryAfter as number) * 1000;
      }
    }
    expect(longest).toBeGreaterThan(1);
    expect(longest).toBeLessThanOrEqual(60);
    const blocked = await attempt(owner, 'distributed-guess', unique('10.1.0'));
    clock.ms += (blocked.retryAfter ?? 0) * 1000;
    expect(await attempt(owner, 'the-owner-password', unique('10.1.1'))).toEqual({ status: 200 });
  });

  it('an unknown login gets exactly the answers a known one gets', async () => {
    const known = await newOwner();
    const unknown = unique('nobody');
    const answers = async (username: string) => {
      const source = unique('10.2.0');
      const seen = [];
      for (let i = 0; i < 8; i++) seen.push(await attempt(username, 'some-guess-here', source));
      return seen;
    };
    const forKnown = await answers(known);
    const forUnknown = await answers(unknown);
    expect(forUnknown).toEqual(forKnown);
    expect(forKnown.filter((answer) => answer.status === 429)).toHaveLength(3);
  });

  it('40 parallel guesses get the 5 checks sequential ones would', async () => {
    const owner = await newOwner();
    const source = unique('10.3.0');
    const before = bcryptChecks;
    const results = await Promise.all(
      Array.from({ length: 40 }, () => attempt(owner, 'parallel-guess', source)),
    );
    expect(results.filter((result) => result.status === 401)).toHaveLength(5);
    expect(results.filter((result) => result.status === 429)).toHaveLength(35);
    expect(bcryptChecks - before).toBe(5);
  });
});
