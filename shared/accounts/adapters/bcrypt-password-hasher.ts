import bcrypt from 'bcryptjs';
import type { PasswordHasher } from '../domain/credentials.ts';
import { MAX_PASSWORD_BYTES } from '../domain/password-policy.ts';

export class BcryptPasswordHasher implements PasswordHasher {
  // Compared against when the login is unknown, so timing does not reveal which logins exist.
  readonly #decoyHash: string;

  constructor(private readonly rounds: number) {
    this.#decoyHash = bcrypt.hashSync('decoy-password-never-matches', rounds);
  }

  /** The password policy (domain/password-policy.ts) has accepted `password` already. */
  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.rounds);
  }

  async verify(password: string, hash: string | undefined): Promise<boolean> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
    const matches = await bcrypt.compare(password, hash ?? this.#decoyHash);
    return hash !== undefined && matches;
  }
}
