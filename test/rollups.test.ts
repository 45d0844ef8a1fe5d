import { describe, expect, it } from 'vitest';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
import { showContinuousQueries } from '../shared/timeseries/adapters/influxql.ts';
import { callRoute } from './support/api-event.ts';
import { kinesisEvent } from './support/kinesis-event.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

/**
 * The 5-minute and 1-hour rollups computed by the platform's own scheduled function (the
 * `timeseries` handler, invoked in-process as the schedule would) over real InfluxDB 1.x
 * with no continuous query defined: recent readings, readings that arrive hours late, and
 * runs repeated without changing anything.
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const ingest = (await import('../functions/ingest/handler.ts')).handler;
const timeseries = (await import('../functions/timeseries/handler.ts')).handler;
const influx = new InfluxClient({ url: stack.influxUrl, database: DEFAULT_DATABASE });
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const state = (deviceId: string, value: number, timeMs: number) => ({
  payload: Buffer.from(JSON.stringify({ value, timestamp: timeMs / 1000 })).toString('base64'),
  topic: `devices/${deviceId}/temp/state`,
  client_id: deviceId,
  received_at: Date.now(),
});

describe('rollups without continuous queries', () => {
  it('folds in recent readings and readings hours late, idempotently', async () => {
    const [cqs] = await influx.query(showContinuousQueries());
    const platform = cqs?.series.find((series) => series.name === DEFAULT_DATABASE);
    expect(platform ? rowsOf(platform) : []).toEqual([]);

    const { token } = await signUp(auth);
    const device = await addDevice(devices, token, { name: 'Oven', type: 'oven' });
    const { deviceId } = device;
    const id = String(device.id);
    const discovery = {
      payload: Buffer.from(
        JSON.stringify({ entities: [{ entity_id: 'temp', entity_type: 'sensor', name: 'T' }] }),
      ).toString('base64'),
      topic: `devices/${deviceId}/discovery`,
      client_id: deviceId,
      received_at: Date.now(),
    };
    await ingest(kinesisEvent([discovery]));

    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    // Two readings of a while ago (1 and 3 hours late), and one recent.
    const late = [
      hour - 3 * HOUR + 7 * MINUTE,
      hour - 3 * HOUR + 8 * MINUTE,
      hour - HOUR - 20 * MINUTE,
    ];
    await ingest(
      kinesisEvent([
        state(deviceId, 10, late[0] as number),
        state(deviceId, 20, late[1] as number),
      ]),
    );
    await ingest(
      kinesisEvent([state(deviceId, 5, late[2] as number), state(deviceId, 7, now - MINUTE)]),
    );
    await timeseries({} as never);

    const telemetry = (query: Record<string, string>) =>
      callRoute(devices, 'GET /api/devices/{id}/telemetry', { token, params: { id }, query });
    const week = { from: new Date(now - 3 * DAY).toISOString(), to: new Date(now).toISOString() };
    const hourly = async () => {
      const answer = await telemetry({ ...week, every: '1h', fn: 'count' });
      expect(answer.body.source).toBe('5m');
      return answer.body.series[0].points;
    };
    const first = await hourly();
    expect(first.reduce((sum: number, point: { value: number }) => sum + point.value, 0)).toBe(4);
    expect(first.slice(0, 2)).toEqual([
      { time: new Date(hour - 3 * HOUR).toISOString(), value: 2 },
      { time: new Date(hour - 2 * HOUR).toISOString(), value: 1 },
    ]);

    // The 1-hour rollup, over a span long enough to be read from it.
    const month = {
      from: new Date(now - 60 * DAY).toISOString(),
      to: new Date(hour - HOUR).toISOString(),
      fn: 'mean',
    };
    const means = await telemetry(month);
    expect(means.body.source).toBe('1h');
    expect(means.body.series[0].points).toEqual([
      { time: new Date(hour - 3 * HOUR).toISOString(), value: 15 },
      { time: new Date(hour - 2 * HOUR).toISOString(), value: 5 },
    ]);

    // A reading 3 hours late arrives after the run: the next run folds it into its windows.
    await ingest(kinesisEvent([state(deviceId, 60, hour - 3 * HOUR + 30 * MINUTE)]));
    await timeseries({} as never);
    expect((await telemetry(month)).body.series[0].points[0]).toEqual({
      time: new Date(hour - 3 * HOUR).toISOString(),
      value: 30,
    });
    // Running again changes nothing.
    const settled = await telemetry(month);
    await timeseries({} as never);
    expect((await telemetry(month)).body).toEqual(settled.body);
    expect((await hourly())[0]).toEqual({
      time: new Date(hour - 3 * HOUR).toISOString(),
      value: 3,
    });
  });
});
