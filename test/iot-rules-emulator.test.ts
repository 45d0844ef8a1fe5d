/**
 * The IoT rules emulator against a real Mosquitto (the run's shared broker) and a simulated
 * Lambda endpoint: a small HTTP server answering serverless-offline's Invoke route the way
 * serverless-offline@13 does. The end-to-end test with serverless-offline itself is separate.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DeadLetterStore } from '../local/iot-rules/dead-letter-store.ts';
import {
  type FunctionStats,
  type IotRulesEmulatorOptions,
  localClientId,
  type RunningIotRulesEmulator,
  startIotRulesEmulator,
} from '../local/iot-rules/emulator.ts';
import { startMosquitto } from '../local/services/mosquitto.ts';
import { type Invocation, SimulatedLambdaEndpoint } from './support/simulated-lambda.ts';

const stack = inject('testStack');
const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');
const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let publisher: MqttClient;
beforeAll(async () => {
  publisher = await mqtt.connectAsync(stack.mqttUrl, {
    ...stack.mqttPlatform,
    clientId: unique('rules-test-publisher'),
    protocolVersion: 5,
  });
});
afterAll(async () => {
  await publisher.endAsync();
});

async function publish(topic: string, payload: string | Buffer, retain = false): Promise<void> {
  await publisher.publishAsync(topic, payload, { qos: 1, retain });
}

/** A test's own directory, serverless.yml, fake Lambda endpoint and emulator settings. */
async function setup(options: {
  yml: string;
  functionNames: string[];
  overrides?: Partial<IotRulesEmulatorOptions>;
}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-rules-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const serverlessYmlPath = path.join(dir, 'serverless.yml');
  await writeFile(serverlessYmlPath, options.yml);
  const lambda = new SimulatedLambdaEndpoint(options.functionNames);
  await lambda.start();
  cleanups.push(() => lambda.stop());
  const clientId = unique('rules-emulator');
  cleanups.push(() => forgetSession(clientId));
  const emulatorOptions: IotRulesEmulatorOptions = {
    serverlessYmlPath,
    stage: 'test',
    mqtt: { url: stack.mqttUrl, ...stack.mqttPlatform },
    lambdaEndpoint: lambda.url,
    deadLetterDir: path.join(dir, 'dead-letters'),
    clientId,
    log: quietLog,
    retry: { initialDelayMs: 20, maxDelayMs: 100, maxElapsedMs: 10_000 },
    ...options.overrides,
  };
  const started: RunningIotRulesEmulator[] = [];
  const start = async (extra: Partial<IotRulesEmulatorOptions> = {}) => {
    const emulator = await startIotRulesEmulator({ ...emulatorOptions, ...extra });
    started.push(emulator);
    return emulator;
  };
  cleanups.push(() => Promise.all(started.map((emulator) => emulator.stop())));
  return { dir, lambda, start, deadLetters: new DeadLetterStore(emulatorOptions.deadLetterDir) };
}

/** A Mosquitto of the test's own, which it may stop and start (the run's is shared). */
async function privateBroker() {
  const brokerDir = await mkdtemp(path.join(tmpdir(), 'easysmart-rules-broker-'));
  await chmod(brokerDir, 0o755);
  const broker = await startMosquitto({ dataDir: brokerDir });
  cleanups.push(async () => {
    await broker.stop();
    await rm(brokerDir, { recursive: true, force: true });
  });
  return broker;
}

/** Ends the emulator's persistent session so the shared broker does not keep queueing for it. */
async function forgetSession(clientId: string): Promise<void> {
  const client = await mqtt.connectAsync(stack.mqttUrl, {
    ...stack.mqttPlatform,
    clientId,
    clean: true,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 0 },
  });
  await client.endAsync();
}

describe('IoT rules emulator (simulated Lambda endpoint)', () => {
  it('evaluates each rule and invokes its function with the rule output', async () => {
    const device = unique('dev');
    const yml = `service: easysmart
provider:
  name: aws
  stage: \${opt:stage, 'dev'}
functions:
  ingest:
    handler: functions/ingest/handler.handler
    events:
      - iot:
          sql: "SELECT *, topic(2) AS device_id, topic() AS topic, clientid() AS client_id, timestamp() AS received_at FROM 'devices/${device}/+/state' WHERE value > 10"
          sqlVersion: '2016-03-23'
      - iot:
          sql: "SELECT values.t AS t FROM 'devices/${device}/telemetry'"
          sqlVersion: '2016-03-23'
      - iot:
          sql: "SELECT * FROM 'devices/${device}/ignored'"
          sqlVersion: '2016-03-23'
          enabled: false
  audit:
    handler: functions/audit/handler.handler
    name: custom-audit-name
    events:
      - httpApi: 'GET /api/audit'
      - iot:
          sql: "SELECT topic(3) AS entity FROM 'devices/${device}/#' WHERE NOT topic(3) = 'telemetry'"
          sqlVersion: '2016-03-23'
resources:
  Resources:
    Role:
      Type: AWS::IAM::Role
      Properties:
        RoleName: !Sub '\${AWS::StackName}-role'
        Arn: !GetAtt [Role, Arn]
`;
    const { lambda, start } = await setup({
      yml,
      functionNames: ['easysmart-test-ingest', 'custom-audit-name'],
    });
    const emulator = await start();
    const before = Date.now();
    await publish(`devices/${device}/temp/state`, '{"value": 21, "unit": "C"}');
    await publish(`devices/${device}/temp/state`, '{"value": 5}');
    await publish(`devices/${device}/telemetry`, '{"values": {"t": 3}}');
    await publish(`devices/${device}/ignored`, '{"x": 1}');
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(5), { timeout: 5000 });
    await emulator.idle();

    const ingest = lambda.succeeded.filter((call) => call.functionName === 'easysmart-test-ingest');
    expect(ingest.map((call) => call.event)).toEqual([
      {
        value: 21,
        unit: 'C',
        device_id: device,
        topic: `devices/${device}/temp/state`,
        client_id: device,
        received_at: expect.any(Number),
      },
      { t: 3 },
    ]);
    const receivedAt = (ingest[0]?.event as { received_at?: number } | undefined)?.received_at;
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(receivedAt).toBeLessThanOrEqual(Date.now());
    const audit = lambda.succeeded.filter((call) => call.functionName === 'custom-audit-name');
    // Different topics are invoked concurrently: only per-topic order is kept.
    const entities = audit.map((call) => call.event as { entity: string });
    expect(entities.sort((a, b) => a.entity.localeCompare(b.entity))).toEqual([
      { entity: 'ignored' },
      { entity: 'temp' },
      { entity: 'temp' },
    ]);

    const stats = emulator.stats();
    // Mosquitto sends one copy per matching subscription: the state messages match two filters.
    expect(stats).toMatchObject({ connected: true, messages: 7, acknowledged: 7, filtered: 2 });
    expect(stats.functions.ingest).toMatchObject({
      received: 2,
      invoked: 2,
      succeeded: 2,
      retried: 0,
      deadLettered: 0,
      inFlight: 0,
      queued: 0,
    });
    expect(stats.functions.audit).toMatchObject({ received: 3, succeeded: 3 });
  });

  it('runs rules for QoS 0 messages too, as AWS does, and acknowledges only QoS 1 ones', async () => {
    const device = unique('dev');
    const { lambda, start } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
    });
    const emulator = await start();
    await publisher.publishAsync(`devices/${device}/telemetry`, '{"n": 0}', { qos: 0 });
    await publish(`devices/${device}/telemetry`, '{"n": 1}');
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(2), { timeout: 5000 });
    await emulator.idle();
    expect(lambda.succeeded.map((call) => call.event)).toEqual([
      { n: 0, device_id: device },
      { n: 1, device_id: device },
    ]);
    expect(emulator.stats()).toMatchObject({ messages: 2, acknowledged: 1 });
  });

  it("passes a malformed payload to the function through encode(*, 'base64') and skips JSON rules", async () => {
    const device = unique('dev');
    const yml = JSON.stringify({
      service: 'easysmart',
      functions: {
        ingest: {
          handler: 'h.handler',
          events: [
            {
              iot: {
                sql: `SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS client_id, timestamp() AS received_at FROM 'devices/${device}/#'`,
                sqlVersion: '2016-03-23',
              },
            },
          ],
        },
        fields: {
          handler: 'h.handler',
          events: [
            { iot: { sql: `SELECT value FROM 'devices/${device}/#'`, sqlVersion: '2016-03-23' } },
          ],
        },
      },
    });
    const { lambda, start } = await setup({
      yml,
      functionNames: ['easysmart-test-ingest', 'easysmart-test-fields'],
    });
    const emulator = await start();
    const garbage = Buffer.from([0x7b, 0x22, 0xff, 0x00, 0x0a]);
    await publish(`devices/${device}/x/state`, garbage);
    await publish(`devices/${device}/status`, 'online');
    await publish(`devices/${device}/x/state`, '{"value": true}');
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(4), { timeout: 5000 });
    await emulator.idle();
    const ingest = lambda.succeeded
      .filter((call) => call.functionName === 'easysmart-test-ingest')
      .map((call) => call.event as { payload: string; topic: string; client_id: string });
    expect(ingest.map((event) => Buffer.from(event.payload, 'base64'))).toEqual([
      garbage,
      Buffer.from('online'),
      Buffer.from('{"value": true}'),
    ]);
    expect(ingest[0]).toMatchObject({ topic: `devices/${device}/x/state`, client_id: device });
    expect(
      lambda.succeeded
        .filter((call) => call.functionName === 'easysmart-test-fields')
        .map((c) => c.event),
    ).toEqual([{ value: true }]);
    expect(emulator.stats()).toMatchObject({ notJson: 2, messages: 3, acknowledged: 3 });
  });

  it('retries a failing function with backoff until it succeeds', async () => {
    const device = unique('dev');
    const { lambda, start, deadLetters } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
    });
    let failures = 3;
    lambda.behaviour = () => {
      if (failures > 0) {
        failures -= 1;
        throw new Error('InfluxDB is down');
      }
    };
    const emulator = await start();
    await publish(`devices/${device}/telemetry`, '{"n": 1}');
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(1), { timeout: 5000 });
    await emulator.idle();
    expect(lambda.calls).toHaveLength(4);
    expect(emulator.stats().functions.ingest).toMatchObject({
      invoked: 4,
      retried: 3,
      succeeded: 1,
      deadLettered: 0,
    });
    expect(emulator.stats().acknowledged).toBe(1);
    expect(await deadLetters.list()).toEqual([]);
  });

  it('dead-letters a message after the retry budget, acknowledges it, and replays it with npm run dlq', async () => {
    const device = unique('dev');
    const { lambda, start, deadLetters, dir } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
      overrides: { retry: { initialDelayMs: 20, maxDelayMs: 60, maxElapsedMs: 300 } },
    });
    lambda.behaviour = () => {
      throw new Error('InfluxDB is down');
    };
    const emulator = await start();
    await publish(`devices/${device}/telemetry`, '{"n": 1}');
    await vi.waitFor(async () => expect(await deadLetters.list()).toHaveLength(1), {
      timeout: 5000,
    });
    await emulator.idle();
    const [record] = await deadLetters.list();
    expect(record).toMatchObject({
      rule: 'ingest#1',
      function: 'ingest',
      functionName: 'easysmart-test-ingest',
      batched: false,
      topic: `devices/${device}/telemetry`,
      payloadBase64: Buffer.from('{"n": 1}').toString('base64'),
      event: { n: 1, device_id: device },
      error: 'Unhandled: Error: InfluxDB is down',
    });
    expect(record?.attempts).toBeGreaterThan(2);
    expect(lambda.calls).toHaveLength(record?.attempts ?? -1);
    expect(emulator.stats().functions.ingest).toMatchObject({ deadLettered: 1, succeeded: 0 });
    expect(emulator.stats().acknowledged).toBe(1);
    const lines = (await readFile(path.join(dir, 'dead-letters', 'dead-letters.jsonl'), 'utf8'))
      .trim()
      .split('\n');
    expect(lines).toHaveLength(1);

    // Acknowledged means gone from the broker: a restarted emulator gets nothing again.
    await emulator.stop();
    lambda.behaviour = () => {};
    const calls = lambda.calls.length;
    const restarted = await start();
    // A marker published now reaches the session after anything the broker still held for it:
    // once the marker is through, a redelivered message would have been too.
    await publish(`devices/${device}/telemetry`, '{"n": 2}');
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(1), { timeout: 5000 });
    expect(restarted.stats().messages).toBe(1);
    expect(lambda.calls.slice(calls).map((call) => call.event)).toEqual([
      { n: 2, device_id: device },
    ]);

    // The operator replays it once the function works again.
    await writeFile(
      path.join(dir, 'stack.json'),
      JSON.stringify({ pid: process.pid, lambdaEndpoint: lambda.url }),
    );
    const replay = await run(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'local/dead-letters.ts'), 'replay', record?.id ?? ''],
      { cwd: repoRoot, env: { ...process.env, LOCAL_DATA_DIR: dir } },
    );
    expect(replay.stdout).toContain('replayed 1 of 1');
    expect(lambda.succeeded.map((call) => call.event)).toEqual([
      { n: 2, device_id: device },
      { n: 1, device_id: device },
    ]);
    expect(await deadLetters.list()).toEqual([]);
  });

  it('acknowledges in the order the broker sent, and stops waiting for a stuck message after the hold limit', async () => {
    const slow = unique('dev');
    const fast = unique('dev');
    const rule = (device: string) => ({
      iot: {
        sql: `SELECT *, topic(2) AS device_id FROM 'devices/${device}/telemetry'`,
        sqlVersion: '2016-03-23',
      },
    });
    const yml = JSON.stringify({
      service: 'easysmart',
      functions: { ingest: { handler: 'h.handler', events: [rule(slow), rule(fast)] } },
    });
    const { lambda, start } = await setup({ yml, functionNames: ['easysmart-test-ingest'] });
    const emulator = await start({ ackHoldLimitMs: 1500 });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    lambda.behaviour = async (call) => {
      if ((call.event as { device_id: string }).device_id === slow) await released;
    };
    await publish(`devices/${slow}/telemetry`, JSON.stringify({ n: 0 }));
    for (let n = 1; n <= 5; n += 1)
      await publish(`devices/${fast}/telemetry`, JSON.stringify({ n }));
    // Done with (the emulator has their answers), but sent after a message still in the
    // function: not acknowledged yet.
    await vi.waitFor(
      () => expect(emulator.stats().functions.ingest).toMatchObject({ succeeded: 5 }),
      { timeout: 5000 },
    );
    expect(emulator.stats()).toMatchObject({ messages: 6, acknowledged: 0 });
    // Past the hold limit they are, out of order; the stuck message is not.
    await vi.waitFor(() => expect(emulator.stats().acknowledged).toBe(5), { timeout: 3000 });
    release();
    await vi.waitFor(() => expect(emulator.stats().acknowledged).toBe(6), { timeout: 3000 });
    await emulator.idle();
  });

  /**
   * Publishes 400 messages of 3 KB while the function takes one batch (of up to 10) and holds
   * the rest, and returns how many the emulator had received unacknowledged meanwhile, once it
   * took them all in order after being let go.
   */
  async function unacknowledgedWhileHeld(limits: Partial<IotRulesEmulatorOptions>) {
    const device = unique('dev');
    const yml = singleRuleYml(device, {
      iotRulesEmulator: { batch: { ingest: { maxRecords: 10, maxWaitMs: 20 } } },
    });
    const { lambda, start } = await setup({ yml, functionNames: ['easysmart-test-ingest'] });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The first batch is taken, so the broker gets PUBACKs; the rest wait in the function.
    lambda.behaviour = async () => {
      if (lambda.calls.length > 1) await released;
    };
    const emulator = await start(limits);
    const total = 400;
    const filler = 'x'.repeat(3000);
    await Promise.all(
      Array.from({ length: total }, (_, n) =>
        publish(`devices/${device}/telemetry`, JSON.stringify({ n, filler })),
      ),
    );
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(1), { timeout: 5000 });
    // Its first batch: 10 messages, or fewer if they came slower than its 20 ms wait. The
    // function's answer and the emulator's acknowledgements are separate events: wait for both.
    const firstBatch = lambda.succeeded[0]?.event as unknown[] | undefined;
    await vi.waitFor(() => expect(emulator.stats().acknowledged).toBe(firstBatch?.length), {
      timeout: 5000,
    });
    // Once it stops reading, nothing more can arrive until it acknowledges (the function holds).
    await vi.waitFor(() => expect(emulator.stats().readingPaused).toBe(true), { timeout: 10_000 });
    const { messages, acknowledged } = emulator.stats();
    expect(acknowledged).toBe(firstBatch?.length);
    release();
    await vi.waitFor(() => expect(emulator.stats().acknowledged).toBe(total), { timeout: 20_000 });
    const records = lambda.succeeded.flatMap((call) => call.event as Array<{ n: number }>);
    expect(records.map((record) => record.n)).toEqual(Array.from({ length: total }, (_, n) => n));
    await emulator.idle();
    return messages - acknowledged;
  }

  // A 64 KB socket read, all that is handled after reading stops, holds 21 of the messages.
  it('holds no more than its Receive Maximum unacknowledged, though Mosquitto sends more after the first PUBACK', async () => {
    const held = await unacknowledgedWhileHeld({ receiveMaximum: 60 });
    expect(held).toBeGreaterThanOrEqual(60);
    expect(held).toBeLessThanOrEqual(60 + 21);
  });

  it('holds no more than its byte limit of unacknowledged payloads', async () => {
    // Payloads are 3,019 to 3,021 bytes: the limit is reached at 60 messages, give or take one.
    const held = await unacknowledgedWhileHeld({ maxUnacknowledgedBytes: 60 * 3020 });
    expect(held).toBeGreaterThanOrEqual(59);
    expect(held).toBeLessThanOrEqual(61 + 21);
  });

  it('acknowledges only after success: an emulator stopped mid-stream loses nothing', async () => {
    const device = unique('dev');
    const { lambda, start, deadLetters } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
      overrides: { retry: { initialDelayMs: 50, maxDelayMs: 200, maxElapsedMs: 60_000 } },
    });
    const first = await start();
    // The function fails until the stack is "fixed"; meanwhile messages keep coming.
    let healthy = false;
    lambda.behaviour = () => {
      if (!healthy) throw new Error('database unavailable');
    };
    const total = 200;
    for (let n = 0; n < 100; n += 1)
      await publish(`devices/${device}/telemetry`, JSON.stringify({ n }));
    await vi.waitFor(() => expect(lambda.calls.length).toBeGreaterThan(3), { timeout: 5000 });
    await first.stop();
    expect(first.stats().acknowledged).toBe(0);
    // Published while no emulator runs: queued by the broker in the persistent session.
    for (let n = 100; n < total; n += 1)
      await publish(`devices/${device}/telemetry`, JSON.stringify({ n }));

    healthy = true;
    const second = await start();
    await vi.waitFor(
      () => {
        const delivered = new Set(lambda.succeeded.map((call) => (call.event as { n: number }).n));
        expect(delivered.size).toBe(total);
      },
      { timeout: 10_000 },
    );
    await second.idle();
    expect(second.stats().redelivered).toBeGreaterThan(0);
    expect(second.stats().acknowledged).toBe(second.stats().messages);
    // Per-topic order holds across the restart.
    const order = lambda.succeeded.map((call) => (call.event as { n: number }).n);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(await deadLetters.list()).toEqual([]);
  });

  it('loses nothing when the emulator process is killed mid-stream (SIGKILL)', async () => {
    const device = unique('dev');
    const { lambda, start, dir } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
    });
    const clientId = unique('rules-emulator-killed');
    cleanups.push(() => forgetSession(clientId));
    // Half the invocations succeed: some messages are acknowledged, others are not, when it dies.
    let count = 0;
    lambda.behaviour = () => {
      count += 1;
      if (count % 2 === 0) throw new Error('flaky');
    };
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { startIotRulesEmulator } = await import(${JSON.stringify(path.join(repoRoot, 'local/iot-rules/emulator.ts'))});
         const quiet = { debug() {}, info() {}, warn() {}, error() {} };
         await startIotRulesEmulator({ ...JSON.parse(process.env.EMULATOR_OPTIONS), log: quiet });
         console.log('started');`,
      ],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          EMULATOR_OPTIONS: JSON.stringify({
            serverlessYmlPath: path.join(dir, 'serverless.yml'),
            stage: 'test',
            mqtt: { url: stack.mqttUrl, ...stack.mqttPlatform },
            lambdaEndpoint: lambda.url,
            deadLetterDir: path.join(dir, 'dead-letters'),
            clientId,
            retry: { initialDelayMs: 20, maxDelayMs: 100, maxElapsedMs: 60_000 },
          }),
        },
      },
    );
    cleanups.push(async () => child.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('started')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`emulator child exited with ${code}`)));
    });
    const total = 150;
    for (let n = 0; n < total; n += 1)
      await publish(`devices/${device}/telemetry`, JSON.stringify({ n }));
    await vi.waitFor(() => expect(lambda.succeeded.length).toBeGreaterThan(10), { timeout: 5000 });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(lambda.succeeded.length).toBeLessThan(total);

    lambda.behaviour = () => {};
    const restarted = await start({ clientId });
    await vi.waitFor(
      () => {
        const delivered = new Set(lambda.succeeded.map((call) => (call.event as { n: number }).n));
        expect(delivered.size).toBe(total);
      },
      { timeout: 10_000 },
    );
    await restarted.idle();
    expect(restarted.stats().acknowledged).toBe(restarted.stats().messages);
  });

  it('rides out a broker restart: hands on what it held while the broker is away, then reconnects to its stored session', async () => {
    const broker = await privateBroker();
    const device = unique('dev');
    const { lambda, start } = await setup({
      yml: singleRuleYml(device),
      functionNames: ['easysmart-test-ingest'],
      overrides: { mqtt: { url: broker.url, ...broker.platform } },
    });
    let healthy = false;
    lambda.behaviour = () => {
      if (!healthy) throw new Error('not yet');
    };
    const emulator = await start();
    const sender = await mqtt.connectAsync(broker.url, {
      ...broker.platform,
      clientId: unique('sender'),
      protocolVersion: 5,
    });
    for (let n = 0; n < 50; n += 1)
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    await sender.endAsync();
    await vi.waitFor(() => expect(emulator.stats().messages).toBe(50));
    await broker.stop();
    await vi.waitFor(() => expect(emulator.stats().connected).toBe(false));
    healthy = true;
    const delivered = () => lambda.succeeded.map((call) => (call.event as { n: number }).n);
    // What it held goes on to the function while the broker is away: a broker killed before
    // its next save would not deliver it again.
    await vi.waitFor(() => expect(new Set(delivered()).size).toBe(50), { timeout: 15_000 });
    expect(emulator.stats().acknowledged).toBe(0);
    await broker.start();
    // This broker was stopped cleanly, so it saved them: they come again and are acknowledged.
    await vi.waitFor(
      () => expect(emulator.stats()).toMatchObject({ connected: true, acknowledged: 50 }),
      { timeout: 15_000 },
    );
    await emulator.idle();
    // Per-topic order holds in each pass.
    const order = delivered();
    expect(order).toEqual([...order.slice(0, 50).sort((a, b) => a - b), ...order.slice(50)]);
    expect(order.slice(50)).toEqual([...order.slice(50)].sort((a, b) => a - b));
  });

  it('batches records, keeps per-topic order, delivers each once, and keeps batches in flight concurrently', async () => {
    const prefix = unique('batch');
    const devices = Array.from({ length: 12 }, (_, i) => `${prefix}-${i}`);
    const yml = singleRuleYml(
      prefix,
      { iotRulesEmulator: { batch: { ingest: { maxRecords: 25, maxWaitMs: 30 } } } },
      `devices/+/${prefix}`,
    );
    const { lambda, start } = await setup({ yml, functionNames: ['easysmart-test-ingest'] });
    let invocation = 0;
    lambda.behaviour = async () => {
      invocation += 1;
      await new Promise((resolve) => setTimeout(resolve, 15));
      // Every fifth invocation fails: its batch is retried whole.
      if (invocation % 5 === 0) throw new Error('transient');
    };
    const emulator = await start();
    const perDevice = 60;
    const sends: Array<Promise<void>> = [];
    for (let n = 0; n < perDevice; n += 1) {
      for (const device of devices)
        sends.push(publish(`devices/${device}/${prefix}`, JSON.stringify({ n })));
    }
    await Promise.all(sends);
    const total = devices.length * perDevice;
    await vi.waitFor(
      () => expect(lambda.succeeded.flatMap((call) => call.event as unknown[])).toHaveLength(total),
      { timeout: 20_000 },
    );
    await emulator.idle();
    for (const call of lambda.calls) {
      expect(Array.isArray(call.event)).toBe(true);
      expect((call.event as unknown[]).length).toBeLessThanOrEqual(25);
    }
    const records = lambda.succeeded.flatMap(
      (call) => call.event as Array<{ n: number; device_id: string }>,
    );
    for (const device of devices) {
      const sequence = records.filter((r) => r.device_id === device).map((r) => r.n);
      expect(sequence).toEqual(Array.from({ length: perDevice }, (_, n) => n));
    }
    expect(lambda.succeeded.length).toBeLessThan(total / 5);
    expect(lambda.maxConcurrent).toBeGreaterThan(1);
    expect(lambda.maxConcurrent).toBeLessThanOrEqual(4);
    expect(emulator.stats().functions.ingest).toMatchObject({
      received: total,
      succeeded: total,
      deadLettered: 0,
      inFlight: 0,
      queued: 0,
    });
    expect(emulator.stats().functions.ingest?.retried).toBeGreaterThan(0);
    expect(emulator.stats().acknowledged).toBe(total);
  });

  it('hands every rule output over exactly, however long or far from ASCII, in and out of batches', async () => {
    const prefix = unique('bytes');
    // The payload both as fields and as base64 text (written apart from JSON.stringify).
    const yml = singleRuleYml(
      prefix,
      { iotRulesEmulator: { batch: { ingest: { maxRecords: 40, maxWaitMs: 10 } } } },
      `devices/+/${prefix}`,
      "*, encode(*, 'base64') AS raw, topic(2) AS device_id",
    );
    const { lambda, start } = await setup({ yml, functionNames: ['easysmart-test-ingest'] });
    const emulator = await start();
    // About 4 MB of output in all, so that it spans more than one of the emulator's
    // buffers, with 1- to 4-byte characters and one output far larger than the rest.
    const texts = Array.from({ length: 600 }, (_, n) =>
      `${n} Größe ≤ 5 € 😀 "quoted" \\ line\nbreak `.repeat(1 + (n % 90)),
    );
    // 120 KB: under the broker's packet limit (AWS's 128 KB), and with its base64 copy an
    // output over the emulator's largest slab-held size.
    texts[300] = 'x€'.repeat(30_000);
    for (const [n, text] of texts.entries()) {
      await publish(`devices/dev-${n % 3}/${prefix}`, JSON.stringify({ n, text }));
    }
    await vi.waitFor(
      () =>
        expect(lambda.succeeded.flatMap((call) => call.event as unknown[])).toHaveLength(
          texts.length,
        ),
      { timeout: 20_000 },
    );
    await emulator.idle();
    const records = lambda.succeeded.flatMap(
      (call) => call.event as Array<{ n: number; text: string; raw: string; device_id: string }>,
    );
    records.sort((a, b) => a.n - b.n);
    expect(records).toEqual(
      texts.map((text, n) => ({
        n,
        text,
        raw: Buffer.from(JSON.stringify({ n, text })).toString('base64'),
        device_id: `dev-${n % 3}`,
      })),
    );
  });

  it('writes new outputs over old ones only once nothing reads the old ones', async () => {
    // Unbatched, so each invocation's body is the output's own bytes, retried as they are.
    // Invocations are held (and the first ones fail) until some 4 MB of outputs wait, more
    // than fit in the emulator's first buffers: any buffer reused too early shows as a wrong
    // or unparsable body.
    const prefix = unique('reuse');
    const yml = singleRuleYml(prefix, undefined, `devices/+/${prefix}`);
    const { lambda, start } = await setup({ yml, functionNames: ['easysmart-test-ingest'] });
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let failures = 3;
    lambda.behaviour = async () => {
      await gate;
      if (failures > 0) {
        failures -= 1;
        throw new Error('not yet');
      }
    };
    const emulator = await start();
    const count = 1200;
    const textOf = (n: number) => `${n}:${'ab€'.repeat(1000 + (n % 7))}`;
    for (let n = 0; n < count; n++) {
      await publish(`devices/dev-${n % 40}/${prefix}`, JSON.stringify({ n, text: textOf(n) }));
    }
    open();
    // 1,200 invocations one at a time per device: 15 s on a loaded machine, more beside a
    // whole suite, so the wait is generous (it bounds a hang, it measures nothing).
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(count), { timeout: 90_000 });
    await emulator.idle();
    const records = lambda.succeeded.map((call) => call.event as { n: number; text: string });
    records.sort((a, b) => a.n - b.n);
    expect(records.map((record) => record.text)).toEqual(
      Array.from({ length: count }, (_, n) => textOf(n)),
    );
  }, 150_000);

  it('bounds each batch by maxBytes of rule output, a larger lone message going alone', async () => {
    const device = unique('dev');
    const batchYml = (batch: Record<string, unknown>) =>
      singleRuleYml(device, { iotRulesEmulator: { batch: { ingest: batch } } });
    const { lambda, start } = await setup({
      yml: batchYml({ maxRecords: 100, maxWaitMs: 100, maxBytes: 1000 }),
      functionNames: ['easysmart-test-ingest'],
    });
    const emulator = await start();
    // Each output is about 140 bytes of JSON: at most 7 fit in 1,000.
    const filler = 'x'.repeat(90);
    await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        publish(`devices/${device}/telemetry`, JSON.stringify({ n, filler })),
      ),
    );
    await publish(
      `devices/${device}/telemetry`,
      JSON.stringify({ n: 40, filler: 'y'.repeat(2000) }),
    );
    await vi.waitFor(
      () => expect(lambda.succeeded.flatMap((call) => call.event as unknown[])).toHaveLength(41),
      { timeout: 10_000 },
    );
    await emulator.idle();
    const bodies = lambda.succeeded.map((call) => call.event as Array<{ n: number }>);
    for (const body of bodies) {
      if (body.length > 1)
        expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(1000);
    }
    expect(bodies.filter((body) => body.length > 1).length).toBeGreaterThan(3);
    expect(bodies.find((body) => body.some((record) => record.n === 40))).toHaveLength(1);
    expect(bodies.flat().map((record) => record.n)).toEqual(
      Array.from({ length: 41 }, (_, n) => n),
    );

    // The Lambda request limit is a ceiling no setting may lift.
    const tooBig = await setup({
      yml: batchYml({ maxRecords: 100, maxBytes: 6 * 1024 * 1024 }),
      functionNames: ['easysmart-test-ingest'],
    });
    await expect(tooBig.start()).rejects.toThrow(/maxBytes must be at most 5242880/);
  });

  it('dead-letters a failed batch record by record', async () => {
    const device = unique('dev');
    const yml = JSON.stringify({
      service: 'easysmart',
      functions: {
        ingest: {
          handler: 'h.handler',
          events: [
            {
              iot: { sql: `SELECT * FROM 'devices/${device}/telemetry'`, sqlVersion: '2016-03-23' },
            },
          ],
        },
      },
      custom: { iotRulesEmulator: { batch: { ingest: { maxRecords: 10, maxWaitMs: 200 } } } },
    });
    const { lambda, start, deadLetters } = await setup({
      yml,
      functionNames: ['easysmart-test-ingest'],
      overrides: { retry: { initialDelayMs: 10, maxDelayMs: 20, maxElapsedMs: 100 } },
    });
    lambda.behaviour = () => {
      throw new Error('always');
    };
    const emulator = await start();
    await Promise.all(
      [0, 1, 2].map((n) => publish(`devices/${device}/telemetry`, JSON.stringify({ n }))),
    );
    await vi.waitFor(async () => expect(await deadLetters.list()).toHaveLength(3), {
      timeout: 5000,
    });
    await emulator.idle();
    const records = await deadLetters.list();
    expect(records.map((record) => record.event)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(records.every((record) => record.batched)).toBe(true);
    expect(new Set(records.map((record) => record.id)).size).toBe(3);
    expect(lambda.calls.every((call) => (call.event as unknown[]).length === 3)).toBe(true);
  });

  it('refuses rules it cannot run, naming the rule', async () => {
    const { start } = await setup({
      yml: JSON.stringify({
        service: 'easysmart',
        functions: {
          ingest: {
            handler: 'h.handler',
            events: [
              { iot: { sql: "SELECT upper(x) AS y FROM 'devices/#'", sqlVersion: '2016-03-23' } },
            ],
          },
        },
      }),
      functionNames: [],
    });
    await expect(start()).rejects.toThrow(
      /functions\.ingest\.events\[iot #1\]: function upper\(\) is not supported/,
    );
  });

  it('refuses to start with credentials the broker rejects', async () => {
    const { start } = await setup({ yml: singleRuleYml(unique('dev')), functionNames: [] });
    await expect(
      start({
        mqtt: { url: stack.mqttUrl, username: stack.mqttPlatform.username, password: 'wrong' },
      }),
    ).rejects.toThrow(/IoT rules emulator cannot connect/);
  });
});

describe('localClientId', () => {
  it('is the device id for topics under devices/', () => {
    expect(localClientId('devices/dev-1/temp/state')).toBe('dev-1');
    expect(localClientId('other/dev-1')).toBeUndefined();
    expect(localClientId('devices')).toBeUndefined();
  });
});

/** serverless.yml (as JSON) with one rule, `SELECT *, topic(2) AS device_id FROM from`. */
function singleRuleYml(
  device: string,
  custom?: Record<string, unknown>,
  from = `devices/${device}/telemetry`,
  select = '*, topic(2) AS device_id',
): string {
  return JSON.stringify({
    service: 'easysmart',
    functions: {
      ingest: {
        handler: 'h.handler',
        events: [
          {
            iot: {
              sql: `SELECT ${select} FROM '${from}'`,
              sqlVersion: '2016-03-23',
            },
          },
        ],
      },
    },
    ...(custom ? { custom } : {}),
  });
}

/**
 * A rule putting each `devices/<device>/state` message on a stream that `ingest` reads (a
 * topic no other test publishes to: device states have four levels). The devices of a test
 * are named `<prefix>-d<n>`.
 */
function streamYml(mapping: Record<string, unknown> = {}): string {
  return JSON.stringify({
    service: 'easysmart',
    custom: {
      iotRules: {
        stream: {
          resource: 'TestStream',
          partitionKey: 'topic(2)',
          rules: {
            state: {
              name: 'test_state',
              sql: `SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS received_at FROM 'devices/+/state'`,
            },
          },
        },
      },
    },
    functions: {
      ingest: {
        handler: 'h.handler',
        events: [
          {
            stream: {
              type: 'kinesis',
              arn: { 'Fn::GetAtt': ['TestStream', 'Arn'] },
              batchSize: 100,
              batchWindow: 0,
              maximumRetryAttempts: 3,
              functionResponseType: 'ReportBatchItemFailures',
              ...mapping,
            },
          },
        ],
      },
    },
  });
}

interface KinesisRecordShape {
  eventSource: string;
  eventSourceARN: string;
  kinesis: { partitionKey: string; sequenceNumber: string; data: string };
}
const recordsOf = (call: Invocation) => (call.event as { Records: KinesisRecordShape[] }).Records;
const ruleOutput = (record: KinesisRecordShape) =>
  JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8')) as {
    payload: string;
    topic: string;
  };
const readingOf = (record: KinesisRecordShape) =>
  JSON.parse(Buffer.from(ruleOutput(record).payload, 'base64').toString('utf8')).value as number;

describe('IoT rules emulator: rules that put messages on a stream read by an event source mapping', () => {
  it('hands the function a Kinesis event: base64 rule outputs, partition key, sequence numbers in order', async () => {
    const prefix = unique('s');
    const { lambda, start } = await setup({
      yml: streamYml(),
      functionNames: ['easysmart-test-ingest'],
    });
    const emulator = await start();
    for (let n = 0; n < 6; n++)
      await publish(`devices/${prefix}-d${n % 2}/state`, `{"value":${n}}`);
    await vi.waitFor(() => expect(lambda.succeeded.flatMap(recordsOf)).toHaveLength(6), {
      timeout: 5000,
    });
    await emulator.idle();
    const records = lambda.succeeded.flatMap(recordsOf);
    for (const record of records) {
      expect(record).toMatchObject({
        eventSource: 'aws:kinesis',
        eventName: 'aws:kinesis:record',
        eventSourceARN: expect.stringMatching(/^arn:aws:kinesis:[^:]+:\d{12}:stream\/TestStream$/),
        kinesis: { kinesisSchemaVersion: '1.0', sequenceNumber: expect.stringMatching(/^\d{56}$/) },
      });
      const output = ruleOutput(record);
      expect(record.kinesis.partitionKey).toBe(output.topic.split('/')[1]);
    }
    // Per device (partition key), the order of publishing.
    for (const n of [0, 1]) {
      const mine = records.filter((record) => record.kinesis.partitionKey === `${prefix}-d${n}`);
      expect(mine.map(readingOf)).toEqual(n === 0 ? [0, 2, 4] : [1, 3, 5]);
    }
    // Within each batch, in stream order.
    for (const call of lambda.succeeded) {
      const sequences = recordsOf(call).map((record) => BigInt(record.kinesis.sequenceNumber));
      expect([...sequences].sort((a, b) => (a < b ? -1 : 1))).toEqual(sequences);
    }
    expect(emulator.stats().streams.TestStream).toMatchObject({ records: 6, putPayloadUnits: 6 });
    expect(emulator.stats()).toMatchObject({
      meteredMessages: 6,
      rulesTriggered: 6,
      actionsApplied: 6,
    });
  });

  it('a partial batch response retries from the first failed record on, as Lambda does for Kinesis', async () => {
    const prefix = unique('s');
    const { lambda, start, deadLetters } = await setup({
      yml: streamYml({ batchWindow: 1 }),
      functionNames: ['easysmart-test-ingest'],
    });
    let failedOnce = false;
    lambda.behaviour = (call) => {
      const records = recordsOf(call);
      const bad = records.find((record) => readingOf(record) === 2);
      if (bad && !failedOnce) {
        failedOnce = true;
        return { batchItemFailures: [{ itemIdentifier: bad.kinesis.sequenceNumber }] };
      }
      return { batchItemFailures: [] };
    };
    const emulator = await start();
    for (let n = 0; n < 5; n++) await publish(`devices/${prefix}-d${n}/state`, `{"value":${n}}`);
    await vi.waitFor(() => expect(failedOnce).toBe(true), { timeout: 5000 });
    await emulator.idle();
    const [first, ...retries] = lambda.succeeded.map((call) => recordsOf(call).map(readingOf));
    expect(first).toEqual([0, 1, 2, 3, 4]);
    // The checkpoint is the failed record: it and every later one come again, the earlier not.
    expect(retries).toEqual([[2, 3, 4]]);
    expect(await deadLetters.list()).toEqual([]);
    expect(emulator.stats().functions.ingest).toMatchObject({
      received: 5,
      succeeded: 5,
      retried: 1,
      deadLettered: 0,
    });
  });

  it('after MaximumRetryAttempts only the records still failing are dead-lettered', async () => {
    const prefix = unique('s');
    const { lambda, start, deadLetters } = await setup({
      yml: streamYml({ batchWindow: 1, maximumRetryAttempts: 2 }),
      functionNames: ['easysmart-test-ingest'],
    });
    lambda.behaviour = (call) => ({
      batchItemFailures: recordsOf(call)
        .filter((record) => readingOf(record) === 1)
        .map((record) => ({ itemIdentifier: record.kinesis.sequenceNumber })),
    });
    const emulator = await start();
    for (let n = 0; n < 3; n++) await publish(`devices/${prefix}-d${n}/state`, `{"value":${n}}`);
    await vi.waitFor(async () => expect(await deadLetters.list()).toHaveLength(1), {
      timeout: 5000,
    });
    await emulator.idle();
    // The first attempt and two retries.
    expect(lambda.succeeded.map((call) => recordsOf(call).map(readingOf))).toEqual([
      [0, 1, 2],
      [1, 2],
      [1, 2],
    ]);
    const [letter] = await deadLetters.list();
    expect(letter).toMatchObject({
      stream: true,
      topic: `devices/${prefix}-d1/state`,
      attempts: 3,
    });
    expect(emulator.stats().functions.ingest).toMatchObject({ succeeded: 2, deadLettered: 1 });
  });

  it('ParallelizationFactor: one batch per batcher at a time, each gathered for the batching window', async () => {
    const prefix = unique('s');
    const { lambda, start } = await setup({
      yml: streamYml({ batchWindow: 1, parallelizationFactor: 2 }),
      functionNames: ['easysmart-test-ingest'],
    });
    const emulator = await start();
    for (let n = 0; n < 12; n++)
      await publish(`devices/${prefix}-d${n % 6}/state`, `{"value":${n}}`);
    await vi.waitFor(() => expect(lambda.succeeded.flatMap(recordsOf)).toHaveLength(12), {
      timeout: 5000,
    });
    await emulator.idle();
    // Published within the window: each of the (at most) two batchers sends one batch.
    expect(lambda.calls.length).toBeLessThanOrEqual(2);
    expect(lambda.maxConcurrent).toBeLessThanOrEqual(2);
    const batchOf = new Map<string, number>();
    for (const [index, call] of lambda.succeeded.entries()) {
      for (const record of recordsOf(call)) {
        expect(batchOf.get(record.kinesis.partitionKey) ?? index).toBe(index);
        batchOf.set(record.kinesis.partitionKey, index);
      }
    }
  });

  it('a batcher that holds all the emulator may read sends at once: Lambda reading a backlog gets its batch without waiting the window', async () => {
    const prefix = unique('s');
    const { lambda, start } = await setup({
      yml: streamYml({ batchSize: 1000, batchWindow: 30, parallelizationFactor: 1 }),
      functionNames: ['easysmart-test-ingest'],
      overrides: { receiveMaximum: 20 },
    });
    const emulator = await start();
    for (let n = 0; n < 60; n++)
      await publish(`devices/${prefix}-d${n % 3}/state`, `{"value":${n}}`);
    await vi.waitFor(() => expect(lambda.succeeded.flatMap(recordsOf)).toHaveLength(60), {
      timeout: 60_000,
    });
    await emulator.idle();
    const { batchesSentBy } = emulator.stats().functions.ingest as FunctionStats;
    // Every batch went because the emulator could read no further, none for the 30 s window
    // (the last one, whose backlog was gone, may have waited it).
    expect(batchesSentBy.backlog).toBeGreaterThanOrEqual(2);
    expect(batchesSentBy.window).toBeLessThanOrEqual(1);
    expect(batchesSentBy.size + batchesSentBy.bytes + batchesSentBy.drain).toBe(0);
    for (const n of [0, 1, 2]) {
      const mine = lambda.succeeded
        .flatMap(recordsOf)
        .filter((record) => record.kinesis.partitionKey === `${prefix}-d${n}`);
      expect(mine.map(readingOf)).toEqual(Array.from({ length: 20 }, (_, k) => 3 * k + n));
    }
  }, 90_000);

  it('stopped after its broker connection closed, it hands on what it held first, not waiting the window', async () => {
    const broker = await privateBroker();
    const prefix = unique('s');
    const { lambda, start } = await setup({
      yml: streamYml({ batchWindow: 300 }),
      functionNames: ['easysmart-test-ingest'],
      overrides: { mqtt: { url: broker.url, ...broker.platform }, stopTimeoutMs: 60_000 },
    });
    const emulator = await start();
    const sender = await mqtt.connectAsync(broker.url, {
      ...broker.platform,
      clientId: unique('sender'),
      protocolVersion: 5,
    });
    for (let n = 0; n < 5; n++)
      await sender.publishAsync(`devices/${prefix}-d${n % 2}/state`, `{"value":${n}}`, { qos: 1 });
    await sender.endAsync();
    await vi.waitFor(() => expect(emulator.stats().messages).toBe(5));
    await broker.stop();
    await vi.waitFor(() => expect(emulator.stats().connected).toBe(false));
    expect(lambda.calls).toHaveLength(0);
    await emulator.stop();
    expect(lambda.succeeded.flatMap(recordsOf).map(readingOf).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(emulator.stats().functions.ingest?.batchesSentBy).toMatchObject({ drain: 1, window: 0 });
  });

  it('a function error retries the whole batch', async () => {
    const prefix = unique('s');
    const { lambda, start } = await setup({
      yml: streamYml({ batchWindow: 1 }),
      functionNames: ['easysmart-test-ingest'],
    });
    let calls = 0;
    lambda.behaviour = () => {
      calls += 1;
      if (calls === 1) throw new Error('InfluxDB unavailable');
    };
    const emulator = await start();
    for (let n = 0; n < 3; n++) await publish(`devices/${prefix}-d${n}/state`, `{"value":${n}}`);
    await vi.waitFor(() => expect(lambda.succeeded).toHaveLength(1), { timeout: 5000 });
    await emulator.idle();
    expect(lambda.calls.map((call) => recordsOf(call).map(readingOf))).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
  });
});
