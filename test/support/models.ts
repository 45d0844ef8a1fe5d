import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs';
import pg from 'pg';
import { FileModelStore } from '../../shared/anomalies/adapters/model-stores.ts';
import { PostgresModelRegistry } from '../../shared/anomalies/adapters/postgres-anomalies.ts';
import { decodeWeights, encodeFloat32, type TrainedModel } from '../../shared/ml/domain/model.ts';
import { mulberry32 } from '../../shared/ml/domain/seeded-random.ts';

/**
 * Stores a trained model of a device's entity on a running local stack as the anomaly trainer
 * does: its file in the stack's model store, its row through the model registry as the
 * entity's active model (the one before it superseded).
 */
export async function recordActiveModel(
  stack: { dataDir: string; databaseAdminUrl: string },
  target: { tenantId: number; devicePk: number; entityId: string },
  model: TrainedModel,
): Promise<void> {
  const { tenantId, devicePk, entityId } = target;
  const storageKey = `tenant-${tenantId}/device-${devicePk}/${entityId}/${model.version}`;
  await new FileModelStore(path.join(stack.dataDir, 'models')).save(storageKey, model);
  const pool = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 1 });
  try {
    await new PostgresModelRegistry(pool).record(tenantId, {
      devicePk,
      entityId,
      kind: model.kind,
      version: model.version,
      storageKey,
      threshold: model.threshold,
      trainingPoints: model.metrics.trainingPoints,
      metrics: model.metrics,
      trainedAt: model.trainedAt,
      status: 'active',
      statusReason: null,
      origin: 'trained',
      settings: {},
    });
  } finally {
    await pool.end();
  }
}

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

/** A model with seeded random weights in the trained models' shape (no training needed). */
export function randomModel(hidden: number[], windowSize = 24): TrainedModel {
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

/** What TensorFlow.js's `model.save()` writes, as the upload route takes it. */
export interface LayersUpload {
  model_json: Record<string, unknown>;
  weights: string;
}

/**
 * Saves a TensorFlow.js Layers model as model.json plus one weight file, and returns them in
 * the upload route's shape (the weights base64), without touching the disk.
 */
export async function layersUpload(net: LayersModel): Promise<LayersUpload> {
  const { io } = await import('@tensorflow/tfjs');
  let saved: LayersUpload | undefined;
  await net.save(
    io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      saved = {
        model_json: {
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        },
        weights: Buffer.from(data).toString('base64'),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved) throw new Error('the model was not saved');
  return saved;
}

/**
 * A motor reporting once a minute up to `end`: its winding temperature follows its current
 * with a lag, moving 30% of the way to 20 + 3 x current each minute. The current switches
 * between loads at random minutes, so the temperature's own past cannot foresee a switch; the
 * current at the same minute can.
 */
export function motorMinutes(
  count: number,
  end: number,
): Array<{ timeMs: number; temperature: number; current: number }> {
  const minute = 60_000;
  const last = Math.floor(end / minute) * minute;
  const random = mulberry32(11);
  let current = 5;
  let temperature = 35;
  return Array.from({ length: count }, (_, n) => {
    if (random() < 0.06) current = [2, 5, 9][Math.floor(random() * 3)] as number;
    temperature += 0.3 * (20 + 3 * current - temperature) + 0.05 * (random() - 0.5);
    const noisy = current + 0.05 * (random() - 0.5);
    return { timeMs: last - (count - 1 - n) * minute, temperature, current: noisy };
  });
}
