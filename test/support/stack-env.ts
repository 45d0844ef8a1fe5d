import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { stackEnvironment } from './test-stack.ts';

/**
 * Points the functions' configuration at the servers the global setup started. Call before
 * importing a handler: each test file has its own module registry, so the handler's module
 * scope (config, pools, clients) is built from these variables, as in a Lambda cold start.
 */
export function useTestStack(overrides: Record<string, string> = {}) {
  const stack = inject('testStack');
  Object.assign(process.env, {
    ...stackEnvironment(stack),
    // The AWS SDK clients talk to the stack's local endpoints, which ignore signatures.
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_REGION: 'us-east-1',
    // Real bcrypt, fewer rounds: the suite signs up hundreds of users.
    BCRYPT_ROUNDS: '4',
    ...overrides,
  });
  return stack;
}

/** A name no other test (or earlier run against the same database) has used. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}
