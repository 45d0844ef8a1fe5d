import bcrypt from 'bcryptjs';
import { badRequest } from '../http/errors.ts';

/** bcrypt reads at most 72 bytes; a longer password is refused rather than silently cut. */
export const MAX_PASSWORD_BYTES = 72;

export function assertPasswordFits(password: string): void {
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw badRequest(
      'password_too_long',
      `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`,
    );
  }
}

export class PasswordHasher {
  // Compared against when the login is unknown, so timing does not reveal which logins exist.
  readonly #decoyHash: string;

  constructor(private readonly rounds: number) {
    this.#decoyHash = bcrypt.hashSync('decoy-password-never-matches', rounds);
  }

  hash(password: string): Promise<string> {
    assertPasswordFits(password);
    return bcrypt.hash(password, this.rounds);
  }

  async verify(password: string, hash: string | undefined): Promise<boolean> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
    const matches = await bcrypt.compare(password, hash ?? this.#decoyHash);
    return hash !== undefined && matches;
  }
}
