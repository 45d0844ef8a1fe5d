/**
 * The rules emulator's MQTT 5 session against a scripted broker: a TCP server that sends
 * exactly the bytes a test wants (split anywhere, with any properties, malformed or silent),
 * which Mosquitto cannot be made to do. The emulator's tests run it against Mosquitto.
 */
import net from 'node:net';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type InboundPublish,
  MqttConnectRefused,
  MqttSession,
  type MqttSessionOptions,
  PacketReader,
} from '../../local/iot-rules/mqtt-session.ts';

/** A variable byte integer (MQTT 5 §1.5.5), written here so malformed packets can be made. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return bytes;
}

const field = (bytes: Buffer) =>
  Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
const text = (value: string) => field(Buffer.from(value));
const packet = (header: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([header, ...varint(body.length)]), body]);
};
const properties = (...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(varint(body.length)), body]);
};
const connack = (reasonCode = 0, props = properties()) =>
  packet(0x20, Buffer.from([0x00, reasonCode]), props);
function publish(options: {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  messageId?: number;
  dup?: boolean;
  props?: Buffer;
}): Buffer {
  const header = 0x30 | (options.qos << 1) | (options.dup ? 0x08 : 0);
  const id =
    options.qos > 0
      ? Buffer.from([(options.messageId ?? 0) >> 8, (options.messageId ?? 0) & 0xff])
      : Buffer.alloc(0);
  return packet(header, text(options.topic), id, options.props ?? properties(), options.payload);
}

/** A broker that answers as `script` says, and records what each connection sent it. */
class ScriptedBroker {
  readonly server = net.createServer();
  readonly connections: Array<{ socket: net.Socket; received: Buffer[] }> = [];
  url = '';

  constructor(private readonly script: (socket: net.Socket, connection: number) => void) {
    this.server.on('connection', (socket) => {
      const connection = { socket, received: [] as Buffer[] };
      this.connections.push(connection);
      let first = true;
      socket.on('data', (chunk) => {
        connection.received.push(chunk);
        if (first) {
          first = false;
          this.script(socket, this.connections.length - 1);
        }
      });
      socket.on('error', () => {});
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `mqtt://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  received(connection: number): Buffer {
    return Buffer.concat(this.connections[connection]?.received ?? []);
  }

  async stop(): Promise<void> {
    for (const { socket } of this.connections) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function setup(
  script: (socket: net.Socket, connection: number) => void,
  options: Partial<MqttSessionOptions> = {},
) {
  const broker = new ScriptedBroker(script);
  await broker.start();
  cleanups.push(() => broker.stop());
  const session = new MqttSession({
    url: broker.url,
    clientId: 'rules-emulator',
    username: 'platform',
    password: 's3cret',
    sessionExpiryInterval: 0xffff_ffff,
    receiveMaximum: 8192,
    reconnectPeriodMs: 50,
    ...options,
  });
  cleanups.push(() => session.end());
  const events = {
    publishes: [] as InboundPublish[],
    errors: [] as Error[],
    connects: 0,
    closes: 0,
  };
  session.on('publish', (message) =>
    events.publishes.push({ ...message, payload: Buffer.from(message.payload) }),
  );
  session.on('error', (error) => events.errors.push(error));
  session.on('connect', () => (events.connects += 1));
  session.on('close', () => (events.closes += 1));
  return { broker, session, events };
}

/** Writes `bytes` in pieces of 1 to 7 bytes, each its own TCP segment. */
async function dribble(socket: net.Socket, bytes: Buffer): Promise<void> {
  socket.setNoDelay(true);
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + ((at * 7919) % 7);
    socket.write(bytes.subarray(at, at + size));
    at += size;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('MQTT session of the rules emulator (scripted broker)', () => {
  it('sends a persistent MQTT 5 CONNECT and reads packets however their bytes are split', async () => {
    const large = Buffer.alloc(70_000, 'x');
    const messages = Buffer.concat([
      connack(0, properties(Buffer.from([0x21, 0x01, 0x00]), Buffer.from([0x1f]), text('hello'))),
      publish({
        topic: 'devices/d1/telemetry',
        payload: Buffer.from('{"values":{"v":1}}'),
        qos: 1,
        messageId: 513,
        props: properties(
          Buffer.from([0x01, 0x01]),
          Buffer.from([0x26]),
          text('k'),
          text('v'),
          Buffer.from([0x0b, ...varint(3)]),
          Buffer.from([0x0b, ...varint(300)]),
          Buffer.from([0x03]),
          text('application/json'),
        ),
      }),
      publish({ topic: 'devices/d1/status', payload: Buffer.alloc(0), qos: 0 }),
      publish({
        topic: 'devices/é/x',
        payload: Buffer.from('again'),
        qos: 1,
        messageId: 7,
        dup: true,
        props: properties(Buffer.from([0x0b, 1])),
      }),
    ]);
    const { broker, session, events } = await setup((socket) => {
      void dribble(socket, messages).then(() =>
        socket.write(publish({ topic: 'big', payload: large, qos: 1, messageId: 8 })),
      );
    });
    await vi.waitFor(() => expect(events.publishes).toHaveLength(4), { timeout: 5000 });
    expect(events.connects).toBe(1);
    expect(session.connected).toBe(true);
    expect(events.publishes).toEqual([
      {
        topic: 'devices/d1/telemetry',
        payload: Buffer.from('{"values":{"v":1}}'),
        qos: 1,
        messageId: 513,
        dup: false,
        subscriptionIds: [3, 300],
      },
      {
        topic: 'devices/d1/status',
        payload: Buffer.alloc(0),
        qos: 0,
        messageId: 0,
        dup: false,
        subscriptionIds: undefined,
      },
      {
        topic: 'devices/é/x',
        payload: Buffer.from('again'),
        qos: 1,
        messageId: 7,
        dup: true,
        subscriptionIds: [1],
      },
      {
        topic: 'big',
        payload: large,
        qos: 1,
        messageId: 8,
        dup: false,
        subscriptionIds: undefined,
      },
    ]);
    expect(events.errors).toEqual([]);

    // CONNECT: level 5, username and password, clean start off, keepalive 60 s, session
    // expiry "never" and Receive Maximum 8192, then the client id and the credentials.
    const connect = broker.received(0);
    expect(connect[0]).toBe(0x10);
    const body = connect.subarray(2);
    expect(body.subarray(0, 10)).toEqual(
      Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0xc0, 0, 60]),
    );
    expect(body.subarray(10, 19)).toEqual(
      Buffer.from([8, 0x11, 0xff, 0xff, 0xff, 0xff, 0x21, 0x20, 0x00]),
    );
    expect(body.subarray(19)).toEqual(
      Buffer.concat([text('rules-emulator'), text('platform'), text('s3cret')]),
    );
    // Acknowledgements go out as PUBACK, success, in the short form (MQTT 5 §3.4.2.1).
    expect(session.acknowledge([513])).toBe(true);
    await vi.waitFor(() =>
      expect(broker.received(0).subarray(-4)).toEqual(Buffer.from([0x40, 0x02, 0x02, 0x01])),
    );
  });

  it('subscribes with a subscription identifier and retain handling, and reads SUBACK', async () => {
    const { broker, session, events } = await setup((socket) => {
      socket.write(connack());
      socket.on('data', (chunk) => {
        if (chunk[0] !== 0x82) return;
        const packetId = chunk.subarray(2, 4);
        socket.write(
          packet(0x90, packetId, properties(), Buffer.from([chunk.at(-1) === 0x21 ? 0x01 : 0x87])),
        );
      });
    });
    await vi.waitFor(() => expect(events.connects).toBe(1));
    await expect(
      session.subscribe('devices/+/telemetry', { subscriptionIdentifier: 200, retainHandling: 2 }),
    ).resolves.toBe(0x01);
    await expect(
      session.subscribe('x', { subscriptionIdentifier: 1, retainHandling: 0 }),
    ).resolves.toBe(0x87);
    const subscribe = broker.received(0).subarray(broker.received(0).indexOf(0x82));
    // Packet id 1, properties: subscription identifier 200 (two bytes), the filter, options.
    expect(subscribe.subarray(2, 2 + (subscribe[1] as number))).toEqual(
      Buffer.concat([
        Buffer.from([0, 1, 3, 0x0b, 0xc8, 0x01]),
        text('devices/+/telemetry'),
        Buffer.from([0x21]),
      ]),
    );
  });

  it('reports a refused connection as such, and keeps trying', async () => {
    const { events } = await setup((socket) => {
      socket.write(connack(0x86));
    });
    await vi.waitFor(() => expect(events.errors.length).toBeGreaterThanOrEqual(2));
    expect(events.errors[0]).toBeInstanceOf(MqttConnectRefused);
    expect((events.errors[0] as MqttConnectRefused).reasonCode).toBe(0x86);
    expect(events.connects).toBe(0);
  });

  it('drops a connection that sends a malformed packet, and connects again', async () => {
    const { broker, events } = await setup((socket, connection) => {
      socket.write(connack());
      if (connection === 0) {
        socket.write(
          publish({
            topic: 't',
            payload: Buffer.from('p'),
            qos: 1,
            messageId: 1,
            props: properties(Buffer.from([0x7f, 0])),
          }),
        );
      } else {
        socket.write(publish({ topic: 't', payload: Buffer.from('ok'), qos: 1, messageId: 2 }));
      }
    });
    await vi.waitFor(() => expect(events.publishes).toHaveLength(1));
    expect(events.publishes[0]?.payload).toEqual(Buffer.from('ok'));
    expect(events.errors.map((error) => error.message)).toEqual([
      'malformed packet from the broker: Unknown property',
    ]);
    expect(events).toMatchObject({ connects: 2, closes: 1 });
    expect(broker.connections).toHaveLength(2);
  });

  it('pings the broker and drops a connection that has gone silent', async () => {
    // The keepalive runs on the test's clock: each check below moves it on half a period.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let pings = 0;
    const { events } = await setup(
      (socket, connection) => {
        socket.write(connack());
        socket.on('data', (chunk) => {
          if (chunk[0] !== 0xc0) return;
          pings += 1;
          // The first connection answers one ping, then says nothing more.
          if (connection === 0 && pings === 1) socket.write(Buffer.from([0xd0, 0x00]));
        });
      },
      { keepaliveSeconds: 1 },
    );
    await vi.waitFor(() => expect(events.connects).toBe(1));
    await vi.waitFor(
      () => {
        vi.advanceTimersByTime(500);
        expect(events.connects).toBe(2);
      },
      { timeout: 5000, interval: 5 },
    );
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(events.errors.map((error) => error.message)).toContain(
      'the broker stopped answering (keepalive)',
    );
  });

  it('stops reading while paused, keeps the connection, and reads on where it stopped', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let sendMore: (() => void) | undefined;
    const message = (n: number) =>
      publish({ topic: 't', payload: Buffer.from(`m${n}`), qos: 1, messageId: n + 1 });
    const { session, events } = await setup(
      (socket) => {
        socket.setNoDelay(true);
        socket.write(Buffer.concat([connack(), message(0), message(1)]));
        sendMore = () => {
          for (let n = 2; n < 40; n += 1) socket.write(message(n));
        };
      },
      { keepaliveSeconds: 1 },
    );
    await vi.waitFor(() => expect(events.publishes).toHaveLength(2));
    session.pauseReading();
    sendMore?.();
    // Two keepalive periods, on the test's clock, without a PINGRESP read: not taken for a dead
    // broker (the keepalive check would say so at once, synchronously).
    vi.advanceTimersByTime(2200);
    expect(events.publishes).toHaveLength(2);
    expect(events).toMatchObject({ connects: 1, closes: 0, errors: [] });
    session.resumeReading();
    await vi.waitFor(() => expect(events.publishes).toHaveLength(40));
    expect(events.publishes.map((p) => p.payload.toString())).toEqual(
      Array.from({ length: 40 }, (_, n) => `m${n}`),
    );
    expect(events).toMatchObject({ connects: 1, closes: 0 });
  });

  it('ends with DISCONNECT (the broker keeps the session) and connects no more', async () => {
    // Reconnections are timers on the test's clock, and every one goes through net.connect.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const opened = vi.spyOn(net, 'connect');
    const { broker, session, events } = await setup((socket) => socket.write(connack()));
    await vi.waitFor(() => expect(events.connects).toBe(1));
    await session.end();
    // DISCONNECT, reason normal (0): the broker keeps the session.
    expect(broker.received(0).subarray(-4)).toEqual(Buffer.from([0xe0, 0x02, 0x00, 0x00]));
    expect(session.connected).toBe(false);
    expect(session.acknowledge([1])).toBe(false);
    // Far past the reconnect period: a reconnection would have called net.connect by now.
    vi.advanceTimersByTime(60_000);
    expect(opened).toHaveBeenCalledTimes(1);
    expect(broker.connections).toHaveLength(1);
  });
});

describe('packet reader of the rules emulator', () => {
  /** Everything a reader makes of `chunks`, payloads copied as they are handed on. */
  function read(chunks: Buffer[]) {
    const out: Array<InboundPublish | Packet | Error> = [];
    const reader = new PacketReader(
      (message) => out.push({ ...message, payload: Buffer.from(message.payload) }),
      (packet) => out.push(packet),
      (error) => out.push(error),
    );
    for (const chunk of chunks) reader.push(chunk);
    return out;
  }

  /** The codec alone, for the same bytes: what the reader must make of them. */
  function decode(bytes: Buffer) {
    const out: Array<InboundPublish | Packet | Error> = [];
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd !== 'publish') {
        out.push(packet);
        return;
      }
      const ids = packet.properties?.subscriptionIdentifier;
      out.push({
        topic: packet.topic,
        payload: Buffer.from(packet.payload as Buffer),
        qos: packet.qos,
        messageId: packet.qos > 0 ? (packet.messageId ?? 0) : 0,
        dup: packet.dup,
        subscriptionIds: ids === undefined ? undefined : Array.isArray(ids) ? ids : [ids],
      });
    });
    parser.on('error', (error: Error) => out.push(error));
    parser.parse(bytes);
    return out;
  }

  const property = fc.oneof(
    fc.integer({ min: 0, max: 268_435_455 }).map((id) => Buffer.from([0x0b, ...varint(id)])),
    fc.constant(Buffer.from([0x01, 0x01])),
    fc
      .tuple(fc.string(), fc.string())
      .map(([k, v]) => Buffer.concat([Buffer.from([0x26]), text(k), text(v)])),
  );
  const publishPacket = fc
    .record({
      topic: fc.string({ unit: 'grapheme', maxLength: 40 }),
      payload: fc.uint8Array({ maxLength: 300 }),
      qos: fc.constantFrom(0 as const, 1 as const),
      messageId: fc.integer({ min: 1, max: 0xffff }),
      dup: fc.boolean(),
      props: fc.array(property, { maxLength: 3 }),
    })
    .map((p) => publish({ ...p, payload: Buffer.from(p.payload), props: properties(...p.props) }));
  const otherPacket = fc.constantFrom(
    connack(),
    Buffer.from([0xd0, 0x00]),
    Buffer.from([0x40, 0x02, 0x00, 0x05]),
    packet(0x90, Buffer.from([0x00, 0x03]), properties(), Buffer.from([0x01])),
  );

  it('reads any PUBLISH, split anywhere, exactly as the codec does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(publishPacket, publishPacket, otherPacket), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 10 }),
        (packets, cuts) => {
          const bytes = Buffer.concat(packets);
          const chunks: Buffer[] = [];
          let at = 0;
          for (const cut of cuts) {
            if (at >= bytes.length) break;
            chunks.push(bytes.subarray(at, at + cut));
            at += cut;
          }
          if (at < bytes.length) chunks.push(bytes.subarray(at));
          expect(read(chunks)).toEqual(decode(bytes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('leaves what it cannot read to the codec, which reports it', () => {
    const badQos = Buffer.from([0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01]);
    const zeroId = publish({
      topic: 't',
      payload: Buffer.from('p'),
      qos: 0,
      props: properties(Buffer.from([0x0b, 0x00])),
    });
    const topicTooLong = Buffer.from([0x30, 0x03, 0x00, 0x09, 0x74]);
    for (const bytes of [badQos, zeroId, topicTooLong]) {
      expect(read([bytes])).toEqual(decode(bytes));
    }
    expect(read([badQos])[0]).toBeInstanceOf(Error);
  });
});
