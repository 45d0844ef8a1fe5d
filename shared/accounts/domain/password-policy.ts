import { dictionary } from '@zxcvbn-ts/language-common';
import { InvalidInput } from '../../domain-errors.ts';

export const MIN_PASSWORD_LENGTH = 10;
/** bcrypt reads at most 72 bytes; a longer password is refused rather than silently cut. */
export const MAX_PASSWORD_BYTES = 72;

/**
 * About 49,000 passwords seen most often in breaches (the common-passwords list zxcvbn-ts
 * ships), compared case-insensitively.
 */
const COMMON = new Set(dictionary['passwords-common'].map((password) => password.toLowerCase()));

/** Refuses a password a new credential must not have: too short, too long, or common. */
export function assertAcceptablePassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new InvalidInput(
      'weak_password',
      `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
    );
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new InvalidInput(
      'password_too_long',
      `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`,
    );
  }
  if (COMMON.has(password.toLowerCase())) {
    throw new InvalidInput(
      'weak_password',
      'password is one of the most common passwords; choose another',
    );
  }
}
