import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  DynsecControlClient,
  InvalidDeviceIdError,
  MosquittoDynsecProvisioner,
} from '../shared/devices/adapters/mosquitto-dynsec-provisioner.ts';
import { MosquittoPasswordFileProvisioner } from '../shared/devices/adapters/mosquitto-password-file-provisioner.ts';
import { ReservedDeviceIdError } from '../shared/devices/domain/model.ts';
import { privateMosquitto, waitUntil } from './support/servers.ts';

const stack = inject('testStack');
const provisioner = new MosquittoDynsecProvisioner({
  url: stack.mqttUrl,
  ...stack.mqttAdmin,
  brokerUrlForDevices: stack.mqttUrl,
});

const openClients: MqttClient[] = [];
let platform: MqttClient;
const delivered: Array<{ topic: string; payload: string }> = [];

function uniqueDeviceId(): string {
  return `esp32-${randomBytes(5).toString('hex')}`;
}

async function connect(options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(stack.mqttUrl, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  openClients.push(client);
  return client;
}

/** The CONNACK error a refused connection gets, or undefined if it connected. */
async function connectError(options: IClientOptions): Promise<number | undefined> {
  try {
    const client = await connect(options);
    await client.endAsync(true);
    return undefined;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

function deliveredOn(topic: string) {
  return delivered.filter((message) => message.topic === topic);
}

beforeAll(async () => {
  platform = await connect({ ...stack.mqttPlatform, clientId: `platform-${uniqueDeviceId()}` });
  platform.on('message', (topic, payload) =>
    delivered.push({ topic, payload: payload.toString() }),
  );
  await platform.subscribeAsync('devices/#', { qos: 1 });
});

afterAll(async () => {
  await Promise.allSettled(openClients.map((client) => client.endAsync(true)));
  await provisioner.close();
});

describe('MosquittoDynsecProvisioner against a real Mosquitto', () => {
  it('lets a provisioned device connect and publish under its own topics only', async () => {
    const deviceId = uniqueDeviceId();
    const otherId = uniqueDeviceId();
    const credentials = await provisioner.provision(deviceId);
    expect(credentials).toMatchObject({
      client_id: deviceId,
      username: deviceId,
      broker_url: stack.mqttUrl,
    });
    expect(credentials.password).toMatch(/^[A-Za-z0-9_-]{32}$/);

    const device = await connect({
      clientId: deviceId,
      username: deviceId,
      password: credentials.password,
    });
    await device.publishAsync(`devices/${deviceId}/status`, 'online', { qos: 1 });
    await device.publishAsync(`devices/${otherId}/status`, 'spoofed', { qos: 1 });
    // A marker after the spoofed message: once it arrives, the spoofed one would have too.
    await device.publishAsync(`devices/${deviceId}/marker`, 'done', { qos: 1 });

    await waitUntil(
      'the marker',
      async () => deliveredOn(`devices/${deviceId}/marker`).length > 0,
      {
        timeoutMs: 5000,
      },
    );
    expect(deliveredOn(`devices/${deviceId}/status`)).toEqual([
      { topic: `devices/${deviceId}/status`, payload: 'online' },
    ]);
    expect(deliveredOn(`devices/${otherId}/status`)).toEqual([]);
  });

  it("delivers nothing from another device's topics, whatever it subscribes to", async () => {
    // The stack's broker refuses a dynamic-security client's subscriptions outside its
    // role; a broker may instead grant them and refuse per message (as the stack's
    // device-auth plugin does for its devices): either way nothing of the other arrives.
    const deviceId = uniqueDeviceId();
    const otherId = uniqueDeviceId();
    const { password } = await provisioner.provision(deviceId);
    const device = await connect({
      clientId: deviceId,
      username: deviceId,
      password,
      protocolVersion: 5,
    });
    const received: string[] = [];
    device.on('message', (topic) => received.push(topic));
    await device
      .subscribeAsync(['#', 'devices/#', `devices/${otherId}/#`], { qos: 1 })
      .catch(() => {});
    await device.subscribeAsync(`devices/${deviceId}/+/set`, { qos: 1 });

    await platform.publishAsync(`devices/${otherId}/relay1/set`, '{"value":false}', { qos: 1 });
    await platform.publishAsync(`devices/${deviceId}/relay1/set`, '{"value":true}', { qos: 1 });
    // Its own command, published after the other's, arrives: the other's would have too.
    await waitUntil('its own command', async () => received.length > 0, { timeoutMs: 5000 });
    expect(received.every((topic) => topic.startsWith(`devices/${deviceId}/`))).toBe(true);
    expect(received).toContain(`devices/${deviceId}/relay1/set`);
  });

  it('refuses a wrong password, an unknown client and a wrong client id', async () => {
    const deviceId = uniqueDeviceId();
    const { password } = await provisioner.provision(deviceId);
    // MQTT 3.1.1 CONNACK 5: not authorized.
    expect(
      await connectError({ clientId: deviceId, username: deviceId, password: `${password}x` }),
    ).toBe(5);
    const stranger = uniqueDeviceId();
    expect(await connectError({ clientId: stranger, username: stranger, password })).toBe(5);
    expect(
      await connectError({ clientId: uniqueDeviceId(), username: deviceId, password }),
    ).toBeDefined();
    expect(await connectError({ clientId: deviceId, username: deviceId, password })).toBe(
      undefined,
    );
  });

  it('drops a connected session on revoke and refuses the device afterwards', async () => {
    const deviceId = uniqueDeviceId();
    const { password } = await provisioner.provision(deviceId);
    const device = await connect({ clientId: deviceId, username: deviceId, password });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));

    await provisioner.revoke(deviceId);
    await closed;
    expect(await connectError({ clientId: deviceId, username: deviceId, password })).toBe(5);
    // Revoking again, or a device that never existed, is not an error.
    await provisioner.revoke(deviceId);
    await provisioner.revoke(uniqueDeviceId());
  });

  it('replaces the old password when a device is provisioned again', async () => {
    const deviceId = uniqueDeviceId();
    const first = await provisioner.provision(deviceId);
    const device = await connect({
      clientId: deviceId,
      username: deviceId,
      password: first.password,
    });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));

    const second = await provisioner.provision(deviceId);
    expect(second.password).not.toBe(first.password);
    await closed;
    const old = { clientId: deviceId, username: deviceId, password: first.password };
    expect(await connectError(old)).toBe(5);
    const current = await connect({ ...old, password: second.password });
    await current.publishAsync(`devices/${deviceId}/status`, 'again', { qos: 1 });
    await waitUntil(
      'the re-provisioned device',
      async () => deliveredOn(`devices/${deviceId}/status`).length > 0,
      {
        timeoutMs: 5000,
      },
    );
  });

  it('rejects invalid device ids before touching the broker', async () => {
    const offline = new MosquittoDynsecProvisioner({
      // Nothing listens here: reaching the broker would time out instead of throwing at once.
      url: 'mqtt://127.0.0.1:9',
      username: 'nobody',
      password: 'nothing',
    });
    for (const invalid of ['', 'a/b', 'dev#', 'dev+1', 'spa ce', 'x'.repeat(129), 'ü']) {
      await expect(offline.provision(invalid)).rejects.toBeInstanceOf(InvalidDeviceIdError);
      await expect(offline.revoke(invalid)).rejects.toBeInstanceOf(InvalidDeviceIdError);
    }
    await offline.close();
  });

  it('fails with a clear error when the broker refuses the admin credential', async () => {
    const wrong = new MosquittoDynsecProvisioner({
      url: stack.mqttUrl,
      username: stack.mqttAdmin.username,
      password: 'not-the-password',
      connectTimeoutMs: 3000,
    });
    await expect(wrong.provision(uniqueDeviceId())).rejects.toThrow(
      /could not connect to Mosquitto .* as admin/,
    );
    await wrong.close();
  });
});

describe('MosquittoDynsecProvisioner when its broker restarts', () => {
  it('fails clearly while the broker is down and recovers on the same connection', async () => {
    const broker = await privateMosquitto();
    const ownProvisioner = new MosquittoDynsecProvisioner({
      url: broker.url,
      ...broker.admin,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });
    try {
      await ownProvisioner.provision(uniqueDeviceId());
      await broker.stop();
      await expect(ownProvisioner.provision(uniqueDeviceId())).rejects.toThrow(
        /did not answer getClient within 1000 ms/,
      );
      await broker.start();
      const deviceId = uniqueDeviceId();
      await waitUntil(
        'the provisioner to reconnect',
        async () => Boolean(await ownProvisioner.provision(deviceId)),
        { timeoutMs: 10_000, intervalMs: 200 },
      );
      // Dynsec state survives the restart: the admin account and earlier clients still work.
      const { password } = await ownProvisioner.provision(deviceId);
      const device = await mqtt.connectAsync(broker.url, {
        clientId: deviceId,
        username: deviceId,
        password,
        reconnectPeriod: 0,
      });
      await device.endAsync(true);
    } finally {
      await ownProvisioner.close();
      await broker.dispose();
    }
  });
});

describe("the platform's own broker identities (real Mosquitto)", () => {
  it('refuses reserved ids and the admin account before touching the broker', async () => {
    for (const id of [
      stack.mqttAdmin.username,
      stack.mqttPlatform.username,
      'easysmart-iot-rules-1883',
      'EasySmart-data-plane-1883',
    ]) {
      await expect(provisioner.provision(id), id).rejects.toBeInstanceOf(ReservedDeviceIdError);
    }
    // Both platform accounts still work.
    expect(await connectError({ ...stack.mqttAdmin, clientId: uniqueDeviceId() })).toBeUndefined();
    expect(
      await connectError({ ...stack.mqttPlatform, clientId: uniqueDeviceId() }),
    ).toBeUndefined();
  });

  it('neither replaces nor deletes a broker client it did not create for that device', async () => {
    const control = new DynsecControlClient({ url: stack.mqttUrl, ...stack.mqttAdmin });
    const name = `gateway-${randomBytes(5).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    try {
      await control.executeOrThrow([{ command: 'createClient', username: name, password }]);
      await expect(provisioner.provision(name)).rejects.toBeInstanceOf(ReservedDeviceIdError);
      await provisioner.revoke(name);
      expect(await connectError({ username: name, password, clientId: name })).toBeUndefined();
    } finally {
      await control.executeOrThrow([{ command: 'deleteClient', username: name }]);
      await control.close();
    }
  });
});

describe("MosquittoPasswordFileProvisioner on the stack's broker (its device-auth plugin)", () => {
  const files = new MosquittoPasswordFileProvisioner({
    passwordFile: stack.mqttDevicePasswordFile as string,
    brokerUrl: stack.mqttUrl,
  });

  it('lets a device connect only as itself and publish only under its own topics', async () => {
    const deviceId = uniqueDeviceId();
    const neighbourId = uniqueDeviceId();
    const { password } = await files.provision(deviceId);
    await files.provision(neighbourId);
    // Its credential under another client id would close that device's session.
    expect(await connectError({ clientId: neighbourId, username: deviceId, password })).toBe(5);
    expect(await connectError({ clientId: deviceId, username: neighbourId, password })).toBe(5);
    const device = await connect({ clientId: deviceId, username: deviceId, password });
    await device.publishAsync(`devices/${neighbourId}/status`, 'spoofed', { qos: 1 });
    await device.publishAsync(`devices/${deviceId}/status`, 'mine', { qos: 1 });
    await waitUntil(
      'its own status',
      async () => deliveredOn(`devices/${deviceId}/status`).length > 0,
      { timeoutMs: 5000 },
    );
    // Published before its own, the spoof would have arrived first.
    expect(deliveredOn(`devices/${neighbourId}/status`)).toEqual([]);
  });

  it('takes a registration again: the old password stops working and its session closes', async () => {
    const deviceId = uniqueDeviceId();
    const first = await files.provision(deviceId);
    const device = await connect({
      clientId: deviceId,
      username: deviceId,
      password: first.password,
    });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const second = await files.provision(deviceId);
    await closed;
    const old = { clientId: deviceId, username: deviceId, password: first.password };
    expect(await connectError(old)).toBe(5);
    expect(await connectError({ ...old, password: second.password })).toBeUndefined();
  });

  it('drops a revoked device whose session is open and refuses it afterwards', async () => {
    const [kept, revoked] = [uniqueDeviceId(), uniqueDeviceId()];
    const credentials = await files.provisionMany([kept, revoked]);
    const connectAs = (deviceId: string) =>
      connect({
        clientId: deviceId,
        username: deviceId,
        password: credentials.get(deviceId)?.password,
      });
    const [keptClient, revokedClient] = [await connectAs(kept), await connectAs(revoked)];
    const closed = new Promise<void>((resolve) => revokedClient.once('close', () => resolve()));
    await files.revoke(revoked);
    await closed;
    expect(keptClient.connected).toBe(true);
    const password = credentials.get(revoked)?.password;
    expect(await connectError({ clientId: revoked, username: revoked, password })).toBe(5);
  });
});
