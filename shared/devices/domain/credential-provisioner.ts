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
