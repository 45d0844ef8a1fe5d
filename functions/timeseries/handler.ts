import type { ScheduledEvent } from 'aws-lambda';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { emitMetrics } from '../../shared/metrics.ts';
import { rollupService, tierMoveService } from '../../shared/timeseries/composition.ts';

const metrics = { logger: logger().child({ function: 'timeseries' }), stage: config().stage };

/**
 * Every 5 minutes: the rollups of recent and late readings, then tier moves (resuming any a
 * crash left) and downgraded tenants' purges, within what is left of the run.
 */
export async function handler(_event: ScheduledEvent) {
  const { failures, ...rollups } = await rollupService().run();
  for (const { tenantId, policy, error } of failures) {
    metrics.logger.error('rollup failed', { tenant_id: tenantId, policy, error: String(error) });
  }
  const moves = await tierMoveService().maintain(120_000);
  emitMetrics(
    metrics,
    { RollupPoints: rollups.points, RollupFailures: failures.length, TierMoveSteps: moves.steps },
    { fields: { ...rollups, ...moves } },
  );
  return { rollups: { ...rollups, failed: failures.length }, moves };
}
