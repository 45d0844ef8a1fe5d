import type { FleetClaimIssuer } from './credential-provisioner.ts';

/**
 * How long after its last admission a claim is kept: the admitted device is still waiting
 * for RegisterThing's answer on its claim connection.
 */
export const CLAIM_SETTLE_MS = 15 * 60_000;

/** Port: the registry's side of retiring claims, across tenants. */
export interface SpentClaimRegistry {
  /**
   * Claims not retired yet that admit nothing more (every device registered with them has
   * taken its own certificate or has been removed), settled before `settledBefore`.
   */
  spent(settledBefore: Date): Promise<Array<{ certificateId: string; tenantId: number }>>;
  markRetired(certificateId: string, at: Date): Promise<void>;
}

export interface ClaimRetirementResult {
  retired: Array<{ certificateId: string; tenantId: number }>;
  failed: Array<{ certificateId: string; tenantId: number; error: unknown }>;
}

/**
 * A bulk registration's claim certificate lets whoever holds it ask AWS IoT for a device
 * certificate; once no device of its batch can still be admitted it only widens what a
 * leaked batch file exposes, so it is deactivated and deleted, `settleMs` after its last
 * admission.
 */
export class ClaimRetirement {
  constructor(
    private readonly registry: SpentClaimRegistry,
    private readonly issuer: FleetClaimIssuer,
    private readonly settleMs: number,
  ) {}

  async run(now: number): Promise<ClaimRetirementResult> {
    const result: ClaimRetirementResult = { retired: [], failed: [] };
    for (const claim of await this.registry.spent(new Date(now - this.settleMs))) {
      try {
        await this.issuer.retireClaim(claim.certificateId);
        await this.registry.markRetired(claim.certificateId, new Date(now));
        result.retired.push(claim);
      } catch (error) {
        // Left as it is: the next run tries again, and one claim never holds up the others.
        result.failed.push({ ...claim, error });
      }
    }
    return result;
  }
}
