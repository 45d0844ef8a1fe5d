import { readFile } from 'node:fs/promises';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { signUp } from './support/tenants.ts';

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const admin = adminPool(stack);

/** Whether the broker's password file (where devices' credentials are) has a line for it. */
async function brokerClientExists(deviceId: string): Promise<boolean> {
  const lines = (await readFile(stack.mqttDevicePasswordFile, 'utf8')).split('\n');
  return lines.some((line) => line.startsWith(`${deviceId}:`));
}

async function canConnect(deviceId: string, password: string): Promise<boolean> {
  try {
    const client = await mqtt.connectAsync(stack.mqttUrl, {
      username: deviceId,
      password,
      clientId: deviceId,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    await client.endAsync(true);
    return true;
  } catch {
    return false;
  }
}

describe('registration and removal of one device id under concurrency', () => {
  it('10 concurrent delete + re-register pairs: no 500, and the device always has exactly its one credential', async () => {
    const { token } = await signUp(auth, { plan: 'professional', admin });

    const deviceId = unique('press');
    const register = () =>
      callRoute(devices, 'POST /api/devices', {
        token,
        body: { device_id: deviceId, name: 'Press', type: 'hydraulic' },
      });
    let current = await register();
    expect(current.status).toBe(201);
    const statuses: number[] = [];
    for (let pair = 0; pair < 10; pair++) {
      const [removed, again] = await Promise.all([
        callRoute(devices, 'DELETE /api/devices/{id}', {
          token,
          params: { id: String(current.body.device.id) },
        }),
        register(),
      ]);
      statuses.push(removed.status, again.status);
      expect(removed.status).toBe(204);
      expect([201, 409]).toContain(again.status);

      const listed = await callRoute(devices, 'GET /api/devices', { token });
      const inRegistry = listed.body.devices.filter(
        (device: { device_id: string }) => device.device_id === deviceId,
      );
      if (again.status === 201) {
        // Re-registered after the removal: its new credential, and only that one, works.
        expect(inRegistry).toHaveLength(1);
        expect(await canConnect(deviceId, again.body.credentials.password)).toBe(true);
        expect(await canConnect(deviceId, current.body.credentials.password)).toBe(false);
        current = again;
      } else {
        // Refused while the old one still stood, then removed: no row and no credential.
        expect(inRegistry).toHaveLength(0);
        expect(await brokerClientExists(deviceId)).toBe(false);
        current = await register();
        expect(current.status).toBe(201);
      }
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM device_credentials c JOIN devices d ON d.id = c.device_id WHERE d.device_id = $1',
        [deviceId],
      );
      expect(rows[0].n).toBe(1);
    }
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
  });
});
