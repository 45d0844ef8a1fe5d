import type { LiveEvent } from './types.ts';

export type LiveState = 'connecting' | 'open' | 'reconnecting' | 'unavailable' | 'closed';

export interface LiveOptions {
  url: string;
  token: () => string | null;
  onEvents: (events: LiveEvent[]) => void;
  onState: (state: LiveState) => void;
}

const BASE_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;
// API Gateway drops a WebSocket after 10 idle minutes; a ping well before that keeps it.
const PING_EVERY_MS = 4 * 60_000;

// The platform's bound on the devices one connection watches.
const MAX_WATCHED = 1000;

/**
 * One WebSocket per signed-in tab, subscribed to the devices the open page shows (`watch`),
 * so the platform pushes nothing else to it. Reconnects with capped exponential backoff and
 * jitter, so a restarted API is not hit by every dashboard at the same instant, and says
 * again what it watches on every new connection.
 */
export class LiveConnection {
  #socket: WebSocket | null = null;
  #attempt = 0;
  #retryTimer: number | undefined;
  #pingTimer: number | undefined;
  #resyncTimer: number | undefined;
  #stopped = false;
  /** What the page wants, and what the open socket has been told. */
  #wanted = new Set<number>();
  #told = new Set<number>();
  /**
   * Subscription changes sent and not yet answered. The platform may take one connection's
   * messages out of order (each is its own invocation, on API Gateway as locally), so an
   * unsubscribe can land after the subscribe sent behind it: once every change is answered,
   * what the platform holds is compared with what the page wants, and the difference sent again.
   */
  #unanswered = 0;

  constructor(private readonly options: LiveOptions) {}

  start(): void {
    this.#stopped = false;
    this.#open();
  }

  /** The devices whose events this tab needs; sends only the difference to what it asked before. */
  watch(deviceIds: Iterable<number>): void {
    this.#wanted = new Set([...deviceIds].slice(0, MAX_WATCHED));
    this.#sync();
  }

  #sync(): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const added = [...this.#wanted].filter((id) => !this.#told.has(id));
    const removed = [...this.#told].filter((id) => !this.#wanted.has(id));
    if (removed.length > 0) {
      socket.send(JSON.stringify({ action: 'unsubscribe', device_ids: removed }));
      this.#unanswered += 1;
    }
    if (added.length > 0) {
      socket.send(JSON.stringify({ action: 'subscribe', device_ids: added }));
      this.#unanswered += 1;
    }
    this.#told = new Set(this.#wanted);
  }

  stop(): void {
    this.#stopped = true;
    window.clearTimeout(this.#retryTimer);
    window.clearTimeout(this.#resyncTimer);
    window.clearInterval(this.#pingTimer);
    const socket = this.#socket;
    this.#socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'signed out');
    this.options.onState('closed');
  }

  /** Reconnects now instead of waiting out the backoff, e.g. when the tab becomes visible. */
  nudge(): void {
    if (this.#stopped || this.#socket) return;
    window.clearTimeout(this.#retryTimer);
    this.#open();
  }

  #open(): void {
    const token = this.options.token();
    if (!token) {
      this.options.onState('closed');
      return;
    }
    this.options.onState(this.#attempt === 0 ? 'connecting' : 'reconnecting');
    const url = new URL(this.options.url);
    url.searchParams.set('token', token);
    let socket: WebSocket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.options.onState('unavailable');
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#attempt = 0;
      // A new connection watches nothing yet.
      this.#told = new Set();
      this.#unanswered = 0;
      this.#sync();
      this.#pingTimer = window.setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: 'ping' }));
      }, PING_EVERY_MS);
      this.options.onState('open');
    };
    socket.onmessage = (message) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(message.data));
      } catch {
        return;
      }
      const body = parsed as {
        type?: string;
        events?: LiveEvent[];
        device_ids?: number[];
        error?: { code?: string };
        retry_after_ms?: number;
      };
      if (body.type === 'events' && Array.isArray(body.events)) this.options.onEvents(body.events);
      // The platform's answer is what it holds: a refused or throttled change is sent again.
      if (body.type === 'subscribed' && Array.isArray(body.device_ids)) {
        this.#told = new Set(body.device_ids);
        this.#unanswered = Math.max(0, this.#unanswered - 1);
        if (this.#unanswered === 0) this.#sync();
      }
      if (body.type === 'error' && body.error?.code === 'throttled') {
        this.#unanswered = Math.max(0, this.#unanswered - 1);
        window.clearTimeout(this.#resyncTimer);
        this.#resyncTimer = window.setTimeout(() => this.#sync(), body.retry_after_ms ?? 1000);
      }
    };
    socket.onclose = () => {
      window.clearInterval(this.#pingTimer);
      if (this.#socket === socket) this.#socket = null;
      if (this.#stopped) return;
      this.#scheduleRetry();
    };
  }

  #scheduleRetry(): void {
    this.#attempt += 1;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(this.#attempt - 1, 10));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.options.onState('reconnecting');
    this.#retryTimer = window.setTimeout(() => this.#open(), delay);
  }
}
