import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DENSE_ACTIVATIONS } from '../../shared/ml/domain/dense-network.ts';
import { DEFAULT_SETTINGS, trainingShape } from '../../shared/ml/domain/families.ts';
import {
  calibrateUpload,
  ModelUploadError,
  parseLayersModel,
  type UploadInput,
  uploadedNetwork,
} from '../../shared/ml/domain/layers-upload.ts';
import {
  buildInput,
  Forecaster,
  inputSize,
  outputToForecast,
  type TrainedModel,
} from '../../shared/ml/domain/model.ts';
import { trainAndJudge } from '../../shared/ml/domain/quality-gate.ts';
import { useTfBackend } from '../../shared/ml/domain/tf-runtime.ts';
import { type HistoryPoint, loadTfModel, trainModel } from '../../shared/ml/domain/training.ts';
import { type LayersUpload, layersUpload } from '../support/models.ts';

/**
 * Custom models: a tenant's TensorFlow.js Layers model is read as data into the platform's
 * dense forward pass, which must forecast exactly as TensorFlow.js runs the same file; an
 * upload that is not a plain dense forecaster of the declared shape is refused by name.
 */

let tf: typeof TF;
beforeAll(async () => {
  tf = await useTfBackend();
});

const MINUTE = 60_000;
const START = Date.UTC(2026, 0, 5);

/** One reading a minute: a daily cycle, a faster wave and deterministic noise. */
function history(points: number): HistoryPoint[] {
  return Array.from({ length: points }, (_, i) => ({
    timeMs: START + i * MINUTE,
    value:
      40 +
      6 * Math.sin((2 * Math.PI * i) / 1440) +
      2 * Math.sin((2 * Math.PI * i) / 37) +
      0.3 * Math.sin(i * 12.9898),
  }));
}

/** A seeded network of every accepted layer type and activation, untrained. */
function everyLayerNetwork(inputs: number): TF.Sequential {
  const net = tf.sequential();
  net.add(tf.layers.inputLayer({ inputShape: [inputs] }));
  DENSE_ACTIVATIONS.forEach((activation, i) => {
    net.add(
      tf.layers.dense({
        units: 6,
        activation,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 11 + i }),
        biasInitializer: tf.initializers.randomUniform({ minval: -0.3, maxval: 0.3, seed: 5 + i }),
      }),
    );
    if (i === 2) net.add(tf.layers.dropout({ rate: 0.2 }));
  });
  net.add(
    tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
  );
  net.add(tf.layers.activation({ activation: 'tanh' }));
  net.add(
    tf.layers.dense({
      units: 1,
      useBias: false,
      kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
    }),
  );
  return net;
}

/** The forecast TensorFlow.js itself makes from the file, with the declared input. */
function tfForecast(
  net: TF.LayersModel,
  model: TrainedModel,
  window: number[],
  timeMs: number,
): { output: number; forecast: number } {
  const input = new Float64Array(inputSize(model.windowSize, model));
  buildInput(window, timeMs, model.normalisation, input, model);
  const x = tf.tensor2d(Float32Array.from(input), [1, input.length]);
  const y = net.predict(x) as TF.Tensor;
  const output = y.dataSync()[0] as number;
  x.dispose();
  y.dispose();
  return { output, forecast: outputToForecast(output, window, model) };
}

const inputs: UploadInput[] = [
  {
    windowSize: 16,
    encoding: 'relative',
    timeOfDay: true,
    normalisation: { mean: 40, std: 4 },
  },
  {
    windowSize: 12,
    encoding: 'standardised',
    timeOfDay: false,
    normalisation: { mean: 40, std: 4 },
  },
];

describe('uploaded TensorFlow.js Layers models', () => {
  for (const input of inputs) {
    it(`forecast exactly as TensorFlow.js runs the file (${input.encoding}, time of day ${input.timeOfDay})`, async () => {
      const net = everyLayerNetwork(inputSize(input.windowSize, input));
      const upload = await layersUpload(net);
      const model = uploadedNetwork(
        parseLayersModel(upload.model_json, upload.weights),
        input,
        '2026-12-07T00:00:00.000Z',
      );
      // Every activation is used, so a wrong one would show.
      expect(model.layers.map((l) => l.activation)).toEqual([
        ...DENSE_ACTIVATIONS,
        'tanh',
        'linear',
      ]);
      const ours = new Forecaster(model);
      const series = history(400);
      const values = series.map((p) => p.value);
      let largest = 0;
      for (let t = input.windowSize; t < series.length; t++) {
        const window = values.slice(t - input.windowSize, t);
        const timeMs = (series[t] as HistoryPoint).timeMs;
        const theirs = tfForecast(net, model, window, timeMs);
        largest = Math.max(largest, Math.abs(ours.predict(window, timeMs) - theirs.forecast));
      }
      net.dispose();
      expect(largest).toBeLessThan(1e-6);
    });
  }

  it('a model trained outside the platform passes the gate; a bad one is rejected', async () => {
    const series = history(1500);
    // Trained "elsewhere": the platform's trainer stands in for the tenant's notebook.
    const trained = await trainModel(series.slice(0, 1300), trainingShape(DEFAULT_SETTINGS));
    const net = await loadTfModel(trained);
    const upload = await layersUpload(net);
    net.dispose();
    const input: UploadInput = {
      windowSize: trained.windowSize,
      encoding: 'relative',
      timeOfDay: true,
      normalisation: trained.normalisation,
    };
    const draft = uploadedNetwork(parseLayersModel(upload.model_json, upload.weights), input, 'x');
    const good = await trainAndJudge(series, async (part) => calibrateUpload(draft, part));
    expect(good.verdict.reason).toBeNull();
    expect(good.model.version).toMatch(/^uploaded-/);
    expect(good.model.threshold).toBeGreaterThan(0);

    const random = everyLayerNetwork(inputSize(input.windowSize, input));
    const bad = await layersUpload(random);
    random.dispose();
    const badDraft = uploadedNetwork(parseLayersModel(bad.model_json, bad.weights), input, 'x');
    const rejected = await trainAndJudge(series, async (part) => calibrateUpload(badDraft, part));
    expect(rejected.verdict.accepted).toBe(false);
    expect(rejected.verdict.reason).toMatch(/not below repeating the last value/);
  }, 60_000);
});

describe('uploads that are refused', () => {
  let valid: LayersUpload;
  const relative: UploadInput = {
    windowSize: 8,
    encoding: 'relative',
    timeOfDay: true,
    normalisation: { mean: 0, std: 1 },
  };
  beforeAll(async () => {
    const net = tf.sequential();
    net.add(tf.layers.dense({ inputShape: [9], units: 3, activation: 'relu' }));
    net.add(tf.layers.dense({ units: 1 }));
    valid = await layersUpload(net);
    net.dispose();
  });

  const refusal = (modelJson: unknown, weights: string, input = relative) => {
    try {
      uploadedNetwork(parseLayersModel(modelJson, weights), input, 'x');
    } catch (error) {
      if (error instanceof ModelUploadError) return `${error.reason}: ${error.message}`;
      throw error;
    }
    return 'accepted';
  };
  const topology = (layers: unknown[]) => ({
    ...valid.model_json,
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers } },
  });
  const layersOf = () =>
    structuredClone(
      (valid.model_json.modelTopology as { config: { layers: Record<string, unknown>[] } }).config
        .layers,
    );

  it('accepts the valid one (else the refusals below prove nothing)', () => {
    expect(refusal(valid.model_json, valid.weights)).toBe('accepted');
  });

  it('refuses layer types that are not plain dense forecasting, by name', async () => {
    const conv = tf.sequential();
    conv.add(tf.layers.conv1d({ inputShape: [9, 1], filters: 2, kernelSize: 3 }));
    conv.add(tf.layers.flatten());
    conv.add(tf.layers.dense({ units: 1 }));
    const upload = await layersUpload(conv);
    conv.dispose();
    expect(refusal(upload.model_json, upload.weights)).toMatch(
      /^unsupported_layer: layer 0 \(Conv1D\): not an accepted layer type/,
    );
    const lambda = layersOf();
    lambda.splice(1, 0, { class_name: 'Lambda', config: { function: 'x => x' } });
    expect(refusal(topology(lambda), valid.weights)).toMatch(
      /^unsupported_layer: layer 1 \(Lambda\)/,
    );
    const functional = {
      ...valid.model_json,
      modelTopology: { class_name: 'Model', config: { layers: [] } },
    };
    expect(refusal(functional, valid.weights)).toMatch(/only Sequential models/);
    const swish = layersOf();
    (swish[0]?.config as Record<string, unknown>).activation = 'swish';
    expect(refusal(topology(swish), valid.weights)).toMatch(/activation "swish" is not one of/);
  });

  it('refuses shapes that do not match the weights or the declared input', () => {
    const cut = Buffer.from(valid.weights, 'base64').subarray(4).toString('base64');
    expect(refusal(valid.model_json, cut)).toMatch(
      /^shape_mismatch: weights: 132 bytes, but the manifest describes 136/,
    );
    expect(refusal(valid.model_json, valid.weights, { ...relative, windowSize: 12 })).toMatch(
      /^shape_mismatch: the model reads 9 features, but a window of 12 readings/,
    );
    const wide = layersOf();
    (wide[1]?.config as Record<string, unknown>).units = 2;
    expect(refusal(topology(wide), valid.weights)).toMatch(
      /^shape_mismatch: layer 1 \(Dense\): needs a kernel/,
    );
  });

  it('refuses malformed documents and weights', () => {
    expect(refusal({ hello: 'world' }, valid.weights)).toMatch(
      /^malformed: model.json: modelTopology/,
    );
    expect(refusal(valid.model_json, 'not base64!')).toBe('malformed: weights: not base64');
    const nan = Buffer.from(valid.weights, 'base64');
    nan.writeFloatLE(Number.NaN, 8);
    expect(refusal(valid.model_json, nan.toString('base64'))).toMatch(/not a finite number/);
    const manifest = structuredClone(valid.model_json) as {
      weightsManifest: { weights: Record<string, unknown>[] }[];
    };
    (manifest.weightsManifest[0]?.weights[0] as Record<string, unknown>).dtype = 'int32';
    expect(refusal(manifest, valid.weights)).toMatch(/must be unquantised float32, not int32/);
  });

  it('refuses a model with more weights than the limit before decoding them', () => {
    const huge = structuredClone(valid.model_json) as {
      weightsManifest: { weights: Record<string, unknown>[] }[];
    };
    (huge.weightsManifest[0]?.weights[0] as Record<string, unknown>).shape = [9, 20_000];
    expect(refusal(huge, valid.weights)).toMatch(
      /^too_large: the model has 720\d+ bytes of weights/,
    );
  });
});
