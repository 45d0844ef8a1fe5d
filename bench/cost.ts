/**
 * What the platform's ingestion costs on AWS, measured on the local stack: a fleet sends what
 * the firmware sends by default (its batching, read from firmware/core), in real time, through
 * Mosquitto, the rules emulator (which meters MQTT messages, rules, actions and stream records
 * as AWS IoT Core and Kinesis do, and the ingest invocations and their durations as Lambda
 * bills them), serverless-offline and InfluxDB, while dashboard-like WebSocket clients watch
 * one device each and count the frames pushed to them; the anomaly scoring function runs on
 * its schedule, once a minute, and every run's billed duration is read from the function
 * host's log. The counts, per reading, are scaled to a month of the sizing fleet and priced
 * with bench/aws-prices.ts.
 *
 *   npm run bench:cost -- [--devices 1000] [--entities 10] [--interval-s 10] [--minutes 3]
 *                         [--tabs 10]
 *
 * Output: the fleet and what was replayed, one line per cost item, then the monthly total
 * and, last, `usd_per_million_readings=<number>`.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import pg from 'pg';
import WebSocket from 'ws';
import { setPlan } from '../infra/admin.ts';
import type { IotRulesEmulatorStats } from '../local/iot-rules/emulator.ts';
import { startLocalStack } from '../test/support/local-stack.ts';
import { AWS_PRICES, tieredCost } from './aws-prices.ts';
import { type DeviceMessage, deviceMessages, firmwareBatching } from './firmware-defaults.ts';
import { rulesEmulatorStats } from './rules-stats.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const DEVICES = option('devices', 1000);
const ENTITIES = option('entities', 10);
const INTERVAL_MS = option('interval-s', 10) * 1000;
const REPLAY_MS = option('minutes', 3) * 60_000;
const TABS = option('tabs', 10);
/** A month as the sizing fleet's figures count it: 30 days. */
const MONTH_S = 30 * 86_400;
/** What serverless.yml deploys (read below): the ingest function's memory, the stream's shards. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function deploySettings(): Promise<{
  ingestMemoryMb: number;
  scoringMemoryMb: number;
  shards: number;
  enhancedFanOut: boolean;
}> {
  const yml = await readFile(path.join(repoRoot, 'serverless.yml'), 'utf8');
  const memoryOf = (name: string) =>
    new RegExp(`\\n {2}${name}:\\n(?: {4}.*\\n)*? {4}memorySize: (\\d+)`).exec(yml)?.[1];
  const memory = memoryOf('ingest');
  const scoringMemory = memoryOf('anomaly-scoring');
  const shards = /\n {4}ingestStreamShards: (\d+)/.exec(yml)?.[1];
  if (!memory || !scoringMemory || !shards)
    throw new Error(
      'serverless.yml: no ingest or anomaly-scoring memorySize, or ingestStreamShards',
    );
  // The ingest stream event reads through a consumer (enhanced fan-out).
  const enhancedFanOut = /\n {10}consumer:/.test(yml);
  return {
    ingestMemoryMb: Number(memory),
    scoringMemoryMb: Number(scoringMemory),
    shards: Number(shards),
    enhancedFanOut,
  };
}

/** The firmware's payload for a message, as firmware/core/payloads.cpp writes it. */
function payloadOf(message: DeviceMessage, entityIds: string[], value: () => number): string {
  const seconds = (ms: number) => Math.round(ms) / 1000;
  if (message.kind === 'state') {
    const round = message.rounds[0] as DeviceMessage['rounds'][number];
    return JSON.stringify({ value: value(), timestamp: seconds(round.atMs) });
  }
  const items = message.rounds.map((round) => ({
    timestamp: seconds(round.atMs),
    values: Object.fromEntries(round.entities.map((entity) => [entityIds[entity], value()])),
  }));
  return JSON.stringify(items.length === 1 ? items[0] : items);
}

/** What ingestion refused, by reason (every tenant's: the stack is this benchmark's own). */
async function refusedMessages(adminUrl: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ reason: string; count: string }>(
      'SELECT reason, sum(count)::text AS count FROM ingestion_rejections GROUP BY reason',
    );
    return rows;
  } finally {
    await client.end();
  }
}

/** The anomaly scoring function's invocations the function host logged after `from` bytes. */
async function scoringRuns(
  logFile: string,
  from: number,
): Promise<{ runs: number; billedMs: number }> {
  const log = (await readFile(logFile)).subarray(from).toString('utf8');
  let runs = 0;
  let billedMs = 0;
  for (const match of log.matchAll(
    /\(λ: anomaly-scoring\) RequestId: \S+ +Duration: [\d.]+ ms +Billed Duration: (\d+) ms/g,
  )) {
    runs += 1;
    billedMs += Number(match[1]);
  }
  if (runs === 0) throw new Error(`no anomaly scoring run in ${logFile}`);
  return { runs, billedMs };
}

async function main() {
  const batching = await firmwareBatching(repoRoot);
  const settings = await deploySettings();
  console.log(
    `fleet: ${DEVICES} devices x ${ENTITIES} entities every ${INTERVAL_MS / 1000} s; firmware batching: ${
      batching.readings === 1
        ? 'one state message per reading'
        : `up to ${batching.readings} readings or ${(batching.maxAgeMs ?? 0) / 1000} s`
    } (${batching.source})`,
  );
  console.log('starting the local stack ...');
  const stack = await startLocalStack({ LOG_LEVEL: 'error' });
  const connections: mqtt.MqttClient[] = [];
  const credentials: Array<{ client_id: string; username: string; password: string }> = [];
  const sockets: WebSocket[] = [];
  try {
    const details = await stack.details();
    const meter = () => rulesEmulatorStats(stack.dataDir);
    const settle = async () => {
      // Idle: nothing queued or in flight, and nothing new for a second.
      let last = '';
      for (;;) {
        const stats = await meter();
        const ingest = stats.functions.ingest;
        const key = `${stats.messages}/${ingest?.succeeded}`;
        if (ingest && ingest.queued === 0 && ingest.inFlight === 0 && key === last) return stats;
        last = key;
        await sleep(1000);
      }
    };

    const registered = await stack.request('POST', '/api/auth/register', {
      tenant_name: 'Cost',
      username: 'cost',
      email: 'cost@example.com',
      password: 'cost-model-password',
    });
    const token = registered.body.token as string;
    // A thousand devices is an Industrial tenant (the only plan without a device limit).
    const operator = new pg.Client({ connectionString: details.databaseAdminUrl });
    await operator.connect();
    await setPlan(operator, 'Cost', 'industrial');
    await operator.end();

    console.log(`registering ${DEVICES} devices ...`);
    const deviceIds = Array.from({ length: DEVICES }, (_, d) => `COST_${d}`);
    const rowIds: number[] = [];
    for (let from = 0; from < DEVICES; from += 8) {
      const created = await Promise.all(
        deviceIds
          .slice(from, from + 8)
          .map((deviceId) =>
            stack.request(
              'POST',
              '/api/devices',
              { device_id: deviceId, name: deviceId, type: 'meter' },
              token,
            ),
          ),
      );
      for (const answer of created) {
        if (answer.status !== 201)
          throw new Error(`registering: ${answer.status} ${JSON.stringify(answer.body)}`);
        rowIds.push(answer.body.device.id);
        credentials.push(answer.body.credentials);
      }
    }
    // Each device publishes as itself, over its own connection, as a fleet does (the rules
    // see the publisher's client id, and ingestion refuses a message from another client).
    console.log(`connecting ${DEVICES} devices ...`);
    for (let from = 0; from < DEVICES; from += 50) {
      connections.push(
        ...(await Promise.all(
          credentials.slice(from, from + 50).map((credential) =>
            mqtt.connectAsync(stack.mqtt, {
              clientId: credential.client_id,
              username: credential.username,
              password: credential.password,
              reconnectPeriod: 0,
            }),
          ),
        )),
      );
    }
    const entityIds = Array.from({ length: ENTITIES }, (_, e) => `sensor_${e}`);
    const discovery = JSON.stringify({
      name: 'Meter',
      type: 'meter',
      firmware: '1.0.0',
      entities: entityIds.map((id) => ({
        entity_id: id,
        entity_type: 'sensor',
        name: id,
        unit: 'kW',
      })),
    });
    await Promise.all(
      deviceIds.map((deviceId, d) =>
        (connections[d % connections.length] as mqtt.MqttClient)
          .publishAsync(`devices/${deviceId}/discovery`, discovery, { qos: 1, retain: true })
          .then(() =>
            (connections[d % connections.length] as mqtt.MqttClient).publishAsync(
              `devices/${deviceId}/status`,
              'online',
              { qos: 1, retain: true },
            ),
          ),
      ),
    );
    await settle();

    let frames = 0;
    let frameUnits = 0;
    for (let tab = 0; tab < TABS; tab++) {
      const socket = new WebSocket(`${details.websocketUrl}?token=${encodeURIComponent(token)}`);
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      // A dashboard tab showing one device's page.
      socket.send(
        JSON.stringify({ action: 'subscribe', device_ids: [rowIds[tab % rowIds.length]] }),
      );
      socket.on('message', (data: Buffer) => {
        frames += 1;
        frameUnits += Math.max(
          1,
          Math.ceil(data.length / AWS_PRICES.apiGatewayWebSocket.meteringBytes),
        );
      });
      sockets.push(socket);
    }
    await sleep(1000);
    frames = 0;
    frameUnits = 0;

    // Each device samples from its own phase, so the fleet's messages spread evenly.
    const start = Date.now() + 2000;
    const schedule: Array<{
      atMs: number;
      device: number;
      topic: string;
      payload: string;
      readings: number;
    }> = [];
    let value = 0;
    for (const [d, deviceId] of deviceIds.entries()) {
      const phaseMs = start - INTERVAL_MS * 10 + Math.floor((d / DEVICES) * INTERVAL_MS * 10);
      for (const message of deviceMessages(batching, {
        entities: ENTITIES,
        intervalMs: INTERVAL_MS,
        phaseMs,
        fromMs: start,
        toMs: start + REPLAY_MS,
      })) {
        const topic =
          message.kind === 'state'
            ? `devices/${deviceId}/${entityIds[message.rounds[0]?.entities[0] ?? 0]}/state`
            : `devices/${deviceId}/telemetry`;
        const readings = message.rounds.reduce((sum, round) => sum + round.entities.length, 0);
        schedule.push({
          atMs: message.atMs,
          device: d,
          topic,
          payload: payloadOf(message, entityIds, () => (value++ % 1000) / 10),
          readings,
        });
      }
    }
    schedule.sort((a, b) => a.atMs - b.atMs);
    const readings = schedule.reduce((sum, message) => sum + message.readings, 0);
    console.log(
      `replaying ${REPLAY_MS / 1000} s in real time: ${schedule.length} messages, ${readings} readings; ${TABS} dashboard tabs watching one device each ...`,
    );
    // The anomaly scoring function runs on the local stack's own schedule (once a minute, as
    // on AWS) during the replay, and is then invoked until it has caught up, as its next runs
    // would. Every run, scheduled or not, is billed by its duration, which the function host
    // logs per invocation, so the cost is the runs' billed time over the readings they scored.
    const functionLog = path.join(stack.dataDir, 'serverless', 'serverless-offline.log');
    const logFrom = (await stat(functionLog)).size;
    const catchUpRun = async () => {
      const answer = await fetch(
        `${details.lambdaEndpoint}/2015-03-31/functions/easysmart-local-anomaly-scoring/invocations`,
        { method: 'POST', body: JSON.stringify({ source: 'aws.events' }) },
      );
      const summary = (await answer.json()) as { scored: number; caughtUp: boolean };
      if (answer.status !== 200) throw new Error(`anomaly scoring: ${JSON.stringify(summary)}`);
      return summary;
    };
    const before = await meter();
    const sends: Promise<unknown>[] = [];
    for (const message of schedule) {
      const wait = message.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      sends.push(
        (connections[message.device] as mqtt.MqttClient).publishAsync(
          message.topic,
          message.payload,
          {
            qos: 1,
          },
        ),
      );
    }
    await Promise.all(sends);
    const after = await settle();
    let caughtUpScored = 0;
    let catchUpRuns = 0;
    for (;;) {
      const summary = await catchUpRun();
      caughtUpScored += summary.scored;
      catchUpRuns += 1;
      if (summary.caughtUp) break;
    }
    await sleep(2000);
    const scoring = await scoringRuns(functionLog, logFrom);

    const delta = (pick: (stats: IotRulesEmulatorStats) => number) => pick(after) - pick(before);
    const ingest = (stats: IotRulesEmulatorStats) =>
      stats.functions.ingest as NonNullable<IotRulesEmulatorStats['functions'][string]>;
    const stream = (stats: IotRulesEmulatorStats) =>
      Object.values(stats.streams)[0] ?? { records: 0, bytes: 0, putPayloadUnits: 0 };
    const measured = {
      messages: delta((s) => s.meteredMessages),
      rules: delta((s) => s.rulesTriggered),
      actions: delta((s) => s.actionsApplied),
      putPayloadUnits: delta((s) => stream(s).putPayloadUnits),
      streamBytes: delta((s) => stream(s).bytes),
      invocations: delta((s) => ingest(s).invoked),
      billedMs: delta((s) => ingest(s).billedMs),
    };
    if (delta((s) => ingest(s).succeeded) < schedule.length) {
      throw new Error('not every replayed message reached the ingest function');
    }
    // A message ingestion refused costs less than one it stores: the figures hold only if
    // every message was taken.
    const refused = await refusedMessages(details.databaseAdminUrl);
    if (refused.length > 0) {
      throw new Error(`ingestion refused replayed messages: ${JSON.stringify(refused)}`);
    }

    // Per reading replayed, times the sizing fleet's readings in a month.
    const monthlyReadings = DEVICES * ENTITIES * (MONTH_S / (INTERVAL_MS / 1000));
    const perMonth = (count: number) => (count / readings) * monthlyReadings;
    const { iotCore, kinesisDataStreams, lambda, apiGatewayWebSocket } = AWS_PRICES;
    const connectionMinutes = DEVICES * (MONTH_S / 60);
    const gbSeconds = (perMonth(measured.billedMs) / 1000) * (settings.ingestMemoryMb / 1024);
    const scoringRunsPerMonth = MONTH_S / 60;
    // Every replayed reading is a sensor reading of a tenant with detection: each is scored
    // once (the pass's property), by the scheduled runs or the catch-up.
    const scoringGbSeconds =
      (((scoring.billedMs / readings) * monthlyReadings) / 1000) *
      (settings.scoringMemoryMb / 1024);
    const items: Array<[string, number, string, number]> = [
      [
        'iot_connectivity',
        connectionMinutes,
        'connection-minutes',
        (connectionMinutes / 1e6) * iotCore.connectionMinutePerMillion,
      ],
      [
        'iot_messaging',
        perMonth(measured.messages),
        'messages (5 KB units)',
        tieredCost(perMonth(measured.messages), iotCore.messagingPerMillion),
      ],
      [
        'iot_rules_triggered',
        perMonth(measured.rules),
        'rules (5 KB units)',
        (perMonth(measured.rules) / 1e6) * iotCore.ruleTriggeredPerMillion,
      ],
      [
        'iot_rule_actions',
        perMonth(measured.actions),
        'actions (5 KB units)',
        (perMonth(measured.actions) / 1e6) * iotCore.actionAppliedPerMillion,
      ],
      [
        'kinesis_shard_hours',
        settings.shards * (MONTH_S / 3600),
        'shard-hours',
        settings.shards * (MONTH_S / 3600) * kinesisDataStreams.shardHour,
      ],
      [
        'kinesis_put_payload_units',
        perMonth(measured.putPayloadUnits),
        'PUT payload units (25 KB)',
        (perMonth(measured.putPayloadUnits) / 1e6) * kinesisDataStreams.putPayloadUnitPerMillion,
      ],
      ...(settings.enhancedFanOut
        ? ([
            [
              'kinesis_fan_out_consumer_shard_hours',
              settings.shards * (MONTH_S / 3600),
              'consumer-shard-hours',
              settings.shards *
                (MONTH_S / 3600) *
                kinesisDataStreams.enhancedFanOutConsumerShardHour,
            ],
            [
              'kinesis_fan_out_retrieval',
              perMonth(measured.streamBytes) / 1024 ** 3,
              'GB pushed to the consumer',
              (perMonth(measured.streamBytes) / 1024 ** 3) *
                kinesisDataStreams.enhancedFanOutRetrievalPerGb,
            ],
          ] as Array<[string, number, string, number]>)
        : []),
      [
        'lambda_requests',
        perMonth(measured.invocations),
        'ingest invocations',
        (perMonth(measured.invocations) / 1e6) * lambda.requestPerMillion,
      ],
      [
        'lambda_duration',
        gbSeconds,
        `GB-seconds (${settings.ingestMemoryMb} MB, Arm)`,
        gbSeconds * lambda.gbSecondArm,
      ],
      [
        'lambda_scoring_requests',
        scoringRunsPerMonth,
        'anomaly scoring runs (one a minute)',
        (scoringRunsPerMonth / 1e6) * lambda.requestPerMillion,
      ],
      [
        'lambda_scoring_duration',
        scoringGbSeconds,
        `GB-seconds (${settings.scoringMemoryMb} MB, Arm)`,
        scoringGbSeconds * lambda.gbSecondArm,
      ],
      [
        'websocket_messages',
        perMonth(frameUnits),
        `frames to ${TABS} tabs (32 KB units)`,
        (perMonth(frameUnits) / 1e6) * apiGatewayWebSocket.messagePerMillion,
      ],
      [
        'websocket_connection_minutes',
        TABS * (MONTH_S / 60),
        'connection-minutes',
        ((TABS * (MONTH_S / 60)) / 1e6) * apiGatewayWebSocket.connectionMinutePerMillion,
      ],
    ];
    const format = (n: number, digits = 0) =>
      n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    console.log(
      `measured: ${measured.messages} metered messages, ${measured.rules} rules, ${measured.actions} actions, ${measured.putPayloadUnits} PUT payload units, ${measured.invocations} invocations (${measured.billedMs} ms billed), ${frames} WebSocket frames, for ${readings} readings; anomaly scoring: ${scoring.runs} runs (${scoring.runs - catchUpRuns} on the schedule), ${scoring.billedMs} ms billed, the catch-up scoring ${caughtUpScored} readings`,
    );
    console.log(
      `prices: AWS list prices, ${AWS_PRICES.region}, read ${AWS_PRICES.readOn} (bench/aws-prices.ts); a month is 30 days: ${format(monthlyReadings)} readings`,
    );
    let total = 0;
    for (const [name, quantity, unit, usd] of items) {
      total += usd;
      console.log(
        `${name.padEnd(30)} ${format(quantity).padStart(16)} ${unit.padEnd(40)} usd_per_month=${usd.toFixed(2)}`,
      );
    }
    console.log(`usd_per_month=${total.toFixed(2)}`);
    console.log(`usd_per_million_readings=${(total / (monthlyReadings / 1e6)).toFixed(4)}`);
  } finally {
    for (const socket of sockets) socket.close();
    await Promise.all(connections.map((connection) => connection.endAsync()));
    await stack.stop();
  }
}

await main();
