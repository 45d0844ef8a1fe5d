/**
 * Why a context refuses a request, in the domain's words: each class is one kind of refusal,
 * `code` is the stable machine-readable reason and `message` is written for the caller. The
 * domain throws these and knows nothing of HTTP; `shared/http/error-registry.ts` is the one
 * place that maps each kind to a status and headers.
 */
export interface DomainErrorOptions {
  cause?: unknown;
  /** For refusals that end by themselves (throttled, busy): when trying again can succeed. */
  retryAfterSeconds?: number;
  /** More the caller needs to act on, answered beside `code` and `message` (per-row problems). */
  details?: Record<string, unknown>;
}

export abstract class DomainError extends Error {
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: DomainErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

/** The request breaks a rule of the domain (a malformed or out-of-range value). */
export class InvalidInput extends DomainError {
  override readonly name = 'InvalidInput';
}

/** The caller could not be identified (no, wrong or ended credentials). */
export class Unauthenticated extends DomainError {
  override readonly name = 'Unauthenticated';
}

/** The caller is known but may not do this (role, plan, plan limit, wrong current password). */
export class NotPermitted extends DomainError {
  override readonly name = 'NotPermitted';
}

/** The thing asked for does not exist in the caller's tenant. */
export class NotFound extends DomainError {
  override readonly name = 'NotFound';
}

/** The change collides with the current state (a taken name, the last owner). */
export class Conflict extends DomainError {
  override readonly name = 'Conflict';
}

/** The request is well formed but the data cannot satisfy it (too little history to train on). */
export class Unprocessable extends DomainError {
  override readonly name = 'Unprocessable';
}

/** The caller tried too often; `retryAfterSeconds` says when it may try again. */
export class Throttled extends DomainError {
  override readonly name = 'Throttled';
}

/** The platform sheds load it cannot take now; `retryAfterSeconds` says when to try again. */
export class Busy extends DomainError {
  override readonly name = 'Busy';
}

/** A system the domain depends on (the device broker) refused or failed the change. */
export class DependencyFailed extends DomainError {
  override readonly name = 'DependencyFailed';
}
