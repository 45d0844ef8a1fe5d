import { randomBytes } from 'node:crypto';
import {
  AttachPolicyCommand,
  CreateKeysAndCertificateCommand,
  DeleteCertificateCommand,
  DescribeThingCommand,
  IoTClient,
  ResourceNotFoundException,
  ServiceUnavailableException,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { csvRecords } from '../shared/http/csv.ts';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { type SignedUp, signUp } from './support/tenants.ts';

/**
 * Bulk registration on AWS IoT by fleet provisioning by claim, through the devices function
 * and the pre-provisioning hook on the real PostgreSQL; AWS IoT's control plane is mocked
 * (it cannot run here), so what AWS itself does with the claim is not exercised: the
 * policy is evaluated in test/iot-device-policy.test.ts, the template's text checked in
 * test/unit/aws-iot-fleet-provisioning.test.ts.
 */
const stack = useTestStack({
  DEVICE_PROVISIONER: 'aws-iot',
  IOT_DEVICE_POLICY_NAME: 'easysmart-test-device',
  IOT_CLAIM_POLICY_NAME: 'easysmart-test-claim',
  IOT_PROVISIONING_TEMPLATE_NAME: 'easysmart-test-fleet',
  MQTT_PUBLIC_URL: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
});
const iot = mockClient(IoTClient);
afterAll(() => iot.restore());
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const hook = (await import('../functions/provisioning-hook/handler.ts')).handler;
const { claimRetirement } = await import('../shared/devices/composition.ts');
const { CLAIM_SETTLE_MS } = await import('../shared/devices/domain/claim-retirement.ts');
const admin = adminPool(stack);

const certificateId = () => randomBytes(32).toString('hex');
let claimsIssued: string[] = [];

beforeEach(() => {
  iot.reset();
  claimsIssued = [];
  iot.on(CreateKeysAndCertificateCommand).callsFake(() => {
    const id = certificateId();
    claimsIssued.push(id);
    return {
      certificateArn: `arn:aws:iot:us-east-1:123456789012:cert/${id}`,
      certificateId: id,
      certificatePem: `-----BEGIN CERTIFICATE-----\n${id}\n-----END CERTIFICATE-----\n`,
      keyPair: { PrivateKey: `-----BEGIN RSA PRIVATE KEY-----\n${id}\n` },
    };
  });
  iot.on(AttachPolicyCommand).resolves({});
  iot
    .on(DescribeThingCommand)
    .rejects(new ResourceNotFoundException({ message: 'no thing', $metadata: {} }));
});

const bulk = (session: SignedUp, options: Parameters<typeof callRoute>[2]) =>
  callRoute(devices, 'POST /api/devices/bulk', { token: session.token, ...options });

const rows = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, index) => ({
    device_id: `${prefix}_${index}`,
    name: `Pump ${index}`,
    type: 'pump',
  }));

const sentNames = () =>
  iot.calls().map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name);

describe('bulk registration by claim on AWS IoT (AWS IoT mocked, PostgreSQL real)', () => {
  it('issues one claim for the whole batch and admits each device once, only with its own claim', async () => {
    const owner = await signUp(auth, { plan: 'industrial', admin });
    const other = await signUp(auth, { plan: 'industrial', admin });
    const prefix = unique('CLAIM').replace(/-/g, '_');
    const answer = await bulk(owner, { body: rows(prefix, 300) });
    expect(answer.status).toBe(201);

    // Two control-plane calls for 300 devices: the claim certificate and its policy.
    expect(sentNames()).toEqual(['CreateKeysAndCertificateCommand', 'AttachPolicyCommand']);
    expect(iot.commandCalls(AttachPolicyCommand)[0]?.args[0].input.policyName).toBe(
      'easysmart-test-claim',
    );
    const claim = answer.body.claim;
    expect(claim).toMatchObject({
      certificate_id: claimsIssued[0],
      provisioning_template: 'easysmart-test-fleet',
      client_id_prefix: 'easysmart-claim-',
      broker_url: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
    });
    expect(claim.private_key).toContain('PRIVATE KEY');
    expect(answer.body.devices).toHaveLength(300);
    expect(answer.body.devices[0].credentials).toEqual({
      client_id: `${prefix}_0`,
      claim_certificate_id: claim.certificate_id,
      broker_url: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
    });

    const request = (deviceId: string, claimCertificateId = claim.certificate_id) => ({
      claimCertificateId,
      certificateId: certificateId(),
      certificatePem: '...',
      templateArn: 'arn:aws:iot:us-east-1:123456789012:provisioningtemplate/easysmart-test-fleet',
      clientId: `easysmart-claim-${deviceId}`,
      parameters: { DeviceId: deviceId },
    });

    const first = request(`${prefix}_7`);
    expect(await hook(first)).toEqual({ allowProvisioning: true });
    // The device's own certificate is recorded once it is admitted.
    const { rows: recorded } = await admin.query(
      `SELECT c.certificate_id, c.claimed_at IS NOT NULL AS claimed
       FROM device_credentials c JOIN devices d ON d.id = c.device_id
       WHERE d.tenant_id = $1 AND d.device_id = $2`,
      [owner.tenantId, `${prefix}_7`],
    );
    expect(recorded).toEqual([{ certificate_id: first.certificateId, claimed: true }]);
    // Once only: a second device (or a leaked claim) asking for the same id is refused.
    expect(await hook(request(`${prefix}_7`))).toEqual({ allowProvisioning: false });
    // Any other device of the batch, once.
    expect(await hook(request(`${prefix}_299`))).toEqual({ allowProvisioning: true });

    // Another tenant's claim does not reach this tenant's devices, nor ids not registered.
    const theirs = await bulk(other, { body: rows(`${prefix}_OTHER`, 2) });
    expect(theirs.status).toBe(201);
    expect(await hook(request(`${prefix}_8`, theirs.body.claim.certificate_id))).toEqual({
      allowProvisioning: false,
    });
    expect(await hook(request(`${prefix}_NOT_REGISTERED`))).toEqual({ allowProvisioning: false });
    // A thing of that name exists already (another system's): refused, and the device
    // keeps its claim for when the name is free.
    iot.on(DescribeThingCommand).resolves({ attributes: { owner: 'someone-else' } });
    expect(await hook(request(`${prefix}_10`))).toEqual({ allowProvisioning: false });
    iot
      .on(DescribeThingCommand)
      .rejects(new ResourceNotFoundException({ message: 'no thing', $metadata: {} }));
    expect(await hook(request(`${prefix}_10`))).toEqual({ allowProvisioning: true });
    // A malformed request never reaches the registry, and is refused.
    expect(await hook({ ...request(`${prefix}_9`), claimCertificateId: 'nope' })).toEqual({
      allowProvisioning: false,
    });
    expect(await hook(request(`${prefix}_9`))).toEqual({ allowProvisioning: true });
  });

  it('puts the claim first in the CSV download, each device naming it', async () => {
    const owner = await signUp(auth, { plan: 'industrial', admin });
    const prefix = unique('CSV').replace(/-/g, '_');
    const csv = `device_id,name,type\n${prefix}_a,A,pump\n${prefix}_b,B,pump\n`;
    const answer = await bulk(owner, {
      rawBody: csv,
      headers: { 'Content-Type': 'text/csv' },
      query: { format: 'csv' },
    });
    expect(answer.status).toBe(201);
    const [claimLine, ...deviceLines] = csvRecords(answer.body).map((record) => record.fields);
    // Empty cells read as absent fields.
    expect(claimLine?.device_id).toBeUndefined();
    expect(claimLine?.certificate_id).toBe(claimsIssued[0]);
    expect(claimLine?.private_key).toContain('PRIVATE KEY');
    expect(claimLine?.provisioning_template).toBe('easysmart-test-fleet');
    expect(deviceLines.map((line) => line.device_id)).toEqual([`${prefix}_a`, `${prefix}_b`]);
    for (const line of deviceLines) {
      expect(line.claim_certificate_id).toBe(claimsIssued[0]);
      expect(line.private_key).toBeUndefined();
    }
  });

  it('retires a claim once no device of its batch can use it, after the settling time, once', async () => {
    const owner = await signUp(auth, { plan: 'industrial', admin });
    const prefix = unique('RETIRE').replace(/-/g, '_');
    const batch = await bulk(owner, { body: rows(prefix, 3) });
    expect(batch.status).toBe(201);
    const claimId: string = batch.body.claim.certificate_id;
    const doomed = await bulk(owner, { body: rows(`${prefix}_X`, 1) });
    const doomedId: string = doomed.body.claim.certificate_id;
    iot.on(UpdateCertificateCommand).resolves({});
    iot.on(DeleteCertificateCommand).resolves({});
    const retirement = claimRetirement();
    if (!retirement) throw new Error('the AWS IoT provisioner retires claims');
    const retiredIn = async (now: number) => {
      const { retired, failed } = await retirement.run(now);
      const ours = (list: Array<{ certificateId: string }>) =>
        list.map((claim) => claim.certificateId).filter((id) => [claimId, doomedId].includes(id));
      return { retired: ours(retired), failed: ours(failed) };
    };
    const calledFor = (id: string) =>
      iot
        .calls()
        .filter((call) => (call.args[0].input as { certificateId?: string }).certificateId === id)
        .map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name);
    const claimDevice = (deviceId: string) =>
      hook({
        claimCertificateId: claimId,
        certificateId: certificateId(),
        parameters: { DeviceId: deviceId },
      });
    const later = () => Date.now() + CLAIM_SETTLE_MS + 60_000;

    // Two of three claimed: the third may still come, a day later too.
    expect(await claimDevice(`${prefix}_0`)).toEqual({ allowProvisioning: true });
    expect(await claimDevice(`${prefix}_1`)).toEqual({ allowProvisioning: true });
    // The other batch's only device is removed before it ever claimed; AWS IoT fails once.
    const removed = await callRoute(devices, 'DELETE /api/devices/{id}', {
      token: owner.token,
      params: { id: String(doomed.body.devices[0].device.id) },
    });
    expect(removed.status).toBe(204);
    iot
      .on(UpdateCertificateCommand, { certificateId: doomedId })
      .rejectsOnce(new ServiceUnavailableException({ message: 'try later', $metadata: {} }));
    expect(await retiredIn(Date.now() + 24 * 3600_000)).toEqual({
      retired: [],
      failed: [doomedId],
    });
    expect(calledFor(claimId)).toEqual([]);
    // The failed one is tried again on the next run.
    expect(await retiredIn(later())).toEqual({ retired: [doomedId], failed: [] });

    // The last device removed: spent, but its batch-mate claimed just now, and may still be
    // waiting for AWS IoT's answer on the claim's connection.
    await callRoute(devices, 'DELETE /api/devices/{id}', {
      token: owner.token,
      params: { id: String(batch.body.devices[2].device.id) },
    });
    expect(await retiredIn(Date.now())).toEqual({ retired: [], failed: [] });
    expect(calledFor(claimId)).toEqual([]);
    expect(await retiredIn(later())).toEqual({ retired: [claimId], failed: [] });
    expect(calledFor(claimId)).toEqual(['UpdateCertificateCommand', 'DeleteCertificateCommand']);
    expect(
      iot.commandCalls(UpdateCertificateCommand, { certificateId: claimId })[0]?.args[0].input,
    ).toEqual({ certificateId: claimId, newStatus: 'INACTIVE' });
    // Once: a retired claim is not asked for again.
    expect(await retiredIn(later())).toEqual({ retired: [], failed: [] });
    expect(calledFor(claimId)).toHaveLength(2);
    // The tenant's audit trail says the platform retired both.
    const audit = await callRoute(
      (await import('../functions/audit/handler.ts')).handler,
      'GET /api/audit',
      {
        token: owner.token,
        query: { action: 'device.claim_retire' },
      },
    );
    expect(audit.status).toBe(200);
    expect(audit.body.entries.map((entry: { target: string }) => entry.target).sort()).toEqual(
      [`claim:${claimId}`, `claim:${doomedId}`].sort(),
    );
  });
});
