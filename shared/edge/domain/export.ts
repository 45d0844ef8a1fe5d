import {
  type AdvancedConfig,
  type AdvancedState,
  EDGE_ADVANCED_CONFIG,
} from '../../ml/domain/advanced-detector.ts';
import {
  ADVANCED_DETECTOR,
  type AnomalyDetector,
  createAdvancedDetector,
  restoreDetector,
} from '../../ml/domain/detector.ts';
import {
  decodeWeights,
  encodeFloat32,
  Forecaster,
  type TrainedModel,
  unmeasuredMetrics,
} from '../../ml/domain/model.ts';
import {
  EDGE_LIMITS,
  EdgeFormatError,
  type EdgeLayer,
  type EdgeModel,
  encodeEdgeModel,
  type WeightEncoding,
} from './model-format.ts';

/**
 * Turns an entity's active advanced model and its detector's statistics into the edge model
 * a device runs, and runs an edge model in TypeScript (the same detector code the platform
 * scores with), which is what the firmware's scores are compared with.
 */

/**
 * Largest change quantisation may make to a forecast, in units of the model's residual
 * standard deviation (the unit the detector judges forecasts in). The device must score as
 * the platform does within 1e-4, and the detector's tail statistics carry a forecast's
 * error into every later score: int16 weights (forecasts moved by about 5e-4 of that unit)
 * drifted scores by up to 6e-3 in test/edge-deployment.test.ts, int8 by up to 0.2. So a
 * quantised encoding is used only where it is practically lossless; float32 weights keep a
 * trained model well inside the device's 16 KB (about 6 KB with its statistics).
 */
export const QUANTISATION_TOLERANCE = 1e-6;

/** Smallest first: the first encoding within tolerance is used. */
const CANDIDATES: WeightEncoding[] = ['i8', 'i16', 'f32'];

function quantise(
  kernel: Float32Array,
  inputs: number,
  units: number,
  encoding: 'i8' | 'i16',
): { scales: Float32Array; q: Int8Array | Int16Array } {
  const top = encoding === 'i8' ? 127 : 32767;
  const scales = new Float32Array(units);
  const q = encoding === 'i8' ? new Int8Array(kernel.length) : new Int16Array(kernel.length);
  for (let j = 0; j < units; j++) {
    let max = 0;
    for (let i = 0; i < inputs; i++) max = Math.max(max, Math.abs(kernel[i * units + j] as number));
    const scale = Math.fround(max / top);
    scales[j] = scale;
    for (let i = 0; i < inputs; i++) {
      const w = kernel[i * units + j] as number;
      q[i * units + j] = scale === 0 ? 0 : Math.max(-top, Math.min(top, Math.round(w / scale)));
    }
  }
  return { scales, q };
}

/** The float32 weights a layer stands for: the device computes `float(scale * q)` alike. */
export function layerWeights(layer: EdgeLayer): Float32Array {
  if (layer.encoding === 'f32') return layer.kernel as Float32Array;
  const scales = layer.scales as Float32Array;
  const out = new Float32Array(layer.kernel.length);
  for (let k = 0; k < out.length; k++) {
    out[k] = Math.fround((scales[k % layer.units] as number) * (layer.kernel[k] as number));
  }
  return out;
}

const EDGE_ACTIVATIONS: readonly string[] = ['relu', 'tanh', 'linear'];

/**
 * Why the firmware cannot run this model (it reads the trained models' relative window with
 * the time of day, through relu, tanh or linear layers), or null when it can. An uploaded
 * model may declare more than that; it then scores on the platform only.
 */
export function edgeIncompatibility(model: TrainedModel): string | null {
  if ((model.encoding ?? 'relative') !== 'relative' || model.timeOfDay === false) {
    return 'the device reads only the relative window with the time of day';
  }
  if (model.coEntities?.length) {
    return "the device scores each entity alone; it cannot feed a model other entities' readings";
  }
  const other = model.layers.find((l) => !EDGE_ACTIVATIONS.includes(l.activation));
  if (other) return `the device has no ${other.activation} activation`;
  if (!decodeWeights(model).every((w) => w.every(Number.isFinite))) {
    return 'the device refuses weights that are not finite numbers';
  }
  return null;
}

function edgeLayers(model: TrainedModel, encoding: WeightEncoding): EdgeLayer[] {
  const weights = decodeWeights(model);
  let inputs = model.windowSize + 1;
  return model.layers.map((layerSpec, l) => {
    const spec = { ...layerSpec, activation: layerSpec.activation as EdgeLayer['activation'] };
    const kernel = weights[l * 2] as Float32Array;
    const bias = weights[l * 2 + 1] as Float32Array;
    const layerInputs = inputs;
    inputs = spec.units;
    if (encoding === 'f32') {
      return { ...spec, inputs: layerInputs, encoding, scales: null, kernel, bias };
    }
    const { scales, q } = quantise(kernel, layerInputs, spec.units, encoding);
    return { ...spec, inputs: layerInputs, encoding, scales, kernel: q, bias };
  });
}

/** The platform's model with the weights the device will use (after quantisation). */
export function edgeTrainedModel(edge: EdgeModel): TrainedModel {
  const n = edge.network;
  const weights = n.layers.flatMap((layer) => [layerWeights(layer), layer.bias]);
  return {
    kind: 'dense-forecaster',
    format: 1,
    version: edge.version,
    trainedAt: new Date(0).toISOString(),
    windowSize: n.windowSize,
    normalisation: n.normalisation,
    residual: n.residual,
    threshold: n.threshold,
    tailExcess: n.tailExcess,
    layers: n.layers.map((l) => ({ units: l.units, activation: l.activation })),
    metrics: unmeasuredMetrics('edge'),
    weights: {
      specs: n.layers.flatMap((l, i) => [
        { name: `dense_${i}/kernel`, shape: [l.inputs, l.units], dtype: 'float32' as const },
        { name: `dense_${i}/bias`, shape: [l.units], dtype: 'float32' as const },
      ]),
      dataBase64: encodeFloat32(weights),
    },
  };
}

/**
 * Windows the quantised forecasts are compared on: every window of the entity's recent
 * readings, plus seeded random walks at the model's own scale so a model exported before
 * many readings arrived is still checked on realistic inputs; each at eight times of day.
 */
function probeWindows(model: TrainedModel, recent: readonly number[]): number[][] {
  const size = model.windowSize;
  const windows: number[][] = [];
  for (let end = size; end <= recent.length; end++) windows.push(recent.slice(end - size, end));
  let seed = 0x2545f491;
  const random = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296 - 0.5;
  };
  const std = model.normalisation.std;
  for (let w = 0; w < 24; w++) {
    let value = model.normalisation.mean;
    const window: number[] = [];
    for (let i = 0; i < size; i++) {
      value += random() * std * (w % 3 === 0 ? 4 : 1);
      window.push(value);
    }
    windows.push(window);
  }
  return windows;
}

/** Largest forecast change, in residual standard deviations, over the probe windows. */
export function quantisationError(
  model: TrainedModel,
  layers: EdgeLayer[],
  recent: readonly number[],
): number {
  const exact = new Forecaster(model);
  const edge = new Forecaster(
    edgeTrainedModel({
      version: model.version,
      entityId: 'probe',
      lastTimeMs: -1,
      config: EDGE_ADVANCED_CONFIG,
      state: freshState(null, EDGE_ADVANCED_CONFIG),
      network: { ...networkOf(model), layers },
    }),
  );
  const unit = model.normalisation.std * model.residual.std;
  let worst = 0;
  for (const window of probeWindows(model, recent)) {
    for (let h = 0; h < 8; h++) {
      const t = h * 3 * 3_600_000 + 1_234_567;
      worst = Math.max(worst, Math.abs(exact.predict(window, t) - edge.predict(window, t)) / unit);
    }
  }
  return worst;
}

function networkOf(model: TrainedModel) {
  return {
    windowSize: model.windowSize,
    normalisation: model.normalisation,
    residual: model.residual,
    threshold: model.threshold,
    tailExcess: model.tailExcess,
  };
}

export interface ExportInput {
  entityId: string;
  model: TrainedModel;
  /** The entity's detector state as the platform stored it, and the last reading it covers. */
  detectorState: unknown | null;
  lastTimeMs: number | null;
  config?: AdvancedConfig;
  /** Weight encodings to try, smallest first; the last one is used even beyond tolerance. */
  encodings?: WeightEncoding[];
}

export interface ExportedEdgeModel {
  bytes: Uint8Array;
  model: EdgeModel;
  encoding: WeightEncoding;
  /** Measured forecast change from quantisation, in residual standard deviations. */
  quantisationError: number;
}

/**
 * The detector continues from the platform's statistics when they were built by the
 * advanced detector; otherwise (no readings yet, a basic-plan history) the device starts
 * fresh and warms up on its own readings, as the platform would.
 */
function freshState(model: TrainedModel | null, config: AdvancedConfig): AdvancedState {
  const snapshot = createAdvancedDetector(model, config).snapshot();
  if (snapshot.kind !== 'advanced')
    throw new TypeError('an advanced detector snapshot is advanced');
  return snapshot.state;
}

function detectorStateFor(
  input: ExportInput,
  config: AdvancedConfig,
): {
  state: AdvancedState;
  lastTimeMs: number;
} {
  let detector: AnomalyDetector | null = null;
  const saved = input.detectorState as { kind?: string } | null;
  if (saved && saved.kind === 'advanced' && input.lastTimeMs !== null) {
    try {
      detector = restoreDetector(saved, { model: input.model, advancedConfig: config });
    } catch {
      detector = null;
    }
  }
  if (!detector) {
    return { state: freshState(input.model, config), lastTimeMs: -1 };
  }
  const snapshot = detector.snapshot();
  if (snapshot.kind !== 'advanced' || snapshot.version !== ADVANCED_DETECTOR.version) {
    return { state: freshState(input.model, config), lastTimeMs: -1 };
  }
  return { state: snapshot.state, lastTimeMs: input.lastTimeMs ?? -1 };
}

export function exportEdgeModel(input: ExportInput): ExportedEdgeModel {
  const config = input.config ?? EDGE_ADVANCED_CONFIG;
  const { model } = input;
  const incompatibility = edgeIncompatibility(model);
  if (incompatibility) throw new EdgeFormatError('unsupported_model', incompatibility);
  if (model.windowSize > EDGE_LIMITS.maxWindowSize || model.layers.length > EDGE_LIMITS.maxLayers) {
    throw new EdgeFormatError('too_large', 'the model is larger than the device can run');
  }
  if (model.layers.some((l) => l.units > EDGE_LIMITS.maxUnits)) {
    throw new EdgeFormatError('too_large', 'a layer is wider than the device can run');
  }
  const { state, lastTimeMs } = detectorStateFor(input, config);
  const candidates = input.encodings ?? CANDIDATES;
  for (const [i, encoding] of candidates.entries()) {
    const layers = edgeLayers(model, encoding);
    const error = encoding === 'f32' ? 0 : quantisationError(model, layers, state.recent);
    // NaN (a weight that does not quantise to a finite value) is beyond tolerance too.
    if (!(error <= QUANTISATION_TOLERANCE) && i < candidates.length - 1) continue;
    const edge: EdgeModel = {
      version: model.version,
      entityId: input.entityId,
      lastTimeMs,
      config,
      network: { ...networkOf(model), layers },
      state,
    };
    return { bytes: encodeEdgeModel(edge), model: edge, encoding, quantisationError: error };
  }
  throw new RangeError('no weight encoding to try');
}

/** The platform's detector, continued from an edge model's statistics with its weights. */
export function edgeDetector(edge: EdgeModel): AnomalyDetector {
  return restoreDetector(
    { kind: 'advanced', version: ADVANCED_DETECTOR.version, state: structuredClone(edge.state) },
    { model: edgeTrainedModel(edge), advancedConfig: edge.config },
  );
}
