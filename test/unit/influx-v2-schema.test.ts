import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureInfluxV2Schema,
  influxV2Purger,
} from '../../shared/timeseries/adapters/influx-v2-schema.ts';

/**
 * The InfluxDB 2.x schema step against a recorded fake of the v2 API (no InfluxDB 2 runs
 * here): the requests and answers follow docs.influxdata.com/influxdb/v2/api for
 * `/api/v2/orgs`, `/api/v2/buckets` (retentionRules with everySeconds, 0 = forever),
 * `/api/v2/dbrps` (database, retention_policy, default) and `/api/v2/delete` (start, stop,
 * predicate, one bucket per request), including their error body `{code, message}`.
 */
interface Call {
  method: string;
  path: string;
  query: Record<string, string>;
  body: any;
}

const TOKEN = 'fake-token';
const calls: Call[] = [];
const buckets: Array<{ id: string; orgID: string; name: string; retentionRules: any[] }> = [];
const dbrps: Array<{
  id: string;
  orgID: string;
  bucketID: string;
  database: string;
  retention_policy: string;
  default: boolean;
}> = [];
let nextId = 1;

async function bodyOf(request: IncomingMessage): Promise<any> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

const fake = createServer(async (request, response) => {
  const url = new URL(request.url ?? '/', 'http://fake');
  const call: Call = {
    method: request.method ?? '',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    body: await bodyOf(request),
  };
  calls.push(call);
  const answer = (status: number, body?: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    response.end(body === undefined ? '' : JSON.stringify(body));
  };
  if (request.headers.authorization !== `Token ${TOKEN}`) {
    return answer(401, { code: 'unauthorized', message: 'unauthorized access' });
  }
  const route = `${call.method} ${call.path}`;
  if (route === 'GET /api/v2/orgs') {
    return answer(200, {
      orgs: call.query.org === 'plant' ? [{ id: '0a1b2c3d4e5f6a7b', name: 'plant' }] : [],
    });
  }
  if (route === 'GET /api/v2/buckets') {
    return answer(200, {
      buckets: buckets.filter((b) => b.orgID === call.query.orgID && b.name === call.query.name),
    });
  }
  if (route === 'POST /api/v2/buckets') {
    if (buckets.some((b) => b.name === call.body.name)) {
      return answer(422, { code: 'conflict', message: 'bucket with name already exists' });
    }
    const bucket = { id: `b${nextId++}`, type: 'user', ...call.body };
    buckets.push(bucket);
    return answer(201, bucket);
  }
  if (call.method === 'PATCH' && call.path.startsWith('/api/v2/buckets/')) {
    const bucket = buckets.find((b) => b.id === call.path.split('/').pop());
    if (!bucket) return answer(404, { code: 'not found', message: 'bucket not found' });
    Object.assign(bucket, call.body);
    return answer(200, bucket);
  }
  if (route === 'GET /api/v2/dbrps') {
    return answer(200, {
      content: dbrps.filter(
        (d) =>
          d.orgID === call.query.orgID &&
          d.database === call.query.db &&
          d.retention_policy === call.query.rp,
      ),
    });
  }
  if (route === 'POST /api/v2/dbrps') {
    const mapping = { id: `d${nextId++}`, ...call.body };
    dbrps.push(mapping);
    return answer(201, { content: mapping });
  }
  if (call.method === 'PATCH' && call.path.startsWith('/api/v2/dbrps/')) {
    const mapping = dbrps.find((d) => d.id === call.path.split('/').pop());
    if (!mapping) return answer(404, { code: 'not found', message: 'dbrp not found' });
    Object.assign(mapping, call.body);
    return answer(200, { content: mapping });
  }
  if (route === 'POST /api/v2/delete') return answer(204);
  return answer(404, { code: 'not found', message: 'path not found' });
});

let url = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => fake.close(() => resolve())));

describe('InfluxDB 2.x buckets and DBRP mappings (recorded fake of the v2 API, not a real server)', () => {
  const options = () => ({ url, token: TOKEN, org: 'plant', database: 'iot_data' });

  it('creates one bucket per plan tier with its retention and maps each database/policy to it, idempotently', async () => {
    await ensureInfluxV2Schema(options());
    const retention = Object.fromEntries(
      buckets.map((b) => [b.name, b.retentionRules[0].everySeconds]),
    );
    expect(retention).toEqual({
      'iot_data/free_plan': 30 * 86_400,
      'iot_data/free_plan_5m': 30 * 86_400,
      'iot_data/free_plan_1h': 30 * 86_400,
      'iot_data/starter_plan': 90 * 86_400,
      'iot_data/starter_plan_5m': 90 * 86_400,
      'iot_data/starter_plan_1h': 90 * 86_400,
      'iot_data/professional_plan': 365 * 86_400,
      'iot_data/professional_plan_5m': 365 * 86_400,
      'iot_data/professional_plan_1h': 365 * 86_400,
      'iot_data/industrial_plan': 0,
      'iot_data/industrial_plan_5m': 0,
      'iot_data/industrial_plan_1h': 0,
    });
    for (const mapping of dbrps) {
      const bucket = buckets.find((b) => b.id === mapping.bucketID);
      expect(bucket?.name).toBe(`iot_data/${mapping.retention_policy}`);
      expect(mapping.database).toBe('iot_data');
      expect(mapping.default).toBe(mapping.retention_policy === 'free_plan');
    }
    expect(dbrps).toHaveLength(12);

    // A bucket's retention changed by hand is put back; nothing else is written again.
    const starter = buckets.find((b) => b.name === 'iot_data/starter_plan');
    if (starter) starter.retentionRules = [{ type: 'expire', everySeconds: 3600 }];
    calls.length = 0;
    await ensureInfluxV2Schema(options());
    expect(calls.filter((call) => call.method !== 'GET')).toEqual([
      {
        method: 'PATCH',
        path: `/api/v2/buckets/${starter?.id}`,
        query: {},
        body: { retentionRules: [{ type: 'expire', everySeconds: 90 * 86_400 }] },
      },
    ]);
    expect(buckets).toHaveLength(12);
  });

  it('purges a tenant bucket by bucket with a tag predicate, and reports refusals', async () => {
    calls.length = 0;
    const before = Date.parse('2026-11-01T00:00:00Z');
    await influxV2Purger(options())(42, before);
    const deletes = calls.filter((call) => call.path === '/api/v2/delete');
    expect(deletes.map((call) => call.query.bucket).sort()).toEqual(
      buckets.map((b) => b.name).sort(),
    );
    for (const call of deletes) {
      expect(call.body).toEqual({
        start: '1970-01-01T00:00:00Z',
        stop: '2026-10-31T23:59:59.999Z',
        predicate: 'tenant_id="42"',
      });
    }
    await expect(ensureInfluxV2Schema({ ...options(), token: 'wrong' })).rejects.toThrow(
      /answered 401: unauthorized access/,
    );
    await expect(ensureInfluxV2Schema({ ...options(), org: 'other' })).rejects.toThrow(
      /no organisation named other/,
    );
  });
});
