import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../shared/config.ts';
import { callRoute } from './support/api-event.ts';
import { repoRoot, tsxCli } from './support/local-stack.ts';
import { temporaryDataDir } from './support/servers.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { signUp } from './support/tenants.ts';

/**
 * A device id naming one of the platform's own broker identities (its MQTT account, the
 * broker admin, the rules stage's or the data plane's client id) is refused at registration,
 * through the public route, and the platform's accounts keep working. Written through the
 * routes only, so that it runs against the code before reserved ids existed (25cc348, with
 * the sign-up written out), where registering the platform account's name replaced that
 * account's password.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;

const connects = (account: { username: string; password: string }) =>
  new Promise<boolean>((resolve) => {
    const client = mqtt.connect(stack.mqttUrl, {
      ...account,
      clientId: unique('identity-check'),
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.once('connect', () => {
      client.end(true);
      resolve(true);
    });
    client.once('error', () => {
      client.end(true);
      resolve(false);
    });
  });

describe("the platform's own broker identities", () => {
  it('are refused as device ids with 400 reserved_device_id, and the platform accounts still connect', async () => {
    const owner = await signUp(auth);
    // The platform's account first: on code without the check, taking it breaks the rest.
    const ids = [
      stack.mqttPlatform.username,
      'easysmart-iot-rules-1883',
      'easysmart-data-plane-1883',
      stack.mqttAdmin.username,
    ];
    const answers = [];
    for (const id of ids) {
      const answer = await callRoute(devices, 'POST /api/devices', {
        token: owner.token,
        body: { device_id: id, name: 'Hijack', type: 'sensor' },
      });
      answers.push({ id, status: answer.status, code: answer.body?.error?.code });
    }
    expect(answers).toEqual(ids.map((id) => ({ id, status: 400, code: 'reserved_device_id' })));
    expect(await connects(stack.mqttPlatform)).toBe(true);
    expect(await connects(stack.mqttAdmin)).toBe(true);
  });
});

describe("an operator's own broker (MQTT_URL)", () => {
  it('must give the platform accounts reserved names: the functions and npm start refuse others', async () => {
    const admin = (username: string) => ({
      MQTT_ADMIN_URL: 'mqtt://broker.internal:1883',
      MQTT_ADMIN_USERNAME: username,
      MQTT_ADMIN_PASSWORD: 'admin-secret',
    });
    expect(() => parseConfig(admin('root'))).toThrow(/MQTT_ADMIN_USERNAME/);
    expect(parseConfig(admin('admin')).devices.mqttAdmin?.username).toBe('admin');

    const data = await temporaryDataDir('broker-names');
    try {
      const started = await promisify(execFile)(process.execPath, [tsxCli, 'local/start.ts'], {
        cwd: repoRoot,
        env: {
          ...process.env,
          LOCAL_DATA_DIR: data.dir,
          MQTT_URL: 'mqtt://127.0.0.1:9',
          MQTT_ADMIN_USERNAME: 'admin',
          MQTT_ADMIN_PASSWORD: 'admin-secret',
          MQTT_PLATFORM_USERNAME: 'platform',
          MQTT_PLATFORM_PASSWORD: 'platform-secret',
        },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      );
      expect(started.code).toBe(2);
      expect(started.stderr).toMatch(
        /MQTT_PLATFORM_USERNAME must be 'admin' or start with 'easysmart-'/,
      );
    } finally {
      await data.remove();
    }
  });
});
