import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
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
