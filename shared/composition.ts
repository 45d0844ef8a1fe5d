import type pg from 'pg';
import { AccountService, type ThrottlePolicies } from './accounts/account-service.ts';
import { PostgresSessionDirectory } from './accounts/adapters/postgres-session-directory.ts';
import { PostgresThrottleStore } from './accounts/adapters/postgres-throttle-store.ts';
import { Authenticator } from './accounts/domain/sessions.ts';
import { WorkQueue } from './accounts/domain/work-queue.ts';
import { PasswordHasher } from './accounts/passwords.ts';
import { PostgresAccountStore } from './accounts/postgres-account-store.ts';
import { AccessTokens } from './accounts/tokens.ts';
import { config, required } from './config.ts';
import { createPool } from './db/postgres.ts';
import { LiveSessions } from './live/live-sessions.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * Builds each dependency once per process (a Lambda container keeps them between
 * invocations) and only when a function first asks for it, so a function that never
 * touches the broker never needs broker settings.
 */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}

export const logger = once<Logger>(() =>
  createLogger(config().logLevel, { service: 'easysmart', stage: config().stage }),
);

export const databasePool = once<pg.Pool>(() =>
  createPool(required(config().database.url, 'DATABASE_URL'), config().database.poolMax),
);

export const accessTokens = once(() => {
  const { jwt } = config();
  return new AccessTokens({
    issuer: jwt.issuer,
    audience: jwt.audience,
    ttlSeconds: jwt.ttlSeconds,
    privateJwk: required(jwt.privateJwk, 'JWT_PRIVATE_JWK'),
  });
});

/** Verifies the token and checks the user's current rights: every authenticated request. */
export const authenticator = once(
  () => new Authenticator(accessTokens(), new PostgresSessionDirectory(databasePool())),
);

export function throttlePolicies(login: ReturnType<typeof config>['login']): ThrottlePolicies {
  const HOUR_MS = 3_600_000;
  const backoff = (freeAttempts: number, maxDelayMs: number) => ({
    freeAttempts,
    baseDelayMs: 1000,
    maxDelayMs,
    forgetAfterMs: HOUR_MS,
  });
  const maxDelayMs = login.maxDelaySeconds * 1000;
  return {
    accountFromSource: backoff(login.freeAttempts, maxDelayMs),
    account: backoff(login.accountFreeAttempts, Math.min(60_000, maxDelayMs)),
    source: backoff(login.sourceFreeAttempts, maxDelayMs),
    signUpSource: { ...backoff(login.signUpSourceFreeAttempts, HOUR_MS), baseDelayMs: 60_000 },
  };
}

export const accountService = once(() => {
  const { login, aws } = config();
  return new AccountService(
    new PostgresAccountStore(databasePool()),
    new PasswordHasher(login.bcryptRounds),
    new WorkQueue(login.bcryptConcurrency, login.bcryptMaxQueued),
    accessTokens(),
    new PostgresThrottleStore(databasePool()),
    throttlePolicies(login),
    new LiveSessions(databasePool(), aws.region, aws.websocketManagementEndpoint, logger()),
  );
});
