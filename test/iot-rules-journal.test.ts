/**
 * The rules emulator reading the broker's journal (local/services/mosquitto-journal.c) on a
 * Mosquitto of the test's own, with a simulated Lambda endpoint: journaled rules take every
 * message the broker acknowledged, even after the broker was killed -9 holding them; the
 * status rule (last wills, which the broker publishes itself) still reads the MQTT session;
 * the emulator's checkpoint survives its restarts and consumed segments go.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type IotRulesEmulatorOptions,
  type RunningIotRulesEmulator,
  startIotRulesEmulator,
} from '../local/iot-rules/emulator.ts';
import { startMosquitto } from '../local/services/mosquitto.ts';
import { type Invocation, SimulatedLambdaEndpoint } from './support/simulated-lambda.ts';
import { unique } from './support/stack-env.ts';

const quietLog = { debug() {}, info() {}, warn() {}, error() {} };
const TELEMETRY = 'devices/+/telemetry';
const STATUS = 'devices/+/status';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Telemetry and status rules on one stream, as serverless.yml has them. */
const yml = JSON.stringify({
  service: 'easysmart',
  custom: {
    iotRules: {
      stream: {
        resource: 'TestStream',
        partitionKey: 'topic(2)',
        rules: {
          telemetry: {
            name: 'test_telemetry',
            sql: `SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS client_id, timestamp() AS received_at FROM '${TELEMETRY}'`,
          },
          status: {
            name: 'test_status',
            sql: `SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS client_id, timestamp() AS received_at FROM '${STATUS}'`,
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
            functionResponseType: 'ReportBatchItemFailures',
          },
        },
      ],
    },
  },
});

interface Record {
  sequenceNumber: string;
  arrival: number;
  topic: string;
  clientId: string;
  receivedAt: number;
  payload: string;
}

const recordsOf = (call: Invocation): Record[] =>
  (
    call.event as {
      Records: Array<{
        kinesis: { sequenceNumber: string; data: string; approximateArrivalTimestamp: number };
      }>;
    }
  ).Records.map(({ kinesis }) => {
    const output = JSON.parse(Buffer.from(kinesis.data, 'base64').toString('utf8'));
    return {
      sequenceNumber: kinesis.sequenceNumber,
      arrival: kinesis.approximateArrivalTimestamp,
      topic: output.topic,
      clientId: output.client_id,
      receivedAt: output.received_at,
      payload: Buffer.from(output.payload, 'base64').toString('utf8'),
    };
  });

async function setup(brokerOptions: { journalSegmentBytes?: number } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-rules-journal-'));
  await chmod(dir, 0o755);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const brokerDir = path.join(dir, 'broker');
  const broker = await startMosquitto({
    dataDir: brokerDir,
    journalTopics: [TELEMETRY],
    ...brokerOptions,
  });
  cleanups.push(() => broker.stop());
  const serverlessYmlPath = path.join(dir, 'serverless.yml');
  await writeFile(serverlessYmlPath, yml);
  const lambda = new SimulatedLambdaEndpoint(['easysmart-test-ingest']);
  await lambda.start();
  cleanups.push(() => lambda.stop());
  const checkpointFile = path.join(dir, 'checkpoint');
  const options: IotRulesEmulatorOptions = {
    serverlessYmlPath,
    stage: 'test',
    mqtt: { url: broker.url, ...broker.platform },
    lambdaEndpoint: lambda.url,
    deadLetterDir: path.join(dir, 'dead-letters'),
    clientId: unique('rules-emulator'),
    log: quietLog,
    retry: { initialDelayMs: 20, maxDelayMs: 100, maxElapsedMs: 60_000 },
    journal: { dir: broker.journalDir as string, checkpointFile, topics: [TELEMETRY] },
  };
  const running = new Set<RunningIotRulesEmulator>();
  const start = async () => {
    const emulator = await startIotRulesEmulator(options);
    running.add(emulator);
    return {
      ...emulator,
      stop: async () => {
        running.delete(emulator);
        await emulator.stop();
      },
    };
  };
  cleanups.push(() => Promise.all([...running].map((emulator) => emulator.stop())));
  const client = async (clientId = unique('publisher'), extra: mqtt.IClientOptions = {}) => {
    const connected = await mqtt.connectAsync(broker.url, {
      ...broker.platform,
      clientId,
      reconnectPeriod: 0,
      ...extra,
    });
    cleanups.push(() => connected.endAsync(true));
    return connected;
  };
  const delivered = () => lambda.succeeded.flatMap(recordsOf);
  /** kill -9 of the broker; resolves once it is dead. */
  const killBroker = () => {
    const pidFile = path.join(brokerDir, 'server.pid');
    const { pid } = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
    return vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 10_000 });
  };
  return { dir, broker, lambda, start, client, delivered, checkpointFile, killBroker };
}

describe("IoT rules emulator reading the broker's journal", () => {
  it('takes journaled rules from the journal with the publisher and receive time, and last wills through its session', async () => {
    const { start, client, delivered, broker } = await setup();
    const emulator = await start();
    const device = unique('dev');
    const sender = await client(device, {
      will: { topic: `devices/${device}/status`, payload: Buffer.from('offline'), qos: 1 },
    });
    const before = Date.now();
    for (let n = 0; n < 20; n += 1) {
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    }
    await sender.publishAsync(`devices/${device}/status`, 'online', { qos: 1 });
    // Dropped without DISCONNECT: the broker publishes the will.
    sender.stream.destroy();
    await vi.waitFor(() => expect(delivered()).toHaveLength(22), { timeout: 10_000 });
    await emulator.idle();
    const records = delivered();
    const telemetry = records.filter((record) => record.topic.endsWith('/telemetry'));
    expect(telemetry.map((record) => JSON.parse(record.payload).n)).toEqual(
      Array.from({ length: 20 }, (_, n) => n),
    );
    for (const record of telemetry) {
      // clientid() is the publisher's own, as on AWS; timestamp() the broker's receive time.
      expect(record.clientId).toBe(device);
      expect(record.receivedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(record.receivedAt).toBeLessThanOrEqual(Date.now());
    }
    expect(
      records.filter((record) => record.topic.endsWith('/status')).map((r) => r.payload),
    ).toEqual(['online', 'offline']);
    const stats = emulator.stats();
    expect(stats.journal).toMatchObject({ read: 20, checkpoint: 20, unsettled: 0, torn: 0 });
    // Only the two status messages came through the session.
    expect(stats.acknowledged).toBe(2);
    expect(readdirSync(broker.journalDir as string)).toEqual([`${'0'.repeat(20)}.seg`]);
  });

  it('a broker killed -9 holding a backlog for the stopped emulator loses no acknowledged message', async () => {
    const { start, client, delivered, broker, killBroker } = await setup();
    const first = await start();
    await first.stop();
    const device = unique('dev');
    const sender = await client(device);
    const total = 300;
    for (let n = 0; n < total; n += 1) {
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    }
    // Right after the last PUBACK: the broker's own save (every second) has not run.
    await killBroker();
    await sender.endAsync(true);
    await broker.start();
    const emulator = await start();
    await vi.waitFor(() => expect(delivered()).toHaveLength(total), { timeout: 15_000 });
    await emulator.idle();
    expect(delivered().map((record) => JSON.parse(record.payload).n)).toEqual(
      Array.from({ length: total }, (_, n) => n),
    );
  });

  it("needs none of the broker's saved state: restarted without it (sessions and subscriptions gone), nothing acknowledged is lost", async () => {
    const { dir, start, client, delivered, broker, killBroker } = await setup();
    const emulator = await start();
    await killBroker();
    await rm(path.join(dir, 'broker', 'state', 'mosquitto.db'), { force: true });
    await broker.start();
    // Published before the emulator has reconnected, to a broker that knows no session of it.
    const device = unique('dev');
    const sender = await client(device);
    const total = 100;
    for (let n = 0; n < total; n += 1) {
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    }
    await vi.waitFor(() => expect(delivered()).toHaveLength(total), { timeout: 15_000 });
    await emulator.idle();
    expect(delivered().map((record) => JSON.parse(record.payload).n)).toEqual(
      Array.from({ length: total }, (_, n) => n),
    );
  });

  it('reads on from its checkpoint after a restart; a record read again is the same record', async () => {
    const { start, client, delivered, lambda, checkpointFile } = await setup();
    let healthy = false;
    lambda.behaviour = () => {
      if (!healthy) throw new Error('not yet');
    };
    const first = await start();
    const device = unique('dev');
    const sender = await client(device);
    for (let n = 0; n < 50; n += 1) {
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    }
    await vi.waitFor(() => expect(first.stats().journal?.read).toBe(50));
    const attempted = lambda.calls.flatMap(recordsOf);
    expect(attempted.length).toBeGreaterThan(0);
    await first.stop();
    expect(Number(readFileSync(checkpointFile, 'utf8'))).toBe(0);

    healthy = true;
    const second = await start();
    await vi.waitFor(() => expect(delivered()).toHaveLength(50), { timeout: 10_000 });
    await second.idle();
    expect(Number(readFileSync(checkpointFile, 'utf8'))).toBe(50);
    // The same sequence number and receive time: the function sees the record it saw before.
    const again = new Map(delivered().map((record) => [record.payload, record]));
    for (const record of attempted) {
      expect(again.get(record.payload)).toMatchObject({
        sequenceNumber: record.sequenceNumber,
        receivedAt: record.receivedAt,
        arrival: record.arrival,
      });
    }

    // Settled records are not read a third time.
    await second.stop();
    const third = await start();
    await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n: 50 }), {
      qos: 1,
    });
    await vi.waitFor(() => expect(delivered()).toHaveLength(51), { timeout: 10_000 });
    await third.idle();
    expect(third.stats().journal).toMatchObject({ read: 1, checkpoint: 51 });
  });

  it('deletes a segment once all its records are settled and the broker writes a later one', async () => {
    const { start, client, delivered, broker } = await setup({ journalSegmentBytes: 2048 });
    const emulator = await start();
    const device = unique('dev');
    const sender = await client(device);
    const total = 200;
    for (let n = 0; n < total; n += 1) {
      await sender.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ n }), { qos: 1 });
    }
    await vi.waitFor(() => expect(delivered()).toHaveLength(total), { timeout: 10_000 });
    await emulator.idle();
    expect(delivered().map((record) => JSON.parse(record.payload).n)).toEqual(
      Array.from({ length: total }, (_, n) => n),
    );
    // Records are about 80 bytes: a segment holds ~25, so the journal had ~8; the newest stays.
    const left = readdirSync(broker.journalDir as string);
    expect(left.length).toBeLessThanOrEqual(2);
    expect(emulator.stats().journal).toMatchObject({ checkpoint: total, unsettled: 0 });
  });
});
