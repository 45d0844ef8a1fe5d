import { describe, expect, it } from 'vitest';
import {
  edgeDetector,
  exportEdgeModel,
  layerWeights,
  QUANTISATION_TOLERANCE,
} from '../../shared/edge/domain/export.ts';
import {
  decodeEdgeModel,
  EDGE_LIMITS,
  EdgeFormatError,
  encodeEdgeModel,
} from '../../shared/edge/domain/model-format.ts';
import { EDGE_ADVANCED_CONFIG } from '../../shared/ml/domain/advanced-detector.ts';
import { createAdvancedDetector } from '../../shared/ml/domain/detector.ts';
import { decodeWeights, encodeFloat32, type TrainedModel } from '../../shared/ml/domain/model.ts';
import { randomModel } from '../support/models.ts';

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
  const live = createAdvancedDetector(model, EDGE_ADVANCED_CONFIG);
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
    // Trained-looking weights do not quantise losslessly: float32 is kept.
    expect(exported.encoding).toBe('f32');
    expect(decoded.entityId).toBe('temperature');
    expect(decoded.lastTimeMs).toBe(start + 299 * 60_000);
    expect(encodeEdgeModel(decoded)).toEqual(exported.bytes);
    expect(exported.bytes.length).toBeLessThanOrEqual(EDGE_LIMITS.maxBytes);
    const edge = edgeDetector(decoded);
    for (let i = 300; i < 400; i++) {
      const t = start + i * 60_000;
      const v = 20 + Math.sin(i / 10) + (i === 350 ? 9 : 0);
      expect(edge.score(t, v).score).toBe(live.score(t, v).score);
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

  it('weights that sit on the int8 grid are sent as int8 (lossless within tolerance)', () => {
    const snapped = randomModel([16, 8]);
    const weights = decodeWeights(snapped);
    let inputs = snapped.windowSize + 1;
    snapped.layers.forEach((layer, l) => {
      const kernel = weights[l * 2] as Float32Array;
      for (let k = 0; k < kernel.length; k++) {
        // Every column's largest weight is 0.127 and the others whole multiples of 0.001.
        const j = k % layer.units;
        kernel[k] =
          Math.floor(k / layer.units) === j % inputs
            ? 0.127
            : Math.round((kernel[k] as number) * 400) / 1000;
      }
      inputs = layer.units;
    });
    const model = {
      ...snapped,
      weights: { ...snapped.weights, dataBase64: encodeFloat32(weights) },
    };
    const out = exportEdgeModel({ entityId: 't', model, detectorState: null, lastTimeMs: null });
    expect(out.encoding).toBe('i8');
    expect(out.quantisationError).toBeLessThanOrEqual(QUANTISATION_TOLERANCE);
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
  /** The model with its first layer's kernel changed by `edit` (index, inputs x units). */
  function withFirstKernel(edit: (kernel: Float32Array, units: number) => void): TrainedModel {
    const base = randomModel([16, 8]);
    const weights = decodeWeights(base);
    edit(weights[0] as Float32Array, base.layers[0]?.units as number);
    return { ...base, weights: { ...base.weights, dataBase64: encodeFloat32(weights) } };
  }
  const forced = (m: TrainedModel, encoding: 'i8' | 'i16') =>
    exportEdgeModel({
      entityId: 't',
      model: m,
      detectorState: null,
      lastTimeMs: null,
      encodings: [encoding],
    });

  it('quantisation edge cases: a zero column has scale 0, the largest weight saturates to the top integer and never beyond', () => {
    const m = withFirstKernel((kernel, units) => {
      for (let k = 0; k < kernel.length; k++) if (k % units === 3) kernel[k] = 0;
    });
    for (const [encoding, top] of [
      ['i8', 127],
      ['i16', 32767],
    ] as const) {
      const layer = decodeEdgeModel(forced(m, encoding).bytes).network.layers[0];
      if (!layer?.scales) throw new Error('quantised layer without scales');
      expect(layer.scales[3]).toBe(0);
      const weights = layerWeights(layer);
      for (let k = 0; k < layer.kernel.length; k++) {
        const j = k % layer.units;
        const q = layer.kernel[k] as number;
        expect(Math.abs(q)).toBeLessThanOrEqual(top);
        if (j === 3) expect([q, weights[k]]).toEqual([0, 0]);
      }
      // Every non-zero column reaches the top integer with its largest weight.
      for (let j = 0; j < layer.units; j++) {
        if (j === 3) continue;
        let largest = 0;
        for (let i = 0; i < layer.inputs; i++) {
          largest = Math.max(largest, Math.abs(layer.kernel[i * layer.units + j] as number));
        }
        expect(largest, `column ${j}`).toBe(top);
      }
    }
  });

  it('quantisation edge cases: NaN and infinite weights are refused at export; the largest float32 falls back to float32', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const m = withFirstKernel((kernel) => {
        kernel[5] = bad;
      });
      expect(
        reason(() =>
          exportEdgeModel({ entityId: 't', model: m, detectorState: null, lastTimeMs: null }),
        ),
        String(bad),
      ).toBe('unsupported_model');
    }
    // A weight of float32's largest magnitude: its scale times the top integer overflows a float
    // (int8 and int16 alike), so float32 is sent; forced, neither leaves the platform.
    const extreme = withFirstKernel((kernel) => {
      kernel[0] = 3.4028234663852886e38;
      kernel[1] = -3.4028234663852886e38;
    });
    const out = exportEdgeModel({
      entityId: 't',
      model: extreme,
      detectorState: null,
      lastTimeMs: null,
    });
    expect(out.encoding).toBe('f32');
    expect(reason(() => forced(extreme, 'i16'))).toBe('malformed');
    expect(reason(() => forced(extreme, 'i8'))).toBe('malformed');
  });

  it('a file whose weights, scales or biases are not finite is refused, as the device refuses it', () => {
    const good = forced(model, 'i8');
    const decoded = decodeEdgeModel(good.bytes);
    const first = decoded.network.layers[0] as NonNullable<(typeof decoded.network.layers)[0]>;
    const variants: Array<[string, (layer: typeof first) => void]> = [
      ['NaN scale', (l) => ((l.scales as Float32Array)[0] = Number.NaN)],
      ['infinite scale', (l) => ((l.scales as Float32Array)[1] = Number.POSITIVE_INFINITY)],
      ['overflowing scale', (l) => ((l.scales as Float32Array)[2] = 3e38)],
      ['NaN bias', (l) => (l.bias[0] = Number.NaN)],
    ];
    for (const [name, spoil] of variants) {
      const copy = decodeEdgeModel(good.bytes);
      spoil(copy.network.layers[0] as typeof first);
      expect(
        reason(() => encodeEdgeModel(copy)),
        name,
      ).toBe('malformed');
    }
    const f32 = decodeEdgeModel(exported.bytes);
    (f32.network.layers[0]?.kernel as Float32Array)[0] = Number.POSITIVE_INFINITY;
    expect(reason(() => encodeEdgeModel(f32))).toBe('malformed');
  });
});
