import type { PriorTier } from '../domain/reading-store.ts';

/** Columns of the `tenant_storage` view: where a tenant's history is read from now. */
export const TIER_COLUMNS = 'policy, prior_policy, prior_before';

export interface TierRow {
  policy: string;
  prior_policy: string | null;
  prior_before: number | null;
}

/** The tenant's tier, and the one older readings are still read from during a tier move. */
export function tiersOf(row: TierRow | undefined): {
  retentionPolicy: string;
  priorTier?: PriorTier;
} {
  if (!row) throw new Error('the tenant has no storage tier (tenant_storage is empty)');
  return row.prior_policy !== null && row.prior_before !== null
    ? {
        retentionPolicy: row.policy,
        priorTier: { policy: row.prior_policy, before: Number(row.prior_before) },
      }
    : { retentionPolicy: row.policy };
}
