/**
 * What the local broker's persistence setting costs and buys (`npm run bench:broker`): the
 * stack's setting (BROKER_AUTOSAVE) against the previous one (save every 30 s) and saving
 * after every queued message, alternating in the same process, each on a fresh broker:
 *
 * - online: QoS 1 messages from one publisher to a connected subscriber (how readings reach
 *   a running rules stage);
 * - backlog: QoS 1 messages acknowledged to the publisher while the subscriber's persistent
 *   session is offline (the rules stage down), then the broker killed with SIGKILL at once
 *   or 1.5 s after the last PUBACK, and restarted: how many of them the session still gets,
 *   or, with the rules' journal (the stack's broker), how many the journal holds, which is
 *   what the rules emulator reads.
 *
 *   npm run bench:broker -- [--online 50000] [--backlog 5000] [--repeat 3]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { JournalReader } from '../local/iot-rules/journal.ts';
import {
  BROKER_AUTOSAVE,
  type BrokerAutosave,
  type RunningMosquitto,
  startMosquitto,
} from '../local/services/mosquitto.ts';
import { temporaryDataDir, waitUntil } from '../test/support/servers.ts';
import { LeanMqttClient, publishPacket } from './mqtt-client.ts';

const { values } = parseArgs({
  options: {
    online: { type: 'string', default: '50000' },
    backlog: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '3' },
  },
});
const ONLINE = Number(values.online);
const BACKLOG = Number(values.backlog);
const REPEAT = Number(values.repeat);
const INFLIGHT = 500;

interface Setting {
  name: string;
  autosave: BrokerAutosave;
  /** The rules' journal on the benchmark's topics. */
  journal?: boolean;
}

const SETTINGS: Setting[] = [
  { name: 'every 30 s', autosave: { onChanges: false, interval: 30 } },
  { name: 'after every queued message', autosave: { onChanges: true, interval: 1 } },
  { name: `every ${BROKER_AUTOSAVE.interval} s`, autosave: BROKER_AUTOSAVE },
  {
    name: `every ${BROKER_AUTOSAVE.interval} s and the rules' journal (the stack's broker)`,
    autosave: BROKER_AUTOSAVE,
    journal: true,
  },
];
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** When the broker is killed after the backlog's last PUBACK: at once, and a while later. */
const KILL_AFTER_MS = [0, 1500];

interface Outcome {
  onlineRate: number;
  backlogRate: number;
  /** Per KILL_AFTER_MS entry: backlog messages the session still received. */
  survived: number[];
}

function messages(topic: string, count: number) {
  return Array.from({ length: count }, (_, n) =>
    publishPacket(topic, Buffer.from(`{"timestamp":${1_700_000_000 + n},"values":{"v":${n}}}`)),
  );
}

const median = (numbers: number[]) =>
  [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] as number;

async function online(broker: RunningMosquitto): Promise<number> {
  const subscriber = await LeanMqttClient.connect(broker.url, {
    ...broker.platform,
    clientId: 'bench-online-sub',
  });
  const publisher = await LeanMqttClient.connect(broker.url, {
    ...broker.platform,
    clientId: 'bench-online-pub',
  });
  const { done } = await subscriber.receive('devices/online/#', ONLINE);
  const packets = messages('devices/online/telemetry', ONLINE);
  const started = performance.now();
  await publisher.publishAll(packets, INFLIGHT);
  await done;
  const rate = ONLINE / ((performance.now() - started) / 1000);
  subscriber.close();
  publisher.close();
  return rate;
}

async function backlog(
  broker: RunningMosquitto,
  dataDir: string,
  killAfterMs: number,
): Promise<{ rate: number; survived: number }> {
  const clientId = `bench-rules-${killAfterMs}`;
  const session = { ...broker.platform, clientId, clean: false, reconnectPeriod: 0 };
  const topic = `devices/backlog-${killAfterMs}/telemetry`;
  const rules = await mqtt.connectAsync(broker.url, session);
  await rules.subscribeAsync(topic, { qos: 1 });
  await rules.endAsync();
  const publisher = await LeanMqttClient.connect(broker.url, {
    ...broker.platform,
    clientId: 'bench-backlog-pub',
  });
  const packets = messages(topic, BACKLOG);
  const started = performance.now();
  await publisher.publishAll(packets, INFLIGHT);
  const rate = BACKLOG / ((performance.now() - started) / 1000);
  publisher.close();

  await new Promise((resolve) => setTimeout(resolve, killAfterMs));
  const pid = (
    JSON.parse(readFileSync(path.join(dataDir, 'server.pid'), 'utf8')) as { pid: number }
  ).pid;
  const died = broker.unexpectedExit();
  process.kill(pid, 'SIGKILL');
  await died;
  await broker.start();
  if (broker.journalDir) return { rate, survived: await journaled(broker.journalDir, topic) };
  const received = new Set<string>();
  // Listening before the session resumes: the broker sends the backlog right behind CONNACK.
  const again = mqtt.connect(broker.url, session);
  again.on('message', (_topic, payload) => received.add(payload.toString()));
  await waitUntil('the backlog to arrive', async () => received.size >= BACKLOG, {
    timeoutMs: 5000,
    intervalMs: 50,
  }).catch(() => {});
  await again.endAsync();
  return { rate, survived: received.size };
}

/** The journal's records on `topic`, as the rules emulator would read them. */
async function journaled(dir: string, topic: string): Promise<number> {
  const data = await temporaryDataDir('bench-broker-checkpoint');
  let count = 0;
  const reader = new JournalReader({
    dir,
    checkpointFile: path.join(data.dir, 'checkpoint'),
    log: quiet,
    onRecord: (record) => {
      if (record.topic === topic) count += 1;
    },
  });
  reader.start();
  await waitUntil('the backlog to be read', async () => count >= BACKLOG, {
    timeoutMs: 5000,
    intervalMs: 50,
  }).catch(() => {});
  reader.stop();
  await data.remove();
  return count;
}

async function run(setting: Setting): Promise<Outcome> {
  const data = await temporaryDataDir('bench-broker');
  const broker = await startMosquitto({
    dataDir: data.dir,
    autosave: setting.autosave,
    journalTopics: setting.journal ? ['devices/+/telemetry'] : [],
  });
  try {
    const onlineRate = await online(broker);
    const backlogs = [];
    for (const killAfterMs of KILL_AFTER_MS)
      backlogs.push(await backlog(broker, data.dir, killAfterMs));
    return {
      onlineRate,
      backlogRate: median(backlogs.map((b) => b.rate)),
      survived: backlogs.map((b) => b.survived),
    };
  } finally {
    await broker.stop();
    await data.remove();
  }
}

const outcomes = new Map<string, Outcome[]>(SETTINGS.map((s) => [s.name, []]));
for (let round = 0; round < REPEAT; round++) {
  // Alternating, so that a machine that slows down during the run moves every setting.
  for (const setting of SETTINGS) {
    const outcome = await run(setting);
    outcomes.get(setting.name)?.push(outcome);
    console.error(
      `round ${round + 1} ${setting.name}: online ${Math.round(outcome.onlineRate)} msg/s, ` +
        `backlog ${Math.round(outcome.backlogRate)} msg/s, kept after SIGKILL ` +
        KILL_AFTER_MS.map((ms, i) => `${ms} ms later: ${outcome.survived[i]}/${BACKLOG}`).join(
          ', ',
        ),
    );
  }
}
const kept = (list: Outcome[], i: number) => list.map((o) => o.survived[i]).join(', ');
console.log(
  `\n| broker saves | online QoS 1 msg/s | backlog QoS 1 msg/s | ${KILL_AFTER_MS.map((ms) => `backlog kept, SIGKILL ${ms} ms after the last PUBACK`).join(' | ')} |`,
);
console.log(`| --- | ---: | ---: | ${KILL_AFTER_MS.map(() => '---:').join(' | ')} |`);
for (const setting of SETTINGS) {
  const list = outcomes.get(setting.name) ?? [];
  console.log(
    `| ${setting.name} | ${Math.round(median(list.map((o) => o.onlineRate))).toLocaleString('en')} | ` +
      `${Math.round(median(list.map((o) => o.backlogRate))).toLocaleString('en')} | ` +
      `${KILL_AFTER_MS.map((_, i) => `${kept(list, i)} of ${BACKLOG.toLocaleString('en')}`).join(' | ')} |`,
  );
}
