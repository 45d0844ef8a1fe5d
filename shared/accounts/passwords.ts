import bcrypt from 'bcryptjs';
import { MAX_PASSWORD_BYTES } from './domain/password-policy.ts';
import type { WorkQueue } from './domain/work-queue.ts';

export class PasswordHasher {
  // Compared against when the login is unknown, so timing does not reveal which logins exist.
  readonly #decoyHash: string;

  constructor(
    private readonly rounds: number,
    /** Every hash and comparison waits its turn here; a full queue answers busy (503). */
    private readonly queue: WorkQueue,
  ) {
    this.#decoyHash = bcrypt.hashSync('decoy-password-never-matches', rounds);
  }

  /** The password policy (domain/password-policy.ts) has accepted `password` already. */
  hash(password: string): Promise<string> {
    return this.queue.run(() => bcrypt.hash(password, this.rounds));
  }

  async verify(password: string, hash: string | undefined): Promise<boolean> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
    const matches = await this.queue.run(() => bcrypt.compare(password, hash ?? this.#decoyHash));
    return hash !== undefined && matches;
  }
}
