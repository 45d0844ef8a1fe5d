/**
 * A stack of dense layers evaluated in plain TypeScript from weights in TensorFlow.js's
 * layout (per layer a kernel of [inputs, units], row-major, then a bias), so stored models
 * can predict where TensorFlow.js is not loaded. It ends in one output.
 */

export type DenseActivation = 'relu' | 'tanh' | 'linear';

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
            : layer.activation === 'tanh'
              ? Math.tanh(sum)
              : sum;
      }
      x = y;
      base = 0;
    }
    return x[0] as number;
  }
}
