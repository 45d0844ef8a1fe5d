import { Throttled } from '../../domain-errors.ts';

/**
 * Exponential backoff per key: the first `freeAttempts` attempts pass at once; from then on
 * each attempt that passes blocks the key for base × 2^n (at most `maxDelayMs`). A key left
 * alone for `forgetAfterMs` starts afresh. There is no lockout that outlasts `maxDelayMs`.
 */
export interface BackoffPolicy {
  freeAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  forgetAfterMs: number;
}

export interface ThrottleState {
  attempts: number;
  blockedUntilMs: number | null;
  updatedAtMs: number;
}

export type Admission =
  | { allowed: true; next: ThrottleState }
  | { allowed: false; retryAfterMs: number };

/** Decides one attempt against one key's state (null: never seen). Pure. */
export function admit(
  state: ThrottleState | null,
  policy: BackoffPolicy,
  nowMs: number,
): Admission {
  if (state?.blockedUntilMs != null && state.blockedUntilMs > nowMs) {
    return { allowed: false, retryAfterMs: state.blockedUntilMs - nowMs };
  }
  const forgotten = !state || nowMs - state.updatedAtMs > policy.forgetAfterMs;
  const attempts = (forgotten ? 0 : state.attempts) + 1;
  const over = attempts - policy.freeAttempts;
  const blockedUntilMs =
    over >= 0
      ? nowMs + Math.min(policy.baseDelayMs * 2 ** Math.min(over, 40), policy.maxDelayMs)
      : null;
  return { allowed: true, next: { attempts, blockedUntilMs, updatedAtMs: nowMs } };
}

export interface ThrottledKey {
  /** Opaque; the store may hash it. */
  key: string;
  policy: BackoffPolicy;
}

/** Port: throttle state kept where every function instance sees it. */
export interface ThrottleStore {
  /**
   * Atomically admits one attempt against every key, or against none: parallel attempts
   * are counted one after another, so they cannot get more checks than one at a time.
   * Resolves with the longest wait when any key is blocked.
   */
  admit(
    keys: ThrottledKey[],
    nowMs: number,
  ): Promise<{ allowed: true } | { allowed: false; retryAfterMs: number }>;
  /** After a success: `reset` keys start afresh, `refund` keys take back one attempt. */
  settle(reset: string[], refund: string[]): Promise<void>;
}

export function throttled(retryAfterMs: number): Throttled {
  return new Throttled('too_many_attempts', 'Too many attempts; try again later', {
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  });
}

/** Admits the attempt or throws `too_many_attempts` with the wait. */
export async function admitOrRefuse(
  store: ThrottleStore,
  keys: ThrottledKey[],
  nowMs: number,
): Promise<void> {
  const admission = await store.admit(keys, nowMs);
  if (!admission.allowed) throw throttled(admission.retryAfterMs);
}
