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

/**
 * One WebSocket per signed-in tab, subscribed to every device of the tenant; pages filter
 * what they need. Reconnects with capped exponential backoff and jitter, so a restarted
 * API is not hit by every dashboard at the same instant.
 */
export class LiveConnection {
  #socket: WebSocket | null = null;
  #attempt = 0;
  #retryTimer: number | undefined;
  #pingTimer: number | undefined;
  #stopped = false;

  constructor(private readonly options: LiveOptions) {}

  start(): void {
    this.#stopped = false;
    this.#open();
  }

  stop(): void {
    this.#stopped = true;
    window.clearTimeout(this.#retryTimer);
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
      socket.send(JSON.stringify({ action: 'subscribe', device_ids: null }));
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
      const body = parsed as { type?: string; events?: LiveEvent[] };
      if (body.type === 'events' && Array.isArray(body.events)) this.options.onEvents(body.events);
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
