import { readFileSync } from 'node:fs';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteConflictException,
  DeleteThingCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  InvalidRequestException,
  IoTClient,
  ListThingPrincipalsCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  ServiceUnavailableException,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  AwsIotProvisioner,
  InvalidDeviceIdError,
  IotProvisioningError,
} from '../../shared/devices/adapters/aws-iot-provisioner.ts';
import { ReservedDeviceIdError } from '../../shared/devices/domain/model.ts';

const POLICY = 'easysmart-device';
const BROKER = 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883';
const ARN_PREFIX = 'arn:aws:iot:us-east-1:123456789012:cert/';
const NEW_CERT_ID = 'a'.repeat(64);
const NEW_CERT_ARN = `${ARN_PREFIX}${NEW_CERT_ID}`;
const OLD_CERT_ID = 'b'.repeat(64);
const OLD_CERT_ARN = `${ARN_PREFIX}${OLD_CERT_ID}`;

const client = new IoTClient({ region: 'us-east-1' });
const iot = mockClient(client);
const sleeps: number[] = [];

function provisioner(): AwsIotProvisioner {
  return new AwsIotProvisioner({
    client,
    policyName: POLICY,
    brokerUrl: BROKER,
    retryDelaysMs: [10, 20, 40],
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
}

/** Every command sent, in order, as [name, input]. */
function sent(): Array<[string, unknown]> {
  return iot.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: unknown };
    return [command.constructor.name, command.input];
  });
}

function awsError<T>(
  ErrorClass: new (opts: { message: string; $metadata: object }) => T,
  message: string,
): T {
  return new ErrorClass({ message, $metadata: {} });
}

function mockNewCertificate(): void {
  iot.on(CreateKeysAndCertificateCommand).resolves({
    certificateArn: NEW_CERT_ARN,
    certificateId: NEW_CERT_ID,
    certificatePem: '-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n',
    keyPair: { PublicKey: 'public', PrivateKey: '-----BEGIN RSA PRIVATE KEY-----\nk\n' },
  });
}

const MANAGED = { attributes: { managed_by: 'easysmart-device' } };
const CREATE_THING = (thingName: string) => ({
  thingName,
  attributePayload: MANAGED,
});

beforeEach(() => {
  iot.reset();
  sleeps.length = 0;
  // Things the platform created for a device carry its attribute.
  iot.on(DescribeThingCommand).resolves(MANAGED);
});

describe('AwsIotProvisioner (AWS SDK mocked) provision', () => {
  it('creates the thing, an active certificate, attaches the policy and the thing (AWS SDK mocked)', async () => {
    iot.on(CreateThingCommand).resolves({ thingName: 'esp32-01' });
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();

    const credentials = await provisioner().provision('esp32-01');

    expect(sent()).toEqual([
      ['CreateThingCommand', CREATE_THING('esp32-01')],
      ['ListThingPrincipalsCommand', { thingName: 'esp32-01' }],
      ['CreateKeysAndCertificateCommand', { setAsActive: true }],
      ['AttachPolicyCommand', { policyName: POLICY, target: NEW_CERT_ARN }],
      ['AttachThingPrincipalCommand', { thingName: 'esp32-01', principal: NEW_CERT_ARN }],
    ]);
    expect(credentials).toEqual({
      client_id: 'esp32-01',
      certificate_pem: '-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n',
      private_key: '-----BEGIN RSA PRIVATE KEY-----\nk\n',
      certificate_id: NEW_CERT_ID,
      broker_url: BROKER,
    });
  });

  it('replaces: an existing thing keeps its name but its old certificate is revoked first (AWS SDK mocked)', async () => {
    iot
      .on(CreateThingCommand)
      .rejects(awsError(ResourceAlreadyExistsException, 'thing esp32-01 exists'));
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [OLD_CERT_ARN] });
    mockNewCertificate();

    const credentials = await provisioner().provision('esp32-01');

    expect(credentials.certificate_id).toBe(NEW_CERT_ID);
    expect(sent()).toEqual([
      ['CreateThingCommand', CREATE_THING('esp32-01')],
      ['DescribeThingCommand', { thingName: 'esp32-01' }],
      ['ListThingPrincipalsCommand', { thingName: 'esp32-01' }],
      ['UpdateCertificateCommand', { certificateId: OLD_CERT_ID, newStatus: 'INACTIVE' }],
      ['DetachThingPrincipalCommand', { thingName: 'esp32-01', principal: OLD_CERT_ARN }],
      ['DetachPolicyCommand', { policyName: POLICY, target: OLD_CERT_ARN }],
      ['DeleteCertificateCommand', { certificateId: OLD_CERT_ID, forceDelete: true }],
      ['CreateKeysAndCertificateCommand', { setAsActive: true }],
      ['AttachPolicyCommand', { policyName: POLICY, target: NEW_CERT_ARN }],
      ['AttachThingPrincipalCommand', { thingName: 'esp32-01', principal: NEW_CERT_ARN }],
    ]);
    expect(iot.commandCalls(DeleteThingCommand)).toHaveLength(0);
  });

  it('rolls back on AttachPolicy failure: the new certificate is deactivated and deleted (AWS SDK mocked)', async () => {
    const failure = awsError(ResourceNotFoundException, 'policy easysmart-device not found');
    iot.on(CreateThingCommand).resolves({});
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();
    iot.on(AttachPolicyCommand).rejects(failure);

    const error = await provisioner()
      .provision('esp32-01')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IotProvisioningError);
    expect((error as Error).cause).toBe(failure);
    expect((error as Error).message).toMatch(/esp32-01.*AttachPolicy failed/);
    expect((error as Error).message).toContain('deactivated and deleted');
    expect(sent().slice(3)).toEqual([
      ['AttachPolicyCommand', { policyName: POLICY, target: NEW_CERT_ARN }],
      ['UpdateCertificateCommand', { certificateId: NEW_CERT_ID, newStatus: 'INACTIVE' }],
      ['DeleteCertificateCommand', { certificateId: NEW_CERT_ID, forceDelete: true }],
    ]);
    expect(iot.commandCalls(AttachThingPrincipalCommand)).toHaveLength(0);
  });

  it('rolls back on AttachThingPrincipal failure, undoing the policy and the attachment (AWS SDK mocked)', async () => {
    const failure = awsError(ServiceUnavailableException, 'try later');
    iot.on(CreateThingCommand).resolves({});
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();
    iot.on(AttachThingPrincipalCommand).rejects(failure);

    const error = await provisioner()
      .provision('esp32-01')
      .catch((e: unknown) => e);

    expect((error as Error).cause).toBe(failure);
    expect((error as Error).message).toMatch(/AttachThingPrincipal failed/);
    expect(sent().slice(5)).toEqual([
      ['UpdateCertificateCommand', { certificateId: NEW_CERT_ID, newStatus: 'INACTIVE' }],
      ['DetachThingPrincipalCommand', { thingName: 'esp32-01', principal: NEW_CERT_ARN }],
      ['DetachPolicyCommand', { policyName: POLICY, target: NEW_CERT_ARN }],
      ['DeleteCertificateCommand', { certificateId: NEW_CERT_ID, forceDelete: true }],
    ]);
  });

  it('reports an incomplete rollback without hiding the original AWS error (AWS SDK mocked)', async () => {
    const failure = awsError(ServiceUnavailableException, 'attach failed');
    iot.on(CreateThingCommand).resolves({});
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();
    iot.on(AttachPolicyCommand).rejects(failure);
    iot.on(DeleteCertificateCommand).rejects(awsError(ServiceUnavailableException, 'down'));

    const error = await provisioner()
      .provision('esp32-01')
      .catch((e: unknown) => e);

    expect((error as Error).cause).toBe(failure);
    expect((error as Error).message).toContain(`certificate ${NEW_CERT_ID} may remain`);
    // The deactivation still happened, so the leftover certificate cannot connect.
    expect(iot.commandCalls(UpdateCertificateCommand)[0]?.args[0].input).toEqual({
      certificateId: NEW_CERT_ID,
      newStatus: 'INACTIVE',
    });
  });

  it('wraps a CreateThing failure with the AWS error as cause and creates nothing else (AWS SDK mocked)', async () => {
    const failure = awsError(ServiceUnavailableException, 'down');
    iot.on(CreateThingCommand).rejects(failure);

    const error = await provisioner()
      .provision('esp32-01')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IotProvisioningError);
    expect((error as Error).cause).toBe(failure);
    expect((error as Error).message).toMatch(/provision esp32-01: CreateThing failed/);
    expect(iot.commandCalls(CreateKeysAndCertificateCommand)).toHaveLength(0);
  });

  it('omits broker_url when none is configured (AWS SDK mocked)', async () => {
    iot.on(CreateThingCommand).resolves({});
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();

    const credentials = await new AwsIotProvisioner({ client, policyName: POLICY }).provision(
      'esp32-01',
    );

    expect(credentials.broker_url).toBeUndefined();
  });
});

describe('AwsIotProvisioner (AWS SDK mocked) provisionMany', () => {
  const many = (bulkConcurrency: number) =>
    new AwsIotProvisioner({
      client,
      policyName: POLICY,
      brokerUrl: BROKER,
      retryDelaysMs: [],
      bulkConcurrency,
    });

  it('gives every device its thing and certificate, keyed by device id (AWS SDK mocked)', async () => {
    iot.on(CreateThingCommand).resolves({});
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    mockNewCertificate();

    const ids = ['press-1', 'press-2', 'press-3', 'press-4', 'press-5'];
    const credentials = await many(2).provisionMany(ids);

    expect([...credentials.keys()]).toEqual(ids);
    expect(credentials.get('press-3')).toMatchObject({ client_id: 'press-3', broker_url: BROKER });
    const things = sent()
      .filter(([name]) => name === 'AttachThingPrincipalCommand')
      .map(([, input]) => (input as { thingName: string }).thingName)
      .sort();
    expect(things).toEqual(ids);
  });

  it('takes back what the batch made when one device fails, and stops there (AWS SDK mocked)', async () => {
    iot.on(CreateThingCommand).resolves({});
    iot
      .on(CreateThingCommand, CREATE_THING('press-3'))
      .rejects(awsError(ServiceUnavailableException, 'try later'));
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [] });
    iot
      .on(ListThingPrincipalsCommand, { thingName: 'press-1', nextToken: undefined })
      .resolvesOnce({ principals: [] })
      .resolves({ principals: [NEW_CERT_ARN] });
    iot
      .on(ListThingPrincipalsCommand, { thingName: 'press-2', nextToken: undefined })
      .resolvesOnce({ principals: [] })
      .resolves({ principals: [NEW_CERT_ARN] });
    mockNewCertificate();

    await expect(
      many(1).provisionMany(['press-1', 'press-2', 'press-3', 'press-4']),
    ).rejects.toThrow(/provision press-3: CreateThing failed/);

    const names = sent().map(
      ([name, input]) => `${name} ${(input as { thingName?: string }).thingName ?? ''}`,
    );
    // press-4 is never started; press-1 and press-2 lose their certificates and things.
    expect(names.some((line) => line.endsWith('press-4'))).toBe(false);
    expect(names.filter((line) => line.startsWith('DeleteThingCommand'))).toEqual([
      'DeleteThingCommand press-1',
      'DeleteThingCommand press-2',
    ]);
    expect(names.filter((line) => line.startsWith('DeleteCertificateCommand'))).toHaveLength(2);
  });

  it('checks every id before the first call (AWS SDK mocked)', async () => {
    await expect(many(4).provisionMany(['ok-1', 'not ok'])).rejects.toThrow(InvalidDeviceIdError);
    await expect(many(4).provisionMany(['ok-1', 'easysmart-x'])).rejects.toThrow(
      ReservedDeviceIdError,
    );
    expect(sent()).toEqual([]);
  });
});

describe('AwsIotProvisioner (AWS SDK mocked) platform identities', () => {
  it.each(['easysmart-iot-rules-1883', 'EasySmart-platform', 'admin'])(
    'refuses the reserved id %j before any AWS call (AWS SDK mocked)',
    async (id) => {
      await expect(provisioner().provision(id)).rejects.toBeInstanceOf(ReservedDeviceIdError);
      expect(iot.calls()).toHaveLength(0);
    },
  );

  it('refuses to take over an existing thing it did not create for a device, touching none of its certificates (AWS SDK mocked)', async () => {
    iot
      .on(CreateThingCommand)
      .rejects(awsError(ResourceAlreadyExistsException, 'thing gateway-1 exists'));
    iot.on(DescribeThingCommand).resolves({ attributes: { site: 'plant-2' } });
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [OLD_CERT_ARN] });

    await expect(provisioner().provision('gateway-1')).rejects.toBeInstanceOf(
      ReservedDeviceIdError,
    );
    expect(sent().map(([name]) => name)).toEqual(['CreateThingCommand', 'DescribeThingCommand']);
  });
});

describe('AwsIotProvisioner (AWS SDK mocked) revoke', () => {
  it('deactivates, detaches, deletes every certificate and then deletes the thing (AWS SDK mocked)', async () => {
    iot
      .on(ListThingPrincipalsCommand, { thingName: 'esp32-01', nextToken: undefined })
      .resolves({ principals: [OLD_CERT_ARN], nextToken: 'page-2' })
      .on(ListThingPrincipalsCommand, { thingName: 'esp32-01', nextToken: 'page-2' })
      .resolves({ principals: [NEW_CERT_ARN] });

    await provisioner().revoke('esp32-01');

    const revokeCert = (id: string, arn: string): Array<[string, unknown]> => [
      ['UpdateCertificateCommand', { certificateId: id, newStatus: 'INACTIVE' }],
      ['DetachThingPrincipalCommand', { thingName: 'esp32-01', principal: arn }],
      ['DetachPolicyCommand', { policyName: POLICY, target: arn }],
      ['DeleteCertificateCommand', { certificateId: id, forceDelete: true }],
    ];
    expect(sent()).toEqual([
      ['DescribeThingCommand', { thingName: 'esp32-01' }],
      ['ListThingPrincipalsCommand', { thingName: 'esp32-01' }],
      ['ListThingPrincipalsCommand', { thingName: 'esp32-01', nextToken: 'page-2' }],
      ...revokeCert(OLD_CERT_ID, OLD_CERT_ARN),
      ...revokeCert(NEW_CERT_ID, NEW_CERT_ARN),
      ['DeleteThingCommand', { thingName: 'esp32-01' }],
    ]);
  });

  it('is a no-op for a thing that does not exist (AWS SDK mocked)', async () => {
    iot.on(DescribeThingCommand).rejects(awsError(ResourceNotFoundException, 'no thing'));

    await expect(provisioner().revoke('never-registered')).resolves.toBeUndefined();

    expect(sent()).toEqual([['DescribeThingCommand', { thingName: 'never-registered' }]]);
  });

  it('leaves a thing alone that the platform did not create for a device (AWS SDK mocked)', async () => {
    iot.on(DescribeThingCommand).resolves({ attributes: {} });

    await provisioner().revoke('gateway-1');

    expect(sent()).toEqual([['DescribeThingCommand', { thingName: 'gateway-1' }]]);
  });

  it('tolerates pieces already gone from an earlier, interrupted revoke (AWS SDK mocked)', async () => {
    const gone = awsError(ResourceNotFoundException, 'gone');
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [OLD_CERT_ARN] });
    iot.on(UpdateCertificateCommand).rejects(gone);
    iot.on(DetachThingPrincipalCommand).rejects(gone);
    iot.on(DetachPolicyCommand).rejects(gone);
    iot.on(DeleteCertificateCommand).rejects(gone);
    iot.on(DeleteThingCommand).rejects(gone);

    await expect(provisioner().revoke('esp32-01')).resolves.toBeUndefined();
  });

  it('waits out the asynchronous detach before deleting the certificate and the thing (AWS SDK mocked)', async () => {
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [OLD_CERT_ARN] });
    iot
      .on(DeleteCertificateCommand)
      .rejectsOnce(awsError(DeleteConflictException, 'still attached to a thing'))
      .resolves({});
    iot
      .on(DeleteThingCommand)
      .rejectsOnce(awsError(InvalidRequestException, 'thing has principals attached'))
      .resolves({});

    await provisioner().revoke('esp32-01');

    expect(iot.commandCalls(DeleteCertificateCommand)).toHaveLength(2);
    expect(iot.commandCalls(DeleteThingCommand)).toHaveLength(2);
    expect(sleeps).toEqual([10, 10]);
  });

  it('gives up after the configured retries and reports the AWS error as cause (AWS SDK mocked)', async () => {
    const conflict = awsError(DeleteConflictException, 'still attached to a thing');
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [OLD_CERT_ARN] });
    iot.on(DeleteCertificateCommand).rejects(conflict);

    const error = await provisioner()
      .revoke('esp32-01')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IotProvisioningError);
    expect((error as Error).cause).toBe(conflict);
    expect(iot.commandCalls(DeleteCertificateCommand)).toHaveLength(4);
    expect(sleeps).toEqual([10, 20, 40]);
    expect(iot.commandCalls(DeleteThingCommand)).toHaveLength(0);
  });

  it('only detaches principals that are not certificates (AWS SDK mocked)', async () => {
    const cognito = 'us-east-1:11111111-2222-3333-4444-555555555555';
    iot.on(ListThingPrincipalsCommand).resolves({ principals: [cognito] });

    await provisioner().revoke('esp32-01');

    expect(sent()).toEqual([
      ['DescribeThingCommand', { thingName: 'esp32-01' }],
      ['ListThingPrincipalsCommand', { thingName: 'esp32-01' }],
      ['DetachThingPrincipalCommand', { thingName: 'esp32-01', principal: cognito }],
      ['DeleteThingCommand', { thingName: 'esp32-01' }],
    ]);
  });
});

describe('AwsIotProvisioner (AWS SDK mocked) device id validation', () => {
  const invalid = [
    '',
    'a'.repeat(129),
    'dev/1',
    'devices/#',
    'dev+1',
    'dev 1',
    'dév',
    'a.b',
    'dev$1',
  ];

  it.each(invalid)('rejects %j before any AWS call (AWS SDK mocked)', async (id) => {
    await expect(provisioner().provision(id)).rejects.toBeInstanceOf(InvalidDeviceIdError);
    await expect(provisioner().revoke(id)).rejects.toBeInstanceOf(InvalidDeviceIdError);
    expect(iot.calls()).toHaveLength(0);
  });

  it('accepts the full thing-name alphabet up to 128 characters (AWS SDK mocked)', async () => {
    iot.on(DescribeThingCommand).rejects(awsError(ResourceNotFoundException, 'no thing'));
    await provisioner().revoke('a'.repeat(128));
    await provisioner().revoke('Az09:_-');
    expect(iot.calls()).toHaveLength(2);
  });
});

describe('infra/iot-device-policy.yml (text checks, no AWS involved)', () => {
  const policy = readFileSync(
    new URL('../../infra/iot-device-policy.yml', import.meta.url),
    'utf8',
  );
  const body = policy
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');

  it('escapes every IoT policy variable so Fn::Sub leaves it for AWS IoT', () => {
    expect(body).not.toMatch(/\$\{iot:/);
    expect(body).toMatch(/\$\{!iot:Connection\.Thing\.ThingName\}/);
  });

  it('confines the device to its own client id and devices/<thing name>/ topics', () => {
    expect(body).toContain('Type: AWS::IoT::Policy');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not JS
    const arn = 'arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}';
    expect(body).toContain(`${arn}:client/\${!iot:Connection.Thing.ThingName}`);
    expect(body).toContain(`${arn}:topic/devices/\${!iot:Connection.Thing.ThingName}/*`);
    expect(body).toContain(`${arn}:topicfilter/devices/\${!iot:Connection.Thing.ThingName}/*`);
    expect(body).not.toMatch(/Resource:\s*['"]?\*/);
  });
});
