import { z } from 'zod';
import { isReservedDeviceId } from './devices/domain/model.ts';

/**
 * The one place that reads `process.env`. Every function, script and adapter gets its
 * settings from the object parsed here, so a missing or malformed variable fails at load
 * time with a message naming it, not halfway through a request.
 */

const nonEmpty = z.string().trim().min(1);
const url = z.url();

const configSchema = z
  .object({
    STAGE: z.string().default('local'),
    // Where the local stack keeps its data; operator commands find its database there.
    LOCAL_DATA_DIR: z.string().default('.local'),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),

    // Where the secrets named below are read from, once per process: AWS Secrets Manager,
    // or files in SECRET_DIR (default: the local data directory).
    SECRET_STORE: z.enum(['local-files', 'aws-secrets-manager']).default('local-files'),
    SECRET_DIR: z.string().optional(),

    // Application role: owns nothing, no BYPASSRLS (see migrations/). Its password is in
    // the URL, or (AWS, the local stack) in the secret DATABASE_PASSWORD_SECRET names.
    DATABASE_URL: url.optional(),
    DATABASE_PASSWORD_SECRET: nonEmpty.optional(),
    // Schema owner, used only by migrations and the operator's admin command; its user and
    // password may come from DATABASE_ADMIN_SECRET ({"username"?, "password"}).
    DATABASE_ADMIN_URL: url.optional(),
    DATABASE_ADMIN_SECRET: nonEmpty.optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(100).default(5),

    INFLUX_URL: url.optional(),
    INFLUX_DB: z.string().default('iot_data'),
    INFLUX_USERNAME: z.string().optional(),
    INFLUX_PASSWORD: z.string().optional(),
    INFLUX_TOKEN: z.string().optional(),
    // A secret holding {"token"} (or the token itself), read instead of INFLUX_TOKEN.
    INFLUX_TOKEN_SECRET: nonEmpty.optional(),
    // 1: retention policies (InfluxDB 1.x); 2: buckets with DBRP mappings (InfluxDB 2.x,
    // InfluxDB Cloud, Timestream for InfluxDB), which need INFLUX_ORG and a token.
    INFLUX_VERSION: z.enum(['1', '2']).default('1'),
    INFLUX_ORG: z.string().optional(),

    JWT_ISSUER: nonEmpty.default('easysmart'),
    JWT_AUDIENCE: nonEmpty.default('easysmart-api'),
    // A private JWK (JSON) used to sign access tokens; its public half is published as JWKS.
    // Only the function that signs (auth) has it; the others verify with JWT_PUBLIC_JWKS.
    JWT_PRIVATE_JWK: z.string().optional(),
    JWT_PUBLIC_JWKS: z.string().optional(),
    JWT_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),

    // Sign-in attempts that pass before backoff starts: per login from one address, per
    // login from anywhere, per address; sign-ups per address. The wait doubles from 1 s.
    LOGIN_FREE_ATTEMPTS: z.coerce.number().int().min(1).default(5),
    LOGIN_ACCOUNT_FREE_ATTEMPTS: z.coerce.number().int().min(1).default(20),
    LOGIN_SOURCE_FREE_ATTEMPTS: z.coerce.number().int().min(1).default(50),
    SIGNUP_SOURCE_FREE_ATTEMPTS: z.coerce.number().int().min(1).default(5),
    // The longest wait per address; a login from anywhere waits at most a minute, so no
    // attacker can keep its owner out.
    LOGIN_MAX_DELAY_SECONDS: z.coerce.number().int().min(1).default(900),
    BCRYPT_ROUNDS: z.coerce.number().int().min(4).max(15).default(10),
    // bcrypt runs on the function's one thread: this many at once, this many waiting, then 503.
    BCRYPT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    BCRYPT_MAX_QUEUED: z.coerce.number().int().min(0).max(10_000).default(20),

    COMMAND_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
    // A device that does not announce how often it reports is taken to report this often.
    DEVICE_REPORT_INTERVAL_S: z.coerce.number().int().min(1).max(86_400).default(60),
    // Silent for this many reporting intervals (after its last-seen time could have been
    // written), an online device is marked offline.
    DEVICE_SILENCE_FACTOR: z.coerce.number().int().min(2).max(100).default(3),

    // Where trained models are kept: a folder (local, docker) or an S3 bucket (AWS).
    ML_MODEL_STORE: z.enum(['file', 's3']).default('file'),
    ML_MODEL_DIR: z.string().optional(),
    ML_MODEL_BUCKET: z.string().optional(),
    ML_RETRAIN_DAYS: z.coerce.number().int().min(1).max(365).default(7),
    // TensorFlow.js backend for training: 'wasm' here; 'tensorflow' where tfjs-node exists.
    TFJS_BACKEND: z.string().default('wasm'),
    TFJS_WASM_PATHS: z.string().optional(),

    DEVICE_PROVISIONER: z.enum(['mosquitto', 'aws-iot']).default('mosquitto'),
    MQTT_ADMIN_URL: url.optional(),
    MQTT_ADMIN_USERNAME: z.string().optional(),
    MQTT_ADMIN_PASSWORD: z.string().optional(),
    // What a device is told to connect to (shown with its credential).
    MQTT_PUBLIC_URL: z.string().optional(),
    // Devices' credentials in this Mosquitto password file (the broker's password_file, on
    // the same machine) instead of the dynamic-security plugin: see local/services/mosquitto.ts.
    MQTT_DEVICE_PASSWORD_FILE: z.string().optional(),

    AWS_REGION: z.string().default('us-east-1'),
    IOT_DEVICE_POLICY_NAME: z.string().default('easysmart-device'),
    // Fleet provisioning by claim (infra/iot-fleet-provisioning.yml): with both, a bulk
    // registration on AWS IoT issues one claim credential instead of a certificate per device.
    IOT_CLAIM_POLICY_NAME: z.string().min(1).optional(),
    IOT_PROVISIONING_TEMPLATE_NAME: z.string().min(1).optional(),
    IOT_DATA_ENDPOINT: url.optional(),
    // Alarm notifications. Webhooks to loopback, private or link-local addresses are refused
    // unless this is set (the local stack, whose receivers run on this machine).
    WEBHOOK_ALLOW_PRIVATE_ADDRESSES: z.enum(['true', 'false']).default('false'),
    // E-mail through Amazon SES (AWS) or an SMTP server (SMTP_URL: the local stack's mailbox).
    MAIL_TRANSPORT: z.enum(['ses', 'smtp']).default('smtp'),
    SMTP_URL: url.optional(),
    MAIL_FROM: z.string().default('EasySmart alarms <alarms@easysmart.invalid>'),
    // The function that sends notifications, invoked asynchronously when alarms change;
    // LAMBDA_ENDPOINT points the Lambda client at serverless-offline locally.
    ALARM_NOTIFIER_FUNCTION: z.string().optional(),
    LAMBDA_ENDPOINT: url.optional(),
    // Where exports are written: a folder served by the local stack, or an S3 bucket. Their
    // links expire after EXPORT_LINK_TTL_SECONDS.
    EXPORT_STORE: z.enum(['file', 's3']).default('file'),
    EXPORT_DIR: z.string().optional(),
    EXPORT_BUCKET: z.string().optional(),
    EXPORT_PUBLIC_URL: url.optional(),
    EXPORT_LINK_TTL_SECONDS: z.coerce.number().int().min(60).max(604_800).default(3600),
    // Signs the local export links (S3 signs its own); the local stack generates it.
    EXPORT_LINK_SECRET: z.string().min(16).optional(),
    // The function that runs tenant-wide export jobs, invoked asynchronously.
    EXPORT_WORKER_FUNCTION: z.string().optional(),
    // The function that runs pattern discovery jobs, invoked asynchronously.
    PATTERNS_WORKER_FUNCTION: z.string().optional(),
    // API Gateway's WebSocket management endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}).
    WEBSOCKET_MANAGEMENT_ENDPOINT: url.optional(),
  })
  // Settings are required where they are used (`required`), not here: a command that never
  // talks to the broker must not need its admin account. Only a half-given account is wrong.
  .superRefine((env, ctx) => {
    const brokerAdmin = ['MQTT_ADMIN_URL', 'MQTT_ADMIN_USERNAME', 'MQTT_ADMIN_PASSWORD'] as const;
    if (!brokerAdmin.some((key) => env[key])) return;
    // Device ids can never take a reserved name, so the broker's admin account must have one.
    if (env.MQTT_ADMIN_USERNAME && !isReservedDeviceId(env.MQTT_ADMIN_USERNAME)) {
      ctx.addIssue({
        code: 'custom',
        path: ['MQTT_ADMIN_USERNAME'],
        message: "must be 'admin' or start with 'easysmart-' (names no device id may take)",
      });
    }
    for (const key of brokerAdmin) {
      if (!env[key]) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `required with ${brokerAdmin.filter((other) => env[other]).join(' and ')}`,
        });
      }
    }
  });

export type RawConfig = z.infer<typeof configSchema>;

export interface AppConfig {
  stage: string;
  localDataDir: string;
  logLevel: RawConfig['LOG_LEVEL'];
  secrets: { store: RawConfig['SECRET_STORE']; dir: string };
  database: {
    url?: string;
    passwordSecret?: string;
    adminUrl?: string;
    adminSecret?: string;
    poolMax: number;
  };
  influx: {
    url?: string;
    db: string;
    username?: string;
    password?: string;
    token?: string;
    tokenSecret?: string;
    /** Which server's schema API the migration and purges use (see INFLUX_VERSION). */
    version: '1' | '2';
    org?: string;
  };
  jwt: {
    issuer: string;
    audience: string;
    privateJwk?: string;
    publicJwks?: string;
    ttlSeconds: number;
  };
  login: {
    freeAttempts: number;
    accountFreeAttempts: number;
    sourceFreeAttempts: number;
    signUpSourceFreeAttempts: number;
    maxDelaySeconds: number;
    bcryptRounds: number;
    bcryptConcurrency: number;
    bcryptMaxQueued: number;
  };
  ml: {
    modelStore: RawConfig['ML_MODEL_STORE'];
    modelDir: string;
    modelBucket?: string;
    retrainDays: number;
    tfjsBackend: string;
    tfjsWasmPaths?: string;
  };
  devices: {
    commandTimeoutSeconds: number;
    /** How silence is judged: see `SilencePolicy` (shared/devices/domain/presence.ts). */
    silence: { factor: number; defaultReportIntervalS: number; lastSeenWriteS: number };
    provisioner: RawConfig['DEVICE_PROVISIONER'];
    mqttAdmin?: { url: string; username: string; password: string };
    mqttDevicePasswordFile?: string;
    mqttPublicUrl?: string;
  };
  alarms: {
    allowPrivateWebhooks: boolean;
    mail: { transport: 'ses' | 'smtp'; smtpUrl?: string; from: string };
    notifierFunction?: string;
    lambdaEndpoint?: string;
  };
  exports: {
    store: 'file' | 's3';
    dir: string;
    bucket?: string;
    publicUrl?: string;
    linkTtlSeconds: number;
    linkSecret?: string;
    workerFunction?: string;
  };
  patterns: {
    workerFunction?: string;
  };
  aws: {
    region: string;
    iotDevicePolicyName: string;
    iotClaimPolicyName?: string;
    iotProvisioningTemplateName?: string;
    iotDataEndpoint?: string;
    websocketManagementEndpoint?: string;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses an environment; pure so tests can feed their own. */
export function parseConfig(env: Record<string, string | undefined>): AppConfig {
  const blanksRemoved = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = configSchema.safeParse(blanksRemoved);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const c = result.data;
  return {
    stage: c.STAGE,
    localDataDir: c.LOCAL_DATA_DIR,
    logLevel: c.LOG_LEVEL,
    secrets: { store: c.SECRET_STORE, dir: c.SECRET_DIR ?? c.LOCAL_DATA_DIR },
    database: {
      url: c.DATABASE_URL,
      passwordSecret: c.DATABASE_PASSWORD_SECRET,
      adminUrl: c.DATABASE_ADMIN_URL,
      adminSecret: c.DATABASE_ADMIN_SECRET,
      poolMax: c.DATABASE_POOL_MAX,
    },
    influx: {
      url: c.INFLUX_URL,
      db: c.INFLUX_DB,
      username: c.INFLUX_USERNAME,
      password: c.INFLUX_PASSWORD,
      token: c.INFLUX_TOKEN,
      tokenSecret: c.INFLUX_TOKEN_SECRET,
      version: c.INFLUX_VERSION,
      org: c.INFLUX_ORG,
    },
    jwt: {
      issuer: c.JWT_ISSUER,
      audience: c.JWT_AUDIENCE,
      privateJwk: c.JWT_PRIVATE_JWK,
      publicJwks: c.JWT_PUBLIC_JWKS,
      ttlSeconds: c.JWT_TTL_SECONDS,
    },
    login: {
      freeAttempts: c.LOGIN_FREE_ATTEMPTS,
      accountFreeAttempts: c.LOGIN_ACCOUNT_FREE_ATTEMPTS,
      sourceFreeAttempts: c.LOGIN_SOURCE_FREE_ATTEMPTS,
      signUpSourceFreeAttempts: c.SIGNUP_SOURCE_FREE_ATTEMPTS,
      maxDelaySeconds: c.LOGIN_MAX_DELAY_SECONDS,
      bcryptRounds: c.BCRYPT_ROUNDS,
      bcryptConcurrency: c.BCRYPT_CONCURRENCY,
      bcryptMaxQueued: c.BCRYPT_MAX_QUEUED,
    },
    ml: {
      modelStore: c.ML_MODEL_STORE,
      modelDir: c.ML_MODEL_DIR ?? `${c.LOCAL_DATA_DIR}/models`,
      modelBucket: c.ML_MODEL_BUCKET,
      retrainDays: c.ML_RETRAIN_DAYS,
      tfjsBackend: c.TFJS_BACKEND,
      tfjsWasmPaths: c.TFJS_WASM_PATHS,
    },
    devices: {
      commandTimeoutSeconds: c.COMMAND_TIMEOUT_SECONDS,
      silence: {
        factor: c.DEVICE_SILENCE_FACTOR,
        defaultReportIntervalS: c.DEVICE_REPORT_INTERVAL_S,
        // Ingestion writes a busy device's last-seen time at most this often.
        lastSeenWriteS: 60,
      },
      provisioner: c.DEVICE_PROVISIONER,
      mqttAdmin:
        c.MQTT_ADMIN_URL && c.MQTT_ADMIN_USERNAME && c.MQTT_ADMIN_PASSWORD
          ? {
              url: c.MQTT_ADMIN_URL,
              username: c.MQTT_ADMIN_USERNAME,
              password: c.MQTT_ADMIN_PASSWORD,
            }
          : undefined,
      mqttPublicUrl: c.MQTT_PUBLIC_URL ?? c.MQTT_ADMIN_URL,
      mqttDevicePasswordFile: c.MQTT_DEVICE_PASSWORD_FILE,
    },
    alarms: {
      allowPrivateWebhooks: c.WEBHOOK_ALLOW_PRIVATE_ADDRESSES === 'true',
      mail: { transport: c.MAIL_TRANSPORT, smtpUrl: c.SMTP_URL, from: c.MAIL_FROM },
      notifierFunction: c.ALARM_NOTIFIER_FUNCTION,
      lambdaEndpoint: c.LAMBDA_ENDPOINT,
    },
    exports: {
      store: c.EXPORT_STORE,
      dir: c.EXPORT_DIR ?? `${c.LOCAL_DATA_DIR}/exports`,
      bucket: c.EXPORT_BUCKET,
      publicUrl: c.EXPORT_PUBLIC_URL,
      linkTtlSeconds: c.EXPORT_LINK_TTL_SECONDS,
      linkSecret: c.EXPORT_LINK_SECRET,
      workerFunction: c.EXPORT_WORKER_FUNCTION,
    },
    patterns: {
      workerFunction: c.PATTERNS_WORKER_FUNCTION,
    },
    aws: {
      region: c.AWS_REGION,
      iotDevicePolicyName: c.IOT_DEVICE_POLICY_NAME,
      iotClaimPolicyName: c.IOT_CLAIM_POLICY_NAME,
      iotProvisioningTemplateName: c.IOT_PROVISIONING_TEMPLATE_NAME,
      iotDataEndpoint: c.IOT_DATA_ENDPOINT,
      websocketManagementEndpoint: c.WEBSOCKET_MANAGEMENT_ENDPOINT,
    },
  };
}

/** Throws a ConfigError naming the variable when a required setting is absent. */
export function required<T>(value: T | undefined, variable: string): T {
  if (value === undefined || value === null || value === '') {
    throw new ConfigError(`invalid configuration: ${variable} is required here`);
  }
  return value;
}

let loaded: AppConfig | undefined;

/** The process's configuration, parsed once on first use. */
export function config(): AppConfig {
  loaded ??= parseConfig(process.env);
  return loaded;
}
