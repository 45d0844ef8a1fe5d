import { decodeWeights, encodeFloat32, type TrainedModel } from '../../shared/ml/domain/model.ts';

/** The model with its output bias moved by `delta` normalised units: every forecast is off. */
export function biasedModel(trained: TrainedModel, delta: number): TrainedModel {
  const weights = decodeWeights(trained);
  const outputBias = weights.at(-1) as Float32Array;
  outputBias[0] = (outputBias[0] as number) + delta;
  return {
    ...trained,
    version: `${trained.version}-biased`,
    weights: { ...trained.weights, dataBase64: encodeFloat32(weights) },
  };
}
