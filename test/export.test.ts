import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExportFiles } from '../local/mailbox.ts';
import { callRoute } from './support/api-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * Exports through the export function in-process against real InfluxDB and PostgreSQL: the
 * points written come back exactly from the file behind the returned link (served as the
 * local stack serves it), in pages of the reader, and a tampered or foreign request gets
 * nothing. The million-point memory figure is `npm run bench:export`'s.
 */
const LINK_SECRET = 'export-test-link-secret';
const stack = useTestStack({ EXPORT_LINK_SECRET: LINK_SECRET });
const files = await startExportFiles({ dir: stack.exportDir, linkSecret: LINK_SECRET });
process.env.EXPORT_PUBLIC_URL = files.url;
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const exporter = (await import('../functions/export/handler.ts')).handler as Parameters<
  typeof callRoute
>[0];
const { readingStore } = await import('../shared/timeseries/composition.ts');
type Reading = import('../shared/timeseries/reading.ts').Reading;
const admin = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 1 });
afterAll(async () => {
  await admin.end();
  await files.stop();
});

const POINTS = 30_000;
const START = Date.UTC(2026, 10, 20, 0, 0, 0);
let token: string;
let otherToken: string;
let id: string;
let deviceId: string;

async function signUp() {
  const name = unique('exp');
  const answer = await callRoute(auth, 'POST /api/auth/register', {
    body: {
      tenant_name: unique('Export'),
      username: name,
      email: `${name}@example.com`,
      password: 'export-password-1',
    },
  });
  return { token: answer.body.token as string, tenantId: answer.body.tenant.id as number };
}

beforeAll(async () => {
  const owner = await signUp();
  token = owner.token;
  otherToken = (await signUp()).token;
  deviceId = unique('MILL');
  const created = await callRoute(devices, 'POST /api/devices', {
    token,
    body: { device_id: deviceId, name: 'Mill', type: 'mill' },
  });
  id = String(created.body.device.id);
  await admin.query(
    `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name)
     VALUES ($1, $2, 'speed', 'sensor', 'Speed'), ($1, $2, 'note', 'text', 'Note')`,
    [Number(id), owner.tenantId],
  );
  // Uneven density: most points in the first hours, a sparse tail over two days.
  const readings: Reading[] = Array.from({ length: POINTS }, (_, i) => ({
    tenantId: owner.tenantId,
    deviceId,
    entityId: 'speed',
    entityType: 'sensor' as const,
    value: Math.round(Math.sin(i / 50) * 1e6) / 1e3 + i * 1e-9,
    timeMs: START + (i < 25_000 ? i * 300 : 25_000 * 300 + (i - 25_000) * 30_000),
    retentionPolicy: 'free_plan',
  }));
  readings.push({
    tenantId: owner.tenantId,
    deviceId,
    entityId: 'note',
    entityType: 'text',
    value: 'belt "B" changed, 2nd shift',
    timeMs: START + 1,
    retentionPolicy: 'free_plan',
  });
  for (let i = 0; i < readings.length; i += 5000) {
    await readingStore().writeReadings(readings.slice(i, i + 5000));
  }
});

/** RFC 4180: fields split on commas outside quotes, "" inside quotes is a quote. */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

const range = {
  from: new Date(START).toISOString(),
  to: new Date(START + 3 * 86_400_000).toISOString(),
};

describe('a device export', () => {
  it('streams every point, in time order, and its CSV parses back exactly', async () => {
    const answer = await callRoute(exporter, 'GET /api/devices/{id}/export', {
      token,
      params: { id },
      query: { ...range, entity_id: 'speed,note' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.export).toMatchObject({ format: 'csv', source: 'raw', rows: POINTS + 1 });
    const text = await (await fetch(answer.body.export.url)).text();
    expect(text.length).toBe(answer.body.export.bytes);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('time,device_id,entity_id,value');
    const rows = lines.slice(1).map(parseCsvLine);
    expect(rows).toHaveLength(POINTS + 1);
    const speed = rows.filter((row) => row[2] === 'speed');
    expect(speed).toHaveLength(POINTS);
    for (let i = 0; i < POINTS; i++) {
      const row = speed[i] as string[];
      const timeMs = START + (i < 25_000 ? i * 300 : 25_000 * 300 + (i - 25_000) * 30_000);
      expect(row[0]).toBe(new Date(timeMs).toISOString());
      expect(row[1]).toBe(deviceId);
      expect(Number(row[3])).toBe(Math.round(Math.sin(i / 50) * 1e6) / 1e3 + i * 1e-9);
    }
    expect(rows.find((row) => row[2] === 'note')?.[3]).toBe('belt "B" changed, 2nd shift');
    const times = rows.map((row) => row[0] as string);
    expect([...times].sort()).toEqual(times);
  });

  it('exports JSON lines, and refuses a tampered or expired link', async () => {
    const answer = await callRoute(exporter, 'GET /api/devices/{id}/export', {
      token,
      params: { id },
      query: { ...range, entity_id: 'speed', format: 'jsonl' },
    });
    const url = new URL(answer.body.export.url);
    const lines = (await (await fetch(url)).text()).trimEnd().split('\n');
    expect(lines).toHaveLength(POINTS);
    expect(JSON.parse(lines[0] as string)).toEqual({
      time: new Date(START).toISOString(),
      device_id: deviceId,
      entity_id: 'speed',
      value: 0,
    });
    const tampered = new URL(url);
    tampered.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 60));
    expect((await fetch(tampered)).status).toBe(403);
    const expired = new URL(url);
    expired.searchParams.set('expires', '1000');
    expect((await fetch(expired)).status).toBe(403);
  });

  it('refuses another tenant, unknown entities and a bad range', async () => {
    const foreign = await callRoute(exporter, 'GET /api/devices/{id}/export', {
      token: otherToken,
      params: { id },
      query: range,
    });
    expect(foreign.status).toBe(404);
    for (const query of [
      { ...range, entity_id: 'nope' },
      { from: range.to, to: range.from },
      { ...range, format: 'xlsx' },
      { ...range, source: '10m' },
      { from: 'yesterday', to: range.to },
    ]) {
      const answer = await callRoute(exporter, 'GET /api/devices/{id}/export', {
        token,
        params: { id },
        query,
      });
      expect([400, 404], JSON.stringify(query)).toContain(answer.status);
    }
  });
});

describe('a tenant export', () => {
  it('runs as a job and hands back a link to every device', async () => {
    const started = await callRoute(exporter, 'POST /api/exports', { token, body: range });
    expect(started.status).toBe(202);
    // No worker function in-process: the job ran before the answer.
    expect(started.body.job).toMatchObject({ status: 'done', rows: POINTS + 1 });
    const job = await callRoute(exporter, 'GET /api/exports/{id}', {
      token,
      params: { id: String(started.body.job.id) },
    });
    const text = await (await fetch(job.body.job.url)).text();
    expect(text.trimEnd().split('\n')).toHaveLength(POINTS + 2);
    const foreign = await callRoute(exporter, 'GET /api/exports/{id}', {
      token: otherToken,
      params: { id: String(started.body.job.id) },
    });
    expect(foreign.status).toBe(404);
  });
});
