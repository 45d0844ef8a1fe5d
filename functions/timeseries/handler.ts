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
  const rollups = await rollupService().run();
  const moves = await tierMoveService().maintain(120_000);
  emitMetrics(
    metrics,
    { RollupPoints: rollups.points, TierMoveSteps: moves.steps },
    { fields: { ...rollups, ...moves } },
  );
  return { rollups, moves };
}
