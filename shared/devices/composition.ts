import { IoTClient } from '@aws-sdk/client-iot';
import { databasePool, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { AwsIotProvisioner } from '../iot/aws-iot-provisioner.ts';
import { MosquittoDynsecProvisioner } from '../iot/mosquitto-dynsec-provisioner.ts';
import { readingStore } from '../timeseries/composition.ts';
import type { DeviceCredentialProvisioner } from './credential-provisioner.ts';
import { DeviceService } from './device-service.ts';
import { PostgresDeviceStore } from './postgres-device-store.ts';

// Kept apart from shared/composition.ts so functions that never provision devices do not
// bundle the AWS IoT SDK and the MQTT client.
export const credentialProvisioner = once<DeviceCredentialProvisioner>(() => {
  const { devices, aws } = config();
  if (devices.provisioner === 'aws-iot') {
    return new AwsIotProvisioner({
      client: new IoTClient({ region: aws.region }),
      policyName: aws.iotDevicePolicyName,
      brokerUrl: devices.mqttPublicUrl,
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

export const deviceService = once(
  () =>
    new DeviceService(
      new PostgresDeviceStore(databasePool()),
      credentialProvisioner(),
      config().devices.provisioner,
      readingStore(),
    ),
);
