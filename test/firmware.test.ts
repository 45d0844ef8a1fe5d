import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The firmware's host side: the doctest unit tests of the portable core, and the virtual
 * device (the same core over libmosquitto) against a real Mosquitto of this file's own,
 * which is stopped and restarted to prove the offline buffer.
 */

const firmwareDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'firmware');
const binary = path.join(firmwareDir, 'build', 'virtual-device');
const SENSORS = ['temperature', 'pressure', 'vibration'] as const;
const INTERVAL_MS = 200;

interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A Mosquitto that can be stopped and started again on the same port, keeping its sessions. */
class Broker {
  process: ChildProcess | undefined;
  log = '';
  constructor(
    readonly conf: string,
    readonly port: number,
  ) {}

  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    let exitInfo: string | undefined;
    child.once('error', (err) => {
      exitInfo = err.message;
    });
    child.once('exit', (code) => {
      exitInfo = `mosquitto exited (${code}): ${this.log}`;
    });
    this.process = child;
    const deadline = Date.now() + 10_000;
    while (!(await portAccepts(this.port))) {
      if (exitInfo) throw new Error(exitInfo);
      if (Date.now() > deadline) throw new Error(`mosquitto did not start: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.process = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

type DeviceEvent = { event: string } & Record<string, unknown>;

/** The virtual device as a child process whose JSON event lines are collected. */
class VirtualDevice {
  readonly events: DeviceEvent[] = [];
  readonly process: ChildProcess;
  stderr = '';
  constructor(args: string[]) {
    this.process = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as DeviceEvent);
    });
    this.process.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  waitForEvent(
    what: string,
    predicate: (e: DeviceEvent) => boolean,
    timeoutMs = 10_000,
    from = 0,
  ): Promise<DeviceEvent> {
    return waitFor(what, () => this.events.slice(from).find(predicate), timeoutMs);
  }

  get exited(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }

  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null }> {
    if (this.exited) {
      return { code: this.process.exitCode, signal: this.process.signalCode };
    }
    const exited = once(this.process, 'exit') as Promise<[number | null, string | null]>;
    this.process.kill(signal);
    const [code, sig] = await exited;
    return { code, signal: sig };
  }
}

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  dup?: boolean;
  at: number;
}

describe('firmware core unit tests', () => {
  // The sanitised build takes about 90 s of CPU and shares two cores with the other test
  // files, so its limit is generous: a slow build is not a failing one.
  it('make -C firmware test builds and passes with zero doctest failures', async () => {
    const result = await run('make', ['-j2', '-C', firmwareDir, 'test']);
    expect(result.code, result.output.slice(-4000)).toBe(0);
    const cases = result.output.match(
      /test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed/,
    );
    const assertions = result.output.match(
      /assertions:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed/,
    );
    expect(cases, result.output.slice(-4000)).not.toBeNull();
    expect(Number(cases![1])).toBeGreaterThan(30);
    expect(Number(cases![3])).toBe(0);
    expect(Number(assertions![3])).toBe(0);
    expect(result.output).toContain('Status: SUCCESS!');
  }, 900_000);
});

describe('virtual device against a real Mosquitto', () => {
  const deviceId = `fw-test-${process.pid}-${Date.now().toString(36)}`;
  const received: Received[] = [];
  let dataDir = '';
  let broker: Broker;
  let url = '';
  let subscriber: MqttClient | undefined;
  let device: VirtualDevice | undefined;
  const extraClients: MqttClient[] = [];
  const extraDevices: VirtualDevice[] = [];

  // A PUBLISH flagged DUP is the broker re-sending to this subscriber's persistent session
  // a message it had sent before it was stopped without getting the PUBACK: the broker-to-
  // subscriber hop, not the device publishing twice (a device re-send arrives as a fresh
  // PUBLISH without DUP). DUP means only "may have been sent before" (MQTT 3.1.1, 3.3.1.1):
  // the first copy may have reached us, or may have died with the connection, as the
  // device's will does when Mosquitto sends it while shutting down. So a DUP copy of a
  // message already received is not a delivery; a DUP with no earlier copy is.
  const deliveries = () =>
    received.filter(
      (m, i) =>
        !m.dup ||
        !received
          .slice(0, i)
          .some((earlier) => earlier.topic === m.topic && earlier.payload === m.payload),
    );
  const readings = (entity: string) =>
    deliveries()
      .filter((m) => m.topic === `devices/${deviceId}/${entity}/state`)
      .map((m) => JSON.parse(m.payload) as { value: unknown; timestamp: number });

  beforeAll(async () => {
    const build = await run('make', ['-j2', '-C', firmwareDir, 'virtual-device']);
    if (build.code !== 0) throw new Error(`virtual-device build failed:\n${build.output}`);

    dataDir = await mkdtemp(path.join(tmpdir(), 'easysmart-firmware-'));
    // Mosquitto started as root drops to its own user, which must be able to write the
    // persistence file that carries the subscriber's session across the restart.
    await chmod(dataDir, 0o777);
    const port = await freePort();
    const conf = path.join(dataDir, 'mosquitto.conf');
    await writeFile(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dataDir}/`,
        'log_dest stderr',
        'log_type error',
        '',
      ].join('\n'),
    );
    broker = new Broker(conf, port);
    await broker.start();
    url = `mqtt://127.0.0.1:${port}`;

    // A persistent session (clean: false) so that readings flushed by the device right after
    // the broker restarts are queued for this subscriber even if it reconnects later.
    subscriber = mqtt.connect(url, {
      clientId: `fw-test-sub-${process.pid}`,
      clean: false,
      reconnectPeriod: 100,
      protocolVersion: 4,
    });
    subscriber.on('message', (topic, payload, packet) => {
      received.push({
        topic,
        payload: payload.toString(),
        retain: packet.retain,
        dup: packet.dup,
        at: Date.now(),
      });
    });
    await new Promise<void>((resolve) => subscriber?.once('connect', () => resolve()));
    await subscriber.subscribeAsync(`devices/${deviceId}/#`, { qos: 1 });
  }, 180_000);

  afterAll(async () => {
    for (const d of [device, ...extraDevices]) if (d) await d.kill('SIGKILL');
    for (const c of [subscriber, ...extraClients]) if (c) await c.endAsync(true);
    await broker?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('connects and publishes retained online and discovery', async () => {
    device = new VirtualDevice([
      '--device-id',
      deviceId,
      '--username',
      deviceId,
      '--password',
      'unused-by-anonymous-broker',
      '--mqtt',
      url,
      '--interval-ms',
      String(INTERVAL_MS),
      // The one-reading mode (a state message per reading); the default batching is below.
      '--batch',
      '1',
      '--stats-ms',
      '250',
      '--buffer',
      '2000',
      '--backoff-base-ms',
      '100',
      '--backoff-max-ms',
      '800',
    ]);
    await device.waitForEvent('connected', (e) => e.event === 'connected');

    // A client arriving later must get both as retained messages.
    const late = mqtt.connect(url, { clientId: `fw-test-late-${process.pid}`, protocolVersion: 4 });
    extraClients.push(late);
    const retained: Received[] = [];
    late.on('message', (topic, payload, packet) => {
      retained.push({ topic, payload: payload.toString(), retain: packet.retain, at: Date.now() });
    });
    await new Promise<void>((resolve) => late.once('connect', () => resolve()));
    await late.subscribeAsync([`devices/${deviceId}/status`, `devices/${deviceId}/discovery`], {
      qos: 1,
    });
    const status = await waitFor(
      'retained status',
      () => retained.find((m) => m.topic.endsWith('/status')),
      5_000,
    );
    expect(status.payload).toBe('online');
    expect(status.retain).toBe(true);
    const discovery = await waitFor(
      'retained discovery',
      () => retained.find((m) => m.topic.endsWith('/discovery')),
      5_000,
    );
    expect(discovery.retain).toBe(true);
    const doc = JSON.parse(discovery.payload) as {
      name: string;
      firmware: string;
      report_interval_s: number;
      entities: Array<{
        entity_id: string;
        entity_type: string;
        name: string;
        unit?: string;
        config?: { min: number; max: number; step: number };
      }>;
    };
    expect(doc.name).toBeTruthy();
    expect(doc.firmware).toBeTruthy();
    // A state message per reading: it never goes longer than its interval without one, which
    // the platform's silence sweep takes as the device's own (rounded up to seconds).
    expect(doc.report_interval_s).toBe(Math.ceil(INTERVAL_MS / 1000));
    const byId = new Map(doc.entities.map((e) => [e.entity_id, e]));
    expect(byId.get('relay_main')?.entity_type).toBe('switch');
    for (const s of SENSORS) expect(byId.get(s)?.entity_type).toBe('sensor');
    const number = doc.entities.find((e) => e.entity_type === 'number');
    expect(number?.config).toEqual({
      min: expect.any(Number),
      max: expect.any(Number),
      step: expect.any(Number),
    });
    expect(doc.entities.some((e) => e.entity_type === 'text')).toBe(true);
    for (const e of doc.entities) {
      expect(['status', 'discovery', 'telemetry']).not.toContain(e.entity_id);
      expect(e.entity_id).toMatch(/^[a-zA-Z0-9_-]+$/);
      expect(e.name).toBeTruthy();
    }
  });

  it('publishes sensor readings with finite values and epoch-second timestamps', async () => {
    await waitFor(
      'three readings of each sensor',
      () => SENSORS.every((s) => readings(s).length >= 3),
      10_000,
    );
    const now = Date.now() / 1000;
    for (const s of SENSORS) {
      for (const r of readings(s)) {
        expect(typeof r.value).toBe('number');
        expect(Number.isFinite(r.value)).toBe(true);
        expect(Number.isFinite(r.timestamp)).toBe(true);
        expect(Math.abs(r.timestamp - now)).toBeLessThan(120);
      }
    }
  });

  it('applies a relay command and confirms it with the command id', async () => {
    const commandId = `cmd-${Date.now()}`;
    await subscriber!.publishAsync(
      `devices/${deviceId}/relay_main/set`,
      JSON.stringify({ value: false, command_id: commandId }),
      { qos: 1 },
    );
    const confirmation = await waitFor(
      'relay confirmation',
      () =>
        received.find((m) => {
          if (m.topic !== `devices/${deviceId}/relay_main/state`) return false;
          return (JSON.parse(m.payload) as { command_id?: string }).command_id === commandId;
        }),
      5_000,
    );
    const state = JSON.parse(confirmation.payload) as { value: unknown; timestamp: number };
    expect(state.value).toBe(false);
    expect(Number.isFinite(state.timestamp)).toBe(true);
    await device!.waitForEvent(
      'command event',
      (e) => e.event === 'command' && e.entity_id === 'relay_main' && e.command_id === commandId,
      2_000,
    );

    // A bad command is rejected and the device carries on.
    await subscriber!.publishAsync(
      `devices/${deviceId}/setpoint/set`,
      '{"value":1e6,"command_id":"bad-1"}',
      {
        qos: 1,
      },
    );
    const rejected = await device!.waitForEvent(
      'rejection',
      (e) => e.event === 'command_rejected' && e.command_id === 'bad-1',
      2_000,
    );
    expect(rejected.reason).toBe('out_of_range');
    expect(device!.exited).toBe(false);
  });

  it('buffers readings while the broker is down and delivers them oldest first exactly once', async () => {
    const lastBefore = Math.max(...readings('temperature').map((r) => r.timestamp));
    const eventsBefore = device!.events.length;
    const stoppedAt = Date.now() / 1000;
    await broker.stop();
    await device!.waitForEvent(
      'disconnect',
      (e) => e.event === 'disconnected',
      5_000,
      eventsBefore,
    );
    // Readings pile up in the buffer while offline: wait for the device to report 30 of them.
    const outage = await device!.waitForEvent(
      'stats while offline',
      (e) => e.event === 'stats' && e.connected === false && Number(e.buffered) >= 30,
      10_000,
      eventsBefore,
    );
    expect(outage.dropped).toBe(0);

    const restartedAt = Date.now() / 1000;
    const eventsAtRestart = device!.events.length;
    await broker.start();
    await device!.waitForEvent(
      'reconnect',
      (e) => e.event === 'connected',
      10_000,
      eventsAtRestart,
    );
    await device!.waitForEvent(
      'buffer drained',
      (e) => e.event === 'stats' && e.connected === true && e.buffered === 0 && e.inflight === 0,
      10_000,
      eventsAtRestart,
    );
    // Wait for fresh readings so everything flushed before them has surely arrived.
    await waitFor(
      'readings taken after the restart',
      () => SENSORS.every((s) => readings(s).some((r) => r.timestamp > restartedAt + 1)),
      10_000,
    );

    for (const s of SENSORS) {
      const ts = readings(s).map((r) => r.timestamp);
      // Strictly increasing in arrival order: oldest first, no duplicates.
      for (let i = 1; i < ts.length; i++) {
        expect(ts[i], `${s} reading ${i} out of order or duplicated`).toBeGreaterThan(ts[i - 1]!);
      }
      // Readings taken during the outage were delivered...
      const during = ts.filter((t) => t > stoppedAt && t < restartedAt);
      expect(during.length, s).toBeGreaterThanOrEqual(
        Math.floor(((restartedAt - stoppedAt) * 1000) / INTERVAL_MS) - 3,
      );
      // ...and none went missing: sampling is periodic, so no gap exceeds a few intervals.
      const fromOutage = ts.filter((t) => t >= lastBefore);
      for (let i = 1; i < fromOutage.length; i++) {
        expect(fromOutage[i]! - fromOutage[i - 1]!, `${s} gap`).toBeLessThan(
          (INTERVAL_MS * 4) / 1000,
        );
      }
    }
    const stats = device!.events.filter((e) => e.event === 'stats').at(-1)!;
    expect(stats.dropped).toBe(0);
  }, 45_000);

  it('publishes offline through the LWT when the device is killed with SIGKILL', async () => {
    const since = received.length;
    await device!.kill('SIGKILL');
    const offline = await waitFor(
      'LWT offline',
      () =>
        received
          .slice(since)
          .find((m) => m.topic === `devices/${deviceId}/status` && m.payload === 'offline'),
      5_000,
    );
    expect(offline).toBeTruthy();
  });

  it('batches readings by default and sends the partial batch on SIGTERM before offline', async () => {
    const id = `${deviceId}-term`;
    const watcher = mqtt.connect(url, {
      clientId: `fw-test-term-${process.pid}`,
      protocolVersion: 4,
    });
    extraClients.push(watcher);
    const messages: Array<{ topic: string; payload: string }> = [];
    watcher.on('message', (topic, payload) =>
      messages.push({ topic, payload: payload.toString() }),
    );
    const statuses = () =>
      messages.filter((m) => m.topic === `devices/${id}/status`).map((m) => m.payload);
    await new Promise<void>((resolve) => watcher.once('connect', () => resolve()));
    await watcher.subscribeAsync(`devices/${id}/#`, { qos: 1 });
    // No --batch: the firmware's default, whose batch neither fills (3 readings a round)
    // nor ages (a minute) before the SIGTERM.
    const d = new VirtualDevice(['--device-id', id, '--mqtt', url, '--interval-ms', '500']);
    extraDevices.push(d);
    const started = await d.waitForEvent('started', (e) => e.event === 'started');
    expect(started.batch).toBeGreaterThan(6);
    await d.waitForEvent('connected', (e) => e.event === 'connected');
    await waitFor('online', () => statuses().includes('online'), 5_000);
    await d.waitForEvent('two rounds', (e) => e.event === 'stats' && Number(e.buffered) >= 6);
    expect(messages.filter((m) => m.topic.endsWith('/telemetry'))).toEqual([]);
    const result = await d.kill('SIGTERM');
    expect(result.code).toBe(0);
    expect(d.events.at(-1)?.event).toBe('stopped');
    expect(d.events.at(-1)?.buffered).toBe(0);
    await waitFor('offline', () => statuses().at(-1) === 'offline', 5_000);
    const telemetry = messages.filter((m) => m.topic === `devices/${id}/telemetry`);
    expect(telemetry.length).toBe(1);
    const rounds = [JSON.parse(telemetry[0]!.payload)].flat();
    expect(rounds.length).toBeGreaterThanOrEqual(2);
    for (const round of rounds)
      expect(Object.keys(round.values).sort()).toEqual([...SENSORS].sort());
    // Sensor readings went only into the batch, never as single state messages.
    expect(messages.filter((m) => SENSORS.some((s) => m.topic.endsWith(`/${s}/state`)))).toEqual(
      [],
    );
    const offlineAt = messages.findIndex(
      (m) => m.topic.endsWith('/status') && m.payload === 'offline',
    );
    expect(messages.indexOf(telemetry[0]!)).toBeLessThan(offlineAt);
  });
});
