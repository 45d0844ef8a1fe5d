import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from './support/local-stack.ts';
import { freePort, temporaryDataDir, waitUntil } from './support/servers.ts';
import { unique } from './support/stack-env.ts';

/**
 * kill -9 of each part of the local stack in turn while a device publishes QoS 1 readings:
 * every reading the broker acknowledged (PUBACK received by the device) is in InfluxDB once
 * the stack is back, exactly once. Black-box: the device is an MQTT client, the check a
 * query to InfluxDB; how the stack moves readings in between is its own business.
 *
 * No loss is allowed, the broker's included: the broker appends every device message on the
 * rules' topics to its journal before it acknowledges it, and the rules stage reads that
 * journal from a checkpoint of its own (local/services/mosquitto-journal.c), so a broker
 * killed with a backlog for the stopped rules stage, or restarted without its saved state,
 * has lost nothing a device was told it took.
 *
 * A part that dies takes the stack down (its supervisor stops the rest), so recovery is the
 * next `npm start` on the same data directory, as a person would run it.
 */

interface Fault {
  name: string;
  /** Kills the part; resolves once it is dead. */
  inflict(stack: LocalStack): Promise<void>;
}

const serverPid = (stack: LocalStack, service: string) =>
  (
    JSON.parse(readFileSync(path.join(stack.dataDir, service, 'server.pid'), 'utf8')) as {
      pid: number;
    }
  ).pid;

const killServer = (service: string) => async (stack: LocalStack) => {
  process.kill(serverPid(stack, service), 'SIGKILL');
};

const FAULTS: Fault[] = [
  { name: 'broker', inflict: killServer('mosquitto') },
  { name: 'InfluxDB', inflict: killServer('influxdb') },
  { name: 'PostgreSQL', inflict: killServer('postgres') },
  { name: 'function host', inflict: killServer('serverless') },
  {
    // The IoT rules emulator runs in the supervisor's process.
    name: 'rules stage',
    inflict: async (stack) => {
      process.kill((await stack.details()).pid, 'SIGKILL');
    },
  },
  {
    name: 'broker after the rules stage was down',
    inflict: async (stack) => {
      const supervisor = (await stack.details()).pid;
      process.kill(supervisor, 'SIGSTOP');
      // The device goes on publishing into the broker's queue for the stopped rules stage.
      const before = acknowledged.size;
      await waitUntil(
        'a backlog of acknowledged readings',
        async () => acknowledged.size >= before + 500,
        {
          timeoutMs: 30_000,
        },
      );
      // Right after the last acknowledgement: the broker's own save has not caught up.
      process.kill(serverPid(stack, 'mosquitto'), 'SIGKILL');
      process.kill(supervisor, 'SIGCONT');
    },
  },
];

let data: Awaited<ReturnType<typeof temporaryDataDir>>;
let ports: Record<string, string>;
let stack: LocalStack | undefined;
let device: MqttClient;
let deviceId: string;
const START = Date.now() - 60 * 60_000;
let published = 0;
let publishing: NodeJS.Timeout | undefined;
/** Index of each reading whose PUBACK the device received. */
const acknowledged = new Set<number>();
/** The fault under way when each reading was published. */
const phaseOf: string[] = [];
let phase = 'before any fault';
/** A failed run keeps its data directory (every service's log) for whoever reads the failure. */
let keepDataDir = false;

const start = async () => {
  stack = await startLocalStack(ports, data.dir);
  return stack;
};

/** One reading every 10 ms of device time, 10 ms of wall time apart: 100 a second. */
function publishNext(): void {
  const index = published++;
  phaseOf[index] = phase;
  device.publish(
    `devices/${deviceId}/load/state`,
    JSON.stringify({ value: index, timestamp: (START + index * 10) / 1000 }),
    { qos: 1 },
    (error) => {
      if (error) return;
      acknowledged.add(index);
    },
  );
}

async function storedValues(): Promise<number[]> {
  const { influxUrl } = await (stack as LocalStack).details();
  const query = `SELECT "value" FROM "sensor_data" WHERE "device_id" = '${deviceId}' AND "entity_id" = 'load' AND time >= ${START}ms`;
  const response = await fetch(
    `${influxUrl}/query?db=iot_data&epoch=ms&q=${encodeURIComponent(query)}`,
  );
  const body = (await response.json()) as {
    results: Array<{ series?: Array<{ values: Array<[number, number]> }> }>;
  };
  return (body.results[0]?.series ?? []).flatMap((series) => series.values.map(([, v]) => v));
}

beforeAll(async () => {
  data = await temporaryDataDir('kill-matrix');
  ports = {
    API_PORT: String(await freePort()),
    MQTT_PORT: String(await freePort()),
    DASHBOARD_PORT: String(await freePort()),
  };
  const running = await start();
  const name = unique('matrix');
  const registered = await running.request('POST', '/api/auth/register', {
    tenant_name: unique('Matrix Plant'),
    username: name,
    email: `${name}@example.com`,
    password: 'matrix-password-long',
  });
  expect(registered.status).toBe(201);
  deviceId = unique('PUMP');
  const created = await running.request(
    'POST',
    '/api/devices',
    { device_id: deviceId, name: 'Pump', type: 'pump' },
    registered.body.token,
  );
  expect(created.status).toBe(201);
  const { client_id, username, password } = created.body.credentials;
  // A device keeps its session and resends what was not acknowledged when it reconnects.
  device = await mqtt.connectAsync(running.mqtt, {
    clientId: client_id,
    username,
    password,
    clean: false,
    reconnectPeriod: 500,
  });
  await device.publishAsync(
    `devices/${deviceId}/discovery`,
    JSON.stringify({ entities: [{ entity_id: 'load', entity_type: 'sensor', name: 'Load' }] }),
    { qos: 1, retain: true },
  );
  publishing = setInterval(publishNext, 10);
}, 240_000);

afterAll(async () => {
  clearInterval(publishing);
  await device?.endAsync(true);
  await stack?.stop();
  if (keepDataDir) {
    console.log(`kill -9 matrix failed: the stack's data and logs are kept in ${data.dir}`);
  } else {
    await data?.remove();
  }
}, 60_000);

describe('kill -9 under QoS 1 load', () => {
  it('loses and duplicates no acknowledged reading, whichever part dies', async () => {
    keepDataDir = true;
    for (const fault of FAULTS) {
      const running = stack as LocalStack;
      phase = fault.name;
      // Load on the running stack first, so that the fault hits readings on their way.
      const before = acknowledged.size;
      await waitUntil('readings to flow', async () => acknowledged.size >= before + 100, {
        timeoutMs: 30_000,
      });
      await fault.inflict(running);
      const code = await running.exited;
      expect(code, running.output.slice(-20).join('\n')).not.toBe(0);
      // The broker's part of a stopped stack goes with it; the next start finds its ports free.
      await start();
    }
    phase = 'after the last fault';
    const before = acknowledged.size;
    await waitUntil('readings to flow again', async () => acknowledged.size >= before + 100, {
      timeoutMs: 30_000,
    });
    clearInterval(publishing);
    await waitUntil(
      'every reading to be acknowledged',
      async () => acknowledged.size === published,
      {
        timeoutMs: 60_000,
      },
    ).catch(() => {});

    let stored: number[] = [];
    await waitUntil(
      'every acknowledged reading in InfluxDB',
      async () => {
        stored = await storedValues();
        const present = new Set(stored);
        return [...acknowledged].every((index) => present.has(index));
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    ).catch(() => {});

    const counts = new Map<number, number>();
    for (const value of stored) counts.set(value, (counts.get(value) ?? 0) + 1);
    const report = [...new Set(phaseOf)].map((name) => {
      const indices = [...acknowledged].filter((index) => phaseOf[index] === name);
      return {
        phase: name,
        acknowledged: indices.length,
        lost: indices.filter((index) => !counts.has(index)).length,
        duplicated: indices.filter((index) => (counts.get(index) ?? 0) > 1).length,
      };
    });
    console.log(
      `kill -9 matrix (${published} published, ${acknowledged.size} acknowledged):\n` +
        report
          .map(
            (r) =>
              `  ${r.phase}: ${r.acknowledged} acknowledged, ${r.lost} lost, ${r.duplicated} duplicated`,
          )
          .join('\n'),
    );
    const defects = report.filter((r) => r.duplicated > 0 || r.lost > 0);
    expect(defects).toEqual([]);
    expect(stored.length).toBe(counts.size);
    keepDataDir = false;
  }, 900_000);
});
