import { S3Client } from '@aws-sdk/client-s3';
import { FileModelStore, S3ModelStore } from '../anomalies/adapters/model-stores.ts';
import { auditTrail } from '../audit/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { readingStore } from '../timeseries/composition.ts';
import { InfluxMachineHistory } from './adapters/influx-machine-history.ts';
import { PostgresMaintenanceStore } from './adapters/postgres-maintenance-store.ts';
import { MaintenanceService } from './domain/maintenance-service.ts';
import type { RulModelStore } from './domain/ports.ts';
import { parseRulModel } from './domain/rul-model.ts';

/** Fleet models go where the anomaly models go (a folder locally, S3 on AWS), checked on load. */
export const rulModelStore = once<RulModelStore>(() => {
  const { ml, aws } = config();
  if (ml.modelStore === 's3') {
    return new S3ModelStore(
      new S3Client({ region: aws.region }),
      required(ml.modelBucket, 'ML_MODEL_BUCKET'),
      parseRulModel,
    );
  }
  return new FileModelStore(ml.modelDir, parseRulModel);
});

export const maintenanceStore = once(() => new PostgresMaintenanceStore(databasePool()));
export const machineHistory = once(() => new InfluxMachineHistory(readingStore()));

/** The API's and the prediction refresh's service: no TensorFlow.js (only training needs it). */
export const maintenanceService = once(
  () =>
    new MaintenanceService({
      store: maintenanceStore(),
      history: machineHistory(),
      models: rulModelStore(),
      logger: logger().child({ component: 'maintenance' }),
      audit: auditTrail(),
    }),
);
