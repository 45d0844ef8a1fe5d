import type { Caller } from './caller.ts';

/** Hashes and checks passwords; the password policy has accepted a password before it is hashed. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Whether `password` matches `hash`; with no hash (an unknown login) it still takes as long
   * as a real check, so timing does not reveal which logins exist.
   */
  verify(password: string, hash: string | undefined): Promise<boolean>;
}

/** Issues the access tokens a signed-in user presents. */
export interface AccessTokenIssuer {
  readonly ttlSeconds: number;
  issue(caller: Caller): Promise<string>;
}
