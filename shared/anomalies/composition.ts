import { S3Client } from '@aws-sdk/client-s3';
import { databasePool, logger, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { InfluxPredictionStore } from '../timeseries/adapters/influx-prediction-store.ts';
import { influxClient } from '../timeseries/composition.ts';
import { FileModelStore, S3ModelStore } from './adapters/model-stores.ts';
import {
  PostgresAnomalyTargets,
  PostgresDetectorStates,
  PostgresMeasuringRanges,
  PostgresModelRegistry,
} from './adapters/postgres-anomalies.ts';
import { PostgresScoringLedger } from './adapters/postgres-scoring-ledger.ts';
import { AnomalyScorer } from './domain/anomaly-scorer.ts';
import type { ModelStore } from './domain/ports.ts';

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

export const predictionStore = once(
  () => new InfluxPredictionStore(influxClient(), config().influx.db),
);

export const modelRegistry = once(() => new PostgresModelRegistry(databasePool()));

export const anomalyTargets = once(() => new PostgresAnomalyTargets(databasePool()));

/** How far each device's stored readings have been scored (ingestion marks late ones in it). */
export const scoringLedger = once(() => new PostgresScoringLedger(databasePool()));

/** The scheduled scoring pass's scorer: no TensorFlow.js, so its bundle stays small. */
export const anomalyScorer = once(
  () =>
    new AnomalyScorer({
      states: new PostgresDetectorStates(databasePool(), {
        logger: logger().child({ component: 'detector-states' }),
      }),
      registry: modelRegistry(),
      predictions: predictionStore(),
      models: modelStore(),
      ranges: new PostgresMeasuringRanges(databasePool()),
      logger: logger().child({ component: 'anomalies' }),
    }),
);
