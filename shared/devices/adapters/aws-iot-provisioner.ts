import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  ListThingPrincipalsCommand,
  type ListThingPrincipalsCommandOutput,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import type {
  ClaimCredential,
  DeviceCredentialProvisioner,
  DeviceCredentials,
  FleetClaimIssuer,
  ThingOwnership,
} from '../domain/credential-provisioner.ts';
import { assertNotReservedDeviceId, ReservedDeviceIdError } from '../domain/model.ts';

/** Marks a thing as created by the platform for a device, so it may replace or delete it. */
export const MANAGED_ATTRIBUTE = { name: 'managed_by', value: 'easysmart-device' } as const;

/** AWS thing-name rules; the device id doubles as thing name and MQTT client id. */
const DEVICE_ID_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

/**
 * DetachThingPrincipal is asynchronous on AWS's side: for a few seconds afterwards the
 * certificate still counts as attached, so DeleteCertificate and DeleteThing can fail with
 * a conflict. These are the waits between attempts; about 7.5 s in total fits a Lambda.
 */
const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

/**
 * A device holding only the claim connects with this prefix and any suffix (the firmware
 * uses its device id). Device ids never start with it (reserved), so a claim session can
 * never take over a device's own session, and the claim policy allows no other client id.
 */
export const CLAIM_CLIENT_ID_PREFIX = 'easysmart-claim-';

/**
 * Devices provisioned at once by `provisionMany`. AWS IoT's control-plane calls are
 * throttled per account (ThrottlingException); a few devices in flight keep each call
 * under its rate while the round trips overlap.
 */
const DEFAULT_BULK_CONCURRENCY = 4;

export class InvalidDeviceIdError extends Error {
  override readonly name = 'InvalidDeviceIdError';
}

export class IotProvisioningError extends Error {
  override readonly name = 'IotProvisioningError';
}

export interface AwsIotProvisionerOptions {
  client: IoTClient;
  /** Name of the AWS::IoT::Policy from infra/iot-device-policy.yml (IOT_DEVICE_POLICY_NAME). */
  policyName: string;
  /** Reported to the device with its credential, e.g. mqtts://xxxx-ats.iot.<region>.amazonaws.com:8883 */
  brokerUrl?: string;
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  /** Devices `provisionMany` and `revokeMany` work on at once. */
  bulkConcurrency?: number;
  /**
   * Fleet provisioning by claim (infra/iot-fleet-provisioning.yml): the claim policy
   * (IOT_CLAIM_POLICY_NAME) and the provisioning template (IOT_PROVISIONING_TEMPLATE_NAME).
   */
  claimPolicyName?: string;
  provisioningTemplateName?: string;
}

export class AwsIotProvisioner implements DeviceCredentialProvisioner, FleetClaimIssuer {
  private readonly client: IoTClient;
  private readonly claimPolicyName: string | undefined;
  private readonly provisioningTemplateName: string | undefined;
  private readonly policyName: string;
  private readonly brokerUrl: string | undefined;
  private readonly retryDelaysMs: readonly number[];
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly bulkConcurrency: number;

  constructor(options: AwsIotProvisionerOptions) {
    this.bulkConcurrency = options.bulkConcurrency ?? DEFAULT_BULK_CONCURRENCY;
    this.claimPolicyName = options.claimPolicyName;
    this.provisioningTemplateName = options.provisioningTemplateName;
    this.client = options.client;
    this.policyName = options.policyName;
    this.brokerUrl = options.brokerUrl;
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async provision(deviceId: string): Promise<DeviceCredentials> {
    assertDeviceId(deviceId);
    assertNotReservedDeviceId(deviceId);
    const thingName = deviceId;

    const thingIsNew = await this.step(deviceId, 'provision', 'CreateThing', async () => {
      try {
        await this.client.send(
          new CreateThingCommand({
            thingName,
            attributePayload: { attributes: { [MANAGED_ATTRIBUTE.name]: MANAGED_ATTRIBUTE.value } },
          }),
        );
        return true;
      } catch (error) {
        // Re-registering a device reuses its thing; only its credential is replaced.
        if (!isAwsError(error, 'ResourceAlreadyExistsException')) throw error;
        return false;
      }
    });
    // A thing the platform did not create for a device keeps its certificates.
    if (!thingIsNew && (await this.ownership(deviceId, 'provision')) === 'foreign') {
      throw new ReservedDeviceIdError(
        `thing ${thingName} exists and was not created for a device; it is left alone`,
      );
    }

    // Revoking before issuing means a device never holds two valid credentials at once.
    const existing = await this.step(deviceId, 'provision', 'ListThingPrincipals', () =>
      this.listPrincipals(thingName),
    );
    for (const principal of existing ?? []) {
      await this.step(deviceId, 'provision', `revoking ${principal}`, () =>
        this.revokePrincipal(thingName, principal),
      );
    }

    const { certificateArn, certificateId, certificatePem, privateKey } =
      await this.createCertificate(deviceId, 'provision');

    let policyAttached = false;
    try {
      await this.client.send(
        new AttachPolicyCommand({ policyName: this.policyName, target: certificateArn }),
      );
      policyAttached = true;
      await this.client.send(
        new AttachThingPrincipalCommand({ thingName, principal: certificateArn }),
      );
    } catch (error) {
      const failedStep = policyAttached ? 'AttachThingPrincipal' : 'AttachPolicy';
      const rollbackProblems = await this.rollbackCertificate({
        thingName,
        certificateArn,
        certificateId,
        policyAttached,
        thingAttachAttempted: policyAttached,
      });
      const rollbackNote = rollbackProblems.length
        ? `; rollback incomplete, certificate ${certificateId} may remain: ${rollbackProblems.join('; ')}`
        : `; certificate ${certificateId} was deactivated and deleted`;
      throw new IotProvisioningError(
        `provision ${deviceId}: ${failedStep} failed: ${describe(error)}${rollbackNote}`,
        { cause: error },
      );
    }

    return {
      client_id: deviceId,
      certificate_pem: certificatePem,
      private_key: privateKey,
      certificate_id: certificateId,
      broker_url: this.brokerUrl,
    };
  }

  /**
   * Each device as `provision` does it (thing, certificate and keys, policy), a few at a
   * time; if one fails, the devices of the batch already provisioned are revoked again, so
   * the batch leaves nothing behind. Ids are checked before any call.
   */
  async provisionMany(deviceIds: readonly string[]): Promise<Map<string, DeviceCredentials>> {
    for (const deviceId of deviceIds) {
      assertDeviceId(deviceId);
      assertNotReservedDeviceId(deviceId);
    }
    const issued = new Map<string, DeviceCredentials>();
    let failure: unknown;
    await this.forEachAtOnce(deviceIds, async (deviceId) => {
      if (failure !== undefined) return;
      try {
        issued.set(deviceId, await this.provision(deviceId));
      } catch (error) {
        failure ??= error;
      }
    });
    if (failure !== undefined) {
      await this.revokeMany([...issued.keys()]).catch(() => {});
      throw failure;
    }
    return new Map(
      deviceIds.map((deviceId) => [deviceId, issued.get(deviceId) as DeviceCredentials]),
    );
  }

  async revokeMany(deviceIds: readonly string[]): Promise<void> {
    const failures: unknown[] = [];
    await this.forEachAtOnce(deviceIds, (deviceId) =>
      this.revoke(deviceId).catch((error: unknown) => {
        failures.push(error);
      }),
    );
    if (failures.length > 0) throw failures[0];
  }

  /** Runs `work` over the ids with at most `bulkConcurrency` in flight. */
  private async forEachAtOnce(
    deviceIds: readonly string[],
    work: (deviceId: string) => Promise<void>,
  ): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < deviceIds.length) {
        const deviceId = deviceIds[next++] as string;
        await work(deviceId);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.bulkConcurrency, deviceIds.length) }, worker),
    );
  }

  /**
   * One claim certificate for a bulk registration: CreateKeysAndCertificate and AttachPolicy
   * with the claim policy, which allows nothing but AWS IoT's certificate and RegisterThing
   * topics of the platform's template. Two control-plane calls, whatever the batch's size.
   */
  async issueClaim(): Promise<ClaimCredential> {
    const policyName = this.claimPolicyName;
    const template = this.provisioningTemplateName;
    if (!policyName || !template) {
      throw new IotProvisioningError(
        'fleet provisioning is not configured (IOT_CLAIM_POLICY_NAME, IOT_PROVISIONING_TEMPLATE_NAME)',
      );
    }
    const { certificateArn, certificateId, certificatePem, privateKey } =
      await this.createCertificate('credential', 'claim');
    try {
      await this.client.send(new AttachPolicyCommand({ policyName, target: certificateArn }));
    } catch (error) {
      const rollbackProblems = await this.rollbackCertificate({
        thingName: '',
        certificateArn,
        certificateId,
        policyAttached: false,
        thingAttachAttempted: false,
      });
      const rollbackNote = rollbackProblems.length
        ? `; rollback incomplete, certificate ${certificateId} may remain: ${rollbackProblems.join('; ')}`
        : `; certificate ${certificateId} was deactivated and deleted`;
      throw new IotProvisioningError(
        `claim credential: AttachPolicy failed: ${describe(error)}${rollbackNote}`,
        { cause: error },
      );
    }
    return {
      certificate_id: certificateId,
      certificate_pem: certificatePem,
      private_key: privateKey,
      provisioning_template: template,
      client_id_prefix: CLAIM_CLIENT_ID_PREFIX,
      ...(this.brokerUrl ? { broker_url: this.brokerUrl } : {}),
    };
  }

  /** An active certificate and its key pair, made by AWS IoT. */
  private async createCertificate(
    subject: string,
    operation: 'provision' | 'claim',
  ): Promise<{
    certificateArn: string;
    certificateId: string;
    certificatePem: string;
    privateKey: string;
  }> {
    const created = await this.step(subject, operation, 'CreateKeysAndCertificate', () =>
      this.client.send(new CreateKeysAndCertificateCommand({ setAsActive: true })),
    );
    const { certificateArn, certificateId, certificatePem } = created;
    const privateKey = created.keyPair?.PrivateKey;
    if (!certificateArn || !certificateId || !certificatePem || !privateKey) {
      // Without the ARN there is nothing we could roll back by; report it so it can be found.
      throw new IotProvisioningError(
        `${operation} ${subject}: CreateKeysAndCertificate returned an incomplete response` +
          (certificateId ? ` (certificate ${certificateId} may need manual removal)` : ''),
      );
    }
    return { certificateArn, certificateId, certificatePem, privateKey };
  }

  /** Deactivates the claim certificate and deletes it with its policy; idempotent. */
  async retireClaim(certificateId: string): Promise<void> {
    await this.step('credential', 'claim', `retiring ${certificateId}`, async () => {
      await ignoreNotFound(
        this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' })),
      );
      await this.deleteCertificate(certificateId);
    });
  }

  async revoke(deviceId: string): Promise<void> {
    assertDeviceId(deviceId);
    const thingName = deviceId;
    if ((await this.ownership(deviceId, 'revoke')) !== 'device') return;

    const principals = await this.step(deviceId, 'revoke', 'ListThingPrincipals', () =>
      this.listPrincipals(thingName),
    );
    if (principals === undefined) return;

    for (const principal of principals) {
      await this.step(deviceId, 'revoke', `revoking ${principal}`, () =>
        this.revokePrincipal(thingName, principal),
      );
    }

    await this.step(deviceId, 'revoke', 'DeleteThing', () =>
      this.retryWhile(
        (error) => isAwsError(error, 'InvalidRequestException'),
        () => ignoreNotFound(this.client.send(new DeleteThingCommand({ thingName }))),
      ),
    );
  }

  /** Whether a thing of that name exists, and whether the platform made it for a device. */
  thingOwnership(thingName: string): Promise<ThingOwnership> {
    return this.ownership(thingName, 'claim');
  }

  private ownership(
    thingName: string,
    operation: 'provision' | 'revoke' | 'claim',
  ): Promise<ThingOwnership> {
    return this.step(thingName, operation, 'DescribeThing', async () => {
      try {
        const thing = await this.client.send(new DescribeThingCommand({ thingName }));
        return thing?.attributes?.[MANAGED_ATTRIBUTE.name] === MANAGED_ATTRIBUTE.value
          ? 'device'
          : 'foreign';
      } catch (error) {
        if (isAwsError(error, 'ResourceNotFoundException')) return 'none';
        throw error;
      }
    });
  }

  /** All principals attached to the thing, or undefined when the thing does not exist. */
  private async listPrincipals(thingName: string): Promise<string[] | undefined> {
    const principals: string[] = [];
    let nextToken: string | undefined;
    do {
      let page: ListThingPrincipalsCommandOutput;
      try {
        page = await this.client.send(new ListThingPrincipalsCommand({ thingName, nextToken }));
      } catch (error) {
        if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
        throw error;
      }
      principals.push(...(page.principals ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    return principals;
  }

  private async revokePrincipal(thingName: string, principal: string): Promise<void> {
    const certificateId = certificateIdFromArn(principal);
    // Deactivating first closes the door even if a later step fails; once detached, the
    // certificate no longer shows up in ListThingPrincipals, so a retry could not find it.
    if (certificateId) {
      await ignoreNotFound(
        this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' })),
      );
    }
    await ignoreNotFound(
      this.client.send(new DetachThingPrincipalCommand({ thingName, principal })),
    );
    // Cognito identities and other non-certificate principals only need detaching.
    if (!certificateId) return;
    await ignoreNotFound(
      this.client.send(new DetachPolicyCommand({ policyName: this.policyName, target: principal })),
    );
    await this.deleteCertificate(certificateId);
  }

  private deleteCertificate(certificateId: string): Promise<void> {
    // forceDelete also removes policies attached outside this class; it still refuses while
    // the certificate is attached to a thing, which is the transient conflict retried here.
    return this.retryWhile(
      (error) => isAwsError(error, 'DeleteConflictException'),
      () =>
        ignoreNotFound(
          this.client.send(new DeleteCertificateCommand({ certificateId, forceDelete: true })),
        ),
    );
  }

  /** Best effort; returns what failed so the caller can report it next to the original error. */
  private async rollbackCertificate(created: {
    thingName: string;
    certificateArn: string;
    certificateId: string;
    policyAttached: boolean;
    thingAttachAttempted: boolean;
  }): Promise<string[]> {
    const { thingName, certificateArn, certificateId } = created;
    const problems: string[] = [];
    const attempt = async (label: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        problems.push(`${label}: ${describe(error)}`);
      }
    };

    await attempt('UpdateCertificate INACTIVE', () =>
      ignoreNotFound(
        this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' })),
      ),
    );
    // A failed AttachThingPrincipal may still have taken effect (e.g. a timeout after the
    // service applied it); detaching is harmless if it did not.
    if (created.thingAttachAttempted) {
      await attempt('DetachThingPrincipal', () =>
        ignoreNotFound(
          this.client.send(
            new DetachThingPrincipalCommand({ thingName, principal: certificateArn }),
          ),
        ),
      );
    }
    if (created.policyAttached) {
      await attempt('DetachPolicy', () =>
        ignoreNotFound(
          this.client.send(
            new DetachPolicyCommand({ policyName: this.policyName, target: certificateArn }),
          ),
        ),
      );
    }
    await attempt('DeleteCertificate', () => this.deleteCertificate(certificateId));
    return problems;
  }

  private async retryWhile<T>(
    isTransient: (error: unknown) => boolean,
    action: () => Promise<T>,
  ): Promise<T> {
    for (const delay of this.retryDelaysMs) {
      try {
        return await action();
      } catch (error) {
        if (!isTransient(error)) throw error;
        await this.sleep(delay);
      }
    }
    return action();
  }

  private async step<T>(
    deviceId: string,
    operation: 'provision' | 'revoke' | 'claim',
    label: string,
    action: () => Promise<T>,
  ): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (error instanceof IotProvisioningError) throw error;
      throw new IotProvisioningError(
        `${operation} ${deviceId}: ${label} failed: ${describe(error)}`,
        { cause: error },
      );
    }
  }
}

function assertDeviceId(deviceId: string): void {
  if (typeof deviceId !== 'string' || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new InvalidDeviceIdError(
      `invalid device id ${JSON.stringify(deviceId)}: expected 1-128 characters of [a-zA-Z0-9:_-]`,
    );
  }
}

/** `arn:aws:iot:<region>:<account>:cert/<id>` -> `<id>`; undefined for other principals. */
function certificateIdFromArn(principal: string): string | undefined {
  const match = /^arn:[^:]+:iot:[^:]*:[^:]*:cert\/([0-9a-fA-F]+)$/.exec(principal);
  return match?.[1];
}

/** Matches by name, not instanceof, so errors from a second bundled SDK copy still count. */
function isAwsError(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

async function ignoreNotFound(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
