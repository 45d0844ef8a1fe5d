/**
 * The benchmark's MQTT clients: a minimal MQTT 3.1.1 client that publishes with QoS 1 (the
 * devices, and the raw broker run's publisher) and counts QoS 1 messages it subscribed to
 * (the raw broker run's subscriber). Its packets are read and written by `mqtt-packet`, the
 * codec under mqtt.js; the publishes are made before the clock starts and sent with at most
 * a window of them unacknowledged. mqtt.js itself spent as much CPU per message as the broker
 * (bench/README.md): on this machine's two cores, shared with the broker and the platform,
 * that is taken from what is measured, although real devices publish from CPUs of their own.
 */
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface PublishPacket {
  bytes: Buffer;
  /** Where the packet identifier goes; it is written as the packet is sent. */
  idAt: number;
}

/** A QoS 1 PUBLISH of `payload` to `topic`, its packet identifier written as it is sent. */
export function publishPacket(topic: string, payload: Buffer): PublishPacket {
  const bytes = mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload,
    qos: 1,
    messageId: 1,
    dup: false,
    retain: false,
  });
  // The identifier follows the fixed header and the topic: it is the two bytes before the payload.
  return { bytes, idAt: bytes.length - payload.length - 2 };
}

const PINGREQ = mqttPacket.generate({ cmd: 'pingreq' });
const DISCONNECT = mqttPacket.generate({ cmd: 'disconnect' });

export class LeanMqttClient {
  readonly #socket: net.Socket;
  readonly #parser = mqttPacket.parser();
  #nextId = 0;
  #onAcks: ((count: number) => void) | undefined;
  #onConnack: ((code: number) => void) | undefined;
  #onSuback: ((code: number) => void) | undefined;
  #onMessages: ((count: number) => void) | undefined;
  #failure: Error | undefined;
  #onFailure: ((error: Error) => void) | undefined;
  readonly #ping: NodeJS.Timeout;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    // What one read brings is answered in one write, and counted once.
    const pubacks: Buffer[] = [];
    const counts = { acks: 0, messages: 0 };
    this.#parser.on('packet', (packet: Packet) => this.#packet(packet, pubacks, counts));
    this.#parser.on('error', (error: Error) => socket.destroy(error));
    socket.on('data', (chunk: Buffer) => {
      this.#read(chunk, counts);
      if (pubacks.length > 0) socket.write(Buffer.concat(pubacks.splice(0)));
      const { acks, messages } = counts;
      counts.acks = 0;
      counts.messages = 0;
      if (messages > 0) this.#onMessages?.(messages);
      if (acks > 0) this.#onAcks?.(acks);
    });
    const fail = (error: Error) => {
      this.#failure ??= error;
      this.#onFailure?.(this.#failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the broker closed the connection')));
    // Keepalive is 60 s; a run can outlast it.
    this.#ping = setInterval(() => socket.write(PINGREQ), 30_000).unref();
  }

  static async connect(
    url: string,
    account: { clientId: string; username: string; password: string },
  ): Promise<LeanMqttClient> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port || 1883) });
    const publisher = new LeanMqttClient(socket);
    const code = await new Promise<number>((resolve, reject) => {
      publisher.#onConnack = resolve;
      publisher.#onFailure = reject;
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 60,
          clientId: account.clientId,
          username: account.username,
          password: Buffer.from(account.password),
        }),
      );
    });
    if (code !== 0) {
      publisher.close();
      throw new Error(`the broker refused ${account.clientId} (CONNACK return code ${code})`);
    }
    return publisher;
  }

  /** Bytes of a packet not yet whole at the end of the last read. */
  #partial: Buffer | undefined;

  /**
   * Cuts what the broker sent into packets: a PUBACK (`0x40 0x02` and the identifier) is only
   * counted, any other packet is decoded by `mqtt-packet`, whole. Its general parser took 2-5 us
   * a PUBACK, one per message published, on the cores the broker and the platform share.
   */
  #read(chunk: Buffer, counts: { acks: number; messages: number }): void {
    const bytes = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    this.#partial = undefined;
    let at = 0;
    while (at < bytes.length) {
      if (bytes[at] === 0x40 && bytes[at + 1] === 0x02 && at + 4 <= bytes.length) {
        counts.acks += 1;
        at += 4;
        continue;
      }
      // The remaining length: one to four bytes, seven bits each, low first.
      let length = 0;
      let end = at + 1;
      let whole = false;
      for (let digit = 0; digit < 4 && end < bytes.length; digit++) {
        const byte = bytes[end++] as number;
        length += (byte & 0x7f) * 128 ** digit;
        if ((byte & 0x80) === 0) {
          whole = true;
          break;
        }
      }
      // A fifth length byte is malformed: the parser says so (and the socket is closed).
      if (!whole && end - at > 4) {
        this.#parser.parse(bytes.subarray(at));
        return;
      }
      if (!whole || end + length > bytes.length) break;
      this.#parser.parse(bytes.subarray(at, end + length));
      at = end + length;
    }
    if (at < bytes.length) this.#partial = bytes.subarray(at);
  }

  #packet(packet: Packet, pubacks: Buffer[], counts: { acks: number; messages: number }): void {
    if (packet.cmd === 'puback') counts.acks += 1;
    else if (packet.cmd === 'publish') {
      counts.messages += 1;
      if (packet.qos === 1) {
        pubacks.push(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId as number }));
      }
    } else if (packet.cmd === 'connack') this.#onConnack?.(packet.returnCode ?? 0);
    else if (packet.cmd === 'suback') this.#onSuback?.((packet.granted as number[])[0] ?? 0x80);
  }

  /**
   * Subscribes to `filter` with QoS 1 and acknowledges what arrives; resolves once `count`
   * messages have.
   */
  async receive(filter: string, count: number): Promise<{ done: Promise<void> }> {
    let received = 0;
    const done = new Promise<void>((resolve) => {
      this.#onMessages = (messages) => {
        received += messages;
        if (received >= count) resolve();
      };
    });
    const code = await new Promise<number>((resolve) => {
      this.#onSuback = resolve;
      this.#socket.write(
        mqttPacket.generate({
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: [{ topic: filter, qos: 1 }],
        }),
      );
    });
    if (code !== 1) throw new Error(`the broker refused the subscription to ${filter} (${code})`);
    return { done };
  }

  #send(packet: PublishPacket): void {
    this.#nextId = (this.#nextId % 0xffff) + 1;
    packet.bytes.writeUInt16BE(this.#nextId, packet.idAt);
    this.#socket.write(packet.bytes);
  }

  /**
   * Publishes the packets in order, keeping at most `window` unacknowledged (identifiers are
   * reused only 65,535 packets later); `sent(k)` is called as packet k goes out. Resolves
   * when the broker has acknowledged them all.
   */
  publishAll(
    packets: readonly PublishPacket[],
    window: number,
    sent: (k: number) => void = () => {},
  ): Promise<void> {
    return this.#publish(packets, sent, (_next, inFlight) => inFlight < window, undefined);
  }

  /** Publishes one packet every 1/perSecond s, as a device on a schedule does. */
  publishPaced(
    packets: readonly PublishPacket[],
    perSecond: number,
    sent: (k: number) => void = () => {},
  ): Promise<void> {
    const started = performance.now();
    const dueAt = (k: number) => started + (k * 1000) / perSecond;
    return this.#publish(packets, sent, (next) => performance.now() >= dueAt(next), dueAt);
  }

  #publish(
    packets: readonly PublishPacket[],
    sent: (k: number) => void,
    mayGo: (next: number, inFlight: number) => boolean,
    dueAt: ((k: number) => number) | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      let next = 0;
      let acknowledged = 0;
      let timer: NodeJS.Timeout | undefined;
      const pump = () => {
        timer = undefined;
        this.#socket.cork();
        while (next < packets.length && mayGo(next, next - acknowledged)) {
          sent(next);
          this.#send(packets[next] as PublishPacket);
          next += 1;
        }
        this.#socket.uncork();
        if (dueAt && next < packets.length) {
          timer = setTimeout(pump, Math.max(0, dueAt(next) - performance.now()));
        }
      };
      const finish = (error?: Error) => {
        this.#onAcks = undefined;
        this.#onFailure = undefined;
        if (timer) clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      this.#onFailure = finish;
      this.#onAcks = (count) => {
        acknowledged += count;
        if (acknowledged >= packets.length) finish();
        else if (!dueAt) pump();
      };
      if (packets.length === 0) return finish();
      pump();
    });
  }

  close(): void {
    clearInterval(this.#ping);
    this.#onFailure = undefined;
    this.#socket.end(DISCONNECT);
  }
}
