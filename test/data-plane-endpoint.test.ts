/**
 * The local IoT data-plane endpoint driven by the real `@aws-sdk/client-iot-data-plane`, as
 * function code uses it, publishing into a real Mosquitto.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import {
  type RunningDataPlaneEndpoint,
  startDataPlaneEndpoint,
} from '../local/data-plane/endpoint.ts';
import { startMosquitto } from '../local/services/mosquitto.ts';

const stack = inject('testStack');
const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

function sdkClient(url: string): IoTDataPlaneClient {
  return new IoTDataPlaneClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

let endpoint: RunningDataPlaneEndpoint;
let iotData: IoTDataPlaneClient;
let subscriber: MqttClient;
const received: IPublishPacket[] = [];

beforeAll(async () => {
  endpoint = await startDataPlaneEndpoint({
    mqtt: { url: stack.mqttUrl, ...stack.mqttPlatform },
    log: quietLog,
  });
  iotData = sdkClient(endpoint.url);
  subscriber = await mqtt.connectAsync(stack.mqttUrl, {
    ...stack.mqttPlatform,
    clientId: unique('data-plane-test-subscriber'),
    protocolVersion: 5,
  });
  subscriber.on('message', (_topic, _payload, packet) => received.push(packet));
});
afterAll(async () => {
  iotData?.destroy();
  await subscriber?.endAsync();
  await endpoint?.stop();
});

async function subscribed(filter: string): Promise<(topic: string) => IPublishPacket[]> {
  await subscriber.subscribeAsync(filter, { qos: 1 });
  return (topic) => received.filter((packet) => packet.topic === topic);
}

describe('local IoT data-plane endpoint', () => {
  it('publishes what PublishCommand sends, byte for byte, at the requested QoS', async () => {
    const device = unique('dev');
    const topic = `devices/${device}/relay-1/set`;
    const messages = await subscribed(`devices/${device}/#`);
    const payload = new Uint8Array([0x7b, 0x00, 0xff, 0x7d]);
    const output = await iotData.send(new PublishCommand({ topic, qos: 1, payload }));
    expect(output.$metadata.httpStatusCode).toBe(200);
    await vi.waitFor(() => expect(messages(topic)).toHaveLength(1));
    const [packet] = messages(topic);
    expect(packet?.qos).toBe(1);
    expect(Buffer.from(packet?.payload ?? '')).toEqual(Buffer.from(payload));

    const json = JSON.stringify({ value: true, command_id: 'c-1' });
    await iotData.send(new PublishCommand({ topic, payload: Buffer.from(json) }));
    await vi.waitFor(() => expect(messages(topic)).toHaveLength(2));
    expect(messages(topic)[1]?.qos).toBe(0);
    expect(messages(topic)[1]?.payload.toString()).toBe(json);
  });

  it('passes retain and the MQTT 5 properties through', async () => {
    const device = unique('dev');
    const topic = `devices/${device}/config`;
    await iotData.send(
      new PublishCommand({
        topic,
        qos: 1,
        retain: true,
        payload: Buffer.from('{"interval":5}'),
        contentType: 'application/json',
        responseTopic: `devices/${device}/config/ack`,
        messageExpiry: 3600,
        correlationData: Buffer.from('corr-1').toString('base64'),
        payloadFormatIndicator: 'UTF8_DATA',
        userProperties: JSON.stringify([{ source: 'api' }, { source: 'test' }, { tenant: 't1' }]),
      }),
    );
    // A subscriber arriving later gets the retained message.
    const late = await mqtt.connectAsync(stack.mqttUrl, {
      ...stack.mqttPlatform,
      clientId: unique('data-plane-late'),
      protocolVersion: 5,
    });
    try {
      const packet = await new Promise<IPublishPacket>((resolve) => {
        late.on('message', (_t, _p, p) => resolve(p));
        void late.subscribeAsync(topic, { qos: 1 });
      });
      expect(packet.retain).toBe(true);
      expect(packet.payload.toString()).toBe('{"interval":5}');
      expect(packet.properties).toMatchObject({
        contentType: 'application/json',
        responseTopic: `devices/${device}/config/ack`,
        payloadFormatIndicator: true,
        userProperties: { source: ['api', 'test'], tenant: 't1' },
      });
      expect(Buffer.from(packet.properties?.correlationData ?? '').toString()).toBe('corr-1');
      expect(packet.properties?.messageExpiryInterval).toBeGreaterThan(3500);
    } finally {
      await late.endAsync();
      // Clears the retained message.
      await iotData.send(
        new PublishCommand({ topic, qos: 1, retain: true, payload: new Uint8Array() }),
      );
    }
  });

  it('answers invalid requests with the errors the SDK knows', async () => {
    await expect(
      iotData.send(new PublishCommand({ topic: 'devices/+/x', qos: 1, payload: Buffer.from('x') })),
    ).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: expect.stringContaining('wildcard'),
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      iotData.send(new PublishCommand({ topic: 'devices/a/x', qos: 2, payload: Buffer.from('x') })),
    ).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: 'qos must be 0 or 1, not 2',
    });
    await expect(
      iotData.send(
        new PublishCommand({ topic: 'devices/a/x', payload: Buffer.alloc(128 * 1024 + 1) }),
      ),
    ).rejects.toMatchObject({
      name: 'RequestEntityTooLargeException',
      $metadata: { httpStatusCode: 413 },
    });
  });

  it("refuses a topic outside the platform account's ACL", async () => {
    await expect(
      iotData.send(
        new PublishCommand({
          topic: `elsewhere/${unique('t')}`,
          qos: 1,
          payload: Buffer.from('x'),
        }),
      ),
    ).rejects.toMatchObject({ name: 'UnauthorizedException', $metadata: { httpStatusCode: 401 } });
  });

  it('answers other methods and paths in the AWS error shape', async () => {
    const get = await fetch(`${endpoint.url}/topics/devices%2Fa`);
    expect(get.status).toBe(405);
    expect(get.headers.get('x-amzn-errortype')).toBe('MethodNotAllowedException');
    expect(await get.json()).toEqual({ message: 'GET is not allowed on /topics' });
    const other = await fetch(`${endpoint.url}/things/x/shadow`, { method: 'POST', body: '{}' });
    expect(other.status).toBe(404);
    expect(other.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');
  });
});

describe('local IoT data-plane endpoint without a broker', () => {
  it('answers 503 while the broker is down and recovers when it is back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-data-plane-'));
    await chmod(dir, 0o755);
    const broker = await startMosquitto({ dataDir: dir });
    const own = await startDataPlaneEndpoint({
      mqtt: { url: broker.url, ...broker.platform },
      log: quietLog,
    });
    const client = sdkClient(own.url);
    try {
      await broker.stop();
      await vi.waitFor(
        () =>
          expect(
            client.send(
              new PublishCommand({ topic: 'devices/a/x', qos: 1, payload: Buffer.from('x') }),
            ),
          ).rejects.toMatchObject({
            name: 'ServiceUnavailableException',
            $metadata: { httpStatusCode: 503 },
          }),
        { timeout: 5000 },
      );
      await broker.start();
      await vi.waitFor(
        async () => {
          const output = await client.send(
            new PublishCommand({ topic: 'devices/a/x', qos: 1, payload: Buffer.from('x') }),
          );
          expect(output.$metadata.httpStatusCode).toBe(200);
        },
        { timeout: 10_000, interval: 200 },
      );
    } finally {
      client.destroy();
      await own.stop();
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with credentials the broker rejects', async () => {
    await expect(
      startDataPlaneEndpoint({
        mqtt: { url: stack.mqttUrl, username: stack.mqttPlatform.username, password: 'wrong' },
        log: quietLog,
      }),
    ).rejects.toThrow(/IoT data-plane endpoint cannot connect/);
  });
});
