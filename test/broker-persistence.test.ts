import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMosquitto, startMosquitto } from '../local/services/mosquitto.ts';
import { temporaryDataDir, waitUntil } from './support/servers.ts';

/**
 * The local broker as `npm start` configures it, killed outright (kill -9) while it holds a
 * backlog for an offline persistent session (the rules stage's, when that stage is down):
 * every QoS 1 message it acknowledged before its last save must still be delivered after it
 * restarts. (Messages acknowledged within the second before a crash can be lost: see
 * BROKER_AUTOSAVE.)
 */

let data: Awaited<ReturnType<typeof temporaryDataDir>>;
let broker: RunningMosquitto;

beforeAll(async () => {
  data = await temporaryDataDir('broker-persistence');
  broker = await startMosquitto({ dataDir: data.dir });
});

afterAll(async () => {
  await broker?.stop();
  await data?.remove();
});

const brokerPid = () =>
  (JSON.parse(readFileSync(path.join(data.dir, 'server.pid'), 'utf8')) as { pid: number }).pid;

describe('the local broker killed with a backlog for an offline session', () => {
  it('delivers every acknowledged QoS 1 message after it restarts', async () => {
    const subscriberId = 'persistence-rules-stage';
    const session = { clientId: subscriberId, clean: false, reconnectPeriod: 0 };
    const subscriber = await mqtt.connectAsync(broker.url, { ...broker.platform, ...session });
    await subscriber.subscribeAsync('devices/persist/#', { qos: 1 });
    await subscriber.endAsync();

    const publisher = await mqtt.connectAsync(broker.url, {
      ...broker.platform,
      clientId: 'persistence-device',
      reconnectPeriod: 0,
    });
    const count = 500;
    // Resolved only once the broker's PUBACK arrived: these are the acknowledged ones.
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        publisher.publishAsync('devices/persist/telemetry', String(i), { qos: 1 }),
      ),
    );
    const acknowledgedAt = Date.now();
    await publisher.endAsync();

    // Killed once the broker has saved since the last acknowledgement, as when a backlog sat
    // there (a save comes every second; with the old 30 s setting it does not come in time).
    const saveFile = path.join(data.dir, 'state', 'mosquitto.db');
    await waitUntil(
      'the broker to save after the last PUBACK',
      async () => statSync(saveFile).mtimeMs > acknowledgedAt,
      { timeoutMs: 5000, intervalMs: 50 },
    ).catch(() => {});
    const died = broker.unexpectedExit();
    process.kill(brokerPid(), 'SIGKILL');
    expect(await died).toMatch(/killed by SIGKILL/);
    await broker.start();

    const received = new Set<string>();
    // Listening before the session resumes: the broker sends the backlog right behind CONNACK.
    const again = mqtt.connect(broker.url, { ...broker.platform, ...session });
    again.on('message', (_topic, payload) => received.add(payload.toString()));
    await waitUntil('every acknowledged message to arrive', async () => received.size >= count, {
      timeoutMs: 10_000,
      intervalMs: 50,
    }).catch(() => {});
    await again.endAsync();
    expect(received.size).toBe(count);
  });
});
