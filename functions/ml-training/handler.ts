import type { ScheduledEvent } from 'aws-lambda';
import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const anomalies = anomalyService();
const metrics = { logger: logger().child({ function: 'ml-training' }), stage: config().stage };

/** Hourly: trains Industrial entities without a model, or whose model is older than ML_RETRAIN_DAYS. */
export async function handler(_event: ScheduledEvent) {
  const outcome = await anomalies.trainDue(config().ml.retrainDays, 25);
  emitMetrics(
    metrics,
    {
      ModelsTrained: outcome.trained,
      ModelsRejected: outcome.rejected,
      ModelTrainingFailures: outcome.failed,
    },
    { fields: outcome },
  );
  return outcome;
}
