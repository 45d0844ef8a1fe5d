import { auditTrail } from '../audit/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { trainingShape } from '../ml/domain/families.ts';
import { setTfWasmPaths } from '../ml/domain/tf-runtime.ts';
import { trainModel } from '../ml/domain/training.ts';
import { readingStore } from '../timeseries/composition.ts';
import { PostgresTypeSettings } from './adapters/postgres-anomalies.ts';
import { anomalyTargets, modelRegistry, modelStore, predictionStore } from './composition.ts';
import { AnomalyService } from './domain/anomaly-service.ts';

/** Anomaly results and model training: the functions that may load TensorFlow.js. */
export const anomalyService = once(() => {
  const { ml } = config();
  if (ml.tfjsWasmPaths) setTfWasmPaths(ml.tfjsWasmPaths);
  return new AnomalyService({
    targets: anomalyTargets(),
    registry: modelRegistry(),
    readings: readingStore(),
    predictions: predictionStore(),
    models: modelStore(),
    typeSettings: new PostgresTypeSettings(databasePool()),
    train: (history, settings, co) =>
      trainModel(history, {
        ...trainingShape(settings),
        coEntities: co,
        backend: ml.tfjsBackend,
        ...(ml.tfjsWasmPaths ? { wasmPaths: ml.tfjsWasmPaths } : {}),
      }),
    logger: logger().child({ component: 'ml' }),
    audit: auditTrail(),
  });
});
