/**
 * `npm run bench:export`: a device export's memory against the number of points. A real
 * InfluxDB (started here, in a temporary folder) holds 1,000,000 points of one device; the
 * export pipeline the API runs (the paged reader over the reading store, the row formatter,
 * the folder store's streamed write) exports 100,000 of them (the baseline, same process)
 * and then all 1,000,000, while the heap and RSS are sampled every 20 ms. Flat memory: the
 * peak growth of the big export stays near the baseline's, not ten times it. Then the big
 * export's CSV is parsed back (RFC 4180, streamed) and compared, row by row, with the points
 * written: same count, order, times to the millisecond and values bit for bit. The
 * benchmark exits with 1 when any row differs.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startInfluxdb } from '../local/services/influxdb.ts';
import { FileExportStore } from '../shared/export/adapters/file-export-store.ts';
import { SeriesExportReader } from '../shared/export/adapters/series-export-reader.ts';
import { formatRows } from '../shared/export/domain/export.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { InfluxReadingStore } from '../shared/timeseries/adapters/influx-reading-store.ts';
import {
  DEFAULT_DATABASE,
  ensureTimeseriesSchema,
} from '../shared/timeseries/adapters/influx-schema.ts';
import type { Reading } from '../shared/timeseries/reading.ts';

const TOTAL = Number(process.env.EXPORT_POINTS ?? 1_000_000);
const BASELINE = TOTAL / 10;
const START = Date.now() - 20 * 86_400_000;
const STEP_MS = 1000;
const HEADER = 'time,device_id,entity_id,value';
/** The n-th point written: what the export must give back. */
const pointValue = (n: number) => Math.sin(n / 100) * 1000;

/** One CSV record's fields (RFC 4180: quoted fields may hold commas and doubled quotes). */
function csvRecord(line: string): string[] {
  const fields: string[] = [];
  let at = 0;
  while (at <= line.length) {
    if (line[at] === '"') {
      let value = '';
      at += 1;
      for (;;) {
        const quote = line.indexOf('"', at);
        if (quote === -1) throw new Error(`unterminated quoted field: ${line}`);
        value += line.slice(at, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          at = quote + 2;
        } else {
          at = quote + 1;
          break;
        }
      }
      fields.push(value);
      at += 1;
    } else {
      const comma = line.indexOf(',', at);
      const end = comma === -1 ? line.length : comma;
      fields.push(line.slice(at, end));
      at = end + 1;
    }
  }
  return fields;
}

/**
 * Reads the export back a line at a time and compares each record with the point written
 * at its place; returns how many matched and the first difference.
 */
async function parseBack(file: string, points: number) {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let index = -1;
  let matched = 0;
  let firstDifference: string | null = null;
  for await (const line of lines) {
    if (index === -1) {
      if (line !== HEADER) firstDifference = `header ${JSON.stringify(line)}`;
      index = 0;
      continue;
    }
    const [time, deviceId, entityId, value, ...extra] = csvRecord(line);
    const expectedTime = START + index * STEP_MS;
    const exact =
      extra.length === 0 &&
      time !== undefined &&
      Date.parse(time) === expectedTime &&
      deviceId === 'BENCH-1' &&
      entityId === 'speed' &&
      value !== undefined &&
      Object.is(Number(value), pointValue(index));
    if (exact) matched += 1;
    else
      firstDifference ??= `row ${index + 1}: ${line} (wrote ${new Date(expectedTime).toISOString()} ${pointValue(index)})`;
    index += 1;
  }
  if (index !== points) firstDifference ??= `${index} rows for ${points} points`;
  return { rows: Math.max(index, 0), matched, firstDifference };
}

const dir = await mkdtemp(path.join(tmpdir(), 'easysmart-bench-export-'));
const influx = await startInfluxdb({ dataDir: path.join(dir, 'influxdb') });
try {
  const client = new InfluxClient({ url: influx.url, database: DEFAULT_DATABASE });
  await ensureTimeseriesSchema(client);
  const store = new InfluxReadingStore({ client });
  const written = performance.now();
  for (let i = 0; i < TOTAL; i += 10_000) {
    const batch: Reading[] = [];
    for (let j = i; j < Math.min(TOTAL, i + 10_000); j++) {
      batch.push({
        tenantId: 1,
        deviceId: 'BENCH-1',
        entityId: 'speed',
        entityType: 'sensor',
        value: pointValue(j),
        timeMs: START + j * STEP_MS,
        retentionPolicy: 'free_plan',
      });
    }
    await store.writeReadings(batch);
  }
  console.log(`wrote ${TOTAL} points in ${((performance.now() - written) / 1000).toFixed(1)} s`);

  const reader = new SeriesExportReader(store);
  const files = new FileExportStore(path.join(dir, 'exports'), () => ({
    publicUrl: 'http://127.0.0.1/',
    linkSecret: 'bench',
  }));
  const device = {
    deviceId: 'BENCH-1',
    entities: [{ entityId: 'speed', entityType: 'sensor' as const }],
    retentionPolicy: 'free_plan',
  };

  async function run(points: number, name: string) {
    global.gc?.();
    const before = process.memoryUsage();
    const peak = { heap: before.heapUsed, rss: before.rss };
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peak.heap = Math.max(peak.heap, now.heapUsed);
      peak.rss = Math.max(peak.rss, now.rss);
    }, 20);
    const started = performance.now();
    let rows = 0;
    const request = {
      from: new Date(START),
      to: new Date(START + points * STEP_MS - 1),
      format: 'csv' as const,
      source: 'raw' as const,
    };
    async function* lines() {
      yield 'time,device_id,entity_id,value\n';
      for await (const page of reader.pages(1, device, request)) {
        rows += page.length;
        yield formatRows(page, 'csv', 'raw');
      }
    }
    const key = `1/00000000-0000-4000-8000-00000000000${name === 'baseline' ? 1 : 2}.csv`;
    const { bytes } = await files.write(key, lines());
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;
    const size = (await stat(path.join(dir, 'exports', key))).size;
    return {
      file: path.join(dir, 'exports', key),
      export: name,
      rows,
      mb_written: +(bytes / 1e6).toFixed(1),
      file_matches: size === bytes,
      seconds: +seconds.toFixed(1),
      rows_per_s: Math.round(rows / seconds),
      peak_heap_growth_mb: +((peak.heap - before.heapUsed) / 1e6).toFixed(1),
      peak_rss_growth_mb: +((peak.rss - before.rss) / 1e6).toFixed(1),
    };
  }

  const results = [await run(BASELINE, 'baseline'), await run(TOTAL, 'all')];
  console.table(results.map(({ file: _file, ...row }) => row));
  const [base, all] = results as [(typeof results)[0], (typeof results)[0]];
  console.log(
    `peak heap growth: ${all.peak_heap_growth_mb} MB for ${TOTAL} points vs ${base.peak_heap_growth_mb} MB for ${BASELINE} (ratio ${(all.peak_heap_growth_mb / Math.max(base.peak_heap_growth_mb, 0.1)).toFixed(2)}; ten times the points)`,
  );
  const parsedAt = performance.now();
  const back = await parseBack(all.file, TOTAL);
  console.log(
    `parsed back ${back.rows} rows in ${((performance.now() - parsedAt) / 1000).toFixed(1)} s: ${back.matched} equal to the points written${back.firstDifference ? `; first difference: ${back.firstDifference}` : ''}`,
  );
  console.log(`parse_back=${back.firstDifference === null ? 'exact' : 'different'}`);
  if (back.firstDifference !== null) process.exitCode = 1;
} finally {
  await influx.stop();
  await rm(dir, { recursive: true, force: true });
}
