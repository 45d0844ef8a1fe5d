/**
 * Why the accounts context refuses a request, without HTTP in it: the HTTP layer maps the
 * kind to a status (invalid 400, unauthorized 401, forbidden 403, throttled 429, busy 503).
 */
export type RefusalKind = 'invalid' | 'unauthorized' | 'forbidden' | 'throttled' | 'busy';

export class AccountRefusal extends Error {
  override readonly name = 'AccountRefusal';
  constructor(
    readonly kind: RefusalKind,
    readonly code: string,
    message: string,
    /** For throttled and busy: when trying again can succeed. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
