import { DEVICE_ID_PATTERN } from '../../identifiers.ts';
import type { ClaimRegistry, ThingDirectory } from './credential-provisioner.ts';
import { isReservedDeviceId } from './model.ts';

/**
 * The event AWS IoT sends a provisioning template's pre-provisioning hook ("Pre-provisioning
 * hooks", AWS IoT developer guide): the claim certificate the device connected with, the
 * certificate it just made, and the RegisterThing request's parameters.
 */
export interface PreProvisioningEvent {
  claimCertificateId?: unknown;
  certificateId?: unknown;
  parameters?: { DeviceId?: unknown } | null;
}

/** The hook's answer; AWS IoT provisions only on `allowProvisioning: true`. */
export interface PreProvisioningDecision {
  allowProvisioning: boolean;
  /** Why it was refused, for the log (AWS IoT does not pass it on to the device). */
  reason?: 'malformed_request' | 'thing_exists' | 'not_registered_with_this_claim_or_claimed';
  tenantId?: number;
  deviceId?: string;
}

/** AWS IoT certificate ids: 64 hexadecimal characters. */
const CERTIFICATE_ID = /^[0-9a-f]{64}$/i;

/**
 * Decides a device's RegisterThing request under fleet provisioning by claim: only a
 * device id registered with the claim certificate it connected with, and only once, gets
 * a thing and the device policy; any other request is refused. A thing of that name must
 * not exist yet: the template would attach the new certificate to it, whether it is
 * another system's thing or a device's with certificates of its own.
 */
export class ClaimAdmission {
  constructor(
    private readonly registry: ClaimRegistry,
    private readonly things: ThingDirectory,
  ) {}

  async decide(event: PreProvisioningEvent): Promise<PreProvisioningDecision> {
    const { claimCertificateId, certificateId } = event;
    const deviceId = event.parameters?.DeviceId;
    if (
      typeof claimCertificateId !== 'string' ||
      !CERTIFICATE_ID.test(claimCertificateId) ||
      typeof certificateId !== 'string' ||
      !CERTIFICATE_ID.test(certificateId) ||
      typeof deviceId !== 'string' ||
      !DEVICE_ID_PATTERN.test(deviceId) ||
      isReservedDeviceId(deviceId)
    ) {
      return { allowProvisioning: false, reason: 'malformed_request' };
    }
    if ((await this.things.thingOwnership(deviceId)) !== 'none') {
      return { allowProvisioning: false, reason: 'thing_exists', deviceId };
    }
    const tenantId = await this.registry.admit({ claimCertificateId, deviceId, certificateId });
    if (tenantId === undefined) {
      return {
        allowProvisioning: false,
        reason: 'not_registered_with_this_claim_or_claimed',
        deviceId,
      };
    }
    return { allowProvisioning: true, tenantId, deviceId };
  }
}
