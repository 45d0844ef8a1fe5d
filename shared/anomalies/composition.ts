import { S3Client } from '@aws-sdk/client-s3';
import { databasePool, logger, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { PredictionStore } from '../timeseries/adapters/influx-prediction-store.ts';
import { influxClient } from '../timeseries/composition.ts';
import { FileModelStore, type ModelStore, S3ModelStore } from './adapters/model-stores.ts';
import { AnomalyScorer } from './domain/anomaly-scorer.ts';

export const modelStore = once<ModelStore>(() => {
  const { ml, aws } = config();
  if (ml.modelStore === 's3') {
    return new S3ModelStore(
      new S3Client({ region: aws.region }),
      required(ml.modelBucket, 'ML_MODEL_BUCKET'),
    );
  }
  return new FileModelStore(ml.modelDir);
});

export const predictionStore = once(() => new PredictionStore(influxClient(), config().influx.db));

/** The ingestion path's scorer: no TensorFlow.js, so the ingest bundle stays small. */
export const anomalyScorer = once(
  () =>
    new AnomalyScorer(
      databasePool(),
      predictionStore(),
      modelStore(),
      logger().child({ component: 'anomalies' }),
    ),
);
