/** The servers the global setup started for this run; JSON-serialisable for `provide`. */
export interface TestStack {
  /** Superuser URL to the migrated `easysmart` database. */
  databaseAdminUrl: string;
  /** The application role (no BYPASSRLS), as the functions connect. */
  databaseUrl: string;
  influxUrl: string;
  mqttUrl: string;
  /** May use Mosquitto's dynamic-security API only. */
  mqttAdmin: { username: string; password: string };
  /** Publishes and subscribes under devices/#. */
  mqttPlatform: { username: string; password: string };
  /** Devices' credentials: the broker's password file. */
  mqttDevicePasswordFile: string;
  /** ES256 private JWK as a JSON string, the format of JWT_PRIVATE_JWK. */
  jwtPrivateJwk: string;
  /** Where exports are written (the local folder store), removed with the run's data. */
  exportDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    testStack: TestStack;
  }
}

/** The environment variables a function deployed against this stack would get. */
export function stackEnvironment(stack: TestStack): Record<string, string> {
  return {
    STAGE: 'test',
    LOG_LEVEL: 'error',
    DATABASE_URL: stack.databaseUrl,
    DATABASE_ADMIN_URL: stack.databaseAdminUrl,
    INFLUX_URL: stack.influxUrl,
    JWT_PRIVATE_JWK: stack.jwtPrivateJwk,
    DEVICE_PROVISIONER: 'mosquitto',
    MQTT_ADMIN_URL: stack.mqttUrl,
    MQTT_ADMIN_USERNAME: stack.mqttAdmin.username,
    MQTT_ADMIN_PASSWORD: stack.mqttAdmin.password,
    MQTT_PUBLIC_URL: stack.mqttUrl,
    MQTT_DEVICE_PASSWORD_FILE: stack.mqttDevicePasswordFile,
    // Exports go to the run's folder; a test that fetches a link serves it (local/mailbox.ts).
    EXPORT_DIR: stack.exportDir,
    EXPORT_PUBLIC_URL: 'http://127.0.0.1:9/',
    EXPORT_LINK_SECRET: 'test-export-link-secret',
    // Every in-process request comes from 127.0.0.1 and the files share one database: the
    // per-address limits would throttle the suite itself. Tests of throttling set their own.
    LOGIN_SOURCE_FREE_ATTEMPTS: '1000000',
    SIGNUP_SOURCE_FREE_ATTEMPTS: '1000000',
  };
}
