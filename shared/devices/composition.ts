import { IoTClient } from '@aws-sdk/client-iot';
import { databasePool, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { patternService } from '../patterns/composition.ts';
import { readingStore } from '../timeseries/composition.ts';
import { AwsIotProvisioner } from './adapters/aws-iot-provisioner.ts';
import { MosquittoDynsecProvisioner } from './adapters/mosquitto-dynsec-provisioner.ts';
import { MosquittoPasswordFileProvisioner } from './adapters/mosquitto-password-file-provisioner.ts';
import {
  PostgresClaimRegistry,
  PostgresSpentClaimRegistry,
} from './adapters/postgres-claim-registry.ts';
import { PostgresDeviceStore } from './adapters/postgres-device-store.ts';
import { ClaimAdmission } from './domain/claim-admission.ts';
import { CLAIM_SETTLE_MS, ClaimRetirement } from './domain/claim-retirement.ts';
import type {
  DeviceCredentialProvisioner,
  FleetClaimIssuer,
} from './domain/credential-provisioner.ts';
import { DeviceService } from './domain/device-service.ts';

// Kept apart from shared/composition.ts so functions that never provision devices do not
// bundle the AWS IoT SDK and the MQTT client.
export const credentialProvisioner = once<DeviceCredentialProvisioner>(() => {
  const { devices, aws } = config();
  if (devices.provisioner === 'aws-iot') {
    return new AwsIotProvisioner({
      client: new IoTClient({ region: aws.region }),
      policyName: aws.iotDevicePolicyName,
      brokerUrl: devices.mqttPublicUrl,
      claimPolicyName: aws.iotClaimPolicyName,
      provisioningTemplateName: aws.iotProvisioningTemplateName,
    });
  }
  if (devices.mqttDevicePasswordFile) {
    return new MosquittoPasswordFileProvisioner({
      passwordFile: devices.mqttDevicePasswordFile,
      brokerUrl: required(devices.mqttAdmin, 'MQTT_ADMIN_URL').url,
      brokerUrlForDevices: devices.mqttPublicUrl,
    });
  }
  const admin = required(
    devices.mqttAdmin,
    'MQTT_ADMIN_URL, MQTT_ADMIN_USERNAME and MQTT_ADMIN_PASSWORD (DEVICE_PROVISIONER=mosquitto)',
  );
  return new MosquittoDynsecProvisioner({
    url: admin.url,
    username: admin.username,
    password: admin.password,
    brokerUrlForDevices: devices.mqttPublicUrl,
  });
});

/** AWS IoT with fleet provisioning set up: bulk registrations issue one claim credential. */
function fleetClaims(): FleetClaimIssuer | undefined {
  const { devices, aws } = config();
  if (devices.provisioner !== 'aws-iot') return undefined;
  if (!aws.iotClaimPolicyName || !aws.iotProvisioningTemplateName) return undefined;
  return credentialProvisioner() as AwsIotProvisioner;
}

export const deviceService = once(
  () =>
    new DeviceService({
      store: new PostgresDeviceStore(databasePool()),
      provisioner: credentialProvisioner(),
      claims: fleetClaims(),
      provider: config().devices.provisioner,
      readings: readingStore(),
      currentPattern: (tenantId, devicePk) => patternService().current(tenantId, devicePk),
    }),
);

/** The fleet provisioning template's pre-provisioning hook. */
export const claimAdmission = once(() => {
  const { aws } = config();
  const things = new AwsIotProvisioner({
    client: new IoTClient({ region: aws.region }),
    policyName: aws.iotDevicePolicyName,
  });
  return new ClaimAdmission(new PostgresClaimRegistry(databasePool()), things);
});

/**
 * Retires spent claims on AWS IoT, whether or not new bulk registrations still issue them;
 * undefined where devices get broker passwords (no claim is ever issued there).
 */
export const claimRetirement = once(() => {
  if (config().devices.provisioner !== 'aws-iot') return undefined;
  return new ClaimRetirement(
    new PostgresSpentClaimRegistry(databasePool()),
    credentialProvisioner() as AwsIotProvisioner,
    CLAIM_SETTLE_MS,
  );
});
