/**
 * The local stack's demo: a `demo` tenant with three virtual devices, so a fresh `npm start`
 * shows live data at once. The tenant's password and the devices' MQTT credentials are
 * created on the first start and kept in `<data dir>/demo/` (mode 0600), so restarts reuse
 * the same tenant and devices.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ApiError,
  PlatformClient,
  type RegisteredDevice,
  type SignedUp,
} from './platform-client.ts';
import { readOrCreateSecret } from './services/secrets.ts';
import type { SupervisedService } from './supervisor.ts';
import {
  type RunningVirtualDevice,
  startVirtualDevice,
  type VirtualDeviceOptions,
} from './virtual-device.ts';

export const DEMO_USERNAME = 'demo';

interface DemoDeviceSpec {
  device_id: string;
  name: string;
  type: string;
  location: string;
  run: Pick<VirtualDeviceOptions, 'fault' | 'faultAfterS' | 'intervalMs' | 'batchAgeMs'>;
}

// Three fit the free plan. The pump drifts after ten minutes so the anomaly views have
// something to find without the first impression being a faulty machine. They batch their
// readings as the firmware does by default, with a 10 s age instead of a minute so the
// dashboard moves while someone watches it.
const DEMO_DEVICES: readonly DemoDeviceSpec[] = [
  {
    device_id: 'demo-compressor',
    name: 'Compressor C-101',
    type: 'compressor',
    location: 'Plant floor, bay 1',
    run: { intervalMs: 2000, batchAgeMs: 10_000 },
  },
  {
    device_id: 'demo-pump',
    name: 'Cooling pump P-201',
    type: 'pump',
    location: 'Plant floor, bay 2',
    run: { intervalMs: 2000, batchAgeMs: 10_000, fault: 'drift', faultAfterS: 600 },
  },
  {
    device_id: 'demo-relay-panel',
    name: 'Relay panel R-301',
    type: 'relay-panel',
    location: 'Control room',
    run: { intervalMs: 5000, batchAgeMs: 10_000 },
  },
];

interface StoredCredential {
  id: number;
  device_id: string;
  username: string;
  password: string;
}

export interface DemoOptions {
  apiUrl: string;
  /** The broker URL the devices connect to. */
  mqttUrl: string;
  dashboardUrl: string;
  dataDir: string;
  log: (message: string) => void;
  cancelled?: AbortSignal;
  /** The virtual device's build, started early so that it is ready by READY. */
  virtualDeviceBuilt: Promise<unknown>;
}

async function signIn(client: PlatformClient, password: string): Promise<void> {
  const login = await client.request<{ token: string }>('POST', '/api/auth/login', {
    username: DEMO_USERNAME,
    password,
  });
  if (login.status === 200) {
    client.token = login.body.token;
    return;
  }
  const registered = await client.request<SignedUp>('POST', '/api/auth/register', {
    tenant_name: 'Demo Plant',
    username: DEMO_USERNAME,
    email: 'demo@easysmart.local',
    password,
  });
  if (registered.status !== 201) {
    throw new Error(
      `${new ApiError(`cannot sign in as ${DEMO_USERNAME}`, login).message}, nor create it ` +
        `(${new ApiError('register', registered).message}); the demo password file may not ` +
        'match the database: remove the data dir to start afresh',
    );
  }
  client.token = registered.body.token;
}

async function readCredentials(file: string): Promise<StoredCredential[]> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as StoredCredential[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function writeCredentials(file: string, credentials: StoredCredential[]): Promise<void> {
  // Written aside and renamed, so a crash mid-write never leaves a file that loses them all.
  const partial = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(partial, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await rename(partial, file);
}

/**
 * Registers the demo devices that have no stored credential. A device the registry still
 * has but whose password was lost is removed and registered again: a password is shown
 * only once, and without it the virtual device cannot connect.
 */
async function ensureDevices(
  client: PlatformClient,
  file: string,
  log: (message: string) => void,
): Promise<StoredCredential[]> {
  const stored = await readCredentials(file);
  const listed = await client.expect<{ devices: Array<{ id: number; device_id: string }> }>(
    200,
    'cannot list the demo devices',
    'GET',
    '/api/devices',
  );
  const existing = new Map(listed.devices.map((d) => [d.device_id, d.id]));
  const credentials: StoredCredential[] = [];
  for (const spec of DEMO_DEVICES) {
    const known = stored.find((c) => c.device_id === spec.device_id);
    if (known && existing.get(spec.device_id) === known.id) {
      credentials.push(known);
      continue;
    }
    const stale = existing.get(spec.device_id);
    if (stale !== undefined) {
      await client.expect(
        204,
        `cannot replace ${spec.device_id}`,
        'DELETE',
        `/api/devices/${stale}`,
      );
    }
    const { run: _run, ...body } = spec;
    const created = await client.expect<RegisteredDevice>(
      201,
      `cannot register ${spec.device_id}`,
      'POST',
      '/api/devices',
      body,
    );
    credentials.push({
      id: created.device.id,
      device_id: spec.device_id,
      username: created.credentials.username,
      password: created.credentials.password,
    });
    await writeCredentials(file, [
      ...stored.filter((c) => !credentials.some((n) => n.device_id === c.device_id)),
      ...credentials,
    ]);
    log(`registered ${spec.device_id}`);
  }
  return credentials;
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
// A device that ran this long before dying starts the backoff over.
const STABLE_RUN_MS = 30_000;

/**
 * Keeps one virtual device running: a crash is logged and followed by a restart after an
 * exponentially growing delay, so a device that cannot start does not spin.
 */
class DeviceKeeper {
  private current: RunningVirtualDevice | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopping = false;
  private everConnected = false;

  constructor(
    private readonly options: VirtualDeviceOptions,
    private readonly log: (message: string) => void,
  ) {}

  start(): void {
    if (this.stopping) return;
    const startedAt = Date.now();
    const stderr: string[] = [];
    const device = startVirtualDevice(this.options, {
      onEvent: (event) => {
        if (event.event === 'connected' && !this.everConnected) {
          this.everConnected = true;
          this.log(`${this.options.deviceId} connected`);
        }
      },
      onStderr: (line) => {
        stderr.push(line);
        if (stderr.length > 5) stderr.shift();
      },
    });
    this.current = device;
    void device.exited.then((description) => {
      if (this.current === device) this.current = undefined;
      if (this.stopping) return;
      if (Date.now() - startedAt > STABLE_RUN_MS) this.failures = 0;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.failures);
      this.failures += 1;
      const detail = stderr.length > 0 ? ` (${stderr.join(' | ')})` : '';
      this.log(`${this.options.deviceId} ${description}${detail}; restarting in ${delay} ms`);
      this.restartTimer = setTimeout(() => this.start(), delay);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.current?.stop();
  }
}

/**
 * Signs in (or creates) the demo tenant, registers its devices once, and runs them as
 * supervised children. Demo trouble is the demo's alone: it never reports an unexpected
 * exit, so it cannot take the stack down.
 */
export async function startDemo(options: DemoOptions): Promise<SupervisedService> {
  const demoDir = path.join(options.dataDir, 'demo');
  await mkdir(demoDir, { recursive: true, mode: 0o700 });
  const password = await readOrCreateSecret(path.join(demoDir, 'password'));
  const client = new PlatformClient(options.apiUrl);
  await Promise.all([signIn(client, password), options.virtualDeviceBuilt]);
  const credentials = await ensureDevices(client, path.join(demoDir, 'devices.json'), options.log);
  options.cancelled?.throwIfAborted();

  const keepers = credentials.map((credential) => {
    const spec = DEMO_DEVICES.find((d) => d.device_id === credential.device_id) as DemoDeviceSpec;
    return new DeviceKeeper(
      {
        deviceId: credential.device_id,
        username: credential.username,
        password: credential.password,
        mqttUrl: options.mqttUrl,
        name: spec.name,
        type: spec.type,
        // Nobody reads the demo devices' stats; fewer lines, less work.
        statsMs: 0,
        ...spec.run,
      },
      options.log,
    );
  });
  for (const keeper of keepers) keeper.start();
  options.log(
    `sign in as ${DEMO_USERNAME} / ${password} at ${options.dashboardUrl} ` +
      `(${keepers.length} virtual devices; DEMO=0 turns the demo off)`,
  );
  return {
    healthy: async () => true,
    unexpectedExit: () => new Promise<string>(() => {}),
    stop: async () => {
      await Promise.all(keepers.map((keeper) => keeper.stop()));
    },
  };
}
