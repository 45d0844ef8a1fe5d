/**
 * The local stack (`npm start`): PostgreSQL, InfluxDB and Mosquitto, the functions under
 * serverless-offline, and the dashboard, all in the foreground. Prints one READY line once
 * every part answers; Ctrl-C stops everything it started.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { migrate } from '../shared/db/migrate.ts';
import { isReservedDeviceId } from '../shared/devices/domain/model.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import { startDataPlaneEndpoint } from './data-plane/endpoint.ts';
import { startDemo } from './demo.ts';
import { journaledFilters, loadIotRulesConfig } from './iot-rules/config.ts';
import { startIotRulesEmulator } from './iot-rules/emulator.ts';
import { startExportFiles, startMailbox } from './mailbox.ts';
import { ensureBinaries, type LocalBinary, missingDemoPackages } from './services/binaries.ts';
import { startDashboard } from './services/dashboard.ts';
import { ensureDashboardBuilt } from './services/dashboard-build.ts';
import { answersPing, startInfluxdb } from './services/influxdb.ts';
import { generateSigningJwk } from './services/jwt-key.ts';
import { canConnect, missingBrokerPluginPackages, startMosquitto } from './services/mosquitto.ts';
import { postgresAnswers, startPostgres } from './services/postgres.ts';
import { freePort, isPortFree, reapStaleServer } from './services/process.ts';
import { readOrCreateSecret } from './services/secrets.ts';
import { startServerlessOffline } from './services/serverless-offline.ts';
import { readRunningStack } from './stack-file.ts';
import { type SupervisedService, Supervisor } from './supervisor.ts';
import { buildVirtualDevice } from './virtual-device.ts';

const port = z.coerce.number().int().min(1).max(65_535);
const settingsSchema = z
  .object({
    API_PORT: port.default(3000),
    MQTT_PORT: port.default(1883),
    DASHBOARD_PORT: port.optional(),
    LOCAL_DATA_DIR: z.string().min(1).default('.local'),
    // An admin (schema owner) URL of a PostgreSQL to use instead of starting one.
    DATABASE_URL: z.url().optional(),
    // An InfluxDB (v1 API) to use instead of starting one.
    INFLUX_URL: z.url().optional(),
    // A Mosquitto (with dynamic security) to use instead of starting one, and its accounts.
    MQTT_URL: z.url().optional(),
    MQTT_ADMIN_USERNAME: z.string().min(1).optional(),
    MQTT_ADMIN_PASSWORD: z.string().min(1).optional(),
    MQTT_PLATFORM_USERNAME: z.string().min(1).optional(),
    MQTT_PLATFORM_PASSWORD: z.string().min(1).optional(),
    // The devices' password file that broker's device-auth plugin reads (Docker: a shared
    // volume); without it that broker's devices get dynamic-security clients.
    MQTT_DEVICE_PASSWORD_FILE: z.string().min(1).optional(),
    // What devices are told to connect to, when not the local broker (e.g. in Docker).
    MQTT_PUBLIC_URL: z.string().min(1).optional(),
    // Where the API, WebSocket and dashboard listen (0.0.0.0 in a container) and the host
    // name printed in URLs.
    BIND_HOST: z.string().min(1).default('127.0.0.1'),
    PUBLIC_HOST: z.string().min(1).default('127.0.0.1'),
    WEBSOCKET_PORT: port.optional(),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    // 1: a demo tenant with a few virtual devices runs alongside (see local/demo.ts).
    DEMO: z
      .enum(['0', '1'])
      .default('1')
      .transform((value) => value === '1'),
  })
  .refine(
    (env) =>
      !env.MQTT_URL ||
      (env.MQTT_ADMIN_USERNAME &&
        env.MQTT_ADMIN_PASSWORD &&
        env.MQTT_PLATFORM_USERNAME &&
        env.MQTT_PLATFORM_PASSWORD),
    { message: 'MQTT_URL needs MQTT_ADMIN_USERNAME/PASSWORD and MQTT_PLATFORM_USERNAME/PASSWORD' },
  )
  // The platform's broker accounts must be names no device id may take (a device registered
  // under one would get that account's password file entry or replace it).
  .refine(
    (env) =>
      [env.MQTT_ADMIN_USERNAME, env.MQTT_PLATFORM_USERNAME].every(
        (name) => name === undefined || isReservedDeviceId(name),
      ),
    {
      message:
        "MQTT_ADMIN_USERNAME and MQTT_PLATFORM_USERNAME must be 'admin' or start with 'easysmart-' (names no device id may take)",
    },
  );

// The only place the supervisor reads its environment; the rest gets `settings`.
const inheritedEnvironment = { ...process.env };
const parsed = settingsSchema.safeParse(
  Object.fromEntries(Object.entries(inheritedEnvironment).filter(([, value]) => value !== '')),
);
if (!parsed.success) {
  const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  console.error(`[stack] invalid settings: ${problems}`);
  process.exit(2);
}
const settings = {
  ...parsed.data,
  DASHBOARD_PORT: parsed.data.DASHBOARD_PORT ?? parsed.data.API_PORT + 80,
};

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The application role's password, kept in the data directory and read by the functions.
const DATABASE_APP_PASSWORD_FILE = 'database-app-password';
const dataDir = path.resolve(settings.LOCAL_DATA_DIR);
const stackFile = path.join(dataDir, 'stack.json');
const rulesStatsFile = path.join(dataDir, 'iot-rules-stats.json');
const publicHost = settings.PUBLIC_HOST;
const apiUrl = `http://${publicHost}:${settings.API_PORT}`;
const mqttUrl =
  settings.MQTT_PUBLIC_URL ?? settings.MQTT_URL ?? `mqtt://${publicHost}:${settings.MQTT_PORT}`;
const dashboardUrl = `http://${publicHost}:${settings.DASHBOARD_PORT}`;

function log(service: string, message: string): void {
  console.log(`[${service}] ${message}`);
}

const supervisor = new Supervisor(log);
// Stops the builds that run beside the servers' start (the virtual device's make).
const buildsCancelled = new AbortController();
let exiting = false;
let stackFileWritten = false;

async function stopAndExit(code: number, reason?: string): Promise<void> {
  if (exiting) return;
  exiting = true;
  if (reason) log('stack', reason);
  log('stack', 'stopping');
  buildsCancelled.abort();
  await supervisor.shutdown();
  // Only ours: a start refused because another stack runs here leaves that stack's file.
  if (stackFileWritten) await rm(stackFile, { force: true });
  log('stack', 'stopped');
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => void stopAndExit(0, `${signal} received`));
}
supervisor.failure.then((reason) => stopAndExit(1, `${reason}; stopping everything`));

/** A server this stack uses but does not run: only its health is watched. */
function externalService(healthy: () => Promise<boolean>): SupervisedService {
  return { healthy, unexpectedExit: () => new Promise(() => {}), stop: async () => {} };
}

async function assertPortsFree(): Promise<void> {
  const wanted: Array<[string, number]> = [
    ['API_PORT', settings.API_PORT],
    ...(settings.MQTT_URL ? [] : [['MQTT_PORT', settings.MQTT_PORT] as [string, number]]),
    ['DASHBOARD_PORT', settings.DASHBOARD_PORT],
  ];
  for (const [name, value] of wanted) {
    if (!(await isPortFree(value))) {
      throw new Error(`port ${value} (${name}) is already in use: set ${name} to a free port`);
    }
  }
}

/**
 * Stops the servers a stack on this data directory left running when it was killed outright
 * (its servers normally die with it), so that this start finds their ports free. Refuses
 * when that stack is still running.
 */
async function reapStaleServers(): Promise<void> {
  const running = await readRunningStack(dataDir).catch(() => undefined);
  if (running && running.pid !== process.pid) {
    throw new Error(
      `a stack is already running with LOCAL_DATA_DIR=${dataDir} (pid ${running.pid}): stop it first or use another LOCAL_DATA_DIR`,
    );
  }
  for (const service of ['postgres', 'influxdb', 'mosquitto', 'serverless']) {
    const stale = await reapStaleServer(path.join(dataDir, service, 'server.pid'));
    if (stale)
      log('stack', `stopped the ${service} server (pid ${stale}) a killed stack left running`);
  }
}

async function main(): Promise<void> {
  await reapStaleServers();
  await assertPortsFree();
  const binaries: LocalBinary[] = settings.MQTT_URL ? [] : ['mosquitto', 'mosquitto_ctrl'];
  if (!settings.INFLUX_URL) binaries.push('influxd');
  ensureBinaries(binaries, (message) => log('stack', message), [
    ...(settings.DEMO ? missingDemoPackages() : []),
    // The stack's own broker loads a plugin it builds (its device credentials).
    ...(settings.MQTT_URL ? [] : missingBrokerPluginPackages()),
  ]);
  await mkdir(dataDir, { recursive: true });

  // Both builds run while the servers start: the dashboard is served from its build, and the
  // demo's devices are ready to run by READY.
  const dashboardBuilt = ensureDashboardBuilt({
    repoRoot,
    logFile: path.join(dataDir, 'dashboard-build.log'),
  });
  dashboardBuilt.catch(() => {});
  let demoUnavailable: string | undefined;
  let virtualDeviceBuilt: Promise<unknown> = Promise.resolve();
  if (settings.DEMO) {
    const missing = missingDemoPackages();
    if (missing.length > 0) {
      demoUnavailable =
        `the virtual devices need ${missing.join(', ')}: run 'sudo apt-get install -y ` +
        `${missing.join(' ')}' and restart (the platform runs without the demo)`;
    } else {
      await mkdir(path.join(dataDir, 'demo'), { recursive: true, mode: 0o700 });
      virtualDeviceBuilt = buildVirtualDevice({
        cancelled: buildsCancelled.signal,
        logFile: path.join(dataDir, 'demo', 'build.log'),
      });
      virtualDeviceBuilt.catch(() => {});
    }
  }

  const startDatabase = async () => {
    if (settings.DATABASE_URL) {
      return { adminUrl: settings.DATABASE_URL, service: undefined };
    }
    const server = await supervisor.start('postgres', (cancelled) =>
      startPostgres({ dataDir: path.join(dataDir, 'postgres'), cancelled }),
    );
    return { adminUrl: server.adminUrl, service: server };
  };
  const startTimeSeries = async () => {
    const externalUrl = settings.INFLUX_URL;
    if (externalUrl) {
      const url = externalUrl.replace(/\/+$/, '');
      await supervisor.start('influxdb', async () => externalService(() => answersPing(url)));
      return url;
    }
    const server = await supervisor.start('influxdb', (cancelled) =>
      startInfluxdb({ dataDir: path.join(dataDir, 'influxdb'), cancelled }),
    );
    return server.url;
  };

  const serverlessYmlPath = path.join(repoRoot, 'serverless.yml');
  // The rules' topics the stack's own broker journals for the rules emulator (an external
  // broker has no journal: the emulator subscribes to every rule's topic there).
  const journalTopics = settings.MQTT_URL
    ? []
    : journaledFilters(await loadIotRulesConfig({ serverlessYmlPath, stage: 'local' }));
  const startBroker = async () => {
    const externalUrl = settings.MQTT_URL;
    if (externalUrl) {
      const admin = {
        username: settings.MQTT_ADMIN_USERNAME as string,
        password: settings.MQTT_ADMIN_PASSWORD as string,
      };
      const platform = {
        username: settings.MQTT_PLATFORM_USERNAME as string,
        password: settings.MQTT_PLATFORM_PASSWORD as string,
      };
      await supervisor.start('mosquitto', async () =>
        externalService(() => canConnect(externalUrl, admin)),
      );
      return {
        url: externalUrl,
        admin,
        platform,
        devicePasswordFile: settings.MQTT_DEVICE_PASSWORD_FILE,
      };
    }
    return supervisor.start('mosquitto', (cancelled) =>
      startMosquitto({
        dataDir: path.join(dataDir, 'mosquitto'),
        port: settings.MQTT_PORT,
        cancelled,
        journalTopics,
      }),
    );
  };

  const [database, influxUrl, broker, jwtPrivateJwk, appPassword] = await Promise.all([
    startDatabase(),
    startTimeSeries(),
    startBroker(),
    readOrCreateSecret(path.join(dataDir, 'jwt-private-jwk.json'), generateSigningJwk),
    readOrCreateSecret(path.join(dataDir, DATABASE_APP_PASSWORD_FILE)),
  ]);
  log('stack', `postgres, influxdb and mosquitto are up (data in ${dataDir})`);

  const { appUrl } = await migrate({ adminUrl: database.adminUrl, appPassword });
  log('postgres', 'migrations applied');
  await ensureTimeseriesSchema(new InfluxClient({ url: influxUrl, database: DEFAULT_DATABASE }));
  log('influxdb', 'database and retention policies in place');
  if (!database.service) {
    await supervisor.start('postgres', async () =>
      externalService(() => postgresAnswers(database.adminUrl)),
    );
  }

  const componentLog = (service: string) => ({
    debug: () => {},
    info: (message: string) => log(service, message),
    warn: (message: string, fields?: Record<string, unknown>) =>
      log(service, `${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
    error: (message: string, fields?: Record<string, unknown>) =>
      log(service, `${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
  });
  const platformAccount = { url: broker.url, ...broker.platform };

  // Commands leave the functions through the AWS IoT data-plane SDK, answered here locally.
  const dataPlane = await supervisor.start('data-plane', async () => {
    const endpoint = await startDataPlaneEndpoint({
      mqtt: platformAccount,
      log: componentLog('data-plane'),
      clientId: `easysmart-data-plane-${settings.MQTT_PORT}`,
    });
    return {
      ...endpoint,
      healthy: async () => true,
      unexpectedExit: () => new Promise<string>(() => {}),
    };
  });

  // Alarm e-mail lands in a real SMTP server whose mailbox is a folder of .eml files, and
  // exports are served from a folder under signed, expiring links (S3's presigned URLs).
  const exportLinkSecret = await readOrCreateSecret(path.join(dataDir, 'export-link-key'));
  const mailbox = await supervisor.start('mailbox', async () => {
    const server = await startMailbox({ dir: path.join(dataDir, 'mailbox') });
    return {
      ...server,
      healthy: async () => true,
      unexpectedExit: () => new Promise<string>(() => {}),
    };
  });
  log('mailbox', `SMTP ${mailbox.url}, messages in ${mailbox.dir}`);
  const exportFiles = await supervisor.start('exports', async () => {
    const server = await startExportFiles({
      dir: path.join(dataDir, 'exports'),
      linkSecret: exportLinkSecret,
    });
    return {
      ...server,
      healthy: async () => true,
      unexpectedExit: () => new Promise<string>(() => {}),
    };
  });

  const websocketPort = settings.WEBSOCKET_PORT ?? (await freePort());
  // Chosen here so the functions know where to invoke each other (alarm notifications).
  const lambdaPort = await freePort();
  let apiReady = false;
  const api = await supervisor.start('api', (cancelled) =>
    startServerlessOffline({
      cancelled,
      serviceDir: repoRoot,
      workDir: path.join(dataDir, 'serverless'),
      httpPort: settings.API_PORT,
      websocketPort,
      lambdaPort,
      host: settings.BIND_HOST,
      stage: 'local',
      readinessPath: '/.well-known/jwks.json',
      env: functionEnvironment({
        appUrl,
        influxUrl,
        jwtPrivateJwk,
        broker,
        dataPlaneUrl: dataPlane.url,
        websocketManagementUrl: `http://127.0.0.1:${websocketPort}`,
        lambdaEndpoint: `http://127.0.0.1:${lambdaPort}`,
        smtpUrl: mailbox.url,
        exports: { url: exportFiles.url, linkSecret: exportLinkSecret },
      }),
      // The route table and bundling chatter stay in the log file; function output is shown.
      onOutputLine: (line) => {
        if (apiReady && worthShowing(line)) log('api', line);
      },
    }),
  );
  apiReady = true;
  log('api', `serverless-offline up (lambda ${api.lambdaEndpoint}, log ${api.logFile})`);

  // serverless-offline has no IoT events: this subscribes with each rule's filter and invokes.
  await supervisor.start('iot-rules', async () => {
    const journalDir = 'journalDir' in broker ? broker.journalDir : undefined;
    const emulator = await startIotRulesEmulator({
      serverlessYmlPath,
      stage: 'local',
      mqtt: platformAccount,
      lambdaEndpoint: api.lambdaEndpoint,
      deadLetterDir: path.join(dataDir, 'dead-letters'),
      // Fixed per stack, so the broker keeps what arrives while the stack is down.
      clientId: `easysmart-iot-rules-${settings.MQTT_PORT}`,
      log: componentLog('iot-rules'),
      journal: journalDir
        ? {
            dir: journalDir,
            checkpointFile: path.join(dataDir, 'iot-rules-journal-checkpoint'),
            topics: journalTopics,
          }
        : undefined,
    });
    // `kill -USR2 <pid>` writes what the rules emulator metered so far (npm run bench:cost).
    process.removeAllListeners('SIGUSR2');
    process.on('SIGUSR2', () => {
      writeFile(rulesStatsFile, JSON.stringify(emulator.stats())).catch((error: unknown) =>
        log('iot-rules', `could not write ${rulesStatsFile}: ${(error as Error).message}`),
      );
    });
    return {
      ...emulator,
      healthy: async () => emulator.stats().connected,
      unexpectedExit: () => new Promise<string>(() => {}),
    };
  });

  if (await dashboardBuilt) log('dashboard', 'built into dashboard/dist');
  await supervisor.start('dashboard', () =>
    startDashboard({
      port: settings.DASHBOARD_PORT,
      distDir: path.join(repoRoot, 'dashboard', 'dist'),
      apiUrl,
      mqttUrl,
      wsUrl: `ws://${publicHost}:${websocketPort}`,
      host: settings.BIND_HOST,
    }),
  );

  stackFileWritten = true;
  await writeFile(
    stackFile,
    `${JSON.stringify(
      {
        pid: process.pid,
        apiUrl,
        mqttUrl,
        dashboardUrl,
        databaseAdminUrl: database.adminUrl,
        databaseUrl: appUrl,
        influxUrl,
        mqttAdmin: broker.admin,
        mqttPlatform: broker.platform,
        lambdaEndpoint: api.lambdaEndpoint,
        websocketUrl: `ws://${publicHost}:${websocketPort}`,
      },
      null,
      2,
    )}\n`,
    { mode: 0o600 },
  );

  await supervisor.waitUntilHealthy(30_000);
  console.log(`READY api=${apiUrl} mqtt=${mqttUrl} dashboard=${dashboardUrl}`);

  // After READY: signing in, registering and building the firmware must not delay it, and
  // a demo that fails to start leaves the platform running.
  if (demoUnavailable) log('demo', `not started: ${demoUnavailable}`);
  else if (settings.DEMO) {
    supervisor
      .start('demo', (cancelled) =>
        startDemo({
          apiUrl,
          mqttUrl,
          dashboardUrl,
          dataDir,
          cancelled,
          virtualDeviceBuilt,
          log: (message) => log('demo', message),
        }),
      )
      .catch((error: unknown) => {
        if (!supervisor.shuttingDown) log('demo', `not started: ${(error as Error).message}`);
      });
  }
}

/**
 * What of the functions' output reaches the terminal: their warnings and errors and anything
 * unstructured. Per-request lines and info logs (one per ingest batch) stay in the log file.
 */
function worthShowing(line: string): boolean {
  const text = line.trim();
  if (!text) return false;
  if (/^(GET|POST|PUT|PATCH|DELETE|OPTIONS|HEAD) \//.test(text)) return false;
  if (/\(λ: [\w-]+\) RequestId:/.test(text)) return false;
  if (text.startsWith('{')) {
    try {
      const level = (JSON.parse(text) as { level?: unknown }).level;
      return level === 'warn' || level === 'error';
    } catch {
      return true;
    }
  }
  return true;
}

function functionEnvironment(parts: {
  appUrl: string;
  influxUrl: string;
  jwtPrivateJwk: string;
  /** Without a password file (an external broker without one), devices get dynamic-security clients. */
  broker: {
    url: string;
    admin: { username: string; password: string };
    devicePasswordFile?: string;
  };
  dataPlaneUrl: string;
  websocketManagementUrl: string;
  lambdaEndpoint: string;
  smtpUrl: string;
  exports: { url: string; linkSecret: string };
}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {
    // The SDK clients need some credentials to sign with; the local endpoints ignore them.
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_REGION: 'us-east-1',
    ...inheritedEnvironment,
    STAGE: 'local',
    LOG_LEVEL: settings.LOG_LEVEL,
    LOCAL_DATA_DIR: dataDir,
    // As on AWS, the application role's password is a secret the functions read once per
    // process (here the file in the data directory), not part of their configuration.
    DATABASE_URL: withoutPassword(parts.appUrl),
    SECRET_STORE: 'local-files',
    SECRET_DIR: dataDir,
    DATABASE_PASSWORD_SECRET: DATABASE_APP_PASSWORD_FILE,
    INFLUX_URL: parts.influxUrl,
    JWT_PRIVATE_JWK: parts.jwtPrivateJwk,
    DEVICE_PROVISIONER: 'mosquitto',
    MQTT_ADMIN_URL: parts.broker.url,
    MQTT_ADMIN_USERNAME: parts.broker.admin.username,
    MQTT_ADMIN_PASSWORD: parts.broker.admin.password,
    MQTT_PUBLIC_URL: mqttUrl,
    ...(parts.broker.devicePasswordFile
      ? { MQTT_DEVICE_PASSWORD_FILE: parts.broker.devicePasswordFile }
      : {}),
    IOT_DATA_ENDPOINT: parts.dataPlaneUrl,
    // Bundled functions cannot find the WASM backend's files next to themselves.
    TFJS_WASM_PATHS: `${path.join(repoRoot, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist')}/`,
    ML_MODEL_DIR: path.join(dataDir, 'models'),
    WEBSOCKET_MANAGEMENT_ENDPOINT: parts.websocketManagementUrl,
    // Functions invoke each other asynchronously as on AWS (alarm notifications, export and
    // pattern discovery jobs).
    LAMBDA_ENDPOINT: parts.lambdaEndpoint,
    ALARM_NOTIFIER_FUNCTION: 'easysmart-local-alarm-notifier',
    EXPORT_WORKER_FUNCTION: 'easysmart-local-export',
    PATTERNS_WORKER_FUNCTION: 'easysmart-local-patterns',
    SMTP_URL: parts.smtpUrl,
    // Webhook receivers a developer runs are on this machine; production refuses such addresses.
    WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
    EXPORT_DIR: path.join(dataDir, 'exports'),
    EXPORT_PUBLIC_URL: parts.exports.url,
    EXPORT_LINK_SECRET: parts.exports.linkSecret,
    // The one origin (by its two names) allowed to call the API from a browser (CORS).
    DASHBOARD_ORIGIN: dashboardUrl,
    DASHBOARD_ORIGIN_ALTERNATIVE: `http://${publicHost === 'localhost' ? '127.0.0.1' : 'localhost'}:${settings.DASHBOARD_PORT}`,
  };
  // Functions connect as the application role only, never as the schema owner.
  delete environment.DATABASE_ADMIN_URL;
  return environment;
}

function withoutPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  void stopAndExit(1, `failed to start: ${message}`);
});
