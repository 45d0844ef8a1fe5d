/**
 * A stack of dense layers evaluated in plain TypeScript from weights in TensorFlow.js's
 * layout (per layer a kernel of [inputs, units], row-major, then a bias), so stored models
 * can predict where TensorFlow.js is not loaded. It ends in one output.
 */

/** The activations TensorFlow.js's Dense and Activation layers may use here, as it defines them. */
export const DENSE_ACTIVATIONS = [
  'relu',
  'tanh',
  'linear',
  'sigmoid',
  'relu6',
  'elu',
  'selu',
  'softplus',
  'softsign',
] as const;
export type DenseActivation = (typeof DENSE_ACTIVATIONS)[number];

// SELU's constants as TensorFlow.js (and Klambauer et al. 2017) define them.
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

function activate(activation: DenseActivation, x: number): number {
  switch (activation) {
    case 'relu':
      return Math.max(0, x);
    case 'tanh':
      return Math.tanh(x);
    case 'linear':
      return x;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'relu6':
      return Math.min(6, Math.max(0, x));
    case 'elu':
      return x > 0 ? x : Math.expm1(x);
    case 'selu':
      return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    case 'softplus':
      return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    case 'softsign':
      return x / (1 + Math.abs(x));
  }
}

export interface DenseLayerSpec {
  units: number;
  activation: DenseActivation;
}

interface DenseLayer extends DenseLayerSpec {
  inputs: number;
  kernel: Float32Array;
  bias: Float32Array;
}

export class DenseNetwork {
  private readonly layers: DenseLayer[];
  private readonly buffers: Float64Array[];

  /** `weights` as tf.js orders them: kernel then bias, layer by layer. */
  constructor(
    specs: readonly DenseLayerSpec[],
    weights: readonly Float32Array[],
    readonly inputs: number,
  ) {
    if (weights.length !== specs.length * 2) {
      throw new RangeError('model weights do not match its layers');
    }
    let width = inputs;
    this.layers = specs.map((layer, i) => {
      const kernel = weights[i * 2] as Float32Array;
      const bias = weights[i * 2 + 1] as Float32Array;
      if (kernel.length !== width * layer.units || bias.length !== layer.units) {
        throw new RangeError(`model layer ${i} has the wrong shape`);
      }
      const dense: DenseLayer = {
        inputs: width,
        units: layer.units,
        activation: layer.activation,
        kernel,
        bias,
      };
      width = layer.units;
      return dense;
    });
    if (width !== 1) throw new RangeError('model must end in one output');
    this.buffers = this.layers.map((l) => new Float64Array(l.units));
  }

  /** The output for the `inputs` values of `input` from `offset` on. */
  evaluate(input: ArrayLike<number>, offset = 0): number {
    let x: ArrayLike<number> = input;
    let base = offset;
    for (let l = 0; l < this.layers.length; l++) {
      const layer = this.layers[l] as DenseLayer;
      const y = this.buffers[l] as Float64Array;
      for (let j = 0; j < layer.units; j++) {
        let sum = layer.bias[j] as number;
        for (let i = 0; i < layer.inputs; i++) {
          sum += (x[base + i] as number) * (layer.kernel[i * layer.units + j] as number);
        }
        y[j] =
          layer.activation === 'relu'
            ? Math.max(0, sum)
            : layer.activation === 'linear'
              ? sum
              : activate(layer.activation, sum);
      }
      x = y;
      base = 0;
    }
    return x[0] as number;
  }
}
