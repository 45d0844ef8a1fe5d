/**
 * Brings a stage's databases to the schema this code expects: PostgreSQL migrations (and
 * the application role's password) and InfluxDB's database and retention policies (dropping
 * the rollup continuous queries earlier versions created). Idempotent, so it runs on every deploy: in AWS through the migrate
 * function (infra/functions/migrate.ts, a CloudFormation custom resource), elsewhere as
 *
 *   DATABASE_ADMIN_URL=... DATABASE_URL=... INFLUX_URL=... npx tsx infra/migrate.ts
 *
 * DATABASE_URL is the application role's URL the functions use; its password is the one
 * the role gets, so the functions' URL and the role can never disagree.
 */
import { type AppConfig, ConfigError, config, required } from '../shared/config.ts';
import { APP_ROLE, migrate } from '../shared/db/migrate.ts';
import { InfluxClient, influxAuth } from '../shared/timeseries/influx-client.ts';
import { ensureTimeseriesSchema } from '../shared/timeseries/schema.ts';

export interface MigrationTargets {
  adminUrl: string;
  appPassword: string;
  influx: InfluxClient;
  influxDatabase: string;
}

export function migrationTargets(settings: AppConfig = config()): MigrationTargets {
  const { database, influx } = settings;
  const adminUrl = required(database.adminUrl, 'DATABASE_ADMIN_URL');
  const appUrl = new URL(required(database.url, 'DATABASE_URL'));
  if (decodeURIComponent(appUrl.username) !== APP_ROLE) {
    throw new ConfigError(
      `invalid configuration: DATABASE_URL must connect as ${APP_ROLE}, the role the migrations grant to`,
    );
  }
  const appPassword = decodeURIComponent(appUrl.password);
  if (!appPassword) {
    throw new ConfigError('invalid configuration: DATABASE_URL has no password for the app role');
  }
  const auth = influxAuth(influx);
  return {
    adminUrl,
    appPassword,
    influx: new InfluxClient({
      url: required(influx.url, 'INFLUX_URL'),
      database: influx.db,
      ...(auth ? { auth } : {}),
    }),
    influxDatabase: influx.db,
  };
}

export async function migrateAll(
  targets: MigrationTargets,
  log: (message: string) => void = () => {},
): Promise<void> {
  await migrate({ adminUrl: targets.adminUrl, appPassword: targets.appPassword, log });
  log('postgresql: migrations applied');
  await ensureTimeseriesSchema(targets.influx, { database: targets.influxDatabase });
  log('influxdb: database and retention policies in place');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  migrateAll(migrationTargets(), (line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
