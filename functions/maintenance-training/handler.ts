import type { ScheduledEvent } from 'aws-lambda';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { maintenanceService } from '../../shared/maintenance/composition.ts';
import { fleetTrainer } from '../../shared/maintenance/training-composition.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const metrics = {
  logger: logger().child({ function: 'maintenance-training' }),
  stage: config().stage,
};

/**
 * Every 5 minutes: trains the fleets asked for through the API and those with new recorded
 * failures, then predicts the remaining life of devices that reported since their last
 * prediction.
 */
export async function handler(_event: ScheduledEvent) {
  const training = await fleetTrainer().trainDue(3);
  const predictions = await maintenanceService().refreshPredictions(500);
  emitMetrics(
    metrics,
    {
      FleetModelsTrained: training.trained,
      FleetModelsRejected: training.rejected,
      FleetTrainingFailures: training.failed,
      RulPredictions: predictions.predicted,
      RulPredictionFailures: predictions.failed,
    },
    { fields: { training, predictions } },
  );
  return { training, predictions };
}
