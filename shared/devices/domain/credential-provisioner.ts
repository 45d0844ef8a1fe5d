/**
 * Port: gives a registered device its own broker credential and takes it away again.
 * Adapters: Mosquitto's dynamic-security plugin (local, docker-compose) and AWS IoT Core
 * (thing, X.509 certificate, IoT policy). Both confine the device to `devices/<its id>/#`.
 */
export interface DeviceCredentials {
  /** The MQTT client id the device must use: its device_id. */
  client_id: string;
  /** Username/password brokers (Mosquitto). */
  username?: string;
  password?: string;
  /** Certificate brokers (AWS IoT Core). */
  certificate_pem?: string;
  private_key?: string;
  certificate_id?: string;
  /** Where the device connects, when the platform knows it. */
  broker_url?: string;
  /**
   * Fleet provisioning by claim (AWS IoT): the claim certificate the device uses once, at
   * its first connection, to obtain its own certificate; none is issued before then.
   */
  claim_certificate_id?: string;
}

/**
 * One credential a bulk registration's devices share, which lets a device do nothing but
 * obtain its own certificate, once, for a device id registered with it (AWS IoT fleet
 * provisioning by claim). The secret is returned only when it is issued.
 */
export interface ClaimCredential {
  certificate_id: string;
  certificate_pem: string;
  private_key: string;
  /** The provisioning template the device names in its RegisterThing request. */
  provisioning_template: string;
  /** The prefix of the client id a device connects with while it holds only the claim. */
  client_id_prefix: string;
  broker_url?: string;
}

/**
 * Port: claim credentials for bulk registrations (AWS IoT). Registration then costs two
 * control-plane calls per batch, whatever its size; each device makes its own certificate.
 */
export interface FleetClaimIssuer {
  issueClaim(): Promise<ClaimCredential>;
  /** Deactivates and deletes a claim credential (a batch that was not created); idempotent. */
  retireClaim(certificateId: string): Promise<void>;
}

/** Whether AWS IoT has a thing of a name: none, one the platform made for a device, another's. */
export type ThingOwnership = 'none' | 'device' | 'foreign';

/** Port: the things AWS IoT holds, as the pre-provisioning hook needs to know them. */
export interface ThingDirectory {
  thingOwnership(thingName: string): Promise<ThingOwnership>;
}

/** Port: the pre-provisioning hook's question, answered from the registry. */
export interface ClaimRegistry {
  /**
   * Admits `deviceId` if it was registered with this claim certificate and has not
   * claimed yet, recording `certificateId` as its certificate; the device's tenant, or
   * undefined when refused.
   */
  admit(request: {
    claimCertificateId: string;
    deviceId: string;
    certificateId: string;
  }): Promise<number | undefined>;
}

export interface DeviceCredentialProvisioner {
  /** Creates (or replaces) the device's credential; the secret is returned only here. */
  provision(deviceId: string): Promise<DeviceCredentials>;
  /** Removes the credential so the device can no longer connect; idempotent. */
  revoke(deviceId: string): Promise<void>;
  /**
   * Credentials for many new devices in a few large broker operations, all or none: when it
   * throws, no credential of the batch is left behind. Keyed by device id.
   */
  provisionMany(deviceIds: readonly string[]): Promise<Map<string, DeviceCredentials>>;
  /** `revoke` for many devices in a few large operations; idempotent. */
  revokeMany(deviceIds: readonly string[]): Promise<void>;
}
