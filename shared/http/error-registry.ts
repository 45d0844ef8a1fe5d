import {
  Busy,
  Conflict,
  DependencyFailed,
  type DomainError,
  InvalidInput,
  NotFound,
  NotPermitted,
  Throttled,
  Unauthenticated,
  Unprocessable,
} from '../domain-errors.ts';
import { HttpError } from './errors.ts';

type DomainErrorClass = abstract new (...args: never[]) => DomainError;

interface HttpMapping {
  status: number;
  headers?: (error: DomainError) => Record<string, string>;
  /** Whether answering with this is a failure worth an error log (else an info line). */
  failure?: boolean;
}

const retryAfter = (error: DomainError): Record<string, string> =>
  error.retryAfterSeconds === undefined ? {} : { 'retry-after': String(error.retryAfterSeconds) };

/**
 * The one mapping from domain errors to HTTP responses, keyed by class as in Powertools'
 * event handler: a subclass a context declares is answered as its nearest registered
 * ancestor, so a new refusal needs an entry here only when it needs a different status.
 */
const REGISTRY = new Map<DomainErrorClass, HttpMapping>([
  [InvalidInput, { status: 400 }],
  [Unauthenticated, { status: 401, headers: () => ({ 'www-authenticate': 'Bearer' }) }],
  [NotPermitted, { status: 403 }],
  [NotFound, { status: 404 }],
  [Conflict, { status: 409 }],
  [Unprocessable, { status: 422 }],
  [Throttled, { status: 429, headers: retryAfter }],
  // Shedding load is the queue doing its job, not a failure.
  [Busy, { status: 503, headers: retryAfter }],
  [DependencyFailed, { status: 502, failure: true }],
]);

function mappingOf(error: object): HttpMapping | undefined {
  for (let type = error.constructor; type && type !== Error; type = Object.getPrototypeOf(type)) {
    const mapping = REGISTRY.get(type as DomainErrorClass);
    if (mapping) return mapping;
  }
  return undefined;
}

/** A domain error class with no status here is a programming error: answered as a 500. */
export function isRegistered(type: DomainErrorClass): boolean {
  return mappingOf(type.prototype) !== undefined;
}

export interface HttpAnswer {
  error: HttpError;
  /** True when the answer reports a failure (logged as an error) rather than a refusal. */
  failure: boolean;
}

/**
 * The HTTP answer for anything a route threw: an `HttpError` as it is, a registered domain
 * error with its mapped status and its message (written for the caller), anything else a
 * 500 whose detail stays in `cause` for the logs.
 */
export function toHttpAnswer(error: unknown): HttpAnswer {
  if (error instanceof HttpError) return { error, failure: error.status >= 500 };
  const mapping = error instanceof Error ? mappingOf(error) : undefined;
  if (mapping) {
    const domainError = error as DomainError;
    return {
      error: new HttpError(mapping.status, domainError.code, domainError.message, {
        cause: domainError,
        expose: true,
        headers: mapping.headers?.(domainError) ?? {},
        details: domainError.details,
      }),
      failure: mapping.failure ?? false,
    };
  }
  return {
    error: new HttpError(500, 'internal_error', 'Internal error', { cause: error }),
    failure: true,
  };
}
