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
import { secretStore } from '../shared/composition.ts';
import { type AppConfig, ConfigError, config, required } from '../shared/config.ts';
import { APP_ROLE, migrate } from '../shared/db/migrate.ts';
import { type SecretStore, secretField } from '../shared/secrets/domain/secrets.ts';
import { InfluxClient, influxCredentials } from '../shared/timeseries/adapters/influx-client.ts';
import { ensureTimeseriesSchema } from '../shared/timeseries/adapters/influx-schema.ts';
import {
  ensureInfluxV2Schema,
  type InfluxV2Options,
  influxV2Settings,
} from '../shared/timeseries/adapters/influx-v2-schema.ts';

export interface MigrationTargets {
  adminUrl: string;
  appPassword: string;
  influx: InfluxClient;
  influxDatabase: string;
  /** InfluxDB 2.x (buckets and DBRP mappings through the v2 API) instead of 1.x policies. */
  influxV2?: InfluxV2Options;
}

/**
 * What the migrations need, with the credentials the configuration keeps in secrets read:
 * the schema owner's from DATABASE_ADMIN_SECRET ({"username"?, "password"}) into its URL,
 * and the application role's password from DATABASE_PASSWORD_SECRET (or DATABASE_URL).
 */
export async function migrationTargets(
  settings: AppConfig = config(),
  secrets: () => SecretStore = secretStore,
): Promise<MigrationTargets> {
  const { database, influx } = settings;
  const adminUrl = new URL(required(database.adminUrl, 'DATABASE_ADMIN_URL'));
  if (database.adminSecret) {
    const credentials = JSON.parse(await secrets().read(database.adminSecret)) as {
      username?: unknown;
      password?: unknown;
    };
    if (typeof credentials.password !== 'string') {
      throw new ConfigError(`invalid configuration: ${database.adminSecret} has no "password"`);
    }
    if (typeof credentials.username === 'string') adminUrl.username = credentials.username;
    adminUrl.password = credentials.password;
  }
  const appUrl = new URL(required(database.url, 'DATABASE_URL'));
  if (decodeURIComponent(appUrl.username) !== APP_ROLE) {
    throw new ConfigError(
      `invalid configuration: DATABASE_URL must connect as ${APP_ROLE}, the role the migrations grant to`,
    );
  }
  const appPassword = database.passwordSecret
    ? await secretField(secrets(), database.passwordSecret, 'password')
    : decodeURIComponent(appUrl.password);
  if (!appPassword) {
    throw new ConfigError('invalid configuration: DATABASE_URL has no password for the app role');
  }
  return {
    adminUrl: adminUrl.toString(),
    appPassword,
    influx: new InfluxClient({
      url: required(influx.url, 'INFLUX_URL'),
      database: influx.db,
      ...influxCredentials(influx, secrets),
    }),
    influxDatabase: influx.db,
    ...(influx.version === '2' ? { influxV2: influxV2Settings(settings, secrets) } : {}),
  };
}

export async function migrateAll(
  targets: MigrationTargets,
  log: (message: string) => void = () => {},
): Promise<void> {
  await migrate({ adminUrl: targets.adminUrl, appPassword: targets.appPassword, log });
  log('postgresql: migrations applied');
  if (targets.influxV2) {
    await ensureInfluxV2Schema(targets.influxV2);
    log('influxdb: buckets and DBRP mappings in place');
  } else {
    await ensureTimeseriesSchema(targets.influx, { database: targets.influxDatabase });
    log('influxdb: database and retention policies in place');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  migrationTargets()
    .then((targets) => migrateAll(targets, (line) => console.log(line)))
    .catch((error: unknown) => {
      console.error(error instanceof ConfigError ? error.message : error);
      process.exit(error instanceof ConfigError ? 2 : 1);
    });
}
