import type pg from 'pg';
import type { SpentClaimRegistry } from '../domain/claim-retirement.ts';
import type { ClaimRegistry } from '../domain/credential-provisioner.ts';

/**
 * The claim look-up happens before a tenant is known (the hook has only certificates and a
 * device id), so it is the security-definer function `admit_device_claim`, which finds the
 * tenant from the claim and changes one row of it.
 */
export class PostgresClaimRegistry implements ClaimRegistry {
  constructor(private readonly pool: pg.Pool) {}

  async admit(request: {
    claimCertificateId: string;
    deviceId: string;
    certificateId: string;
  }): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ tenant_id: number }>(
      'SELECT tenant_id FROM admit_device_claim($1, $2, $3)',
      [request.claimCertificateId, request.deviceId, request.certificateId],
    );
    return rows[0]?.tenant_id;
  }
}

/** `spent_fleet_claims` and `mark_fleet_claim_retired` (a migration): across tenants. */
export class PostgresSpentClaimRegistry implements SpentClaimRegistry {
  constructor(private readonly pool: pg.Pool) {}

  async spent(settledBefore: Date) {
    const { rows } = await this.pool.query<{ certificate_id: string; tenant_id: number }>(
      'SELECT certificate_id, tenant_id FROM spent_fleet_claims($1)',
      [settledBefore],
    );
    return rows.map((row) => ({ certificateId: row.certificate_id, tenantId: row.tenant_id }));
  }

  async markRetired(certificateId: string, at: Date): Promise<void> {
    await this.pool.query('SELECT mark_fleet_claim_retired($1, $2)', [certificateId, at]);
  }
}
