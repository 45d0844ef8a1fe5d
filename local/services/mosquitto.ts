import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { DynsecControlClient } from '../../shared/devices/adapters/mosquitto-dynsec-provisioner.ts';
import { MAX_PAYLOAD_BYTES } from '../../shared/ingestion/domain/payload-limits.ts';
import { findBinary } from './binaries.ts';
import { freePort, type ManagedProcess, spawnUntilReady } from './process.ts';
import { readOrCreateSecret } from './secrets.ts';
import { assertTraversable, serviceAccountWhenRoot } from './system-user.ts';

export const ADMIN_USERNAME = 'admin';
export const PLATFORM_USERNAME = 'easysmart-platform';
const PLATFORM_ROLE = 'easysmart-platform';

/**
 * When the broker writes its in-memory state (sessions, subscriptions, retained and queued
 * messages) to its persistence file. Mosquitto 2.0 has no write-ahead log: whatever it
 * acknowledged after its last save is gone if it is killed.
 */
export interface BrokerAutosave {
  /** true: save after `interval` changes (queued messages, subscriptions, retained messages); false: every `interval` seconds. */
  onChanges: boolean;
  interval: number;
}

/**
 * Saved every second: sessions, subscriptions, retained messages and what is queued for
 * clients (commands for an offline device, status messages for the rules stage). A crash
 * loses what changed since (every 30 s, as before, it lost up to 30 s). The readings do not
 * depend on it: the rules' journal takes them before the broker acknowledges them
 * (mosquitto-journal.c). Saving after every queued message would hold the broker to a few
 * hundred messages a second, each save writing and fsyncing the whole state
 * (`npm run bench:broker`, bench/README.md).
 */
export const BROKER_AUTOSAVE: BrokerAutosave = { onChanges: false, interval: 1 };

export interface StartMosquittoOptions {
  /** Stops waiting for the server to come up (the stack is shutting down). */
  cancelled?: AbortSignal;
  /** Directory owned by this service: config, dynsec state, persistence, secrets, log. */
  dataDir: string;
  port?: number;
  host?: string;
  /** BROKER_AUTOSAVE unless a benchmark compares another setting. */
  autosave?: BrokerAutosave;
  /**
   * Topic filters whose client messages the broker appends to its journal (the rules
   * emulator's input) before acknowledging them; none: no journal.
   */
  journalTopics?: readonly string[];
  /** Bytes after which the journal starts a new segment file. Default 64 MB. */
  journalSegmentBytes?: number;
}

export interface MqttCredentials {
  username: string;
  password: string;
}

export interface RunningMosquitto {
  url: string;
  port: number;
  /** Devices' credentials, one line each, read by the broker's device-auth plugin as they are appended. */
  devicePasswordFile: string;
  /** The journal's segment files (see mosquitto-journal.c), when `journalTopics` were given. */
  journalDir: string | undefined;
  /** May use the dynamic-security API only. */
  admin: MqttCredentials;
  /** Publishes and subscribes under devices/# (rules emulator, data-plane endpoint). */
  platform: MqttCredentials;
  /** Resolves with a message if the broker exits without `stop()`; renewed by each `start()`. */
  unexpectedExit(): Promise<string>;
  /** True when the admin can open an MQTT session. */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
  /** Starts it again after `stop()`, same port and state. */
  start(): Promise<void>;
}

const pluginCandidates = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
  '/usr/lib64/mosquitto_dynamic_security.so',
];

function findDynsecPlugin(): string {
  const known = pluginCandidates.find((candidate) => existsSync(candidate));
  if (known) return known;
  // Other multiarch triplets: ask dpkg where the mosquitto package put it.
  try {
    const listed = execFileSync('dpkg', ['-L', 'mosquitto'], { encoding: 'utf8' })
      .split('\n')
      .find((file) => file.endsWith('/mosquitto_dynamic_security.so'));
    if (listed && existsSync(listed)) return listed;
  } catch {
    // not a dpkg system
  }
  throw new Error(
    `mosquitto's dynamic security plugin is missing: run 'sudo apt-get install -y mosquitto' (2.0 or later)`,
  );
}

/**
 * The largest MQTT packet the broker takes: AWS IoT Core's 128 KB payload, plus a topic of
 * up to AWS's 256 bytes and the packet's header and MQTT 5 properties.
 */
export const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024;

/** The plugins' C sources: device credentials read incrementally from the password file, and the rules' journal. */
const DEVICE_AUTH_SOURCE = fileURLToPath(new URL('./mosquitto-device-auth.c', import.meta.url));
const JOURNAL_SOURCE = fileURLToPath(new URL('./mosquitto-journal.c', import.meta.url));

/** What building the broker's plugins needs, and the Debian/Ubuntu package of each. */
const pluginToolchain: ReadonlyArray<{ package: string; present: () => boolean }> = [
  { package: 'gcc', present: () => findBinary('cc') !== undefined },
  { package: 'mosquitto-dev', present: () => existsSync('/usr/include/mosquitto_broker.h') },
  { package: 'libssl-dev', present: () => existsSync('/usr/include/openssl/evp.h') },
];

/** The packages still missing to build the broker's plugins. */
export function missingBrokerPluginPackages(): string[] {
  return pluginToolchain.filter((tool) => !tool.present()).map((tool) => tool.package);
}

/**
 * Builds a broker plugin once per version of its source (in the temp directory, where every
 * stack and test on the machine finds it, and where the broker's own user can read it);
 * returns the library's path.
 */
function brokerPlugin(name: string, sourceFile: string, libraries: readonly string[]): string {
  const source = readFileSync(sourceFile);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const library = path.join(tmpdir(), `easysmart-mosquitto-${name}-${digest}.so`);
  if (existsSync(library)) return library;
  const missing = missingBrokerPluginPackages();
  if (missing.length > 0) {
    throw new Error(
      `the broker's ${name} plugin cannot be built: run 'sudo apt-get install -y ${missing.join(' ')}'`,
    );
  }
  const building = `${library}.${process.pid}.${Date.now()}`;
  execFileSync(
    findBinary('cc') as string,
    ['-O2', '-shared', '-fPIC', '-o', building, sourceFile, ...libraries],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  chmodSync(building, 0o755);
  // Renamed into place whole: another process may be building or loading it at the same time.
  renameSync(building, library);
  return library;
}

/** The device-auth plugin's library, built if need be. */
export function deviceAuthPlugin(): string {
  return brokerPlugin('device-auth', DEVICE_AUTH_SOURCE, ['-lcrypto']);
}

/** The journal plugin's library, built if need be. */
export function journalPlugin(): string {
  return brokerPlugin('journal', JOURNAL_SOURCE, []);
}

/** Where a broker started with `dataDir` keeps its journal. */
export function journalDirOf(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'journal');
}

function brokerConfig(options: {
  host: string;
  port: number;
  plugin: string;
  deviceAuthPlugin: string;
  stateDir: string;
  autosave: BrokerAutosave;
  journal:
    | { plugin: string; dir: string; topics: readonly string[]; segmentBytes?: number }
    | undefined;
}): string {
  const journal = options.journal
    ? `# Client messages on the rules' topics, appended before the broker acknowledges them: the
# rules emulator reads them from here (nothing it acknowledged is lost with the broker).
plugin ${options.journal.plugin}
plugin_opt_journal_dir ${options.journal.dir}
plugin_opt_journal_topics ${options.journal.topics.join(' ')}
${options.journal.segmentBytes ? `plugin_opt_journal_segment_bytes ${options.journal.segmentBytes}\n` : ''}`
    : '';
  return `# Written by the EasySmart local stack at every start; edits are overwritten.
listener ${options.port} ${options.host}
allow_anonymous false
# Devices: one line each in the password file, which the platform appends to when it
# registers one and this plugin reads incrementally (no reload that grows with the fleet);
# a device connects only as itself and uses only devices/<its id>/. Other usernames go on
# to the dynamic-security plugin: the platform's own accounts (admin, services).
plugin ${options.deviceAuthPlugin}
plugin_opt_device_password_file ${path.join(options.stateDir, DEVICE_PASSWORD_FILE)}
plugin ${options.plugin}
plugin_opt_config_file ${path.join(options.stateDir, 'dynsec.json')}
${journal}persistence true
persistence_location ${options.stateDir}/
autosave_on_changes ${options.autosave.onChanges}
autosave_interval ${options.autosave.interval}
# The rules emulator's persistent session must not lose what arrives while it is down.
max_queued_messages 1000000
# AWS IoT Core refuses payloads over 128 KB; the broker refuses such packets here too (it
# closes the sender's connection), so an oversized message never reaches the rules.
max_packet_size ${MAX_PACKET_BYTES}
log_dest stdout
log_type error
log_type warning
log_type notice
log_timestamp_format %Y-%m-%dT%H:%M:%S
`;
}

export const DEVICE_PASSWORD_FILE = 'device-passwords';

/** True when `account` can open an MQTT session on the broker at `url`. */
export async function canConnect(url: string, credentials: MqttCredentials): Promise<boolean> {
  const client = await mqtt.connectAsync(url, {
    ...credentials,
    reconnectPeriod: 0,
    connectTimeout: 2000,
    clientId: `easysmart-probe-${process.pid}-${Date.now()}`,
  });
  await client.endAsync(true);
  return true;
}

/**
 * Runs Mosquitto with the device-auth and dynamic-security plugins, no anonymous access,
 * listening on 127.0.0.1 only. Its admin and platform credentials are generated on first start and kept
 * in the data directory.
 */
export async function startMosquitto(options: StartMosquittoOptions): Promise<RunningMosquitto> {
  const mosquitto = findBinary('mosquitto');
  const mosquittoCtrl = findBinary('mosquitto_ctrl');
  if (!mosquitto) {
    throw new Error(`mosquitto is not installed: run 'sudo apt-get install -y mosquitto'`);
  }
  if (!mosquittoCtrl) {
    throw new Error(
      `mosquitto_ctrl is not installed: run 'sudo apt-get install -y mosquitto-clients'`,
    );
  }
  const plugin = findDynsecPlugin();
  const dataDir = path.resolve(options.dataDir);
  // The broker writes dynsec.json and its persistence file here.
  const stateDir = path.join(dataDir, 'state');
  const configFile = path.join(dataDir, 'mosquitto.conf');
  const logFile = path.join(dataDir, 'mosquitto.log');
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  const url = `mqtt://${host}:${port}`;

  await mkdir(stateDir, { recursive: true });
  const journalTopics = options.journalTopics ?? [];
  const journalDir = journalTopics.length > 0 ? journalDirOf(dataDir) : undefined;
  if (journalDir) await mkdir(journalDir, { recursive: true });
  const admin = {
    username: ADMIN_USERNAME,
    password: await readOrCreateSecret(path.join(dataDir, 'admin-password')),
  };
  const platform = {
    username: PLATFORM_USERNAME,
    password: await readOrCreateSecret(path.join(dataDir, 'platform-password')),
  };
  const devicePasswordFile = path.join(stateDir, DEVICE_PASSWORD_FILE);
  if (!existsSync(devicePasswordFile)) await writeFile(devicePasswordFile, '', { mode: 0o600 });
  const dynsecFile = path.join(stateDir, 'dynsec.json');
  if (!existsSync(dynsecFile)) {
    execFileSync(mosquittoCtrl, ['dynsec', 'init', dynsecFile, admin.username, admin.password], {
      stdio: 'ignore',
    });
    await chmod(dynsecFile, 0o600);
  }
  // Started as root, mosquitto drops to the `mosquitto` user, which must own its state.
  const brokerUser = serviceAccountWhenRoot('mosquitto');
  if (brokerUser) {
    await chmod(dataDir, 0o711);
    assertTraversable(dataDir, brokerUser);
    for (const dir of journalDir ? [stateDir, journalDir] : [stateDir]) {
      await chown(dir, brokerUser.uid, brokerUser.gid);
      for (const file of await readdir(dir)) {
        await chown(path.join(dir, file), brokerUser.uid, brokerUser.gid);
      }
    }
  }
  await writeFile(
    configFile,
    brokerConfig({
      host,
      port,
      plugin,
      deviceAuthPlugin: deviceAuthPlugin(),
      stateDir,
      autosave: options.autosave ?? BROKER_AUTOSAVE,
      journal: journalDir
        ? {
            plugin: journalPlugin(),
            dir: journalDir,
            topics: journalTopics,
            segmentBytes: options.journalSegmentBytes,
          }
        : undefined,
    }),
  );

  let server: ManagedProcess | undefined;
  const start = async () => {
    if (server && server.exitDescription === undefined) return;
    server = await spawnUntilReady({
      name: 'mosquitto',
      command: mosquitto,
      args: ['-c', configFile],
      logFile,
      pidFile: path.join(dataDir, 'server.pid'),
      // As root, started as its own user rather than left to drop to it: a user change
      // would clear the kernel's parent-death signal that stops it with the stack.
      uid: brokerUser?.uid,
      gid: brokerUser?.gid,
      ready: () => canConnect(url, admin),
      timeoutMs: 20_000,
      cancelled: options.cancelled,
    });
  };

  await start();
  try {
    await ensurePlatformClient(url, admin, platform);
  } catch (error) {
    await server?.stop();
    throw error;
  }

  return {
    url,
    port,
    devicePasswordFile,
    journalDir,
    admin,
    platform,
    unexpectedExit: () => server?.unexpectedExit ?? new Promise(() => {}),
    healthy: () => canConnect(url, admin),
    stop: async () => {
      await server?.stop(15_000);
    },
    start,
  };
}

/** The platform's own broker account, created on first start and left alone afterwards. */
async function ensurePlatformClient(
  url: string,
  admin: MqttCredentials,
  platform: MqttCredentials,
): Promise<void> {
  const control = new DynsecControlClient({ url, ...admin });
  try {
    const topic = 'devices/#';
    await control.executeOrThrow(
      [
        {
          command: 'createRole',
          rolename: PLATFORM_ROLE,
          textdescription: 'EasySmart services: rules emulator, IoT data-plane endpoint',
          acls: (
            [
              'publishClientSend',
              'publishClientReceive',
              'subscribePattern',
              'unsubscribePattern',
            ] as const
          ).map((acltype) => ({ acltype, topic, allow: true, priority: 0 })),
        },
        {
          command: 'createClient',
          username: platform.username,
          password: platform.password,
          roles: [{ rolename: PLATFORM_ROLE, priority: 0 }],
        },
        // Keeps the stored password authoritative if the client already existed.
        { command: 'setClientPassword', username: platform.username, password: platform.password },
        // The plugin lets its clients receive any message they subscribed to unless told
        // otherwise, and the devices' ACL file grants every subscription: a client of the
        // plugin (a device registered before devices moved to the password file) must fall
        // through to that file's per-device pattern when its roles say nothing.
        {
          command: 'setDefaultACLAccess',
          acls: [{ acltype: 'publishClientReceive', allow: false }],
        },
      ],
      (result) => /already exists/i.test(result.error ?? ''),
    );
  } finally {
    await control.close();
  }
}
