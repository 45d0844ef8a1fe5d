/**
 * The rules emulator's MQTT 5 connection to the broker: a persistent session that subscribes
 * with QoS 1 and hands each PUBLISH on as it is parsed, for the emulator to acknowledge when
 * it is done with it.
 *
 * Packets are read and written by `mqtt-packet`, the codec under mqtt.js, except the
 * PUBLISH packets the broker sends every message in (see `PacketReader`). mqtt.js itself
 * also put every message through a stream, a work queue and a payload copy: a fifth of the
 * emulator's CPU in pipeline benchmark (b). This keeps only the session (reconnecting,
 * keepalive, pausing reads at the Receive Maximum) and leaves the bytes to the codec.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';

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
  /** May share memory with the connection's reads: copy what is kept past the event. */
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

const PROTOCOL = { protocolVersion: 5 } as const;
const PINGREQ = mqttPacket.generate({ cmd: 'pingreq' });
/** DISCONNECT, normal: the session stays (its expiry interval says for how long). */
const DISCONNECT_NORMAL = mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0 }, PROTOCOL);

/**
 * A PUBACK (success) as the codec writes it: fixed header, remaining length 2, the packet id
 * in its last two bytes (MQTT 5 leaves out reason code 0 without properties). Acknowledging a
 * batch writes each id into a copy of it: generating each PUBACK cost about 2 us, most of
 * the acknowledgement's CPU.
 */
const PUBACK = mqttPacket.generate({ cmd: 'puback', messageId: 1, reasonCode: 0 }, PROTOCOL);
const PUBACK_ID_AT = PUBACK.length - 2;

function pubacks(messageIds: readonly number[]): Buffer {
  const bytes = Buffer.allocUnsafe(PUBACK.length * messageIds.length);
  for (let index = 0; index < messageIds.length; index++) {
    const at = index * PUBACK.length;
    PUBACK.copy(bytes, at);
    bytes.writeUInt16BE(messageIds[index] as number, at + PUBACK_ID_AT);
  }
  return bytes;
}

/** MQTT 5's Subscription Identifier property (§3.3.2.3.8): a variable byte integer. */
const SUBSCRIPTION_IDENTIFIER = 0x0b;
const PUBLISH_TYPE = 3;

/**
 * The packets in a connection's bytes, however they are split into reads. A PUBLISH whose
 * only properties are subscription identifiers (what Mosquitto sends the emulator) is read
 * here, its payload a view of the read, not a copy; every other packet, and any PUBLISH this
 * does not read exactly as the codec would, goes whole to `mqtt-packet`, which decides (and
 * reports what is malformed). The codec's PUBLISH path, through its buffer list and a payload
 * copy, was about a third of the emulator's CPU per message in pipeline benchmark (a); a
 * unit property test holds this reading to the codec's.
 */
export class PacketReader {
  readonly #codec = mqttPacket.parser(PROTOCOL);
  /** The start of a packet whose end has not been read yet. */
  #partial: Buffer | undefined;

  constructor(
    private readonly onPublish: (message: InboundPublish) => void,
    onPacket: (packet: Packet) => void,
    onError: (error: Error) => void,
  ) {
    this.#codec.on('packet', (packet: Packet) => {
      if (packet.cmd === 'publish') this.onPublish(publishOf(packet));
      else onPacket(packet);
    });
    this.#codec.on('error', onError);
  }

  /** Reads what `chunk` completes; the rest waits for the next one. */
  push(chunk: Buffer): void {
    let bytes = chunk;
    const partial = this.#partial;
    if (partial) {
      this.#partial = undefined;
      const end = packetEnd(partial, 0);
      if (end < 0 || end > partial.length + chunk.length) {
        // The header itself, or still not the whole packet: joined and read again below.
        bytes = Buffer.concat([partial, chunk]);
      } else {
        // Only the rest of that packet is joined to it; the chunk's later packets are read in place.
        const taken = end - partial.length;
        this.#packet(Buffer.concat([partial, chunk.subarray(0, taken)]), 0, end);
        bytes = chunk.subarray(taken);
      }
    }
    let at = 0;
    while (at < bytes.length) {
      const end = packetEnd(bytes, at);
      if (end === -2) {
        // A remaining length of more than four bytes: the codec reports it.
        this.#codec.parse(bytes.subarray(at));
        return;
      }
      if (end === -1 || end > bytes.length) break;
      this.#packet(bytes, at, end);
      at = end;
    }
    if (at < bytes.length) this.#partial = Buffer.from(bytes.subarray(at));
  }

  #packet(bytes: Buffer, at: number, end: number): void {
    if ((bytes[at] as number) >> 4 === PUBLISH_TYPE) {
      const message = readPublish(bytes, at, end);
      if (message) {
        this.onPublish(message);
        return;
      }
    }
    this.#codec.parse(bytes.subarray(at, end));
  }
}

/**
 * Where the packet starting at `at` ends (its fixed header's remaining length read), -1 if
 * its header is not all there yet, -2 if the remaining length is malformed.
 */
function packetEnd(bytes: Buffer, at: number): number {
  let length = 0;
  let multiplier = 1;
  for (let index = 1; index <= 4; index++) {
    if (at + index >= bytes.length) return -1;
    const byte = bytes[at + index] as number;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return at + index + 1 + length;
    multiplier *= 128;
  }
  return -2;
}

/**
 * The PUBLISH packet in `bytes[at, end)` as the codec would read it, or undefined for one to
 * leave to the codec: QoS 3, a field that runs past the packet, or a property other than a
 * subscription identifier.
 */
function readPublish(bytes: Buffer, at: number, end: number): InboundPublish | undefined {
  const flags = (bytes[at] as number) & 0x0f;
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) return undefined;
  let position = at + 1;
  while ((bytes[position] as number) & 0x80) position++;
  position++;
  if (position + 2 > end) return undefined;
  const topicEnd = position + 2 + bytes.readUInt16BE(position);
  if (topicEnd > end) return undefined;
  const topic = bytes.toString('utf8', position + 2, topicEnd);
  position = topicEnd;
  let messageId = 0;
  if (qos > 0) {
    if (position + 2 > end) return undefined;
    messageId = bytes.readUInt16BE(position);
    position += 2;
  }
  const propertiesLength = varint(bytes, position, end);
  if (propertiesLength === undefined) return undefined;
  position = propertiesLength.end;
  const propertiesEnd = position + propertiesLength.value;
  if (propertiesEnd > end) return undefined;
  let subscriptionIds: number[] | undefined;
  while (position < propertiesEnd) {
    if (bytes[position] !== SUBSCRIPTION_IDENTIFIER) return undefined;
    const id = varint(bytes, position + 1, propertiesEnd);
    // 0 is a protocol error, which the codec reads its own way.
    if (id === undefined || id.value === 0) return undefined;
    if (subscriptionIds) subscriptionIds.push(id.value);
    else subscriptionIds = [id.value];
    position = id.end;
  }
  return {
    topic,
    payload: bytes.subarray(propertiesEnd, end),
    qos: qos as 0 | 1 | 2,
    messageId,
    dup: (flags & 0x08) !== 0,
    subscriptionIds,
  };
}

/** A variable byte integer at `at`, ending before `limit`; undefined if it does not. */
function varint(
  bytes: Buffer,
  at: number,
  limit: number,
): { value: number; end: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let index = 0; index < 4 && at + index < limit; index++) {
    const byte = bytes[at + index] as number;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, end: at + index + 1 };
    multiplier *= 128;
  }
  return undefined;
}

/** A PUBLISH the codec read, as the session hands it on. */
function publishOf(packet: mqttPacket.IPublishPacket): InboundPublish {
  const ids = packet.properties?.subscriptionIdentifier;
  return {
    topic: packet.topic,
    payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
    qos: packet.qos,
    messageId: packet.qos > 0 ? (packet.messageId ?? 0) : 0,
    dup: packet.dup,
    subscriptionIds: ids === undefined ? undefined : Array.isArray(ids) ? ids : [ids],
  };
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

  /** True from `pauseReading` until `resumeReading` (or a new connection). */
  get readingPaused(): boolean {
    return this.#paused;
  }

  /** Acknowledges these QoS 1 messages (PUBACK, success), in one write; false when not connected. */
  acknowledge(messageIds: readonly number[]): boolean {
    const socket = this.#socket;
    if (!this.#connected || !socket?.writable) return false;
    socket.write(pubacks(messageIds));
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
    const bytes = mqttPacket.generate(
      {
        cmd: 'subscribe',
        messageId: packetId,
        properties: { subscriptionIdentifier: options.subscriptionIdentifier },
        subscriptions: [
          { topic: filter, qos: 1, nl: false, rap: false, rh: options.retainHandling },
        ],
      },
      PROTOCOL,
    );
    return new Promise<number[]>((resolve, reject) => {
      this.#subscribes.set(packetId, { resolve, reject });
      this.#socket?.write(bytes);
    }).then((codes) => codes[0] ?? 0x80);
  }

  /**
   * Unsubscribes; resolves with the UNSUBACK's reason code (0x11: the session had no such
   * subscription).
   */
  unsubscribe(filter: string): Promise<number> {
    if (!this.#connected) return Promise.reject(new Error('not connected to the broker'));
    this.#nextPacketId = (this.#nextPacketId % 0xffff) + 1;
    const packetId = this.#nextPacketId;
    const bytes = mqttPacket.generate(
      { cmd: 'unsubscribe', messageId: packetId, unsubscriptions: [filter] },
      PROTOCOL,
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
    const socket: net.Socket = secure
      ? tls.connect({ host: url.hostname, port, servername: url.hostname })
      : net.connect({ host: url.hostname, port });
    this.#socket = socket;
    // A new connection starts with nothing unacknowledged, and a parser of its own.
    this.#paused = false;
    const reader = new PacketReader(
      (message) => {
        // Packets read from a chunk after its connection was given up are not acted on.
        if (socket !== this.#socket || socket.destroyed) return;
        this.emit('publish', message);
      },
      (packet) => this.#packet(socket, packet),
      (error) => {
        if (socket !== this.#socket || socket.destroyed) return;
        this.emit('error', new Error(`malformed packet from the broker: ${error.message}`));
        socket.destroy();
      },
    );
    socket.setNoDelay(true);
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(this.#connectPacket()));
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.#socket || socket.destroyed) return;
      this.#heard = true;
      reader.push(chunk);
    });
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
    return mqttPacket.generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: false,
        keepalive: this.#options.keepaliveSeconds,
        clientId,
        username,
        password: Buffer.from(password),
        properties: { sessionExpiryInterval, receiveMaximum },
      },
      PROTOCOL,
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

  #packet(socket: net.Socket, packet: Packet): void {
    // Packets parsed from a chunk after its connection was given up are not acted on.
    if (socket !== this.#socket || socket.destroyed) return;
    switch (packet.cmd) {
      case 'connack': {
        clearTimeout(this.#connectTimer);
        const reasonCode = packet.reasonCode ?? packet.returnCode ?? 0;
        if (reasonCode >= 0x80) {
          this.emit('error', new MqttConnectRefused(reasonCode));
          socket.destroy();
          return;
        }
        this.#connected = true;
        this.#startKeepalive(packet.properties?.serverKeepAlive ?? this.#options.keepaliveSeconds);
        this.emit('connect', { sessionPresent: packet.sessionPresent });
        return;
      }
      case 'suback':
      case 'unsuback': {
        const pending = this.#subscribes.get(packet.messageId as number);
        this.#subscribes.delete(packet.messageId as number);
        pending?.resolve(packet.granted as number[]);
        return;
      }
      case 'pingresp':
      case 'puback':
        return;
      case 'pubrel':
        // QoS 2 is never asked for; answer PUBCOMP so the broker is not left waiting.
        socket.write(
          mqttPacket.generate({ cmd: 'pubcomp', messageId: packet.messageId as number }, PROTOCOL),
        );
        return;
      case 'disconnect': {
        const reason = packet.properties?.reasonString;
        this.emit(
          'error',
          new Error(
            `the broker disconnected (reason code 0x${(packet.reasonCode ?? 0).toString(16)}${reason ? `: ${reason}` : ''})`,
          ),
        );
        socket.destroy();
        return;
      }
      default:
        this.emit('error', new Error(`malformed packet from the broker: unexpected ${packet.cmd}`));
        socket.destroy();
    }
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
