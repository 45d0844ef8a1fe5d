import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DeviceCredentials,
  type LocalStack,
  registerOnStack,
  signUpOnStack,
  startLocalStack,
} from './support/local-stack.ts';
import { commandOf, descendantsOf, isAlive } from './support/processes.ts';
import { waitUntil } from './support/servers.ts';
import { type RunningDevice, spawnVirtualDevice } from './support/virtual-device.ts';

/**
 * The firmware's virtual device (the real C++ core over libmosquitto) against the whole
 * local stack: registered through the API, it announces itself by discovery, its readings
 * (in telemetry batches, the firmware's default) are served back, a command reaches its
 * relay, a 30-second broker freeze loses and duplicates nothing, and a SIGKILL shows it
 * offline through its last will.
 */
const SENSORS = ['temperature', 'pressure', 'vibration'];
const INTERVAL_MS = 500;
const BATCH_AGE_MS = 2000;

let stack: LocalStack;
let token: string;
let rowId: number;
let deviceId: string;
let credentials: DeviceCredentials;
const devices: RunningDevice[] = [];

function runDevice(extra: string[] = []): RunningDevice {
  const device = spawnVirtualDevice([
    '--device-id',
    deviceId,
    '--username',
    credentials.username,
    '--password',
    credentials.password,
    '--mqtt',
    stack.mqtt,
    '--interval-ms',
    String(INTERVAL_MS),
    '--stats-ms',
    '500',
    // The default batching (telemetry messages of up to 60 readings), with a short age
    // so that readings arrive within the test's patience: 4 rounds a message.
    '--batch-age-ms',
    String(BATCH_AGE_MS),
    // Quick reconnection once the broker answers again; the outage itself is 30 s.
    '--backoff-base-ms',
    '100',
    '--backoff-max-ms',
    '1000',
    ...extra,
  ]);
  devices.push(device);
  return device;
}

async function api(method: string, route: string, body?: unknown) {
  return stack.request(method, route, body, token);
}

const deviceDetail = async () => (await api('GET', `/api/devices/${rowId}`)).body;

async function points(entityIds: string[], from: number, to: number) {
  const query = new URLSearchParams({
    entity_id: entityIds.join(','),
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  });
  const response = await api('GET', `/api/devices/${rowId}/telemetry?${query}`);
  expect(response.status).toBe(200);
  return new Map(
    (response.body.series as Array<{ entity_id: string; points: Array<{ time: string }> }>).map(
      (s) => [s.entity_id, s.points.map((p) => Date.parse(p.time))],
    ),
  );
}

/** The pid of the stack's Mosquitto broker (not mosquitto_ctrl, which exits at once). */
function brokerPid(): number {
  const pid = descendantsOf(stack.child.pid as number).find((candidate) =>
    /(^|\/)mosquitto\s+-c\s/.test(commandOf(candidate)),
  );
  if (!pid) throw new Error('no mosquitto process under the stack');
  return pid;
}

beforeAll(async () => {
  stack = await startLocalStack();
  ({ token } = await signUpOnStack(stack));
  ({
    id: rowId,
    deviceId,
    credentials,
  } = await registerOnStack(stack, token, { name: 'Virtual compressor', type: 'compressor' }));
}, 180_000);

afterAll(async () => {
  for (const device of devices) {
    if (device.child.exitCode === null && device.child.signalCode === null) {
      device.child.kill('SIGKILL');
    }
  }
  // A broker left frozen by a failed assertion would hold the stack's shutdown.
  try {
    process.kill(brokerPid(), 'SIGCONT');
  } catch {
    // the stack is already gone
  }
  await stack?.stop();
});

describe('the virtual device through the local stack', () => {
  let first: RunningDevice;
  let firstStarted: number;

  it('appears with its entities through discovery and goes online', async () => {
    firstStarted = Date.now();
    first = runDevice();
    await first.next((e) => e.event === 'connected', 60_000);
    await expect
      .poll(async () => (await deviceDetail()).device.status, { timeout: 15_000 })
      .toBe('online');
    // Status and discovery are separate topic rules with no order between them (on AWS as here),
    // so the device can be online before its discovery is stored.
    const entities = async () =>
      ((await deviceDetail()).entities as Array<{ entity_id: string; entity_type: string }>)
        .map((e) => `${e.entity_id}:${e.entity_type}`)
        .sort();
    await expect
      .poll(entities, { timeout: 15_000 })
      .toEqual([
        'label:text',
        'pressure:sensor',
        'relay_main:switch',
        'setpoint:number',
        'temperature:sensor',
        'vibration:sensor',
      ]);
  }, 90_000);

  it('serves its readings through the telemetry API', async () => {
    await expect
      .poll(
        async () =>
          (await points(SENSORS, firstStarted - 1000, Date.now())).get('temperature')?.length ?? 0,
        {
          timeout: 15_000,
          interval: 500,
        },
      )
      .toBeGreaterThanOrEqual(3);
    const latest = (await deviceDetail()).entities.find(
      (e: { entity_id: string }) => e.entity_id === 'temperature',
    );
    expect(typeof latest.latest.value).toBe('number');
  });

  it('a command through the API switches the relay and is confirmed', async () => {
    const relay = () =>
      deviceDetail().then(
        (d) => d.entities.find((e: { entity_id: string }) => e.entity_id === 'relay_main').latest,
      );
    await expect
      .poll(async () => (await relay())?.value, { timeout: 10_000 })
      .toBeTypeOf('boolean');
    const target = !(await relay()).value;
    const from = first.events.length;
    const sent = await api('POST', `/api/devices/${rowId}/entities/relay_main/commands`, {
      value: target,
    });
    expect(sent.status).toBe(202);
    const applied = await first.next(
      (e) => e.event === 'command' && e.entity_id === 'relay_main',
      5000,
      from,
    );
    expect(applied).toMatchObject({ value: target, command_id: sent.body.command_id });
    await expect
      .poll(
        async () =>
          (await api('GET', `/api/devices/${rowId}/commands/${sent.body.command_id}`)).body.status,
        { timeout: 10_000 },
      )
      .toBe('confirmed');
    await expect.poll(async () => (await relay()).value, { timeout: 10_000 }).toBe(target);
  });

  it('a broker freeze: the keepalive tells the device, which buffers offline, and every reading is stored exactly once', async () => {
    // A fresh process whose whole life is checked: its entities are known before its first
    // reading, so nothing it sends can be refused as not yet announced.
    first.child.kill('SIGTERM');
    await first.exited;
    firstStarted = Date.now();
    first = runDevice();
    await first.next((e) => e.event === 'connected', 30_000);
    // Online and delivering before the freeze: a round of readings acknowledged.
    await first.next(
      (e) => e.event === 'stats' && Number(e.sent) >= SENSORS.length && e.inflight === 0,
      30_000,
    );
    const broker = brokerPid();
    const from = first.events.length;
    const frozenAt = Date.now();
    process.kill(broker, 'SIGSTOP');
    let thawedAt: number;
    try {
      // A frozen broker keeps the TCP session open: only the 10 s keepalive (a PINGREQ with
      // no answer) tells the device, which then buffers and retries.
      await first.next((e) => e.event === 'disconnected', 30_000, from);
      // The broker stays frozen until the device has buffered readings it could not send.
      await first.next(
        (e) => e.event === 'stats' && e.connected === false && Number(e.buffered) > 10,
        30_000,
        from,
      );
    } finally {
      process.kill(broker, 'SIGCONT');
      thawedAt = Date.now();
    }
    await first.next((e) => e.event === 'connected' && Number(e.connections) >= 2, 30_000, from);
    // Until the backlog is acknowledged (what remains is the batch still filling: the rounds
    // of one batch age and the one just sampled), then a few seconds more of normal operation.
    const after = first.events.length;
    const filling = SENSORS.length * (BATCH_AGE_MS / INTERVAL_MS + 1);
    await first.next(
      (e) => e.event === 'stats' && Number(e.buffered) <= filling && e.inflight === 0,
      30_000,
      after,
    );
    // Then two more rounds delivered in normal operation.
    const drained = first.events.length;
    const sentWhenDrained = Number(
      first.events.filter((e) => e.event === 'stats').at(-1)?.sent ?? 0,
    );
    await first.next(
      (e) => e.event === 'stats' && Number(e.sent) >= sentWhenDrained + 2 * SENSORS.length,
      30_000,
      drained,
    );

    first.child.kill('SIGTERM');
    const stopped = await first.next((e) => e.event === 'stopped', 10_000);
    await first.exited;
    const stoppedAt = Date.now();
    expect(stopped).toMatchObject({ buffered: 0, dropped: 0 });
    const sent = Number(stopped.sent);
    expect(sent % SENSORS.length).toBe(0);
    const rounds = sent / SENSORS.length;

    // Everything the device took from its start to its stop: each sampling round once.
    // From the spawn on: the previous process's last readings are older, this one's newer.
    let stored = await points(SENSORS, firstStarted, stoppedAt + 1000);
    await waitUntil(
      'every acknowledged reading to be stored',
      async () => {
        stored = await points(SENSORS, firstStarted, stoppedAt + 1000);
        return SENSORS.every((s) => (stored.get(s)?.length ?? 0) >= rounds);
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    ).catch(() => {});
    const times = stored.get('temperature') ?? [];
    for (const sensor of SENSORS) {
      expect(stored.get(sensor), sensor).toHaveLength(rounds);
      // The same rounds for every sensor: one timestamp per round, shared by its readings.
      expect(stored.get(sensor)).toEqual(times);
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // No duplicate stored under a second timestamp, and no round missing.
    expect(Math.min(...gaps)).toBeGreaterThan(INTERVAL_MS / 2);
    expect(Math.max(...gaps)).toBeLessThan(INTERVAL_MS * 2.5);
    // The readings taken while the broker was frozen are among them.
    const duringFreeze = times.filter((t) => t >= frozenAt && t <= thawedAt).length;
    expect(duringFreeze).toBeGreaterThanOrEqual(
      Math.floor(((thawedAt - frozenAt) / INTERVAL_MS) * 0.9),
    );
  }, 120_000);

  it('a SIGKILLed device shows offline through its last will', async () => {
    // Two processes with one client id would take the session from each other.
    for (const device of devices) {
      if (device.child.exitCode === null && device.child.signalCode === null) {
        device.child.kill('SIGTERM');
        await device.exited;
      }
    }
    const second = runDevice();
    await second.next((e) => e.event === 'connected', 30_000);
    await expect
      .poll(async () => (await deviceDetail()).device.status, { timeout: 10_000 })
      .toBe('online');
    const started = await second.next((e) => e.event === 'started', 1000);
    const pid = Number(started.pid);
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    await expect
      .poll(async () => (await deviceDetail()).device.status, { timeout: 10_000 })
      .toBe('offline');
    expect(second.events.some((e) => e.event === 'stopped')).toBe(false);
  }, 60_000);
});
