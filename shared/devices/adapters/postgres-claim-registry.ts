import type pg from 'pg';
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
