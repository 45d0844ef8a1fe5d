import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetBesideCheckout } from '../bench/datasets.ts';
import { edgeDetector, exportEdgeModel } from '../shared/edge/domain/export.ts';
import { decodeEdgeModel, type WeightEncoding } from '../shared/edge/domain/model-format.ts';
import { parseReadingsCsv } from '../shared/ml/adapters/csv.ts';
import { EDGE_ADVANCED_CONFIG } from '../shared/ml/domain/advanced-detector.ts';
import { createAdvancedDetector } from '../shared/ml/domain/detector.ts';
import type { TrainedModel } from '../shared/ml/domain/model.ts';
import { type HistoryPoint, trainModel } from '../shared/ml/domain/training.ts';

/**
 * The device's scorer (firmware/core/edge_detector.cpp, run by firmware/build/edge-score)
 * against the platform's TypeScript detector on the same readings: the platform scores a
 * series' opening readings, exports the edge model with the statistics they built, and both
 * continue on the rest. Held to 1e-4 on every score, and the alarms must be the same.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const firmwareDir = path.join(root, 'firmware');
const tool = path.join(firmwareDir, 'build', 'edge-score');
// The NAB corpus is not part of the project: NAB_DIR names a checkout, by default the one
// beside the project, where CI has it.
const NAB_FILE = path.join(
  process.env.NAB_DIR ?? datasetBesideCheckout('nab'),
  'data/realKnownCause/machine_temperature_system_failure.csv',
);
const NAB_PRESENT = existsSync(NAB_FILE);
if (!NAB_PRESENT) {
  console.warn(`edge parity: no NAB corpus at ${NAB_FILE}; the NAB case is skipped (set NAB_DIR)`);
}
const TOLERANCE = 1e-4;

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(input);
  });
}

/** A daily cycle with noise, a slow drift, a spike, a level shift and a stuck stretch. */
function generatedSeries(): HistoryPoint[] {
  let seed = 42;
  const noise = () => {
    seed = (Math.imul(seed, 48271) + 11) >>> 0;
    return seed / 4294967296 - 0.5;
  };
  const points: HistoryPoint[] = [];
  const start = Date.UTC(2026, 0, 5);
  for (let i = 0; i < 4000; i++) {
    const t = start + i * 300_000;
    let v = 50 + 8 * Math.sin((2 * Math.PI * (t % 86_400_000)) / 86_400_000) + 2 * noise();
    v += i * 0.0005;
    if (i === 2600) v += 25;
    if (i >= 3100 && i < 3300) v += 6;
    if (i >= 3600 && i < 3700) v = 51.25;
    points.push({ timeMs: t, value: v });
  }
  return points;
}

/**
 * A daily cycle with, after the training stretch, readings at the limits of a double (and
 * the smallest subnormals) among ordinary ones: they overflow the statistics to infinities
 * and NaN, which both scorers must then carry alike.
 */
function seriesWithExtremes(): HistoryPoint[] {
  const extremes = [
    1e300,
    -1e300,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    -Number.MIN_VALUE,
    0,
    1e15,
    -1e15,
  ];
  const points = generatedSeries().slice(0, 1500);
  const start = (points[points.length - 1] as HistoryPoint).timeMs;
  extremes.forEach((extreme, i) => {
    for (let k = 0; k < 21; k++) {
      points.push({
        timeMs: start + (i * 21 + k + 1) * 300_000,
        value: k === 0 ? extreme : 50 + ((i + k) % 5),
      });
    }
  });
  return points;
}

const models = new Map<string, TrainedModel>();

/** Training is the slow part: one model per series, shared by the cases that compare on it. */
async function trained(points: HistoryPoint[], trainOn: number): Promise<TrainedModel> {
  const key = `${points.length}:${(points[0] as HistoryPoint).timeMs}:${trainOn}`;
  let model = models.get(key);
  if (!model) {
    model = await trainModel(points.slice(0, trainOn), { seed: 7 });
    models.set(key, model);
  }
  return model;
}

interface Comparison {
  /** Largest score difference, device vs the platform's detector on the same edge model. */
  sameModel: number;
  /** Largest score difference, device vs the platform's detector on the unquantised model. */
  platform: number;
  deviceAlarms: number[];
  edgeAlarms: number[];
  platformAlarms: number[];
  encoding: string;
  bytes: number;
}

async function compare(
  dir: string,
  points: HistoryPoint[],
  trainOn: number,
  warm: number,
  encodings?: WeightEncoding[],
) {
  const model = await trained(points, trainOn);
  // The device runs the platform's advanced detector without its context layer.
  const live = createAdvancedDetector(model, EDGE_ADVANCED_CONFIG);
  for (const p of points.slice(0, warm)) live.score(p.timeMs, p.value);
  const exported = exportEdgeModel({
    entityId: 'temperature',
    model,
    detectorState: JSON.parse(JSON.stringify(live.snapshot())),
    lastTimeMs: (points[warm - 1] as HistoryPoint).timeMs,
    ...(encodings ? { encodings } : {}),
  });
  const file = path.join(dir, `model-${warm}-${exported.encoding}.esam`);
  await writeFile(file, exported.bytes);
  const rest = points.slice(warm);
  const device = await run(tool, [file], rest.map((p) => `${p.timeMs} ${p.value}\n`).join(''));
  expect(device.code).toBe(0);
  const lines = device.out.trim().split('\n');
  expect(lines).toHaveLength(rest.length);
  const edge = edgeDetector(decodeEdgeModel(exported.bytes));
  const result: Comparison = {
    sameModel: 0,
    platform: 0,
    deviceAlarms: [],
    edgeAlarms: [],
    platformAlarms: [],
    encoding: exported.encoding,
    bytes: exported.bytes.length,
  };
  rest.forEach((p, i) => {
    const [score, anomalous] = (lines[i] as string).split(' ');
    const deviceScore = Number(score);
    const e = edge.score(p.timeMs, p.value);
    const l = live.score(p.timeMs, p.value);
    result.sameModel = Math.max(result.sameModel, Math.abs(deviceScore - e.score));
    result.platform = Math.max(result.platform, Math.abs(deviceScore - l.score));
    if (anomalous === '1') result.deviceAlarms.push(p.timeMs);
    if (e.anomalous) result.edgeAlarms.push(p.timeMs);
    if (l.anomalous) result.platformAlarms.push(p.timeMs);
  });
  return result;
}

/** The measured differences, for the record of a run. */
function report(name: string, r: Comparison, readings: number): void {
  console.info(
    `edge parity, ${name}: ${readings} readings, ${r.deviceAlarms.length} device alarms, ` +
      `largest score difference ${r.sameModel.toExponential(2)} against the same file, ` +
      `${r.platform.toExponential(2)} against the platform's model (${r.encoding}, ${r.bytes} bytes)`,
  );
}

describe('edge model scores: firmware core (C++) against the platform (TypeScript)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'edge-parity-'));
    const build = await run('make', ['-C', firmwareDir, 'edge-score']);
    expect(build.code, build.out).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a generated series with a spike, a shift and a stuck sensor: same scores within 1e-4, same alarms', async () => {
    const r = await compare(dir, generatedSeries(), 600, 1200);
    report('generated series', r, 4000 - 1200);
    expect(r.sameModel).toBeLessThanOrEqual(TOLERANCE);
    expect(r.platform).toBeLessThanOrEqual(TOLERANCE);
    expect(r.deviceAlarms).toEqual(r.edgeAlarms);
    expect(r.deviceAlarms).toEqual(r.platformAlarms);
    // The injected incidents are found on the device.
    expect(r.deviceAlarms.length).toBeGreaterThan(0);
    // float32 weights: these models' int16 forecasts move by more than the stated tolerance.
    expect(r.encoding).toBe('f32');
  }, 60_000);

  it('quantised weights (int16, int8): the device computes what the platform computes from the same file', async () => {
    for (const encoding of ['i16', 'i8'] as const) {
      const r = await compare(dir, generatedSeries(), 600, 1200, [encoding]);
      expect(r.encoding).toBe(encoding);
      expect(r.sameModel).toBeLessThanOrEqual(TOLERANCE);
      expect(r.deviceAlarms).toEqual(r.edgeAlarms);
      expect(r.bytes).toBeLessThan(6243);
    }
  }, 60_000);

  it.runIf(NAB_PRESENT)(
    NAB_PRESENT
      ? 'NAB machine_temperature_system_failure: same scores within 1e-4, same alarms'
      : `NAB machine_temperature_system_failure: NOT RUN, no NAB corpus at ${NAB_FILE} (set NAB_DIR)`,
    async () => {
      const csv = await readFile(NAB_FILE, 'utf8');
      const points = parseReadingsCsv(csv).map((r) => ({
        timeMs: r.timeMs,
        value: r.numericValue,
      }));
      expect(points).toHaveLength(22_695);
      const r = await compare(dir, points, 750, 2000);
      report('NAB machine_temperature_system_failure', r, points.length - 2000);
      expect(r.sameModel).toBeLessThanOrEqual(TOLERANCE);
      expect(r.platform).toBeLessThanOrEqual(TOLERANCE);
      expect(r.deviceAlarms).toEqual(r.platformAlarms);
      // The machine's known failures are there to be found.
      expect(r.deviceAlarms.length).toBeGreaterThan(0);
    },
    60_000,
  );

  it('readings at the limits of a double: same scores within 1e-4, same alarms, every encoding', async () => {
    for (const encoding of ['f32', 'i16', 'i8'] as const) {
      const r = await compare(dir, seriesWithExtremes(), 600, 1200, [encoding]);
      report(`extremes (${encoding})`, r, seriesWithExtremes().length - 1200);
      expect(r.encoding).toBe(encoding);
      expect(r.sameModel).toBeLessThanOrEqual(TOLERANCE);
      expect(r.deviceAlarms).toEqual(r.edgeAlarms);
      expect(r.deviceAlarms.length).toBeGreaterThan(0);
      if (encoding === 'f32') {
        expect(r.platform).toBeLessThanOrEqual(TOLERANCE);
        expect(r.deviceAlarms).toEqual(r.platformAlarms);
      }
    }
  }, 60_000);
});
