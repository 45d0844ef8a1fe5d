import type { ScheduledEvent } from 'aws-lambda';
import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';

const anomalies = anomalyService();
const log = logger().child({ function: 'ml-training' });

/** Hourly: trains Industrial entities without a model, or whose model is older than ML_RETRAIN_DAYS. */
export async function handler(_event: ScheduledEvent) {
  const outcome = await anomalies.trainDue(config().ml.retrainDays, 25);
  log.info('training run', {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: 'EasySmart',
          Dimensions: [[]],
          Metrics: [
            { Name: 'ModelsTrained', Unit: 'Count' },
            { Name: 'ModelTrainingFailures', Unit: 'Count' },
          ],
        },
      ],
    },
    ModelsTrained: outcome.trained,
    ModelTrainingFailures: outcome.failed,
    ...outcome,
  });
  return outcome;
}
