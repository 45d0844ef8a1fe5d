import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The dashboard's WebSocket client against a platform that answers a connection's messages
 * out of order, as API Gateway may (each message is its own Lambda invocation): the tab must
 * end up watching what its page shows. The socket is a stand-in (no browser here); the
 * platform's side applies each message to the connection's watched set as the live function does.
 */
class FakeSocket {
  static readonly OPEN = 1;
  static last: FakeSocket | null = null;
  readyState = 0;
  sent: Array<{ action: string; device_ids?: number[] }> = [];
  onopen: (() => void) | null = null;
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;

  constructor(readonly url: URL) {
    FakeSocket.last = this;
  }

  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }

  close(): void {
    this.readyState = 3;
  }

  open(): void {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }

  receive(body: unknown): void {
    this.onmessage?.({ data: JSON.stringify(body) });
  }
}

/** The connection's watched set on the platform, changed one message at a time. */
class Platform {
  watched = new Set<number>();

  apply(message: { action: string; device_ids?: number[] }): {
    type: string;
    device_ids: number[];
  } {
    for (const id of message.device_ids ?? []) {
      if (message.action === 'subscribe') this.watched.add(id);
      else this.watched.delete(id);
    }
    return { type: 'subscribed', device_ids: [...this.watched].sort((a, b) => a - b) };
  }
}

beforeEach(() => {
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('window', globalThis);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

async function connected() {
  const { LiveConnection } = await import('../../dashboard/src/live.ts');
  const live = new LiveConnection({
    url: 'ws://platform.test/live',
    token: () => 'token',
    onEvents: () => {},
    onState: () => {},
  });
  live.start();
  const socket = FakeSocket.last as FakeSocket;
  socket.open();
  return { live, socket };
}

/** Answers the messages sent since `from`, in the given order of their positions. */
function answer(socket: FakeSocket, platform: Platform, from: number, order: number[]) {
  const pending = socket.sent.slice(from);
  const replies = order.map((position) =>
    platform.apply(pending[position] as FakeSocket['sent'][number]),
  );
  for (const reply of replies) socket.receive(reply);
}

describe('dashboard live connection', () => {
  it('watches what the page shows when the platform takes its changes out of order', async () => {
    const { live, socket } = await connected();
    const platform = new Platform();
    live.watch([1, 2, 3]);
    answer(socket, platform, 0, [0]);
    expect(platform.watched).toEqual(new Set([1, 2, 3]));

    // The list page goes, the device page comes: an unsubscribe, then a subscribe.
    const before = socket.sent.length;
    live.watch([]);
    live.watch([1]);
    expect(socket.sent.slice(before)).toEqual([
      { action: 'unsubscribe', device_ids: [1, 2, 3] },
      { action: 'subscribe', device_ids: [1] },
    ]);
    // The subscribe is applied first, the unsubscribe after it: the platform holds nothing.
    answer(socket, platform, before, [1, 0]);
    expect(platform.watched).toEqual(new Set());

    // Both answered: the client says again what it wants, and the platform holds it.
    const again = socket.sent.slice(before + 2);
    expect(again).toEqual([{ action: 'subscribe', device_ids: [1] }]);
    answer(socket, platform, before + 2, [0]);
    expect(platform.watched).toEqual(new Set([1]));
    // Settled: nothing more is sent.
    expect(socket.sent).toHaveLength(before + 3);
  });

  it('sends nothing more when the answers match what the page wants', async () => {
    const { live, socket } = await connected();
    const platform = new Platform();
    live.watch([4, 5]);
    live.watch([5]);
    answer(socket, platform, 0, [0, 1]);
    expect(platform.watched).toEqual(new Set([5]));
    expect(socket.sent).toEqual([
      { action: 'subscribe', device_ids: [4, 5] },
      { action: 'unsubscribe', device_ids: [4] },
    ]);
  });
});
