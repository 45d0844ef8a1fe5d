import { describe, expect, it } from 'vitest';
import { edgeDetector, exportEdgeModel } from '../../shared/edge/domain/export.ts';
import {
  decodeEdgeModel,
  EDGE_LIMITS,
  EdgeFormatError,
  encodeEdgeModel,
} from '../../shared/edge/domain/model-format.ts';
import { createAdvancedDetector } from '../../shared/ml/domain/detector.ts';
import { encodeFloat32, type TrainedModel } from '../../shared/ml/domain/model.ts';

/** A model with seeded random weights in the trained models' shape (no training needed). */
function randomModel(hidden: number[], windowSize = 24): TrainedModel {
  let seed = 9;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 4294967296 - 0.5) * 0.6;
  };
  const units = [...hidden, 1];
  const weights: Float32Array[] = [];
  const specs: TrainedModel['weights']['specs'] = [];
  let inputs = windowSize + 1;
  units.forEach((u, i) => {
    weights.push(Float32Array.from({ length: inputs * u }, random));
    weights.push(Float32Array.from({ length: u }, random));
    specs.push({ name: `dense_${i}/kernel`, shape: [inputs, u], dtype: 'float32' });
    specs.push({ name: `dense_${i}/bias`, shape: [u], dtype: 'float32' });
    inputs = u;
  });
  return {
    kind: 'dense-forecaster',
    format: 1,
    version: `dense-forecaster-1-test-${hidden.join('x')}`,
    trainedAt: '2026-12-01T00:00:00.000Z',
    windowSize,
    normalisation: { mean: 20, std: 2 },
    residual: { mean: 0, std: 0.3 },
    range: { min: 10, max: 30, count: 500 },
    threshold: 2.5,
    tailExcess: 0.8,
    layers: units.map((u, i) => ({
      units: u,
      activation: i === units.length - 1 ? ('linear' as const) : ('relu' as const),
    })),
    metrics: {
      trainingPoints: 500,
      windows: 476,
      epochs: 5,
      trainLoss: 0.1,
      validationLoss: 0.1,
      naiveValidationLoss: 0.2,
      durationMs: 1,
      backend: 'cpu',
    },
    weights: { specs, dataBase64: encodeFloat32(weights) },
  };
}

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof EdgeFormatError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('edge model format', () => {
  const model = randomModel([16, 8]);
  const live = createAdvancedDetector(model);
  const start = Date.UTC(2026, 11, 1);
  for (let i = 0; i < 300; i++) live.score(start + i * 60_000, 20 + Math.sin(i / 10));
  const exported = exportEdgeModel({
    entityId: 'temperature',
    model,
    detectorState: JSON.parse(JSON.stringify(live.snapshot())),
    lastTimeMs: start + 299 * 60_000,
  });

  it('round-trips: the decoded model encodes to the same bytes and continues the same scores', () => {
    const decoded = decodeEdgeModel(exported.bytes);
    expect(decoded.version).toBe(model.version);
    expect(decoded.entityId).toBe('temperature');
    expect(decoded.lastTimeMs).toBe(start + 299 * 60_000);
    expect(encodeEdgeModel(decoded)).toEqual(exported.bytes);
    expect(exported.bytes.length).toBeLessThanOrEqual(EDGE_LIMITS.maxBytes);
    const edge = edgeDetector(decoded);
    for (let i = 300; i < 400; i++) {
      const t = start + i * 60_000;
      const v = 20 + Math.sin(i / 10) + (i === 350 ? 9 : 0);
      // Equal up to the quantisation tolerance (the exporter may pick int16 weights).
      expect(Math.abs(edge.score(t, v).score - live.score(t, v).score)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('without statistics from the advanced detector the device starts fresh (lastTimeMs -1)', () => {
    const fresh = exportEdgeModel({
      entityId: 'pressure',
      model,
      detectorState: null,
      lastTimeMs: null,
    });
    expect(fresh.model.lastTimeMs).toBe(-1);
    expect(fresh.model.state.basic.count).toBe(0);
  });

  it('refuses a flipped byte, a wrong magic, another format and a cut file', () => {
    const flipped = exported.bytes.slice();
    flipped[100] = (flipped[100] as number) ^ 0x10;
    expect(reason(() => decodeEdgeModel(flipped))).toBe('checksum_mismatch');
    const magic = exported.bytes.slice();
    magic[0] = 0x58;
    expect(reason(() => decodeEdgeModel(magic))).toBe('bad_magic');
    const format = exported.bytes.slice();
    format[4] = 2;
    expect(reason(() => decodeEdgeModel(format))).toBe('unsupported_format');
    expect(reason(() => decodeEdgeModel(exported.bytes.slice(0, -1)))).toBe('truncated');
    expect(reason(() => decodeEdgeModel(exported.bytes.slice(0, 10)))).toBe('truncated');
  });

  it('a model larger than the device takes is refused at export, never sent', () => {
    expect(
      reason(() =>
        exportEdgeModel({
          entityId: 't',
          model: randomModel([64, 64, 64]),
          detectorState: null,
          lastTimeMs: null,
        }),
      ),
    ).toBe('too_large');
    expect(
      reason(() =>
        exportEdgeModel({
          entityId: 't',
          model: randomModel([80]),
          detectorState: null,
          lastTimeMs: null,
        }),
      ),
    ).toBe('too_large');
    expect(reason(() => decodeEdgeModel(new Uint8Array(EDGE_LIMITS.maxBytes + 1)))).toBe(
      'too_large',
    );
  });

  it('quantisation: int8 weights beyond tolerance fall back; a forced encoding is kept', () => {
    // Random weights quantise badly in int8: the exporter does not use it by itself.
    expect(exported.encoding).not.toBe('i8');
    const i8 = exportEdgeModel({
      entityId: 'temperature',
      model,
      detectorState: null,
      lastTimeMs: null,
      encodings: ['i8'],
    });
    expect(i8.encoding).toBe('i8');
    expect(i8.quantisationError).toBeGreaterThan(1e-4);
    expect(i8.bytes.length).toBeLessThan(exported.bytes.length);
    const layer = decodeEdgeModel(i8.bytes).network.layers[0];
    expect(layer?.kernel).toBeInstanceOf(Int8Array);
    expect(Math.max(...Array.from(layer?.kernel ?? [], Math.abs))).toBe(127);
  });
});
