import { logger } from '../../shared/composition.ts';
import { claimAdmission } from '../../shared/devices/composition.ts';
import type { PreProvisioningEvent } from '../../shared/devices/domain/claim-admission.ts';

const log = logger().child({ function: 'provisioning-hook' });

/**
 * AWS IoT fleet provisioning's pre-provisioning hook: a device holding its batch's claim
 * gets a thing and its own certificate only for a device id registered with that claim,
 * once. AWS IoT needs the answer within 5 s; a thrown error refuses the device.
 */
export async function handler(event: PreProvisioningEvent) {
  const { allowProvisioning, reason, tenantId, deviceId } = await claimAdmission().decide(event);
  const fields = {
    device_id: deviceId,
    tenant_id: tenantId,
    claim_certificate_id: event.claimCertificateId,
  };
  if (allowProvisioning) log.info('device claimed its certificate', fields);
  else log.warn('provisioning refused', { ...fields, reason });
  return { allowProvisioning };
}
