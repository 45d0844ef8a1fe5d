import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type {
  DeviceCredentialProvisioner,
  DeviceCredentials,
} from '../domain/credential-provisioner.ts';
import { assertNotReservedDeviceId, ReservedDeviceIdError } from '../domain/model.ts';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

/** AWS thing-name rules, which Mosquitto client ids and usernames also accept. */
export const DEVICE_ID_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

export class InvalidDeviceIdError extends Error {
  override readonly name = 'InvalidDeviceIdError';
}

export function assertValidDeviceId(deviceId: string): void {
  if (typeof deviceId !== 'string' || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new InvalidDeviceIdError(
      `invalid device id ${JSON.stringify(deviceId)}: expected 1-128 characters of [a-zA-Z0-9:_-]`,
    );
  }
}

/** Dynsec 2.0.x has no %c substitution in ACLs, so each device gets a role of its own. */
export function deviceRoleName(deviceId: string): string {
  return `device:${deviceId}`;
}

export function deviceTopicFilter(deviceId: string): string {
  return `devices/${deviceId}/#`;
}

export type DynsecAclType =
  | 'publishClientSend'
  | 'publishClientReceive'
  | 'subscribeLiteral'
  | 'subscribePattern'
  | 'unsubscribeLiteral'
  | 'unsubscribePattern';

export interface DynsecAcl {
  acltype: DynsecAclType;
  topic: string;
  allow: boolean;
  priority?: number;
}

/** One command of the dynamic-security control API, e.g. `{command: 'deleteClient', username}`. */
export interface DynsecCommand {
  command: string;
  [field: string]: unknown;
}

export interface DynsecResult {
  command: string;
  /** Set when the broker refused the command, e.g. "Client not found". */
  error?: string;
  data?: unknown;
}

export class DynsecError extends Error {
  override readonly name = 'DynsecError';
}

export interface DynsecConnectionOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883 */
  url: string;
  username: string;
  password: string;
  /** How long to wait for the broker to accept the connection. */
  connectTimeoutMs?: number;
  /** How long to wait for the answer to one batch of commands. */
  requestTimeoutMs?: number;
}

interface PendingBatch {
  results: Map<string, DynsecResult>;
  expected: number;
  resolve: (results: Map<string, DynsecResult>) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Client of Mosquitto's `$CONTROL/dynamic-security/v1` API. Connects on first use and keeps
 * the connection for later calls, which matters inside a Lambda-style function that handles
 * many requests per process. Answers are matched to requests by `correlationData`.
 */
export class DynsecControlClient {
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  // Unique per instance so several admin connections can share the response topic.
  private readonly instanceId = randomBytes(6).toString('hex');
  private sequence = 0;
  private readonly pending = new Map<string, PendingBatch>();
  private connection: Promise<MqttClient> | undefined;

  constructor(private readonly options: DynsecConnectionOptions) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  }

  /** Runs the commands in order in one round trip; returns one result per command. */
  async execute(commands: readonly DynsecCommand[]): Promise<DynsecResult[]> {
    const client = await this.connect();
    const batchId = `${this.instanceId}-${++this.sequence}`;
    const correlated = commands.map((command, index) => ({
      ...command,
      correlationData: `${batchId}-${index}`,
    }));
    const names = commands.map((command) => command.command).join(', ');
    const answered = new Promise<Map<string, DynsecResult>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(batchId);
        reject(
          new DynsecError(
            `Mosquitto dynamic-security at ${this.options.url} did not answer ${names} within ${this.requestTimeoutMs} ms`,
          ),
        );
      }, this.requestTimeoutMs);
      this.pending.set(batchId, {
        results: new Map(),
        expected: commands.length,
        resolve,
        reject,
        timer,
      });
    });
    // QoS 0 and no offline queue: a batch that timed out must not be replayed on reconnect,
    // where it could undo a later command (a stale revoke after a fresh provision).
    const send = () => {
      if (!this.pending.has(batchId)) return;
      client.publish(
        CONTROL_TOPIC,
        JSON.stringify({ commands: correlated }),
        { qos: 0 },
        (error) => {
          if (error) this.failBatch(batchId, error);
        },
      );
    };
    if (client.connected) {
      send();
    } else {
      client.once('connect', send);
      answered.catch(() => client.removeListener('connect', send));
    }
    const results = await answered;
    return correlated.map(
      (command) =>
        results.get(command.correlationData) ?? { command: command.command, error: 'no answer' },
    );
  }

  /** Like `execute`, but throws unless every command succeeded or failed with a tolerated error. */
  async executeOrThrow(
    commands: readonly DynsecCommand[],
    tolerated: (result: DynsecResult) => boolean = () => false,
  ): Promise<DynsecResult[]> {
    const results = await this.execute(commands);
    const failure = results.find((result) => result.error !== undefined && !tolerated(result));
    if (failure) {
      throw new DynsecError(
        `Mosquitto dynamic-security ${failure.command} failed: ${failure.error}`,
      );
    }
    return results;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    for (const batchId of [...this.pending.keys()]) {
      this.failBatch(batchId, new DynsecError('dynamic-security client closed'));
    }
    if (!connection) return;
    const client = await connection.catch(() => undefined);
    await client?.endAsync(true);
  }

  private failBatch(batchId: string, error: Error): void {
    const batch = this.pending.get(batchId);
    if (!batch) return;
    this.pending.delete(batchId);
    clearTimeout(batch.timer);
    batch.reject(error);
  }

  private onResponse(payload: Buffer): void {
    let parsed: { responses?: Array<DynsecResult & { correlationData?: string }> };
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    for (const response of parsed.responses ?? []) {
      const correlationData = response.correlationData;
      if (typeof correlationData !== 'string') continue;
      const batchId = correlationData.slice(0, correlationData.lastIndexOf('-'));
      const batch = this.pending.get(batchId);
      if (!batch) continue;
      batch.results.set(correlationData, {
        command: response.command,
        ...(response.error !== undefined ? { error: response.error } : {}),
        ...(response.data !== undefined ? { data: response.data } : {}),
      });
      if (batch.results.size === batch.expected) {
        this.pending.delete(batchId);
        clearTimeout(batch.timer);
        batch.resolve(batch.results);
      }
    }
  }

  private connect(): Promise<MqttClient> {
    this.connection ??= this.openConnection().catch((error: unknown) => {
      // Let the next call try again rather than caching a failure forever.
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  private openConnection(): Promise<MqttClient> {
    const { url, username, password } = this.options;
    return new Promise<MqttClient>((resolve, reject) => {
      const client = mqtt.connect(url, {
        username,
        password,
        clientId: `easysmart-dynsec-${this.instanceId}`,
        protocolVersion: 5,
        clean: true,
        connectTimeout: this.connectTimeoutMs,
        reconnectPeriod: 1000,
        queueQoSZero: false,
      });
      const giveUp = (message: string) => {
        clearTimeout(timer);
        client.removeAllListeners();
        client.on('error', () => {});
        client.end(true);
        reject(new DynsecError(message));
      };
      const timer = setTimeout(
        () => giveUp(`could not connect to Mosquitto at ${url} within ${this.connectTimeoutMs} ms`),
        this.connectTimeoutMs,
      );
      client.on('message', (topic, payload) => {
        if (topic === RESPONSE_TOPIC) this.onResponse(payload);
      });
      client.once('error', (error) => {
        giveUp(`could not connect to Mosquitto at ${url} as ${username}: ${error.message}`);
      });
      client.once('connect', () => {
        client.subscribe(RESPONSE_TOPIC, { qos: 1 }, (error, granted) => {
          const refused = granted?.some((grant) => grant.qos >= 0x80);
          if (error || refused) {
            giveUp(`${username} may not use the dynamic-security API at ${url}`);
            return;
          }
          clearTimeout(timer);
          client.removeAllListeners('error');
          // After the first connect mqtt.js reconnects by itself and resubscribes; errors
          // meanwhile surface as request timeouts.
          client.on('error', () => {});
          resolve(client);
        });
      });
    });
  }
}

export interface MosquittoDynsecProvisionerOptions extends DynsecConnectionOptions {
  /** Broker URL handed to devices with their credential. */
  brokerUrlForDevices?: string;
}

/**
 * Devices per control message: a device's commands take under 1 KB, and the broker refuses
 * a packet over its limit (128 KB payload). Look-ups are smaller, and so are their answers.
 */
const DEVICES_PER_CONTROL_MESSAGE = 50;
const LOOKUPS_PER_CONTROL_MESSAGE = 200;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) {
    result.push(items.slice(start, start + size));
  }
  return result;
}

/** Publish, receive and (un)subscribe under the device's own topics only. */
function deviceAcls(deviceId: string): DynsecAcl[] {
  const topic = deviceTopicFilter(deviceId);
  return (
    ['publishClientSend', 'publishClientReceive', 'subscribePattern', 'unsubscribePattern'] as const
  ).map((acltype) => ({ acltype, topic, allow: true, priority: 0 }));
}

const isNotFound = (result: DynsecResult) => /not found/i.test(result.error ?? '');

interface DynsecClientData {
  client?: { username?: string; roles?: Array<{ rolename?: string }> };
}

/** Exactly what `provision` creates: one client holding only the device's own role. */
function isDeviceCredential(data: unknown, deviceId: string): boolean {
  const roles = (data as DynsecClientData | undefined)?.client?.roles ?? [];
  return roles.length === 1 && roles[0]?.rolename === deviceRoleName(deviceId);
}

/**
 * Device credentials in Mosquitto's dynamic-security plugin: one client per device
 * (username and client id = device id, random password) with a role allowing it only
 * `devices/<id>/#`.
 */
export class MosquittoDynsecProvisioner implements DeviceCredentialProvisioner {
  private readonly control: DynsecControlClient;

  constructor(private readonly options: MosquittoDynsecProvisionerOptions) {
    this.control = new DynsecControlClient(options);
  }

  async provision(deviceId: string): Promise<DeviceCredentials> {
    const credentials = await this.provisionMany([deviceId]);
    return credentials.get(deviceId) as DeviceCredentials;
  }

  /**
   * Looks every id up first and refuses the batch if one is a broker client that is not a
   * device credential; then replaces each device's client and role, a chunk of devices per
   * control message (the broker refuses packets over its size limit). If a chunk fails,
   * what the batch created is deleted again.
   */
  async provisionMany(deviceIds: readonly string[]): Promise<Map<string, DeviceCredentials>> {
    for (const deviceId of deviceIds) {
      assertValidDeviceId(deviceId);
      this.assertNotPlatformIdentity(deviceId);
    }
    const existing = await this.existingClients(deviceIds);
    const foreign = deviceIds.filter((deviceId) => existing.get(deviceId) === 'foreign');
    if (foreign.length > 0) {
      throw new ReservedDeviceIdError(
        `broker client ${foreign.slice(0, 5).join(', ')} exists and is not a device credential; it is left alone`,
      );
    }
    const issued = new Map<string, DeviceCredentials>();
    try {
      for (const chunk of chunks(deviceIds, DEVICES_PER_CONTROL_MESSAGE)) {
        const passwords = chunk.map(() => randomBytes(24).toString('base64url'));
        // Deleting first replaces a device's existing credential (and drops a session using it).
        const commands = chunk.flatMap((deviceId, index) => {
          const rolename = deviceRoleName(deviceId);
          return [
            ...(existing.get(deviceId) === 'device'
              ? [{ command: 'deleteClient', username: deviceId }]
              : []),
            // A role left behind without its client would make createRole fail.
            { command: 'deleteRole', rolename },
            { command: 'createRole', rolename, acls: deviceAcls(deviceId) },
            {
              command: 'createClient',
              username: deviceId,
              clientid: deviceId,
              password: passwords[index],
              roles: [{ rolename, priority: 0 }],
            },
          ];
        });
        const results = await this.control.execute(commands);
        const failure = results.find(
          (result) =>
            result.error !== undefined &&
            !(result.command.startsWith('delete') && isNotFound(result)),
        );
        chunk.forEach((deviceId, index) => {
          issued.set(deviceId, {
            client_id: deviceId,
            username: deviceId,
            password: passwords[index] as string,
            ...(this.options.brokerUrlForDevices
              ? { broker_url: this.options.brokerUrlForDevices }
              : {}),
          });
        });
        if (failure) {
          throw new DynsecError(
            `could not provision ${chunk.length === 1 ? `device ${chunk[0]}` : `${chunk.length} devices`}: ${failure.command} failed: ${failure.error}`,
          );
        }
      }
    } catch (error) {
      await this.revokeMany([...issued.keys()]).catch(() => {});
      throw error;
    }
    return issued;
  }

  async revoke(deviceId: string): Promise<void> {
    await this.revokeMany([deviceId]);
  }

  async revokeMany(deviceIds: readonly string[]): Promise<void> {
    for (const deviceId of deviceIds) assertValidDeviceId(deviceId);
    // A client of that name that is not the device's own credential (a registration from
    // before names were reserved) belongs to someone else: only the device's role goes.
    const existing = await this.existingClients(deviceIds);
    for (const chunk of chunks(deviceIds, DEVICES_PER_CONTROL_MESSAGE)) {
      // deleteClient also disconnects a session the device has open.
      await this.control.executeOrThrow(
        chunk.flatMap((deviceId) => [
          ...(existing.get(deviceId) === 'device'
            ? [{ command: 'deleteClient', username: deviceId }]
            : []),
          { command: 'deleteRole', rolename: deviceRoleName(deviceId) },
        ]),
        isNotFound,
      );
    }
  }

  private assertNotPlatformIdentity(deviceId: string): void {
    assertNotReservedDeviceId(deviceId);
    if (deviceId.toLowerCase() === this.options.username.toLowerCase()) {
      throw new ReservedDeviceIdError(`device id ${deviceId} is the broker's admin account`);
    }
  }

  private async existingClients(
    deviceIds: readonly string[],
  ): Promise<Map<string, 'none' | 'device' | 'foreign'>> {
    const found = new Map<string, 'none' | 'device' | 'foreign'>();
    for (const chunk of chunks(deviceIds, LOOKUPS_PER_CONTROL_MESSAGE)) {
      const results = await this.control.execute(
        chunk.map((username) => ({ command: 'getClient', username })),
      );
      chunk.forEach((deviceId, index) => {
        const result = results[index];
        if (!result || isNotFound(result)) {
          found.set(deviceId, 'none');
        } else if (result.error !== undefined) {
          throw new DynsecError(`could not look up broker client ${deviceId}: ${result.error}`);
        } else {
          found.set(deviceId, isDeviceCredential(result.data, deviceId) ? 'device' : 'foreign');
        }
      });
    }
    return found;
  }

  /** Closes the broker connection; only needed by processes that end (tests, scripts). */
  close(): Promise<void> {
    return this.control.close();
  }
}
