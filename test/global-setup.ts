import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from '../local/services/binaries.ts';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { generateSigningJwk } from '../local/services/jwt-key.ts';
import { startMosquitto } from '../local/services/mosquitto.ts';
import { startPostgres } from '../local/services/postgres.ts';
import { migrate } from '../shared/db/migrate.ts';
import { InfluxClient } from '../shared/timeseries/influx-client.ts';
import { DEFAULT_DATABASE, ensureTimeseriesSchema } from '../shared/timeseries/schema.ts';
import { temporaryDataDir } from './support/servers.ts';
import type { TestStack } from './support/test-stack.ts';

/**
 * Starts real PostgreSQL, InfluxDB and Mosquitto for the whole run, on free ports in one
 * temporary directory, and hands their addresses to the tests through `inject('testStack')`.
 * A server that cannot start fails the run: tests never skip for want of one.
 */
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
    const [postgres, influx, mosquitto] = await Promise.allSettled([
      startPostgres({ dataDir: path.join(data.dir, 'postgres') }),
      startInfluxdb({ dataDir: path.join(data.dir, 'influxdb') }),
      startMosquitto({ dataDir: path.join(data.dir, 'mosquitto') }),
    ]);
    for (const started of [postgres, influx, mosquitto]) {
      if (started.status === 'fulfilled') stops.push(started.value.stop);
    }
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
      jwtPrivateJwk: await generateSigningJwk(),
    };
    project.provide('testStack', testStack);
    return teardown;
  } catch (error) {
    await teardown().catch(() => {});
    throw error;
  }
}
