/**
 * The rules emulator's MQTT 5 connection to the broker: a persistent session that subscribes
 * with QoS 1 and hands each PUBLISH on as it is parsed, its payload a view of the bytes read
 * from the socket (valid while the event is handled), for the emulator to acknowledge when
 * it is done with it.
 *
 * mqtt.js did this through a stream, a buffer list, a packet object and a payload copy per
 * message, and a work queue: a fifth of the emulator's CPU in pipeline benchmark (b), and
 * much of its garbage. This speaks only what the emulator needs (CONNECT, SUBSCRIBE with
 * subscription identifiers, PUBLISH in, PUBACK out, keepalive, DISCONNECT) and reconnects
 * by itself, as mqtt.js did.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

export interface MqttSessionOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
  /** Seconds the broker keeps the session after a disconnect (0xffffffff: for ever). */
  sessionExpiryInterval: number;
  /** How many QoS 1 messages the broker may send before they are acknowledged. */
  receiveMaximum: number;
  /** Default 60 s. */
  keepaliveSeconds?: number;
  /** Wait before connecting again after the connection closed. Default 1 s. */
  reconnectPeriodMs?: number;
  /** How long to wait for CONNACK. Default 10 s. */
  connectTimeoutMs?: number;
}

/** One PUBLISH from the broker. */
export interface InboundPublish {
  topic: string;
  /**
   * A view of the bytes read from the socket, which the next read overwrites: valid only
   * while the `publish` event is handled. Copy what is kept.
   */
  payload: Buffer;
  qos: 0 | 1 | 2;
  /** 0 for QoS 0. */
  messageId: number;
  dup: boolean;
  /** The identifiers of the subscriptions it matched, if they had any. */
  subscriptionIds: number[] | undefined;
}

export interface MqttSessionEvents {
  connect: [{ sessionPresent: boolean }];
  publish: [InboundPublish];
  close: [];
  error: [Error];
}

/** The broker answered CONNECT with a refusal (bad credentials, say). */
export class MqttConnectRefused extends Error {
  override readonly name = 'MqttConnectRefused';
  constructor(readonly reasonCode: number) {
    super(`the broker refused the connection (CONNACK reason code 0x${reasonCode.toString(16)})`);
  }
}

const CONNECT = 0x10;
const CONNACK = 0x20;
const PUBLISH = 0x30;
const PUBACK = 0x40;
const PUBREL = 0x60;
const SUBSCRIBE = 0x82;
const SUBACK = 0x90;
const PINGREQ = Buffer.from([0xc0, 0x00]);
const PINGRESP = 0xd0;
const DISCONNECT = 0xe0;
/** DISCONNECT, normal: the session stays (its expiry interval says for how long). */
const DISCONNECT_NORMAL = Buffer.from([0xe0, 0x00]);

/** Property identifiers (MQTT 5 §2.2.2.2) and the size of their values. */
const SUBSCRIPTION_IDENTIFIER = 0x0b;
const SERVER_KEEP_ALIVE = 0x13;
const SESSION_EXPIRY_INTERVAL = 0x11;
const RECEIVE_MAXIMUM = 0x21;
const REASON_STRING = 0x1f;
type PropertyKind = 'byte' | 'two' | 'four' | 'varint' | 'string' | 'binary' | 'pair';
const PROPERTY_KINDS = new Map<number, PropertyKind>([
  [0x01, 'byte'], // payload format indicator
  [0x02, 'four'], // message expiry interval
  [0x03, 'string'], // content type
  [0x08, 'string'], // response topic
  [0x09, 'binary'], // correlation data
  [SUBSCRIPTION_IDENTIFIER, 'varint'],
  [SESSION_EXPIRY_INTERVAL, 'four'],
  [0x12, 'string'], // assigned client identifier
  [SERVER_KEEP_ALIVE, 'two'],
  [0x15, 'string'], // authentication method
  [0x16, 'binary'], // authentication data
  [0x1a, 'string'], // response information
  [0x1c, 'string'], // server reference
  [REASON_STRING, 'string'],
  [RECEIVE_MAXIMUM, 'two'],
  [0x22, 'two'], // topic alias maximum
  [0x23, 'two'], // topic alias
  [0x24, 'byte'], // maximum QoS
  [0x25, 'byte'], // retain available
  [0x26, 'pair'], // user property
  [0x27, 'four'], // maximum packet size
  [0x28, 'byte'], // wildcard subscription available
  [0x29, 'byte'], // subscription identifiers available
  [0x2a, 'byte'], // shared subscription available
]);

class MalformedPacket extends Error {
  override readonly name = 'MalformedPacket';
}

/** A variable byte integer (§1.5.5) as bytes: remaining lengths, property lengths, ids. */
export function varint(value: number): number[] {
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

/** A UTF-8 string field: its length in two bytes, then the bytes. */
export const utf8Field = (text: string): Buffer => {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
};

function packet(type: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([type, ...varint(body.length)]), body]);
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** Reads a packet's fields in order; throws MalformedPacket past its end. */
class FieldReader {
  constructor(
    private readonly bytes: Buffer,
    public at: number,
    private readonly end: number,
  ) {}

  need(count: number): void {
    if (this.at + count > this.end) throw new MalformedPacket('packet shorter than its fields');
  }
  byte(): number {
    this.need(1);
    return this.bytes[this.at++] as number;
  }
  two(): number {
    this.need(2);
    const value = this.bytes.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }
  four(): number {
    this.need(4);
    const value = this.bytes.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const byte = this.byte();
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new MalformedPacket('variable byte integer longer than 4 bytes');
  }
  /** A two-byte length and that many bytes, as a view. */
  binary(): Buffer {
    const length = this.two();
    this.need(length);
    const value = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return value;
  }
  string(): string {
    return this.binary().toString('utf8');
  }
  rest(): Buffer {
    return this.bytes.subarray(this.at, this.end);
  }

  /** The properties that follow, those wanted read by `take`, the rest skipped. */
  properties(take: (id: number, reader: FieldReader) => boolean): void {
    const length = this.varint();
    this.need(length);
    const end = this.at + length;
    while (this.at < end) {
      const id = this.varint();
      if (take(id, this)) continue;
      const kind = PROPERTY_KINDS.get(id);
      if (kind === undefined) throw new MalformedPacket(`unknown property 0x${id.toString(16)}`);
      if (kind === 'byte') this.byte();
      else if (kind === 'two') this.two();
      else if (kind === 'four') this.four();
      else if (kind === 'varint') this.varint();
      else if (kind === 'pair') {
        this.binary();
        this.binary();
      } else this.binary();
    }
    if (this.at !== end) throw new MalformedPacket('properties overrun their length');
  }
}

interface PacketExtent {
  /** Where the packet's variable header starts (after the fixed header). */
  from: number;
  /** Where the packet ends. */
  end: number;
}

/** Where the packet at `data[0]` lies, or undefined while its fixed header is incomplete. */
function packetExtent(data: Buffer): PacketExtent | undefined {
  let length = 0;
  for (let at = 1; at < data.length; at++) {
    const byte = data[at] as number;
    length += (byte & 0x7f) * 2 ** (7 * (at - 1));
    if ((byte & 0x80) === 0) return { from: at + 1, end: at + 1 + length };
    if (at === 4) throw new MalformedPacket('remaining length longer than 4 bytes');
  }
  return undefined;
}

interface PendingSubscribe {
  resolve: (reasonCodes: number[]) => void;
  reject: (error: Error) => void;
}

/**
 * A persistent MQTT 5 session. Emits `connect` on each CONNACK that accepts it, `publish`
 * for each message, `close` whenever a connection ends (it then connects again after the
 * reconnect period, until `end`) and `error` for what went wrong on the way.
 */
export class MqttSession extends EventEmitter<MqttSessionEvents> {
  readonly #options: Required<MqttSessionOptions>;
  #socket: net.Socket | undefined;
  #connected = false;
  #ending = false;
  /** Bytes of a packet not yet whole. */
  #partial: Buffer | undefined;
  readonly #readBuffer = Buffer.allocUnsafe(64 * 1024);
  #nextPacketId = 0;
  readonly #subscribes = new Map<number, PendingSubscribe>();
  #keepalive: NodeJS.Timeout | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  /** Anything read since the last keepalive check. */
  #heard = false;
  /** Reading stopped by `pauseReading`: the broker's packets wait in its queue and the socket. */
  #paused = false;

  constructor(options: MqttSessionOptions) {
    super();
    this.#options = {
      keepaliveSeconds: 60,
      reconnectPeriodMs: 1000,
      connectTimeoutMs: 10_000,
      ...options,
    };
    this.#open();
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Sends bytes as they are (PUBACK packets, for one); false when not connected. */
  write(bytes: Buffer): boolean {
    const socket = this.#socket;
    if (!this.#connected || !socket?.writable) return false;
    socket.write(bytes);
    return true;
  }

  /**
   * Stops reading once the packets already read are handled, until `resumeReading`. The
   * broker's own flow control is not enough: Mosquitto 2.0.11 keeps to the Receive Maximum
   * only until the first PUBACK, then sends everything it has queued (a backlog of a
   * million messages after downtime would all land in this process's memory).
   */
  pauseReading(): void {
    this.#paused = true;
    this.#socket?.pause();
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#socket?.resume();
  }

  /** Subscribes with QoS 1; resolves with the SUBACK's reason code. */
  subscribe(
    filter: string,
    options: { subscriptionIdentifier: number; retainHandling: 0 | 1 | 2 },
  ): Promise<number> {
    if (!this.#connected) return Promise.reject(new Error('not connected to the broker'));
    this.#nextPacketId = (this.#nextPacketId % 0xffff) + 1;
    const packetId = this.#nextPacketId;
    const properties = Buffer.from([
      SUBSCRIPTION_IDENTIFIER,
      ...varint(options.subscriptionIdentifier),
    ]);
    const bytes = packet(
      SUBSCRIBE,
      Buffer.from([packetId >> 8, packetId & 0xff, ...varint(properties.length)]),
      properties,
      utf8Field(filter),
      // QoS 1, retain handling in bits 4-5.
      Buffer.from([0x01 | (options.retainHandling << 4)]),
    );
    return new Promise<number[]>((resolve, reject) => {
      this.#subscribes.set(packetId, { resolve, reject });
      this.#socket?.write(bytes);
    }).then((codes) => codes[0] ?? 0x80);
  }

  /** Disconnects (the broker keeps the session) and stops reconnecting. */
  async end(): Promise<void> {
    this.#ending = true;
    clearTimeout(this.#reconnect);
    const socket = this.#socket;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      if (this.#connected && socket.writable) socket.end(DISCONNECT_NORMAL);
      else socket.destroy();
      // A broker that never closes its side is not waited for.
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  }

  #open(): void {
    const url = new URL(this.#options.url);
    const secure = url.protocol === 'mqtts:';
    if (!secure && url.protocol !== 'mqtt:' && url.protocol !== 'tcp:') {
      throw new Error(`unsupported MQTT URL ${this.#options.url}: use mqtt:// or mqtts://`);
    }
    const port = Number(url.port || (secure ? 8883 : 1883));
    // Plain TCP reads into one buffer, used again for every read: a new one per read (tens
    // of megabytes a second at full load) counted as external memory to V8, which answered
    // with full collections.
    const socket: net.Socket = secure
      ? tls.connect({ host: url.hostname, port, servername: url.hostname })
      : net.connect({
          host: url.hostname,
          port,
          onread: {
            buffer: this.#readBuffer,
            callback: (size: number, buffer: Uint8Array) => {
              this.#read(socket, (buffer as Buffer).subarray(0, size));
              return true;
            },
          },
        });
    this.#socket = socket;
    this.#partial = undefined;
    // A new connection starts with nothing unacknowledged.
    this.#paused = false;
    socket.setNoDelay(true);
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(this.#connectPacket()));
    if (secure) socket.on('data', (chunk: Buffer) => this.#read(socket, chunk));
    socket.on('error', (error) => this.emit('error', error));
    socket.once('close', () => this.#closed(socket));
    this.#connectTimer = setTimeout(() => {
      this.emit(
        'error',
        new Error(
          `no CONNACK from ${this.#options.url} within ${this.#options.connectTimeoutMs} ms`,
        ),
      );
      socket.destroy();
    }, this.#options.connectTimeoutMs);
  }

  #connectPacket(): Buffer {
    const { clientId, username, password, sessionExpiryInterval, receiveMaximum } = this.#options;
    const properties = Buffer.concat([
      Buffer.from([SESSION_EXPIRY_INTERVAL]),
      uint32(sessionExpiryInterval),
      Buffer.from([RECEIVE_MAXIMUM, receiveMaximum >> 8, receiveMaximum & 0xff]),
    ]);
    const keepalive = this.#options.keepaliveSeconds;
    return packet(
      CONNECT,
      utf8Field('MQTT'),
      // Protocol level 5; flags: username, password, clean start off.
      Buffer.from([0x05, 0xc0, keepalive >> 8, keepalive & 0xff, ...varint(properties.length)]),
      properties,
      utf8Field(clientId),
      utf8Field(username),
      utf8Field(password),
    );
  }

  #closed(socket: net.Socket): void {
    if (socket !== this.#socket) return;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#keepalive);
    const wasConnected = this.#connected;
    this.#connected = false;
    const closedError = new Error('the connection to the broker closed');
    for (const pending of this.#subscribes.values()) pending.reject(closedError);
    this.#subscribes.clear();
    if (wasConnected || !this.#ending) this.emit('close');
    if (this.#ending) return;
    this.#reconnect = setTimeout(() => {
      if (!this.#ending) this.#open();
    }, this.#options.reconnectPeriodMs);
  }

  #read(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    this.#heard = true;
    try {
      let data = chunk;
      const partial = this.#partial;
      if (partial) {
        // Only the packet begun in an earlier read is put together; the rest is read in place.
        this.#partial = undefined;
        const header = packetExtent(
          partial.length >= 5 ? partial : Buffer.concat([partial, chunk.subarray(0, 5)]),
        );
        const missing = header === undefined ? undefined : header.end - partial.length;
        if (missing === undefined || missing > chunk.length) {
          this.#partial = Buffer.concat([partial, chunk]);
          return;
        }
        const whole = Buffer.concat([partial, chunk.subarray(0, missing)]);
        this.#packet(whole, (header as PacketExtent).from, whole.length);
        data = chunk.subarray(missing);
      }
      for (;;) {
        const extent = packetExtent(data);
        if (extent === undefined || extent.end > data.length) break;
        this.#packet(data, extent.from, extent.end);
        data = data.subarray(extent.end);
      }
      // Copied: the next read overwrites the buffer it is in.
      if (data.length > 0) this.#partial = Buffer.from(data);
    } catch (error) {
      if (!(error instanceof MalformedPacket)) throw error;
      this.emit('error', new Error(`malformed packet from the broker: ${error.message}`));
      socket.destroy();
    }
  }

  /** The packet whose fixed header is at `data[0]` and whose rest is `data[from..to)`. */
  #packet(data: Buffer, from: number, to: number): void {
    const header = data[0] as number;
    const type = header & 0xf0;
    const fields = new FieldReader(data, from, to);
    if (type === PUBLISH) {
      const qosBits = (header >> 1) & 0x03;
      if (qosBits === 3) throw new MalformedPacket('PUBLISH with QoS 3');
      const qos = qosBits as 0 | 1 | 2;
      const topic = fields.string();
      const messageId = qos > 0 ? fields.two() : 0;
      let subscriptionIds: number[] | undefined;
      fields.properties((id, reader) => {
        if (id !== SUBSCRIPTION_IDENTIFIER) return false;
        subscriptionIds ??= [];
        subscriptionIds.push(reader.varint());
        return true;
      });
      this.emit('publish', {
        topic,
        payload: fields.rest(),
        qos,
        messageId,
        dup: (header & 0x08) !== 0,
        subscriptionIds,
      });
      return;
    }
    if (type === CONNACK) {
      const flags = fields.byte();
      const reasonCode = fields.byte();
      clearTimeout(this.#connectTimer);
      if (reasonCode >= 0x80) {
        this.emit('error', new MqttConnectRefused(reasonCode));
        this.#socket?.destroy();
        return;
      }
      let keepalive = this.#options.keepaliveSeconds;
      if (fields.at < to) {
        fields.properties((id, reader) => {
          if (id !== SERVER_KEEP_ALIVE) return false;
          keepalive = reader.two();
          return true;
        });
      }
      this.#connected = true;
      this.#startKeepalive(keepalive);
      this.emit('connect', { sessionPresent: (flags & 0x01) !== 0 });
      return;
    }
    if (type === SUBACK) {
      const packetId = fields.two();
      fields.properties(() => false);
      const pending = this.#subscribes.get(packetId);
      this.#subscribes.delete(packetId);
      pending?.resolve([...fields.rest()]);
      return;
    }
    if (type === PINGRESP || type === PUBACK) return;
    if (type === PUBREL) {
      // QoS 2 is never asked for; answer PUBCOMP so the broker is not left waiting.
      const packetId = fields.two();
      this.#socket?.write(Buffer.from([0x70, 0x02, packetId >> 8, packetId & 0xff]));
      return;
    }
    if (type === DISCONNECT) {
      const reasonCode = fields.at < to ? fields.byte() : 0;
      let reason = '';
      if (fields.at < to) {
        fields.properties((id, reader) => {
          if (id !== REASON_STRING) return false;
          reason = reader.string();
          return true;
        });
      }
      this.emit(
        'error',
        new Error(
          `the broker disconnected (reason code 0x${reasonCode.toString(16)}${reason ? `: ${reason}` : ''})`,
        ),
      );
      this.#socket?.destroy();
      return;
    }
    throw new MalformedPacket(`unexpected packet type 0x${type.toString(16)}`);
  }

  #startKeepalive(seconds: number): void {
    clearInterval(this.#keepalive);
    if (seconds === 0) return;
    // A ping every half period; a whole period with nothing heard means the broker is gone.
    let silentChecks = 0;
    this.#heard = true;
    this.#keepalive = setInterval(
      () => {
        // Nothing is heard while reading is paused, however alive the broker is.
        if (this.#heard || this.#paused) silentChecks = 0;
        else if (++silentChecks >= 2) {
          this.emit('error', new Error('the broker stopped answering (keepalive)'));
          this.#socket?.destroy();
          return;
        }
        this.#heard = false;
        this.#socket?.write(PINGREQ);
      },
      (seconds * 1000) / 2,
    );
    this.#keepalive.unref();
  }
}
