import { describe, expect, it } from 'vitest';
import * as domainErrors from '../../shared/domain-errors.ts';
import {
  DomainError,
  NotPermitted,
  Throttled,
  Unauthenticated,
} from '../../shared/domain-errors.ts';
import { isRegistered, toHttpAnswer } from '../../shared/http/error-registry.ts';
import { HttpError } from '../../shared/http/errors.ts';

const EXPECTED_STATUS: Record<string, number> = {
  InvalidInput: 400,
  Unauthenticated: 401,
  NotPermitted: 403,
  NotFound: 404,
  Conflict: 409,
  Unprocessable: 422,
  Throttled: 429,
  Busy: 503,
  DependencyFailed: 502,
};

type Kind = new (code: string, message: string) => DomainError;
const kinds: [string, Kind][] = Object.entries(domainErrors).flatMap(([name, value]) =>
  typeof value === 'function' && value.prototype instanceof DomainError
    ? [[name, value as unknown as Kind] as [string, Kind]]
    : [],
);

describe('domain error registry', () => {
  it('maps every kind of domain error to its status, with the code and message for the caller', () => {
    expect(kinds.map(([name]) => name).sort()).toEqual(Object.keys(EXPECTED_STATUS).sort());
    for (const [name, Kind] of kinds) {
      expect(isRegistered(Kind)).toBe(true);
      const { error } = toHttpAnswer(new Kind('some_code', `refused by ${name}`));
      expect(error.status).toBe(EXPECTED_STATUS[name]);
      expect(error.code).toBe('some_code');
      expect(error.expose).toBe(true);
      expect(error.message).toBe(`refused by ${name}`);
    }
  });

  it('answers a subclass a context declares as its nearest registered kind', () => {
    class PlanRequired extends NotPermitted {}
    const { error } = toHttpAnswer(new PlanRequired('plan_required', 'Needs Professional'));
    expect(error.status).toBe(403);
    expect(error.code).toBe('plan_required');
  });

  it('adds Retry-After and WWW-Authenticate where the kind calls for them', () => {
    const throttled = toHttpAnswer(
      new Throttled('too_many_attempts', 'x', { retryAfterSeconds: 7 }),
    );
    expect(throttled.error.headers).toEqual({ 'retry-after': '7' });
    expect(throttled.failure).toBe(false);
    const anonymous = toHttpAnswer(new Unauthenticated('unauthorized', 'x'));
    expect(anonymous.error.headers).toEqual({ 'www-authenticate': 'Bearer' });
  });

  it('passes an HttpError through and hides anything unknown behind a 500', () => {
    const http = new HttpError(413, 'body_too_large', 'too big');
    expect(toHttpAnswer(http).error).toBe(http);
    const secret = new Error('password=hunter2 in a stack');
    const answer = toHttpAnswer(secret);
    expect(answer.error.status).toBe(500);
    expect(answer.error.expose).toBe(false);
    expect(answer.error.cause).toBe(secret);
    expect(answer.failure).toBe(true);
  });
});
