import type pg from 'pg';
import { PostgresSessionDirectory } from './accounts/adapters/postgres-session-directory.ts';
import { Authenticator } from './accounts/domain/sessions.ts';
import { AccessTokens } from './accounts/tokens.ts';
import { config, required } from './config.ts';
import { createPool } from './db/postgres.ts';
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
