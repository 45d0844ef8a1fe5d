/**
 * What a dashboard connection watches and how fast it may talk. A tab receives events only
 * for the devices it subscribed to (none at first), so the fan-out of a reading is the tabs
 * showing its device, not every tab of the tenant; and each connection's messages are
 * throttled by a token bucket, because every message is a function invocation.
 */

/** Devices one connection may watch at once: a page of devices, not a fleet. */
export const MAX_WATCHED_DEVICES = 1000;

export interface ThrottlePolicy {
  /** Messages a second, sustained. */
  perSecond: number;
  /** Messages at once after a quiet spell. */
  burst: number;
}

export const DEFAULT_THROTTLE: ThrottlePolicy = { perSecond: 5, burst: 20 };

/** The bucket as stored: tokens left at a time (epoch ms). Absent: a full bucket. */
export interface MessageBudget {
  tokens: number;
  at: number;
}

export interface ConnectionState {
  deviceIds: number[];
  budget: MessageBudget | null;
}

/** Takes one message's token at `now`, or says how long until there is one. */
export function takeToken(
  budget: MessageBudget | null,
  now: number,
  policy: ThrottlePolicy,
): { allowed: true; budget: MessageBudget } | { allowed: false; retryAfterMs: number } {
  const elapsed = budget ? Math.max(0, now - budget.at) : 0;
  const tokens = budget
    ? Math.min(policy.burst, budget.tokens + (elapsed / 1000) * policy.perSecond)
    : policy.burst;
  if (tokens < 1) {
    return { allowed: false, retryAfterMs: Math.ceil(((1 - tokens) / policy.perSecond) * 1000) };
  }
  return { allowed: true, budget: { tokens: tokens - 1, at: now } };
}

export type ClientMessage =
  | { action: 'subscribe'; deviceIds: number[] }
  | { action: 'unsubscribe'; deviceIds: number[] }
  | { action: 'ping' };

export type Reply =
  | { type: 'subscribed'; device_ids: number[] }
  | { type: 'pong' }
  | {
      type: 'error';
      error: { code: 'throttled' | 'too_many_devices' | 'invalid_message'; message: string };
      retry_after_ms?: number;
    };

/** The one place a connection's state changes: under a lock on that connection. */
export interface LiveConnectionStore {
  /** Runs `change` on the connection's current state and saves what it returns; null: no such connection. */
  update<T>(
    connectionId: string,
    change: (state: ConnectionState) => { state: ConnectionState; reply: T },
  ): Promise<T | null>;
}

export class LiveSubscriptions {
  constructor(
    private readonly store: LiveConnectionStore,
    private readonly now: () => number = Date.now,
    private readonly policy: ThrottlePolicy = DEFAULT_THROTTLE,
  ) {}

  /**
   * Answers one message of a connection (a malformed one is `null`): every message spends a
   * token, invalid ones too, so a client cannot flood the function with errors either.
   */
  handle(connectionId: string, message: ClientMessage | null): Promise<Reply | null> {
    return this.store.update<Reply>(connectionId, (state) => {
      const token = takeToken(state.budget, this.now(), this.policy);
      if (!token.allowed) {
        return {
          state,
          reply: {
            type: 'error',
            error: { code: 'throttled', message: 'Too many messages on this connection' },
            retry_after_ms: token.retryAfterMs,
          },
        };
      }
      const spent = { ...state, budget: token.budget };
      if (!message) {
        return {
          state: spent,
          reply: {
            type: 'error',
            error: {
              code: 'invalid_message',
              message:
                'Send {"action":"subscribe"|"unsubscribe","device_ids":[...]} or {"action":"ping"}',
            },
          },
        };
      }
      if (message.action === 'ping') return { state: spent, reply: { type: 'pong' } };
      const watched = new Set(state.deviceIds);
      for (const id of message.deviceIds) {
        if (message.action === 'subscribe') watched.add(id);
        else watched.delete(id);
      }
      if (watched.size > MAX_WATCHED_DEVICES) {
        return {
          state: spent,
          reply: {
            type: 'error',
            error: {
              code: 'too_many_devices',
              message: `A connection watches at most ${MAX_WATCHED_DEVICES} devices`,
            },
          },
        };
      }
      const deviceIds = [...watched].sort((a, b) => a - b);
      return {
        state: { ...spent, deviceIds },
        reply: { type: 'subscribed', device_ids: deviceIds },
      };
    });
  }
}
