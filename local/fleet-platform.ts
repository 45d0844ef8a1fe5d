/**
 * A simulated fleet on the platform, for `npm run fleet`, `npm run bench:fleet` and the fleet
 * test: registering its devices through the API (in one bulk request, `POST
 * /api/devices/bulk`, or one device per request, `POST /api/devices`, each timed), and
 * counting what the platform stored of their readings.
 */
import type pg from 'pg';
import { InfluxClient, rowsOf } from '../shared/timeseries/adapters/influx-client.ts';
import { DEFAULT_DATABASE } from '../shared/timeseries/adapters/influx-schema.ts';
import { tenantSelect } from '../shared/timeseries/adapters/influxql.ts';
import { storageOf } from '../shared/timeseries/reading.ts';
import type { FleetDeviceCredentials } from './fleet-process.ts';
import { ApiError, type PlatformClient, type RegisteredDevice } from './platform-client.ts';

/** The fleet device's sensors: the reference device's three, then more probes of each. */
export function sensorEntities(sensors: number): string[] {
  const bases = ['temperature', 'pressure', 'vibration'];
  return Array.from({ length: sensors }, (_, k) =>
    k < 3 ? (bases[k] as string) : `${bases[k % 3]}_${Math.floor(k / 3) + 1}`,
  );
}

export interface FleetDeviceInput {
  device_id: string;
  name: string;
  type: string;
  location: string;
}

export interface RegisteredFleetDevice extends FleetDeviceCredentials {
  /** The device's row id (`device.id` in the API). */
  rowId: number;
  /** How long its registration took (one-by-one only). */
  ms?: number;
}

/** `count` devices named `<prefix>-00001`, ... from `first` on. */
export function fleetDevices(
  prefix: string,
  first: number,
  count: number,
  location: string,
): FleetDeviceInput[] {
  return Array.from({ length: count }, (_, i) => {
    const n = first + i;
    return {
      device_id: `${prefix}-${String(n).padStart(5, '0')}`,
      name: `Fleet device ${n}`,
      type: 'virtual-compressor',
      location,
    };
  });
}

/**
 * One request per device, `concurrency` at a time. A busy local API answers 5xx or drops
 * the connection now and then: such a request is retried twice; any other failure stops the
 * registration. A retry that finds the device already registered leaves it out (its
 * credential was in the answer that was lost).
 */
export async function registerOneByOne(
  client: PlatformClient,
  devices: FleetDeviceInput[],
  options: {
    concurrency: number;
    cancelled?: AbortSignal;
    onRegistered?: (done: number) => void;
  },
): Promise<RegisteredFleetDevice[]> {
  const registered: RegisteredFleetDevice[] = new Array(devices.length);
  let next = 0;
  let done = 0;
  let failure: Error | undefined;
  const worker = async () => {
    while (next < devices.length && !failure && !options.cancelled?.aborted) {
      const index = next++;
      const input = devices[index] as FleetDeviceInput;
      for (let attempt = 1; ; attempt++) {
        const started = performance.now();
        // A connection the busy local API dropped counts as a 5xx: worth another try.
        const response = await client
          .request<RegisteredDevice>('POST', '/api/devices', input)
          .catch((error: Error) => ({ status: 599, body: { error: error.message } }) as const);
        const ms = performance.now() - started;
        if (response.status === 201 && 'device' in response.body) {
          registered[index] = {
            deviceId: input.device_id,
            rowId: response.body.device.id,
            username: response.body.credentials.username,
            password: response.body.credentials.password,
            ms,
          };
          options.onRegistered?.(++done);
          break;
        }
        // The dropped attempt was registered after all, but its credential is gone (it is
        // shown once): the device is left out.
        if (response.status === 409 && attempt > 1) break;
        if (response.status < 500 || attempt === 3) {
          failure ??= new ApiError(`registering ${input.device_id}`, response);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, devices.length) }, worker));
  if (failure) throw failure;
  return registered.filter((device) => device !== undefined);
}

interface BulkAnswer {
  devices: Array<{
    device: { id: number; device_id: string };
    credentials: { username: string; password: string };
  }>;
}

/**
 * All devices in one request. Returns undefined when the platform has no bulk route
 * (404/405); any other refusal is an error.
 */
export async function registerInBulk(
  client: PlatformClient,
  devices: FleetDeviceInput[],
): Promise<RegisteredFleetDevice[] | undefined> {
  const response = await client.request<BulkAnswer>('POST', '/api/devices/bulk', devices);
  if (response.status === 404 || response.status === 405) return undefined;
  if (response.status !== 201)
    throw new ApiError(`registering ${devices.length} devices`, response);
  return response.body.devices.map((entry) => ({
    deviceId: entry.device.device_id,
    rowId: entry.device.id,
    username: entry.credentials.username,
    password: entry.credentials.password,
  }));
}

/**
 * Stored sensor readings of the fleet's devices with timestamps in [from, to]: from the
 * stack's InfluxDB (500 devices a query), or else through the public telemetry API.
 */
/** Where a tenant's sensor readings are stored, for a `tenantSelect`. */
export function sensorReadingsOf(tenant: { retentionPolicy: string }) {
  const storage = storageOf('sensor');
  return {
    from: {
      database: DEFAULT_DATABASE,
      retentionPolicy: tenant.retentionPolicy,
      measurement: storage.measurement,
    },
    field: storage.field,
  };
}

export async function countStored(
  source: { influxUrl?: string; client: PlatformClient; concurrency: number },
  tenant: { id: number; retentionPolicy: string },
  fleet: RegisteredFleetDevice[],
  entities: string[],
  from: number,
  to: number,
): Promise<number> {
  if (source.influxUrl) {
    const sensors = sensorReadingsOf(tenant);
    const influx = new InfluxClient({ url: source.influxUrl, database: DEFAULT_DATABASE });
    let total = 0;
    for (let i = 0; i < fleet.length; i += 500) {
      const [result] = await influx.query(
        tenantSelect({
          tenantId: tenant.id,
          from: sensors.from,
          select: [{ expr: { fn: 'count', field: sensors.field }, as: 'count' }],
          tags: {
            device_id: fleet.slice(i, i + 500).map((d) => d.deviceId),
            entity_id: entities,
          },
          time: { from, to, toInclusive: true },
        }),
      );
      const series = result?.series[0];
      total += series ? Number(rowsOf(series)[0]?.count ?? 0) : 0;
    }
    return total;
  }
  // Without the stack's InfluxDB, the public telemetry API counts them, device by device.
  let total = 0;
  let next = 0;
  const query = new URLSearchParams({
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  });
  const worker = async () => {
    while (next < fleet.length) {
      const device = fleet[next++] as RegisteredFleetDevice;
      const response = await source.client.request<{
        series: Array<{ entity_id: string; points: unknown[] }>;
      }>('GET', `/api/devices/${device.rowId}/telemetry?${query}`);
      if (response.status !== 200) continue;
      for (const series of response.body.series) {
        if (entities.includes(series.entity_id)) total += series.points.length;
      }
    }
  };
  await Promise.all(Array.from({ length: source.concurrency }, worker));
  return total;
}

export interface FleetPresence {
  /** Devices the platform shows online. */
  online: number;
  /** Of those, devices it heard from at or after `since` (its status or a reading). */
  onlineSince: number;
}

/**
 * What the platform's registry says about the devices of `tenantId` whose device id starts
 * with `prefix`, read with the operator's database account (the API would page through
 * thousands of devices).
 */
export async function fleetPresence(
  database: pg.ClientBase,
  tenantId: number,
  prefix: string,
  since: number,
): Promise<FleetPresence> {
  const { rows } = await database.query<{ online: string; online_since: string }>(
    `SELECT count(*) FILTER (WHERE status = 'online') AS online,
            count(*) FILTER (WHERE status = 'online' AND last_seen >= $3) AS online_since
       FROM devices
      WHERE tenant_id = $1 AND starts_with(device_id, $2)`,
    [tenantId, prefix, new Date(since).toISOString()],
  );
  return { online: Number(rows[0]?.online ?? 0), onlineSince: Number(rows[0]?.online_since ?? 0) };
}
