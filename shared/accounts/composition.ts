import { accessTokens, databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { LiveSessions } from '../live/adapters/api-gateway-live-sessions.ts';
import { BcryptPasswordHasher } from './adapters/bcrypt-password-hasher.ts';
import { PostgresAccountStore } from './adapters/postgres-account-store.ts';
import { PostgresThrottleStore } from './adapters/postgres-throttle-store.ts';
import { AccountService, type ThrottlePolicies } from './domain/account-service.ts';
import { WorkQueue } from './domain/work-queue.ts';

// Kept apart from shared/composition.ts: only the auth function signs users up and in, so
// only its bundle carries the common-password list and the WebSocket management client.

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
  return new AccountService({
    store: new PostgresAccountStore(databasePool()),
    passwords: new BcryptPasswordHasher(login.bcryptRounds),
    passwordWork: new WorkQueue(login.bcryptConcurrency, login.bcryptMaxQueued),
    tokens: accessTokens(),
    throttle: new PostgresThrottleStore(databasePool()),
    policies: throttlePolicies(login),
    liveSessions: new LiveSessions({
      pool: databasePool(),
      region: aws.region,
      managementEndpoint: aws.websocketManagementEndpoint,
      logger: logger(),
    }),
  });
});
