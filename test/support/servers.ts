import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningInfluxdb, startInfluxdb } from '../../local/services/influxdb.ts';
import { type RunningMosquitto, startMosquitto } from '../../local/services/mosquitto.ts';

export { freePort, waitUntil } from '../../local/services/process.ts';

/**
 * A temporary directory the servers' system users (postgres, mosquitto) can pass through;
 * `remove()` deletes it.
 */
export async function temporaryDataDir(
  prefix: string,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `easysmart-${prefix}-`));
  await chmod(dir, 0o755);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A broker of the test's own, for tests that stop and restart it; the shared one from the
 * global setup must keep running for the other files. Call `dispose()` in `afterAll`.
 */
export async function privateMosquitto(): Promise<RunningMosquitto & { dispose(): Promise<void> }> {
  const data = await temporaryDataDir('mosquitto');
  const broker = await startMosquitto({ dataDir: data.dir }).catch(async (error: unknown) => {
    await data.remove();
    throw error;
  });
  return {
    ...broker,
    dispose: async () => {
      await broker.stop();
      await data.remove();
    },
  };
}

/**
 * The environment that runs the local stack (`startLocalStack`) on `broker` instead of a
 * broker of its own, so that a test can stop and restart the broker under the platform.
 */
export function onBroker(broker: RunningMosquitto): Record<string, string> {
  return {
    MQTT_URL: broker.url,
    MQTT_ADMIN_USERNAME: broker.admin.username,
    MQTT_ADMIN_PASSWORD: broker.admin.password,
    MQTT_PLATFORM_USERNAME: broker.platform.username,
    MQTT_PLATFORM_PASSWORD: broker.platform.password,
    // Devices go in the broker's password file, as on the stack's own broker.
    MQTT_DEVICE_PASSWORD_FILE: broker.devicePasswordFile,
  };
}

/** An InfluxDB of the test's own, for tests that stop and restart it. */
export async function privateInfluxdb(): Promise<RunningInfluxdb & { dispose(): Promise<void> }> {
  const data = await temporaryDataDir('influxdb');
  const influx = await startInfluxdb({ dataDir: data.dir }).catch(async (error: unknown) => {
    await data.remove();
    throw error;
  });
  return {
    ...influx,
    dispose: async () => {
      await influx.stop();
      await data.remove();
    },
  };
}
