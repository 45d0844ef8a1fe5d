import { createHash, randomBytes } from 'node:crypto';
import {
  appendFile,
  chown,
  open,
  readFile,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import mqtt from 'mqtt';
import type {
  DeviceCredentialProvisioner,
  DeviceCredentials,
} from '../domain/credential-provisioner.ts';
import { assertNotReservedDeviceId } from '../domain/model.ts';
import { assertValidDeviceId } from './mosquitto-dynsec-provisioner.ts';

/**
 * The broker account whose password changes on every rewrite of the file, so a writer can
 * tell when the broker has read it: its name is reserved, so no device can have it.
 */
export const RELOAD_CANARY_USERNAME = 'easysmart-reload-canary';

export class PasswordFileError extends Error {
  override readonly name = 'PasswordFileError';
}

export interface MosquittoPasswordFileProvisionerOptions {
  /** The devices' password file, which the broker's device-auth plugin reads (local/services/mosquitto.ts). */
  passwordFile: string;
  /** Where the broker listens: the provisioner connects to learn when a change is live. */
  brokerUrl: string;
  /** Broker URL handed to devices with their credential. */
  brokerUrlForDevices?: string;
  /** How long to wait for the broker to read a change. */
  reloadTimeoutMs?: number;
  /** A lock older than this was left by a writer that died; it is broken. */
  staleLockMs?: number;
}

/**
 * Mosquitto's `$6$` form: SHA-512 over the password and a 12-byte salt. One round, not
 * PBKDF2: the passwords are 192 random bits, which stretching cannot make any harder to
 * guess, and a fleet's reconnect storm checks thousands of them at once.
 */
export function passwordLine(username: string, password: string): string {
  const salt = randomBytes(12);
  const hash = createHash('sha512').update(password).update(salt).digest();
  return `${username}:$6$${salt.toString('base64')}$${hash.toString('base64')}\n`;
}

const usernameOf = (line: string) => line.slice(0, line.indexOf(':'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Device credentials in a Mosquitto-format password file, one line per device, which the
 * local broker's device-auth plugin (local/services/mosquitto-device-auth.c) reads
 * incrementally and which confines every device to devices/<its id>/. Registering appends
 * lines: its cost does not grow with the fleet, as rewriting the dynamic-security plugin's
 * whole JSON state on every command, or Mosquitto re-parsing its own password_file on every
 * SIGHUP, did. A change is returned only once the broker has taken it: the provisioner
 * connects with a credential the change created until the broker accepts it.
 *
 * The file is shared by every process that registers devices: each change holds a lock
 * file beside it, and removals write a new file and rename it over the old one (the plugin
 * then reads it whole and disconnects the devices removed).
 */
export class MosquittoPasswordFileProvisioner implements DeviceCredentialProvisioner {
  private readonly reloadTimeoutMs: number;
  private readonly staleLockMs: number;

  constructor(private readonly options: MosquittoPasswordFileProvisionerOptions) {
    this.reloadTimeoutMs = options.reloadTimeoutMs ?? 15_000;
    this.staleLockMs = options.staleLockMs ?? 30_000;
  }

  async provision(deviceId: string): Promise<DeviceCredentials> {
    const credentials = await this.provisionMany([deviceId]);
    return credentials.get(deviceId) as DeviceCredentials;
  }

  async provisionMany(deviceIds: readonly string[]): Promise<Map<string, DeviceCredentials>> {
    for (const deviceId of deviceIds) {
      assertValidDeviceId(deviceId);
      assertNotReservedDeviceId(deviceId);
    }
    if (deviceIds.length === 0) return new Map();
    const passwords = deviceIds.map(() => randomBytes(24).toString('base64url'));
    const lines = deviceIds.map((deviceId, index) =>
      passwordLine(deviceId, passwords[index] as string),
    );
    // Appended even for a device listed already (registered again): the broker's plugin
    // takes a username's last line, so its old password stops working; reading the file to
    // drop the old line first would make every registration cost as much as the fleet.
    await this.locked(() => appendFile(this.options.passwordFile, lines.join('')));
    const last = deviceIds.length - 1;
    try {
      await this.untilAccepted(deviceIds[last] as string, passwords[last] as string);
    } catch (error) {
      await this.revokeMany(deviceIds).catch(() => {});
      throw error;
    }
    return new Map(
      deviceIds.map((deviceId, index) => [
        deviceId,
        {
          client_id: deviceId,
          username: deviceId,
          password: passwords[index] as string,
          ...(this.options.brokerUrlForDevices
            ? { broker_url: this.options.brokerUrlForDevices }
            : {}),
        },
      ]),
    );
  }

  async revoke(deviceId: string): Promise<void> {
    await this.revokeMany([deviceId]);
  }

  /**
   * Writes the file without the devices' lines and with a new canary password, then waits
   * until the broker accepts the canary: from then on it refuses the devices, and it has
   * closed their sessions (the plugin disconnects whoever the new file no longer lists).
   */
  async revokeMany(deviceIds: readonly string[]): Promise<void> {
    for (const deviceId of deviceIds) assertValidDeviceId(deviceId);
    const gone = new Set(deviceIds);
    const canaryPassword = randomBytes(24).toString('base64url');
    const changed = await this.locked(async () => {
      const current = await this.lines();
      if (!current.some((line) => gone.has(usernameOf(line)))) return false;
      await this.replace([
        passwordLine(RELOAD_CANARY_USERNAME, canaryPassword),
        ...current.filter(
          (line) => !gone.has(usernameOf(line)) && usernameOf(line) !== RELOAD_CANARY_USERNAME,
        ),
      ]);
      return true;
    });
    if (changed) await this.untilAccepted(RELOAD_CANARY_USERNAME, canaryPassword);
  }

  private async lines(): Promise<string[]> {
    const text = await readFile(this.options.passwordFile, 'utf8');
    return text
      .split('\n')
      .filter((line) => line.includes(':'))
      .map((line) => `${line}\n`);
  }

  /** A new file renamed over the old one, so the broker never reads it half-written. */
  private async replace(lines: string[]): Promise<void> {
    const file = this.options.passwordFile;
    const owner = await stat(file);
    const next = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(next, lines.join(''), { mode: 0o600 });
    // The broker may run as its own user (started as root), which must still read it.
    await chown(next, owner.uid, owner.gid).catch(() => {});
    await rename(next, file);
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    const lockFile = `${this.options.passwordFile}.lock`;
    const deadline = Date.now() + this.reloadTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(lockFile, 'wx');
        await handle.close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const held = await stat(lockFile).catch(() => undefined);
        if (held && Date.now() - held.mtimeMs > this.staleLockMs) {
          await unlink(lockFile).catch(() => {});
          continue;
        }
        if (Date.now() > deadline) {
          throw new PasswordFileError(`the broker's password file stayed locked (${lockFile})`);
        }
        await sleep(Math.min(50, 2 + attempt));
      }
    }
    try {
      return await work();
    } finally {
      await unlink(lockFile).catch(() => {});
    }
  }

  /** Connects as `username` until the broker accepts the password, i.e. it has read the file. */
  private async untilAccepted(username: string, password: string): Promise<void> {
    const deadline = Date.now() + this.reloadTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await mqtt.connectAsync(this.options.brokerUrl, {
          username,
          password,
          clientId: username,
          reconnectPeriod: 0,
          connectTimeout: 5000,
          clean: true,
        });
        await client.endAsync(true);
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new PasswordFileError(
            `the broker at ${this.options.brokerUrl} did not take the changed password file within ${this.reloadTimeoutMs} ms: ${(error as Error).message}`,
          );
        }
        await sleep(attempt < 50 ? 5 : 50);
      }
    }
  }
}
