/**
 * Telemetry pipeline benchmark, all in one run on this machine:
 *   1. raw broker throughput: QoS 1 messages through a Mosquitto configured like the stack's;
 *   2. raw InfluxDB throughput: 5,000-point line-protocol batches from 2 concurrent writers,
 *      each request body finished before the clock starts;
 *   3. the pipeline (device -> Mosquitto -> IoT rules emulator -> serverless-offline ->
 *      ingest function -> InfluxDB): sustained readings per second and p50/p99
 *      publish-to-queryable latency, (a) one reading per QoS 1 message, (b) 50 per message.
 * Ratios are against the baselines measured in the same run.
 *
 * The readings come from DEVICES devices at once, as a plant's would: the rules engine keeps
 * each topic's messages in order, so one device alone is served one batch at a time.
 *
 *   npx tsx bench/pipeline.ts [--messages-a 200000] [--messages-b 40000] [--devices 8]
 *                             [--repeat 3] [--warmup 1] [--only a,b,c] [--alarm-rules 0]
 *
 * Each rate is the median of --repeat runs, after --warmup runs that are not counted, and
 * the CPU use printed is that run's. The raw broker runs alternate with phase (a)'s and the
 * raw InfluxDB runs with phase (b)'s, so that a machine that slows down or speeds up during
 * the benchmark (it is shared) moves both sides of each ratio. Each phase also prints how the
 * emulated event source mapping batched it: invocations, records each, what sent each batch. Latency is
 * measured in one more run at the same load: polling InfluxDB for samples takes CPU from what
 * is being measured, so the throughput runs do not poll.
 */
import pg from 'pg';
import { setPlan } from '../infra/admin.ts';
import { keepAliveAgent, post } from '../shared/http/post.ts';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import { startLocalStack } from '../test/support/local-stack.ts';
import { privateMosquitto } from '../test/support/servers.ts';
import { cpuBetween, sampleCpu, waitUntilQuiet } from './cpu.ts';
import { LeanMqttClient, type PublishPacket, publishPacket } from './mqtt-client.ts';
import { eventSourceMapping, rulesEmulatorStats } from './rules-stats.ts';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const MESSAGES_A = option('messages-a', 200_000);
const MESSAGES_B = option('messages-b', 40_000);
const DEVICES = option('devices', 8);
const REPEAT = option('repeat', 3);
const WARMUP = option('warmup', 1);
/**
 * Alarm rules on every bench device (by device type), to measure what evaluating them in
 * the ingest path costs: threshold rules over each reading that never fire (each batch pays
 * the rules' read and the evaluation, no notification).
 */
const ALARM_RULES = option('alarm-rules', 0);
const onlyAt = process.argv.indexOf('--only');
const PHASES = onlyAt === -1 ? ['a', 'b', 'c'] : String(process.argv[onlyAt + 1]).split(',');
const INFLIGHT = 1_000;
/** How long before the run each run's readings start (see `run`). */
const READINGS_FROM_MS = 2 * 60_000;
/**
 * Each device's readings are a millisecond apart, from READINGS_FROM_MS ago on; ingestion
 * refuses readings dated more than 5 minutes ahead (as it should), so a run whose readings
 * would reach past that, with a minute to spare, is refused before it starts.
 */
function checkReadingSpan(phase: string, messages: number, perMessage: number): void {
  const spanMs = Math.ceil(messages / DEVICES) * perMessage;
  if (spanMs - READINGS_FROM_MS > 4 * 60_000) {
    throw new Error(
      `phase (${phase}): ${messages} messages from ${DEVICES} devices date readings ${Math.round((spanMs - READINGS_FROM_MS) / 60_000)} minutes ahead, which ingestion refuses: use more --devices`,
    );
  }
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
/**
 * Runs `measure` WARMUP times without counting it (the JIT and the servers' caches warming
 * up made the first run the slowest), then `times` times: the run with the median rate, and
 * every counted rate. Attempts are numbered from 0 across both.
 */
async function median<T extends { rate: number }>(
  times: number,
  measure: (attempt: number) => Promise<T>,
): Promise<T & { rates: number[] }> {
  for (let attempt = 0; attempt < WARMUP; attempt++) await measure(attempt);
  const runs: T[] = [];
  for (let attempt = WARMUP; attempt < WARMUP + times; attempt++) runs.push(await measure(attempt));
  return { ...middleRun(runs), rates: runs.map((run) => run.rate) };
}

/** The run of median rate (the lower of the middle two for an even count). */
function middleRun<T extends { rate: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.rate - b.rate)[Math.floor((runs.length - 1) / 2)] as T;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A device's message as it goes on the wire, made before the clock starts: devices do that
 * work on their own CPUs, not on the platform's.
 */
type Message = PublishPacket;

/** Raw broker rate, and the CPU of this process and its private Mosquitto. */
async function rawBroker(count: number): Promise<RawRun> {
  const broker = await privateMosquitto();
  try {
    const account = { username: broker.platform.username, password: broker.platform.password };
    const subscriber = await LeanMqttClient.connect(broker.url, {
      ...account,
      clientId: 'bench-sub',
    });
    const publisher = await LeanMqttClient.connect(broker.url, {
      ...account,
      clientId: 'bench-pub',
    });
    const { done } = await subscriber.receive('devices/bench/#', count);
    const messages = Array.from(
      { length: count },
      (_, n): Message => publishPacket('devices/bench/x/state', Buffer.from(`{"value":${n}}`)),
    );
    const cpuBefore = sampleCpu(process.pid);
    const started = performance.now();
    await publisher.publishAll(messages, INFLIGHT);
    await done;
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuBetween(cpuBefore, sampleCpu(process.pid));
    subscriber.close();
    publisher.close();
    return { rate: count / seconds, seconds, cpu, total: count };
  } finally {
    await broker.dispose();
  }
}

const RAW_POINTS_PER_BATCH = 5_000;

/**
 * Request bodies of points like those the ingest function writes for phase (b) (same
 * measurement, tags, devices and spacing), as many, in 5,000-point batches. Made once,
 * before the clock starts, as the pipeline's MQTT packets are: the baseline measures what
 * InfluxDB takes in, not a client's string work: joining and encoding the lines during the
 * run, with 2,000,000 of them on this process's heap, held the rate down (bench/README.md).
 */
function rawInfluxBodies(points: number): Buffer[] {
  const batches = Math.ceil(points / RAW_POINTS_PER_BATCH);
  const base = Date.now() - 2 * 60_000;
  // Reading n is reading n % 50 of message m = n / 50, which device m % DEVICES sends: the
  // same points as phase (b)'s.
  return Array.from({ length: batches }, (_, b) =>
    Buffer.from(
      Array.from({ length: RAW_POINTS_PER_BATCH }, (_, j) => {
        const n = b * RAW_POINTS_PER_BATCH + j;
        const m = Math.floor(n / 50);
        const time = base + Math.floor(m / DEVICES) * 50 + (n % 50);
        // Ids as long as phase (b)'s (BENCHB<run>_<device>): InfluxDB's work grows with them.
        return `sensor_data,device_id=BENCHR0_${m % DEVICES},entity_id=v,entity_type=sensor,tenant_id=1 value=${n} ${time}`;
      }).join('\n'),
    ),
  );
}

/** A baseline run: its rate, and where the CPU went. */
interface RawRun {
  rate: number;
  seconds: number;
  cpu: Array<[string, number]>;
  total: number;
}

/** Writes the bodies from 2 writers into a database of their own, dropped afterwards. */
async function rawInflux(
  url: string,
  bodies: readonly Buffer[],
  stackPid: number,
): Promise<RawRun> {
  const admin = new InfluxClient({ url, database: 'bench_raw' });
  await admin.query('CREATE DATABASE bench_raw' as never);
  const batches = bodies.length;
  const writeUrl = new URL(`${url}/write?db=bench_raw&precision=ms`);
  const agent = keepAliveAgent(url);
  let next = 0;
  const cpuBefore = sampleCpu(stackPid);
  const started = performance.now();
  const writer = async () => {
    while (next < batches) {
      const answer = await post(writeUrl, bodies[next++] as Buffer, {
        agent,
        headers: {},
        timeoutMs: 30_000,
      });
      if (answer.status !== 204) {
        throw new Error(`raw write answered ${answer.status}: ${answer.body.toString('utf8')}`);
      }
    }
  };
  await Promise.all([writer(), writer()]);
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuBetween(cpuBefore, sampleCpu(stackPid));
  agent.destroy();
  await admin.query('DROP DATABASE bench_raw' as never);
  const total = batches * RAW_POINTS_PER_BATCH;
  return { rate: total / seconds, seconds, cpu, total };
}

async function main() {
  if (PHASES.includes('a')) checkReadingSpan('a', MESSAGES_A, 1);
  if (PHASES.includes('b')) checkReadingSpan('b', MESSAGES_B, 50);
  console.log('starting the local stack ...');
  const stack = await startLocalStack({ LOG_LEVEL: 'error' });
  const details = (await stack.details()) as Awaited<ReturnType<typeof stack.details>> & {
    influxUrl: string;
  };
  try {
    let rawBodies: Buffer[] | undefined;
    const rawInfluxRun = async () => {
      // The same points every run, each into a new database.
      rawBodies ??= rawInfluxBodies(MESSAGES_B * 50);
      await waitUntilQuiet(stack.child.pid as number);
      return rawInflux(details.influxUrl, rawBodies, stack.child.pid as number);
    };
    const influx = new InfluxClient({ url: details.influxUrl, database: 'iot_data' });

    const registered = await stack.request('POST', '/api/auth/register', {
      tenant_name: 'Bench',
      username: 'bench',
      email: 'bench@example.com',
      password: 'bench-password',
    });
    const token = registered.body.token;
    // Starter allows the devices and runs no detector: this measures the pipeline itself.
    const operator = new pg.Client({ connectionString: details.databaseAdminUrl });
    await operator.connect();
    await setPlan(operator, 'Bench', 'starter');
    await operator.end();
    for (let r = 0; r < ALARM_RULES; r++) {
      const rule = await stack.request(
        'POST',
        '/api/alarm-rules',
        {
          name: `bench ${r}`,
          device_type: 'bench',
          entity_id: 'v',
          severity: 'warning',
          condition: { type: 'threshold', op: '>', value: 1e30 + r, for_seconds: 5, hysteresis: 1 },
        },
        token,
      );
      if (rule.status !== 201) throw new Error(`alarm rule: ${JSON.stringify(rule.body)}`);
    }
    if (ALARM_RULES > 0) console.log(`${ALARM_RULES} alarm rules on every bench device`);
    const results: string[] = [];

    const run = async (
      label: string,
      prefix: string,
      messages: number,
      perMessage: number,
      options: { pacedPerSecond?: number; measureLatency: boolean },
    ) => {
      const { pacedPerSecond, measureLatency } = options;
      const deviceIds = Array.from({ length: DEVICES }, (_, d) => `${prefix}_${d}`);
      const connections: LeanMqttClient[] = [];
      const registryIds: number[] = [];
      for (const deviceId of deviceIds) {
        const created = await stack.request(
          'POST',
          '/api/devices',
          { device_id: deviceId, name: label, type: 'bench' },
          token,
        );
        if (created.status !== 201) {
          throw new Error(
            `registering ${deviceId}: ${created.status} ${JSON.stringify(created.body)}`,
          );
        }
        registryIds.push(created.body.device.id);
        const { username, password, client_id } = created.body.credentials;
        const device = await LeanMqttClient.connect(stack.mqtt, {
          username,
          password,
          clientId: client_id,
        });
        // `done` takes each device's last message of a run: see the end of the run below.
        const discovery = {
          entities: [
            { entity_id: 'v', entity_type: 'sensor', name: 'v' },
            { entity_id: 'done', entity_type: 'sensor', name: 'done' },
          ],
        };
        await device.publishAll(
          [publishPacket(`devices/${deviceId}/discovery`, Buffer.from(JSON.stringify(discovery)))],
          1,
        );
        connections.push(device);
      }
      await sleep(1500);
      await waitUntilQuiet(stack.child.pid as number);
      // Recent readings, as devices online send: older than 10 minutes they would take the
      // late path (their rollups refreshed as they are written).
      const base = Date.now() - READINGS_FROM_MS;
      const total = messages * perMessage;
      const publishedAt = new Map<number, number>();
      // Odd, so that with an even number of devices the samples come from every device.
      const sampleEvery = Math.max(1, Math.floor(messages / 200)) | 1;
      // Message n goes to device n % DEVICES; each device's readings are a millisecond apart.
      const deviceOf = (n: number) => deviceIds[n % DEVICES] as string;
      const timeOf = (n: number) => base + Math.floor(n / DEVICES) * perMessage;
      const messageOf = (n: number): Message => {
        const deviceId = deviceOf(n);
        if (perMessage === 1) {
          return publishPacket(
            `devices/${deviceId}/v/state`,
            Buffer.from(JSON.stringify({ value: n, timestamp: timeOf(n) / 1000 })),
          );
        }
        return publishPacket(
          `devices/${deviceId}/telemetry`,
          Buffer.from(
            JSON.stringify(
              Array.from({ length: perMessage }, (_, i) => ({
                timestamp: (timeOf(n) + i) / 1000,
                values: { v: n * perMessage + i },
              })),
            ),
          ),
        );
      };
      // Device d sends messages d, d + DEVICES, d + 2 * DEVICES, ...
      const perDevice = deviceIds.map((_, d) =>
        Array.from({ length: Math.ceil((messages - d) / DEVICES) }, (_, k) =>
          messageOf(k * DEVICES + d),
        ),
      );
      // Done once every device's last reading is queryable and the count is whole.
      const lastReading = new Map(
        deviceIds.map((deviceId, d) => {
          const lastMessage = d + DEVICES * (Math.ceil((messages - d) / DEVICES) - 1);
          return [deviceId, timeOf(lastMessage) + perMessage - 1];
        }),
      );
      const doneMessages = deviceIds.map((deviceId) =>
        publishPacket(
          `devices/${deviceId}/telemetry`,
          Buffer.from(
            JSON.stringify({
              timestamp: ((lastReading.get(deviceId) as number) + 1) / 1000,
              values: { done: 1 },
            }),
          ),
        ),
      );
      const rulesBefore = await rulesEmulatorStats(stack.dataDir);
      const started = performance.now();
      const cpuBefore = sampleCpu(stack.child.pid as number);
      const publishing = Promise.all(
        connections.map((device, d) => {
          const list = perDevice[d] as Message[];
          const sent = (k: number) => {
            const n = k * DEVICES + d;
            if (n % sampleEvery === 0) publishedAt.set(n, performance.now());
          };
          const readings = pacedPerSecond
            ? device.publishPaced(list, pacedPerSecond / DEVICES, sent)
            : device.publishAll(list, INFLIGHT, sent);
          return readings.then(() => device.publishAll([doneMessages[d] as Message], 1));
        }),
      );
      const series = `"starter_plan"."sensor_data"`;
      /**
       * Each device's newest stored reading dated at or after its own start (one statement per
       * device: a start shared by all would make InfluxDB scan the others' newer points).
       */
      const newestByDevice = async (from: Map<string, number>) => {
        const ids = [...from.keys()];
        const results = await influx.query(
          ids
            .map(
              (id) =>
                `SELECT last(value) FROM ${series} WHERE device_id = '${id}' AND entity_id = 'v' AND time >= ${from.get(id)}ms`,
            )
            .join('; ') as never,
        );
        return new Map(
          ids.map((id, index) => [
            id,
            Number(results[index]?.series[0]?.values[0]?.[0] ?? Number.NEGATIVE_INFINITY),
          ]),
        );
      };
      const isStored = async (n: number) => {
        const [found] = await influx.query(
          `SELECT count(value) FROM ${series} WHERE device_id = '${deviceOf(n)}' AND entity_id = 'v' AND time = ${timeOf(n)}ms` as never,
        );
        return found?.series[0] !== undefined;
      };
      // Latency. Polling InfluxDB once per sample, as this benchmark first did, took the
      // machine's CPU and so slowed what it measured. Now one request per
      // round asks for each device's newest reading from its oldest sample not yet seen on
      // (a short range); a sample dated at or before it is confirmed by an exact query.
      // Latencies are so rounded up by up to a round: 10 ms, or 5% at saturation.
      const latencies: number[] = [];
      let publishingDone = false;
      const pollSamples = (async () => {
        const measured = new Set<number>();
        while (measureLatency && latencies.length < 200) {
          const waiting = [...publishedAt].filter(([n]) => !measured.has(n));
          if (waiting.length === 0) {
            if (publishingDone) return;
            await sleep(5);
            continue;
          }
          const from = new Map<string, number>();
          for (const [n] of waiting) {
            const deviceId = deviceOf(n);
            from.set(deviceId, Math.min(from.get(deviceId) ?? timeOf(n), timeOf(n)));
          }
          const newest = await newestByDevice(from);
          const seenAt = performance.now();
          for (const [n, at] of waiting) {
            if ((newest.get(deviceOf(n)) ?? Number.NEGATIVE_INFINITY) < timeOf(n)) continue;
            if (!(await isStored(n))) continue;
            latencies.push(seenAt - at);
            measured.add(n);
          }
          // Every 10 ms, or a twentieth of the latest latency if longer: polling is cheap
          // but not free, and at saturation (latencies near a second) 50 ms is precise enough.
          await sleep(Math.min(100, Math.max(10, (latencies.at(-1) ?? 0) / 20)));
        }
      })();
      await publishing;
      publishingDone = true;
      let stored = 0;
      let finished: { at: number; cpu: ReturnType<typeof sampleCpu> } | undefined;
      // InfluxDB answers a query of a series from a copy of all the points it holds of it in
      // memory (sorted again if a snapshot holds some too): asking for each device's last
      // reading every 20 ms took it a fifth of its CPU in (b). So each device's run ends with
      // a `done` reading, a series of one point, asked for until it shows; then the device's
      // last reading is asked for once (again until it shows, should it come later).
      const unseen = [...deviceIds];
      let doneSeen = false;
      while (!finished) {
        if (performance.now() - started > 600_000)
          throw new Error(`${label}: only ${stored}/${total} stored after 10 min`);
        const deviceId = unseen[0];
        if (deviceId !== undefined) {
          if (!doneSeen) {
            const [found] = await influx.query(
              `SELECT last(value) FROM ${series} WHERE device_id = '${deviceId}' AND entity_id = 'done'` as never,
            );
            doneSeen = found?.series[0] !== undefined;
            if (!doneSeen) await sleep(20);
            continue;
          }
          const last = lastReading.get(deviceId) as number;
          const newest = await newestByDevice(new Map([[deviceId, last]]));
          if ((newest.get(deviceId) ?? 0) < last) await sleep(20);
          else {
            unseen.shift();
            doneSeen = false;
          }
          continue;
        }
        // With every device's last reading queryable, all of them are (the rules engine hands
        // each topic's messages on in order, one batch at a time): the clock stops here.
        // Counting 500,000 points then took InfluxDB a tenth of a (b) run; it only checks.
        const at = performance.now();
        const cpuAt = sampleCpu(stack.child.pid as number);
        const counted = await influx.query(
          `SELECT count(value) FROM ${series} WHERE device_id =~ /^${prefix}_/ AND entity_id = 'v' AND time >= ${base}ms` as never,
        );
        const row = counted[0]?.series[0] ? rowsOf(counted[0].series[0])[0] : undefined;
        stored = Number(row?.count ?? 0);
        if (stored > total) throw new Error(`${label}: ${stored} stored of ${total} sent`);
        if (stored === total) finished = { at, cpu: cpuAt };
        else await sleep(100);
      }
      const seconds = (finished.at - started) / 1000;
      const cpu = cpuBetween(cpuBefore, finished.cpu);
      const rulesAfter = await rulesEmulatorStats(stack.dataDir);
      await Promise.race([pollSamples, sleep(5000)]);
      for (const device of connections) device.close();
      // The plan's device limit would stop the next run otherwise.
      for (const id of registryIds) {
        const removed = await stack.request('DELETE', `/api/devices/${id}`, undefined, token);
        if (removed.status !== 204) throw new Error(`removing device ${id}: ${removed.status}`);
      }
      return {
        rate: total / seconds,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        samples: latencies.length,
        seconds,
        cpu,
        total,
        mapping: eventSourceMapping(rulesBefore, rulesAfter),
      };
    };

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    type Outcome = Awaited<ReturnType<typeof run>>;
    const cpuLines = (outcome: Pick<Outcome, 'cpu' | 'seconds' | 'total'>) =>
      outcome.cpu.map(
        ([part, seconds]) =>
          `    ${part.padEnd(36)} ${(seconds / outcome.seconds).toFixed(2)} cores, ${((seconds * 1e6) / outcome.total).toFixed(1)} us/reading`,
      );
    const mappingLine = (outcome: Pick<Outcome, 'mapping'>) => `    ${outcome.mapping}`;
    const runs = (outcome: { rates: number[] }) =>
      REPEAT > 1 ? ` [median of ${outcome.rates.map(fmt).join(', ')}]` : '';
    /**
     * A saturated phase: median throughput without polling, then latency at that load. A
     * baseline measured here is run before each of the phase's runs, warm-up included.
     */
    const saturated = async (
      phase: 'a' | 'b',
      perMessage: number,
      messages: number,
      baseline: { name: string; label: string; unit: string; measure: () => Promise<RawRun> },
    ) => {
      const label = `${perMessage} reading${perMessage === 1 ? '' : 's'} per message`;
      const prefix = `BENCH${phase.toUpperCase()}`;
      console.log(`pipeline (${phase}): ${messages} messages x ${label} ...`);
      const baselineRuns: RawRun[] = [];
      const outcome = await median(REPEAT, async (attempt) => {
        const measured = await baseline.measure();
        if (attempt >= WARMUP) baselineRuns.push(measured);
        return run(label, `${prefix}${attempt}`, messages, perMessage, { measureLatency: false });
      });
      const middle = middleRun(baselineRuns);
      const baselineRate = middle.rate;
      results.push(
        `${baseline.label.padEnd(39)} ${fmt(middle.rate)} ${baseline.unit}${runs({ rates: baselineRuns.map((r) => r.rate) })}`,
        ...cpuLines(middle),
      );
      const latency = await run(label, `${prefix}L`, messages, perMessage, {
        measureLatency: true,
      });
      results.push(
        `pipeline (${phase}) ${label.padEnd(26)} ${fmt(outcome.rate)} readings/s = ${(outcome.rate / baselineRate).toFixed(3)} x ${baseline.name}${runs(outcome)}`,
        ...cpuLines(outcome),
        mappingLine(outcome),
        `    latency at that load                 p50 ${fmt(latency.p50)} ms, p99 ${fmt(latency.p99)} ms (${latency.samples} samples; that run: ${fmt(latency.rate)} readings/s)`,
      );
    };
    if (PHASES.includes('a')) {
      console.log('raw broker baseline: one run before each (a) run ...');
      await saturated('a', 1, MESSAGES_A, {
        name: 'raw broker',
        label: 'raw broker (QoS 1)',
        unit: 'msg/s',
        measure: async () => {
          await waitUntilQuiet(stack.child.pid as number);
          return rawBroker(MESSAGES_A);
        },
      });
    }
    if (PHASES.includes('b')) {
      console.log('raw InfluxDB baseline: one run before each (b) run ...');
      await saturated('b', 50, MESSAGES_B, {
        name: 'raw InfluxDB',
        label: 'raw InfluxDB (5,000-point batches, 2w)',
        unit: 'points/s',
        measure: rawInfluxRun,
      });
    }
    if (PHASES.includes('c')) {
      console.log(
        'pipeline (c): 1 reading per message at 500 messages/s, for latency at ordinary load ...',
      );
      const c = await run('paced', 'BENCHC', 5_000, 1, {
        pacedPerSecond: 500,
        measureLatency: true,
      });
      results.push(
        `pipeline (c) 500 messages/s, paced       latency p50 ${fmt(c.p50)} ms, p99 ${fmt(c.p99)} ms (${c.samples} samples)`,
        ...cpuLines(c),
        mappingLine(c),
      );
    }
    console.log(`\n${results.join('\n')}`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
