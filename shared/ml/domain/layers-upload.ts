import { z } from 'zod';
import { calibrate } from './calibration.ts';
import { DENSE_ACTIVATIONS, type DenseActivation, type DenseLayerSpec } from './dense-network.ts';
import { MAX_UPLOAD_WEIGHT_BYTES } from './families.ts';
import {
  encodeFloat32,
  inputSize,
  parseTrainedModel,
  type TrainedModel,
  unmeasuredMetrics,
} from './model.ts';
import { checkHistory, fnv1a, type HistoryPoint } from './training.ts';

/**
 * A tenant's own TensorFlow.js Layers model (the `model.json` that `model.save()` or the
 * Keras converter writes, plus its weight files), turned into the declarative form the
 * platform stores and scores: a stack of dense layers and their float32 weights. Nothing of
 * the upload is executed: the topology is read as data, only the layer types below are
 * accepted, and every shape is checked before anything is kept. The model then runs in the
 * same TypeScript forward pass as the platform's own models.
 */

export const MAX_UPLOAD_LAYERS = 16;
export const MAX_LAYER_UNITS = 512;

/** The layer types an uploaded model may contain; anything else is refused by name. */
export const ALLOWED_LAYER_TYPES = ['InputLayer', 'Dense', 'Dropout', 'Activation'] as const;

/** Why an upload cannot be used, in words the uploader can act on. */
export class ModelUploadError extends Error {
  override readonly name = 'ModelUploadError';
  constructor(
    readonly reason: 'malformed' | 'unsupported_layer' | 'shape_mismatch' | 'too_large',
    message: string,
  ) {
    super(message);
  }
}

/** How the platform feeds the window to the model and reads its forecast back. */
export interface UploadInput {
  windowSize: number;
  encoding: 'relative' | 'standardised';
  timeOfDay: boolean;
  normalisation: { mean: number; std: number };
}

const weightSpec = z.looseObject({
  name: z.string().min(1).max(200),
  shape: z.array(z.number().int().min(1)).max(4),
  dtype: z.string(),
  quantization: z.unknown().optional(),
});

const layerJson = z.looseObject({
  class_name: z.string(),
  config: z.looseObject({}).optional(),
});

const sequentialJson = z.looseObject({
  class_name: z.string(),
  config: z.union([
    z.looseObject({ layers: z.array(layerJson).max(64) }),
    z.array(layerJson).max(64),
  ]),
});

/** The `model.json` file: tf.js's own save, or the Keras converter's (topology under `model_config`). */
const modelJsonSchema = z.looseObject({
  format: z.string().optional(),
  modelTopology: z.looseObject({}),
  weightsManifest: z
    .array(z.looseObject({ paths: z.array(z.string()), weights: z.array(weightSpec) }))
    .min(1)
    .max(64),
});

export interface ParsedLayersModel {
  layers: DenseLayerSpec[];
  /** Kernel then bias per layer, as the stored models keep them. */
  weights: Float32Array[];
  inputs: number;
  parameters: number;
}

const fail = (reason: ModelUploadError['reason'], message: string): never => {
  throw new ModelUploadError(reason, message);
};

function activationOf(value: unknown, where: string): DenseActivation {
  const name = value ?? 'linear';
  if (typeof name !== 'string' || !(DENSE_ACTIVATIONS as readonly string[]).includes(name)) {
    return fail(
      'unsupported_layer',
      `${where}: activation ${JSON.stringify(name)} is not one of ${DENSE_ACTIVATIONS.join(', ')}`,
    );
  }
  return name as DenseActivation;
}

function inputWidth(config: Record<string, unknown>, where: string): number | null {
  const shape = config.batch_input_shape ?? config.batch_shape ?? config.batchInputShape;
  if (shape === undefined) {
    const inputShape = config.input_shape ?? config.inputShape;
    if (inputShape === undefined) return null;
    return widthOf(inputShape, where);
  }
  if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== null) {
    return fail('shape_mismatch', `${where}: the input must be [batch, features]`);
  }
  return widthOf([shape[1]], where);
}

function widthOf(shape: unknown, where: string): number {
  if (!Array.isArray(shape) || shape.length !== 1 || !Number.isInteger(shape[0]) || shape[0] < 1) {
    return fail('shape_mismatch', `${where}: the input must be one vector of features`);
  }
  return shape[0] as number;
}

function decodeBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    return fail('malformed', 'weights: not base64');
  }
  return Uint8Array.from(Buffer.from(text, 'base64'));
}

/**
 * Reads `model.json` and the weights (every file of its manifest, concatenated in manifest
 * order, base64) into dense layers. Throws `ModelUploadError` naming the first problem.
 */
export function parseLayersModel(modelJson: unknown, weightsBase64: string): ParsedLayersModel {
  const parsed = modelJsonSchema.safeParse(modelJson);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      'malformed',
      `model.json: ${issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const { modelTopology, weightsManifest } = parsed.data;
  if (parsed.data.format !== undefined && parsed.data.format !== 'layers-model') {
    fail('malformed', `model.json: format ${parsed.data.format} is not a Layers model`);
  }
  const topology = sequentialJson.safeParse(
    (modelTopology as { model_config?: unknown }).model_config ?? modelTopology,
  );
  if (!topology.success) return fail('malformed', 'model.json: modelTopology is not a model');
  if (topology.data.class_name !== 'Sequential') {
    return fail(
      'unsupported_layer',
      `model.json: only Sequential models are accepted, not ${topology.data.class_name}`,
    );
  }
  const layerList = Array.isArray(topology.data.config)
    ? topology.data.config
    : topology.data.config.layers;

  const specs = weightsManifest.flatMap((group) => group.weights);
  let expectedBytes = 0;
  for (const spec of specs) {
    if (spec.dtype !== 'float32' || spec.quantization !== undefined) {
      fail('malformed', `weights: ${spec.name} must be unquantised float32, not ${spec.dtype}`);
    }
    expectedBytes += spec.shape.reduce((a, b) => a * b, 1) * 4;
  }
  if (expectedBytes > MAX_UPLOAD_WEIGHT_BYTES) {
    fail(
      'too_large',
      `the model has ${expectedBytes} bytes of weights; at most ${MAX_UPLOAD_WEIGHT_BYTES} are accepted`,
    );
  }
  const bytes = decodeBase64(weightsBase64);
  if (bytes.byteLength !== expectedBytes) {
    fail(
      'shape_mismatch',
      `weights: ${bytes.byteLength} bytes, but the manifest describes ${expectedBytes}`,
    );
  }
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let i = 0; i < all.length; i++) {
    if (!Number.isFinite(all[i])) fail('malformed', 'weights: a weight is not a finite number');
  }
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    byName.set(spec.name, all.slice(offset, offset + size));
    offset += size;
  }
  const weightOf = (layerName: string, part: 'kernel' | 'bias') => {
    for (const [name, values] of byName) {
      if (name === `${layerName}/${part}` || name.endsWith(`/${layerName}/${part}`)) {
        byName.delete(name);
        return values;
      }
    }
    return undefined;
  };

  const layers: DenseLayerSpec[] = [];
  const weights: Float32Array[] = [];
  let inputs: number | null = null;
  let width: number | null = null;
  for (const [i, layer] of layerList.entries()) {
    const config = (layer.config ?? {}) as Record<string, unknown>;
    const where = `layer ${i} (${layer.class_name})`;
    if (!(ALLOWED_LAYER_TYPES as readonly string[]).includes(layer.class_name)) {
      fail(
        'unsupported_layer',
        `${where}: not an accepted layer type (accepted: ${ALLOWED_LAYER_TYPES.join(', ')})`,
      );
    }
    if (i === 0 || layer.class_name === 'InputLayer') {
      const declared = inputWidth(config, where);
      if (declared !== null) {
        if (width !== null && declared !== width) {
          fail('shape_mismatch', `${where}: input of ${declared} after ${width} features`);
        }
        inputs ??= declared;
        width = declared;
      }
    }
    if (width === null)
      fail('shape_mismatch', `${where}: the model does not declare its input shape`);
    if (layer.class_name === 'InputLayer' || layer.class_name === 'Dropout') continue;
    if (layer.class_name === 'Activation') {
      const previous = layers.at(-1);
      if (previous?.activation !== 'linear') {
        fail('unsupported_layer', `${where}: an Activation layer must follow a linear Dense layer`);
      }
      (previous as DenseLayerSpec).activation = activationOf(config.activation, where);
      continue;
    }
    const units = config.units;
    if (!Number.isInteger(units) || (units as number) < 1 || (units as number) > MAX_LAYER_UNITS) {
      fail('too_large', `${where}: units must be 1-${MAX_LAYER_UNITS}`);
    }
    const name = typeof config.name === 'string' ? config.name : '';
    const kernel = weightOf(name, 'kernel');
    const expected = (width as number) * (units as number);
    if (!kernel || kernel.length !== expected) {
      fail(
        'shape_mismatch',
        `${where}: needs a kernel "${name}/kernel" of [${width}, ${units}] in the weights`,
      );
    }
    let bias: Float32Array;
    if (config.use_bias === false) {
      bias = new Float32Array(units as number);
    } else {
      const found = weightOf(name, 'bias');
      if (!found || found.length !== units) {
        return fail('shape_mismatch', `${where}: needs a bias "${name}/bias" of [${units}]`);
      }
      bias = found;
    }
    layers.push({ units: units as number, activation: activationOf(config.activation, where) });
    weights.push(kernel as Float32Array, bias);
    width = units as number;
  }
  if (layers.length === 0) fail('malformed', 'model.json: the model has no Dense layer');
  if (layers.length > MAX_UPLOAD_LAYERS) {
    fail('too_large', `the model has ${layers.length} Dense layers; at most ${MAX_UPLOAD_LAYERS}`);
  }
  if (width !== 1) {
    fail('shape_mismatch', `the model's output has ${width} values; it must forecast one`);
  }
  if (byName.size > 0) {
    fail('shape_mismatch', `weights: ${[...byName.keys()][0]} belongs to no layer of the model`);
  }
  return {
    layers,
    weights,
    inputs: inputs as number,
    parameters: weights.reduce((sum, w) => sum + w.length, 0),
  };
}

/**
 * The stored model of an upload, before calibration: the network, and how the platform reads
 * the entity's window into it. Its input width must be what the declared window and features
 * produce.
 */
export function uploadedNetwork(
  parsed: ParsedLayersModel,
  input: UploadInput,
  trainedAt: string,
): TrainedModel {
  const expected = inputSize(input.windowSize, input);
  if (parsed.inputs !== expected) {
    fail(
      'shape_mismatch',
      `the model reads ${parsed.inputs} features, but a window of ${input.windowSize} readings ` +
        `encoded ${input.encoding}${input.timeOfDay ? ' with the time of day' : ''} gives ${expected}`,
    );
  }
  return {
    kind: 'dense-forecaster',
    format: 1,
    version: '',
    trainedAt,
    windowSize: input.windowSize,
    encoding: input.encoding,
    timeOfDay: input.timeOfDay,
    normalisation: input.normalisation,
    residual: { mean: 0, std: 1 },
    threshold: 0,
    tailExcess: 1,
    layers: parsed.layers,
    metrics: unmeasuredMetrics('uploaded'),
    weights: {
      specs: parsed.layers.flatMap((layer, i) => [
        {
          name: `dense_${i}/kernel`,
          shape: [
            i === 0 ? parsed.inputs : (parsed.layers[i - 1] as DenseLayerSpec).units,
            layer.units,
          ],
          dtype: 'float32' as const,
        },
        { name: `dense_${i}/bias`, shape: [layer.units], dtype: 'float32' as const },
      ]),
      dataBase64: encodeFloat32(parsed.weights),
    },
  };
}

/**
 * The uploaded network calibrated on the entity's history (its residual distribution and
 * range, as a trained model gets them), with a content-derived version.
 */
export function calibrateUpload(
  draft: TrainedModel,
  history: readonly HistoryPoint[],
): TrainedModel {
  checkHistory(history, draft.windowSize);
  const { residuals, residual, threshold, tailExcess, range } = calibrate(
    draft,
    history,
    draft.windowSize,
  );
  let squares = 0;
  for (const r of residuals) squares += r * r;
  const model: TrainedModel = {
    ...draft,
    residual,
    threshold,
    tailExcess,
    range,
    metrics: {
      ...draft.metrics,
      trainingPoints: history.length,
      windows: residuals.length,
      trainLoss: squares / Math.max(1, residuals.length),
    },
  };
  model.version = `uploaded-${fnv1a(
    model.weights.dataBase64 +
      JSON.stringify([
        model.layers,
        model.windowSize,
        model.encoding,
        model.timeOfDay,
        model.normalisation,
        residual,
        threshold,
      ]),
  )}`;
  return parseTrainedModel(model);
}
