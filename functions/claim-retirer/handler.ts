import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { claimRetirement } from '../../shared/devices/composition.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const retirement = claimRetirement();
const log = logger().child({ function: 'claim-retirer' });
const metrics = { logger: log, stage: config().stage };

/** On a schedule: deactivates and deletes the fleet provisioning claims that admit nothing more. */
export async function handler() {
  if (!retirement) return { retired: 0, failed: 0 };
  const { retired, failed } = await retirement.run(Date.now());
  for (const claim of retired) {
    log.info('claim retired', {
      claim_certificate_id: claim.certificateId,
      tenant_id: claim.tenantId,
    });
  }
  for (const claim of failed) {
    log.error('claim not retired; the next run tries again', {
      claim_certificate_id: claim.certificateId,
      tenant_id: claim.tenantId,
      error: claim.error instanceof Error ? claim.error.message : String(claim.error),
    });
  }
  emitMetrics(metrics, { ClaimsRetired: retired.length, ClaimRetirementsFailed: failed.length });
  return { retired: retired.length, failed: failed.length };
}
