import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  AttachPolicyCommand,
  CreateKeysAndCertificateCommand,
  DeleteCertificateCommand,
  IoTClient,
  ResourceNotFoundException,
  ServiceUnavailableException,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  AwsIotProvisioner,
  CLAIM_CLIENT_ID_PREFIX,
  IotProvisioningError,
  MANAGED_ATTRIBUTE,
} from '../../shared/devices/adapters/aws-iot-provisioner.ts';
import { ClaimAdmission } from '../../shared/devices/domain/claim-admission.ts';
import { DeviceService } from '../../shared/devices/domain/device-service.ts';
import type { DeviceStore } from '../../shared/devices/domain/device-store.ts';
import { isReservedDeviceId } from '../../shared/devices/domain/model.ts';
import type { ReadingStore } from '../../shared/timeseries/domain/reading-store.ts';

// js-yaml (a devDependency) ships no type declarations; load() is the one call used.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): any };

const CLAIM_CERT_ID = 'c'.repeat(64);
const CLAIM_CERT_ARN = `arn:aws:iot:us-east-1:123456789012:cert/${CLAIM_CERT_ID}`;
const client = new IoTClient({ region: 'us-east-1' });
const iot = mockClient(client);

function sent(): Array<[string, unknown]> {
  return iot.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: unknown };
    return [command.constructor.name, command.input];
  });
}

const provisioner = (claims = true) =>
  new AwsIotProvisioner({
    client,
    policyName: 'easysmart-prod-device',
    brokerUrl: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
    retryDelaysMs: [],
    ...(claims
      ? {
          claimPolicyName: 'easysmart-prod-claim',
          provisioningTemplateName: 'easysmart-prod-fleet',
        }
      : {}),
  });

beforeEach(() => iot.reset());

describe('AwsIotProvisioner (AWS SDK mocked) claim credentials', () => {
  it('issues one claim: a certificate and the claim policy, two calls whatever the batch (AWS SDK mocked)', async () => {
    iot.on(CreateKeysAndCertificateCommand).resolves({
      certificateArn: CLAIM_CERT_ARN,
      certificateId: CLAIM_CERT_ID,
      certificatePem: 'claim-pem',
      keyPair: { PublicKey: 'public', PrivateKey: 'claim-key' },
    });
    const claim = await provisioner().issueClaim();
    expect(sent()).toEqual([
      ['CreateKeysAndCertificateCommand', { setAsActive: true }],
      ['AttachPolicyCommand', { policyName: 'easysmart-prod-claim', target: CLAIM_CERT_ARN }],
    ]);
    expect(claim).toEqual({
      certificate_id: CLAIM_CERT_ID,
      certificate_pem: 'claim-pem',
      private_key: 'claim-key',
      provisioning_template: 'easysmart-prod-fleet',
      client_id_prefix: CLAIM_CLIENT_ID_PREFIX,
      broker_url: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
    });
  });

  it('deletes the certificate again when the claim policy cannot be attached (AWS SDK mocked)', async () => {
    iot.on(CreateKeysAndCertificateCommand).resolves({
      certificateArn: CLAIM_CERT_ARN,
      certificateId: CLAIM_CERT_ID,
      certificatePem: 'claim-pem',
      keyPair: { PrivateKey: 'claim-key' },
    });
    iot
      .on(AttachPolicyCommand)
      .rejects(new ServiceUnavailableException({ message: 'down', $metadata: {} }));
    await expect(provisioner().issueClaim()).rejects.toThrow(
      /claim credential: AttachPolicy failed.*deactivated and deleted/,
    );
    expect(sent().map(([name]) => name)).toEqual([
      'CreateKeysAndCertificateCommand',
      'AttachPolicyCommand',
      'UpdateCertificateCommand',
      'DeleteCertificateCommand',
    ]);
  });

  it('refuses to issue a claim when fleet provisioning is not configured, calling nothing (AWS SDK mocked)', async () => {
    await expect(provisioner(false).issueClaim()).rejects.toBeInstanceOf(IotProvisioningError);
    expect(sent()).toEqual([]);
  });

  it('retires a claim: deactivated, then deleted with its policy; a missing one is fine (AWS SDK mocked)', async () => {
    await provisioner().retireClaim(CLAIM_CERT_ID);
    expect(sent()).toEqual([
      ['UpdateCertificateCommand', { certificateId: CLAIM_CERT_ID, newStatus: 'INACTIVE' }],
      ['DeleteCertificateCommand', { certificateId: CLAIM_CERT_ID, forceDelete: true }],
    ]);
    iot.reset();
    const gone = new ResourceNotFoundException({ message: 'gone', $metadata: {} });
    iot.on(UpdateCertificateCommand).rejects(gone);
    iot.on(DeleteCertificateCommand).rejects(gone);
    await expect(provisioner().retireClaim(CLAIM_CERT_ID)).resolves.toBeUndefined();
  });
});

describe('DeviceService.registerMany with claims (AWS SDK mocked)', () => {
  it('retires the issued claim when the registry does not take the batch (AWS SDK mocked)', async () => {
    iot.on(CreateKeysAndCertificateCommand).resolves({
      certificateArn: CLAIM_CERT_ARN,
      certificateId: CLAIM_CERT_ID,
      certificatePem: 'claim-pem',
      keyPair: { PrivateKey: 'claim-key' },
    });
    const aws = provisioner();
    // The registry's part of createMany: credentials inside the transaction, then a failure
    // (say, the commit) that has it take them back.
    const store = {
      registeredDeviceIds: async () => new Set<string>(),
      createMany: async (_tenant, _user, inputs, credentials) => {
        await credentials.provisionMany(inputs.map((input) => input.device_id));
        await credentials.revokeMany(inputs.map((input) => input.device_id));
        throw new Error('commit failed');
      },
    } as Pick<DeviceStore, 'registeredDeviceIds' | 'createMany'> as DeviceStore;
    const service = new DeviceService({
      store,
      provisioner: aws,
      claims: aws,
      provider: 'aws-iot',
      readings: {} as ReadingStore,
    });
    const caller = { tenantId: 1, userId: 1 } as Parameters<DeviceService['registerMany']>[0];
    const rows = [1, 2, 3].map((row) => ({
      row,
      device: { device_id: `PUMP_${row}`, name: 'Pump', type: 'pump' },
    }));
    await expect(service.registerMany(caller, rows)).rejects.toThrow('commit failed');
    // No thing and no device certificate was ever made: only the claim, then its removal.
    expect(sent().map(([name]) => name)).toEqual([
      'CreateKeysAndCertificateCommand',
      'AttachPolicyCommand',
      'UpdateCertificateCommand',
      'DeleteCertificateCommand',
    ]);
  });
});

describe('ClaimAdmission (the pre-provisioning hook) refuses malformed requests before the registry', () => {
  const asked: unknown[] = [];
  let thing: 'none' | 'device' | 'foreign' = 'none';
  const admission = new ClaimAdmission(
    {
      admit: async (request) => {
        asked.push(request);
        return 7;
      },
    },
    { thingOwnership: async () => thing },
  );
  const good = {
    claimCertificateId: CLAIM_CERT_ID,
    certificateId: 'd'.repeat(64),
    parameters: { DeviceId: 'PUMP_0001' },
  };

  it('asks the registry only for a well-formed request of a device id', async () => {
    for (const bad of [
      { ...good, claimCertificateId: undefined },
      { ...good, certificateId: 'not-hex' },
      { ...good, parameters: {} },
      { ...good, parameters: null },
      { ...good, parameters: { DeviceId: 'a/b' } },
      { ...good, parameters: { DeviceId: 'x'.repeat(129) } },
      // A platform identity is never a device.
      { ...good, parameters: { DeviceId: 'easysmart-platform' } },
      { ...good, parameters: { DeviceId: 7 } },
    ]) {
      expect(await admission.decide(bad)).toMatchObject({
        allowProvisioning: false,
        reason: 'malformed_request',
      });
    }
    expect(asked).toEqual([]);
    expect(await admission.decide(good)).toEqual({
      allowProvisioning: true,
      tenantId: 7,
      deviceId: 'PUMP_0001',
    });
    expect(asked).toEqual([
      { claimCertificateId: CLAIM_CERT_ID, deviceId: 'PUMP_0001', certificateId: 'd'.repeat(64) },
    ]);
  });

  it('refuses, without claiming, a device id whose thing exists already (its certificate would join it)', async () => {
    asked.length = 0;
    for (const existing of ['foreign', 'device'] as const) {
      thing = existing;
      expect(await admission.decide(good)).toMatchObject({
        allowProvisioning: false,
        reason: 'thing_exists',
      });
    }
    thing = 'none';
    expect(asked).toEqual([]);
  });
});

describe('infra/iot-fleet-provisioning.yml (text checks, no AWS involved)', () => {
  const file = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the osls variable, literally
  const stageOf = (text: string) => text.replaceAll('${sls:stage}', 'prod');
  const resources = yaml.load(stageOf(file('infra/iot-fleet-provisioning.yml'))).Resources;
  const devicePolicy = yaml.load(stageOf(file('infra/iot-device-policy.yml'))).Resources
    .IotDevicePolicy;
  const template = resources.IotFleetProvisioningTemplate.Properties;
  const body = JSON.parse(template.TemplateBody);

  it('makes the thing the device id names, marked as the platform’s, with its new certificate active and the device policy', () => {
    expect(template.TemplateType).toBe('FLEET_PROVISIONING');
    expect(body.Resources.thing.Properties.ThingName).toEqual({ Ref: 'DeviceId' });
    // So that deleting the device deletes the thing (AwsIotProvisioner.revoke checks it).
    expect(body.Resources.thing.Properties.AttributePayload).toEqual({
      [MANAGED_ATTRIBUTE.name]: MANAGED_ATTRIBUTE.value,
    });
    expect(body.Resources.certificate.Properties).toEqual({
      CertificateId: { Ref: 'AWS::IoT::Certificate::Id' },
      Status: 'ACTIVE',
    });
    expect(body.Resources.policy.Properties.PolicyName).toBe(devicePolicy.Properties.PolicyName);
    expect(Object.keys(body.Resources).sort()).toEqual(['certificate', 'policy', 'thing']);
  });

  it('puts every device request through the hook, which only AWS IoT may call for this template', () => {
    expect(template.PreProvisioningHook.TargetArn).toEqual({
      'Fn::GetAtt': ['ProvisioningDashhookLambdaFunction', 'Arn'],
    });
    const permission = resources.ProvisioningHookInvokePermission.Properties;
    expect(permission.Principal).toBe('iot.amazonaws.com');
    expect(permission.SourceArn['Fn::Sub']).toMatch(
      new RegExp(`:provisioningtemplate/${template.TemplateName}$`),
    );
    // AWS's limits on a template name.
    expect(template.TemplateName).toMatch(/^[0-9A-Za-z_-]{1,36}$/);
    // The devices function names the same template to its devices.
    expect(stageOf(file('serverless.yml'))).toContain(
      `IOT_PROVISIONING_TEMPLATE_NAME: ${template.TemplateName}\n`,
    );
  });

  it('scopes the claim to its reserved client ids and to this template', () => {
    const statements = resources.IotClaimPolicy.Properties.PolicyDocument.Statement as Array<{
      Action: string;
      Resource: unknown;
    }>;
    const connect = statements.find((statement) => statement.Action === 'iot:Connect');
    expect((connect?.Resource as { 'Fn::Sub': string } | undefined)?.['Fn::Sub']).toMatch(
      new RegExp(`:client/${CLAIM_CLIENT_ID_PREFIX}\\*$`),
    );
    expect(isReservedDeviceId(`${CLAIM_CLIENT_ID_PREFIX}PUMP_0001`)).toBe(true);
    const topics = statements
      .filter((statement) => statement.Action !== 'iot:Connect')
      .flatMap((statement) => statement.Resource as Array<{ 'Fn::Sub': string }>)
      .map((resource) => resource['Fn::Sub']);
    for (const topic of topics) {
      expect(topic).toMatch(
        new RegExp(
          `:(topic|topicfilter)/\\$aws/(certificates/create/json|provisioning-templates/${template.TemplateName}/provision/json)(/accepted|/rejected)?$`,
        ),
      );
    }
  });
});
