import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from '../local/services/binaries.ts';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { generateSigningJwk } from '../local/services/jwt-key.ts';
import { startMosquitto } from '../local/services/mosquitto.ts';
import { startPostgres } from '../local/services/postgres.ts';
import { migrate } from '../shared/db/migrate.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import { temporaryDataDir } from './support/servers.ts';
import type { TestStack } from './support/test-stack.ts';

/**
 * Starts real PostgreSQL, InfluxDB and Mosquitto for the whole run, on free ports in one
 * temporary directory, and hands their addresses to the tests through `inject('testStack')`.
 * A server that cannot start fails the run: tests never skip for want of one.
 */
const firmwareDir = path.join(import.meta.dirname, '..', 'firmware');

/**
 * Several files start the virtual device through its launcher, which builds it when a
 * source is newer than the binary. Building it once here, before any file runs, keeps those
 * launchers from building at the same moment and keeps compile time out of their timeouts.
 */
async function buildVirtualDevice(): Promise<void> {
  try {
    // mqtt-operations (the firmware's MQTT operations, for the IoT policy test) shares its objects.
    await promisify(execFile)('make', [
      '-j2',
      '-C',
      firmwareDir,
      'virtual-device',
      'mqtt-operations',
    ]);
  } catch (error) {
    const { message, stdout, stderr } = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      'the virtual device did not build (it needs g++, make and libmosquitto-dev): ' +
        `${message}\n${stdout ?? ''}${stderr ?? ''}`,
    );
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const data = await temporaryDataDir('test');
  const stops: Array<() => Promise<void>> = [];
  const teardown = async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await data.remove();
  };
  try {
    ensureBinaries(['mosquitto', 'mosquitto_ctrl', 'influxd']);
    // allSettled, not all: a server still starting when another fails must be stopped too.
    const [postgres, influx, mosquitto, virtualDevice] = await Promise.allSettled([
      startPostgres({ dataDir: path.join(data.dir, 'postgres') }),
      startInfluxdb({ dataDir: path.join(data.dir, 'influxdb') }),
      startMosquitto({ dataDir: path.join(data.dir, 'mosquitto') }),
      buildVirtualDevice(),
    ]);
    for (const started of [postgres, influx, mosquitto]) {
      if (started.status === 'fulfilled') stops.push(started.value.stop);
    }
    if (virtualDevice.status === 'rejected') throw virtualDevice.reason;
    if (postgres.status === 'rejected') throw postgres.reason;
    if (influx.status === 'rejected') throw influx.reason;
    if (mosquitto.status === 'rejected') throw mosquitto.reason;

    const { appUrl } = await migrate({
      adminUrl: postgres.value.adminUrl,
      appPassword: 'test-app-password',
    });
    await ensureTimeseriesSchema(
      new InfluxClient({ url: influx.value.url, database: DEFAULT_DATABASE }),
    );
    const testStack: TestStack = {
      databaseAdminUrl: postgres.value.adminUrl,
      databaseUrl: appUrl,
      influxUrl: influx.value.url,
      mqttUrl: mosquitto.value.url,
      mqttAdmin: mosquitto.value.admin,
      mqttPlatform: mosquitto.value.platform,
      mqttDevicePasswordFile: mosquitto.value.devicePasswordFile,
      jwtPrivateJwk: await generateSigningJwk(),
      exportDir: path.join(data.dir, 'exports'),
    };
    project.provide('testStack', testStack);
    return teardown;
  } catch (error) {
    await teardown().catch(() => {});
    throw error;
  }
}
