/**
 * The benchmark's MQTT clients: a minimal MQTT 3.1.1 client that publishes with QoS 1 (the
 * devices, and the raw broker run's publisher) and counts QoS 1 messages it subscribed to
 * (the raw broker run's subscriber). Packets are made before the clock starts and sent with
 * at most a window of them unacknowledged. mqtt.js spent about 9 us of CPU per message: on
 * this machine's two cores, shared with the broker and the platform, as much as the broker
 * itself, although real devices publish from CPUs of their own, and a raw broker run with
 * mqtt.js at both ends measured mqtt.js more than Mosquitto.
 */
import net from 'node:net';
import { utf8Field, varint } from '../local/iot-rules/mqtt-session.ts';

export interface PublishPacket {
  bytes: Buffer;
  /** Where the packet identifier goes; it is written as the packet is sent. */
  idAt: number;
}

const PUBLISH = 0x30;
const PUBLISH_QOS1 = 0x32;
const PUBACK = 0x40;
const CONNACK = 0x20;
const SUBACK = 0x90;

/** A QoS 1 PUBLISH of `payload` to `topic`. */
export function publishPacket(topic: string, payload: Buffer): PublishPacket {
  const topicField = utf8Field(topic);
  const header = Buffer.from([PUBLISH_QOS1, ...varint(topicField.length + 2 + payload.length)]);
  return {
    bytes: Buffer.concat([header, topicField, Buffer.alloc(2), payload]),
    idAt: header.length + topicField.length,
  };
}

export class LeanMqttClient {
  readonly #socket: net.Socket;
  #pending = Buffer.alloc(0);
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
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    const fail = (error: Error) => {
      this.#failure ??= error;
      this.#onFailure?.(this.#failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the broker closed the connection')));
    // Keepalive is 60 s; a run can outlast it.
    this.#ping = setInterval(() => socket.write(Buffer.from([0xc0, 0x00])), 30_000).unref();
  }

  static async connect(
    url: string,
    account: { clientId: string; username: string; password: string },
  ): Promise<LeanMqttClient> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port || 1883) });
    const publisher = new LeanMqttClient(socket);
    const payload = Buffer.concat([
      utf8Field('MQTT'),
      // Level 4 (3.1.1); flags: username, password, clean session; keepalive 60 s.
      Buffer.from([0x04, 0xc2, 0x00, 60]),
      utf8Field(account.clientId),
      utf8Field(account.username),
      utf8Field(account.password),
    ]);
    const code = await new Promise<number>((resolve, reject) => {
      publisher.#onConnack = resolve;
      publisher.#onFailure = reject;
      socket.write(Buffer.from([0x10, ...varint(payload.length)]));
      socket.write(payload);
    });
    if (code !== 0) {
      publisher.close();
      throw new Error(`the broker refused ${account.clientId} (CONNACK return code ${code})`);
    }
    return publisher;
  }

  #read(chunk: Buffer): void {
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    let acks = 0;
    let messages = 0;
    const pubacks: Buffer[] = [];
    while (data.length >= 2) {
      let length = 0;
      let multiplier = 1;
      let at = 1;
      let complete = false;
      while (at < data.length && at <= 4) {
        const byte = data[at] as number;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        at += 1;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || data.length < at + length) break;
      const type = (data[0] as number) & 0xf0;
      if (type === PUBACK) acks += 1;
      else if (type === PUBLISH) {
        messages += 1;
        if (((data[0] as number) & 0x06) === 0x02) {
          // QoS 1: the packet identifier follows the topic.
          const idAt = at + 2 + data.readUInt16BE(at);
          pubacks.push(Buffer.from([PUBACK, 0x02, data[idAt] as number, data[idAt + 1] as number]));
        }
      } else if (type === CONNACK) this.#onConnack?.(data[at + 1] as number);
      else if (type === SUBACK) this.#onSuback?.(data[at + 2] as number);
      data = data.subarray(at + length);
    }
    this.#pending = data.length > 0 ? Buffer.from(data) : Buffer.alloc(0);
    if (pubacks.length > 0) this.#socket.write(Buffer.concat(pubacks));
    if (messages > 0) this.#onMessages?.(messages);
    if (acks > 0) this.#onAcks?.(acks);
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
    const body = Buffer.concat([Buffer.from([0x00, 0x01]), utf8Field(filter), Buffer.from([1])]);
    const code = await new Promise<number>((resolve) => {
      this.#onSuback = resolve;
      this.#socket.write(Buffer.concat([Buffer.from([0x82, ...varint(body.length)]), body]));
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
    this.#socket.end(Buffer.from([0xe0, 0x00]));
  }
}
