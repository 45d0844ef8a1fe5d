import { anomalyScoringPass } from '../../shared/anomalies/scoring-composition.ts';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const pass = anomalyScoringPass();
const metrics = { logger: logger().child({ function: 'anomaly-scoring' }), stage: config().stage };

/**
 * Scheduled (every minute): scores the readings stored since each device's read position,
 * within a time budget; what is left waits for the next run.
 */
export async function handler() {
  const summary = await pass.run();
  emitMetrics(metrics, {
    ScoredReadings: summary.scored,
    AnomaliesDetected: summary.anomalies,
    DevicesNotScored: summary.failedDevices,
  });
  return summary;
}
