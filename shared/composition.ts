import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { AccessTokens } from './accounts/adapters/jose-access-tokens.ts';
import { PostgresSessionDirectory } from './accounts/adapters/postgres-session-directory.ts';
import { Authenticator } from './accounts/domain/sessions.ts';
import { config, required } from './config.ts';
import { createPool } from './db/postgres.ts';
import { createLogger, type Logger } from './logger.ts';
import { AwsSecretsManagerStore } from './secrets/adapters/aws-secrets-manager.ts';
import { LocalFileSecretStore } from './secrets/adapters/local-files.ts';
import { CachedSecretStore, type SecretStore, secretField } from './secrets/domain/secrets.ts';

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

/** Where the secrets the configuration names are read from, each once per process. */
export const secretStore = once<SecretStore>(() => {
  const { secrets, aws } = config();
  return new CachedSecretStore(
    secrets.store === 'aws-secrets-manager'
      ? new AwsSecretsManagerStore(new SecretsManagerClient({ region: aws.region }))
      : new LocalFileSecretStore(secrets.dir),
  );
});

export const databasePool = once<pg.Pool>(() => {
  const { database } = config();
  const { passwordSecret } = database;
  return createPool(
    required(database.url, 'DATABASE_URL'),
    database.poolMax,
    passwordSecret ? () => secretField(secretStore(), passwordSecret, 'password') : undefined,
  );
});

/** Signs and verifies where the private key is configured (auth); elsewhere verifies only. */
export const accessTokens = once(() => {
  const { jwt } = config();
  const settings = { issuer: jwt.issuer, audience: jwt.audience, ttlSeconds: jwt.ttlSeconds };
  if (jwt.privateJwk) return new AccessTokens({ ...settings, privateJwk: jwt.privateJwk });
  return new AccessTokens({
    ...settings,
    publicJwks: required(jwt.publicJwks, 'JWT_PUBLIC_JWKS (or JWT_PRIVATE_JWK)'),
  });
});

/** Verifies the token and checks the user's current rights: every authenticated request. */
export const authenticator = once(
  () => new Authenticator(accessTokens(), new PostgresSessionDirectory(databasePool())),
);
