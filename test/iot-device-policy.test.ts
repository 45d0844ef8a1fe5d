import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  authorize,
  type ConnectionContext,
  claimPolicyResource,
  devicePolicyResource,
  evaluate,
  type MqttOperation,
  resolvePolicyDocument,
} from './support/iot-policy.ts';

/**
 * The AWS IoT device policy (infra/iot-device-policy.yml, the resource `osls package` puts in
 * the template; test/deploy.test.ts checks they are the same) evaluated with AWS's documented
 * semantics (test/support/iot-policy.ts names the documents) against every MQTT operation
 * the firmware performs, printed by the firmware core itself (firmware/tools), and against
 * what a hostile or broken device might try.
 */

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');
const pseudo = { partition: 'aws', region: 'eu-west-1', accountId: '123456789012' };
const arn = `arn:${pseudo.partition}:iot:${pseudo.region}:${pseudo.accountId}`;

let policy: any;
let claimPolicy: any;

/** Registry of things, each with its own certificate, as the provisioner creates them. */
const registry = new Map<string, Set<string>>([
  ['COMP_001', new Set(['cert-comp-001'])],
  ['COMP_002', new Set(['cert-comp-002'])],
  ['plant-7:pump_02', new Set(['cert-pump'])],
]);

const connection = (
  clientId: string,
  certificate: string,
): Omit<ConnectionContext, 'connectAttributes' | 'lastWillTopicArn'> => ({
  clientId,
  certificate,
  registry,
});

async function firmwareOperations(deviceId: string): Promise<MqttOperation[]> {
  // Built by the global setup with the virtual device.
  const { stdout } = await run(path.join(repoRoot, 'firmware/build/mqtt-operations'), [deviceId]);
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

beforeAll(async () => {
  const resource = await devicePolicyResource('prod');
  policy = resolvePolicyDocument(resource.Properties.PolicyDocument, pseudo);
  const claim = await claimPolicyResource('prod');
  claimPolicy = resolvePolicyDocument(claim.Properties.PolicyDocument, pseudo);
});

describe('the policy evaluator follows the AWS IoT documentation', () => {
  const docPolicy = (statements: any[]) => ({ Version: '2012-10-17', Statement: statements });
  const anyone = (clientId: string): ConnectionContext => ({
    clientId,
    certificate: 'cert-x',
    registry: new Map([['thing1', new Set(['cert-x'])]]),
  });

  it('treats * as any characters, ? as one, + and # as literals, $(*) as a literal *', () => {
    const p = docPolicy([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/a/*` },
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/b/?` },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${arn}:topicfilter/c/+/d` },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${arn}:topicfilter/e/$(*)` },
    ]);
    const decide = (action: string, resource: string) =>
      evaluate(p, anyone('c1'), { action, resource: `${arn}:${resource}` });
    expect(decide('iot:Publish', 'topic/a/x/y/z')).toBe('allow');
    expect(decide('iot:Publish', 'topic/ab')).toBe('implicit-deny');
    expect(decide('iot:Publish', 'topic/b/1')).toBe('allow');
    expect(decide('iot:Publish', 'topic/b/12')).toBe('implicit-deny');
    expect(decide('iot:Subscribe', 'topicfilter/c/+/d')).toBe('allow');
    expect(decide('iot:Subscribe', 'topicfilter/c/x/d')).toBe('implicit-deny');
    expect(decide('iot:Subscribe', 'topicfilter/e/*')).toBe('allow');
    expect(decide('iot:Subscribe', 'topicfilter/e/x')).toBe('implicit-deny');
    // A topic resource is not a topic filter resource.
    expect(decide('iot:Subscribe', 'topic/a/x')).toBe('implicit-deny');
  });

  it('lets an explicit Deny win and ignores a statement whose variable has no value', () => {
    // "Connect policy examples": deny client1, allow a client id that names a thing.
    const p = docPolicy([
      { Effect: 'Deny', Action: ['iot:Connect'], Resource: [`${arn}:client/thing1`] },
      {
        Effect: 'Allow',
        Action: ['iot:Connect'],
        Resource: [`${arn}:client/\${iot:Connection.Thing.ThingName}`],
      },
      { Effect: 'Allow', Action: 'iot:*', Resource: `${arn}:topic/\${iot:ClientId}/*` },
    ]);
    const connect = (clientId: string) =>
      evaluate(p, anyone(clientId), {
        action: 'iot:Connect',
        resource: `${arn}:client/${clientId}`,
      });
    expect(connect('thing1')).toBe('explicit-deny');
    // No thing of that name: ThingName does not resolve and the Allow does not apply.
    expect(connect('stranger')).toBe('implicit-deny');
    expect(
      evaluate(p, anyone('stranger'), {
        action: 'iot:Receive',
        resource: `${arn}:topic/stranger/x`,
      }),
    ).toBe('allow');
    expect(
      evaluate(p, anyone('stranger'), { action: 'iot:Receive', resource: `${arn}:topic/other/x` }),
    ).toBe('implicit-deny');
  });

  it('needs iot:RetainPublish besides iot:Publish for a retained message and a retained Will', () => {
    // "Retained message policy examples".
    const p = docPolicy([
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/device1` },
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/will` },
    ]);
    const session = { clientId: 'device1', certificate: 'c', registry: new Map() };
    const retained: MqttOperation = { op: 'publish', topic: 'will', retain: true };
    expect(authorize(p, session, { ...retained, retain: false }, arn).allowed).toBe(true);
    expect(authorize(p, session, retained, arn).allowed).toBe(false);
    const withWill: MqttOperation = {
      op: 'connect',
      client_id: 'device1',
      clean_session: true,
      will_topic: 'will',
      will_retain: true,
    };
    expect(authorize(p, session, withWill, arn).allowed).toBe(false);
    p.Statement[1].Action = ['iot:Publish', 'iot:RetainPublish'];
    expect(authorize(p, session, withWill, arn).allowed).toBe(true);
  });
});

describe('the device policy (infra/iot-device-policy.yml)', () => {
  for (const [deviceId, certificate] of [
    ['COMP_001', 'cert-comp-001'],
    ['plant-7:pump_02', 'cert-pump'],
  ] as const) {
    it(`allows every MQTT operation the firmware performs (device ${deviceId})`, async () => {
      const operations = await firmwareOperations(deviceId);
      // The recorder covers each kind: connect with a retained Will, retained status and
      // discovery, single states, telemetry batches, the command subscription and delivery.
      const kinds = new Set(
        operations.map((o) =>
          o.op === 'publish' ? `publish ${o.topic.split('/').at(-1)} ${o.retain}` : o.op,
        ),
      );
      expect([...kinds].sort()).toEqual(
        [
          'connect',
          'publish discovery true',
          'publish state false',
          'publish status true',
          'publish telemetry false',
          'receive',
          'subscribe',
        ].sort(),
      );
      const connect = operations.find((o) => o.op === 'connect');
      expect(connect).toMatchObject({
        will_topic: `devices/${deviceId}/status`,
        will_retain: true,
      });
      const refused = operations
        .map((operation) => ({
          operation,
          ...authorize(policy, connection(deviceId, certificate), operation, arn),
        }))
        .filter((result) => !result.allowed);
      expect(refused).toEqual([]);
    });
  }

  it('denies the hostile matrix', () => {
    const own = connection('COMP_001', 'cert-comp-001');
    const basicIngest = (rule: string, topic: string) =>
      `$aws/rules/easysmart_prod_${rule}/${topic}`;
    const hostile: Array<[string, typeof own, MqttOperation]> = [
      [
        'another thing: publish its status',
        own,
        { op: 'publish', topic: 'devices/COMP_002/status', retain: false },
      ],
      [
        'another thing: retain its status',
        own,
        { op: 'publish', topic: 'devices/COMP_002/status', retain: true },
      ],
      [
        'another thing: publish its telemetry',
        own,
        { op: 'publish', topic: 'devices/COMP_002/telemetry', retain: false },
      ],
      [
        'another thing: publish its state',
        own,
        { op: 'publish', topic: 'devices/COMP_002/relay_main/state', retain: false },
      ],
      [
        'another thing: command it',
        own,
        { op: 'publish', topic: 'devices/COMP_002/relay_main/set', retain: false },
      ],
      [
        'another thing: subscribe to its commands',
        own,
        { op: 'subscribe', filter: 'devices/COMP_002/+/set' },
      ],
      [
        'another thing: receive its commands',
        own,
        { op: 'receive', topic: 'devices/COMP_002/relay_main/set' },
      ],
      [
        'a thing whose id starts with ours',
        own,
        { op: 'publish', topic: 'devices/COMP_0011/telemetry', retain: false },
      ],
      [
        'another thing: Basic Ingest its readings',
        own,
        {
          op: 'publish',
          topic: basicIngest('telemetry', 'devices/COMP_002/telemetry'),
          retain: false,
        },
      ],
      ['subscribe #', own, { op: 'subscribe', filter: '#' }],
      ['subscribe devices/#', own, { op: 'subscribe', filter: 'devices/#' }],
      ['subscribe every status (+)', own, { op: 'subscribe', filter: 'devices/+/status' }],
      ['subscribe every command (+)', own, { op: 'subscribe', filter: 'devices/+/+/set' }],
      ['subscribe + at the top', own, { op: 'subscribe', filter: '+/COMP_001/#' }],
      [
        'publish to a topic literally named +',
        own,
        { op: 'publish', topic: 'devices/+/telemetry', retain: false },
      ],
      ['subscribe $aws/#', own, { op: 'subscribe', filter: '$aws/#' }],
      [
        'its own shadow',
        own,
        { op: 'publish', topic: '$aws/things/COMP_001/shadow/update', retain: false },
      ],
      [
        'another shadow',
        own,
        { op: 'publish', topic: '$aws/things/COMP_002/shadow/update', retain: false },
      ],
      ['lifecycle events', own, { op: 'subscribe', filter: '$aws/events/#' }],
      [
        'receive lifecycle events',
        own,
        { op: 'receive', topic: '$aws/events/presence/connected/COMP_002' },
      ],
      [
        'retain a reading',
        own,
        { op: 'publish', topic: 'devices/COMP_001/telemetry', retain: true },
      ],
      [
        'retain a state',
        own,
        { op: 'publish', topic: 'devices/COMP_001/temperature/state', retain: true },
      ],
      [
        'retain a command',
        own,
        { op: 'publish', topic: 'devices/COMP_001/relay_main/set', retain: true },
      ],
      ['outside devices/', own, { op: 'publish', topic: 'COMP_001/telemetry', retain: false }],
      [
        'its own certificate, another thing as client id',
        connection('COMP_002', 'cert-comp-001'),
        { op: 'connect', client_id: 'COMP_002', clean_session: true },
      ],
      [
        'a client id that is no thing',
        connection('spy', 'cert-comp-001'),
        { op: 'connect', client_id: 'spy', clean_session: true },
      ],
      [
        'a thing name differing in case',
        connection('comp_001', 'cert-comp-001'),
        { op: 'connect', client_id: 'comp_001', clean_session: true },
      ],
      [
        'a certificate attached to no thing',
        connection('COMP_001', 'cert-unattached'),
        { op: 'connect', client_id: 'COMP_001', clean_session: true },
      ],
      [
        'its own client id, a Will on another thing',
        own,
        {
          op: 'connect',
          client_id: 'COMP_001',
          clean_session: true,
          will_topic: 'devices/COMP_002/status',
          will_retain: true,
        },
      ],
      [
        'its own client id, a retained Will on its telemetry',
        own,
        {
          op: 'connect',
          client_id: 'COMP_001',
          clean_session: true,
          will_topic: 'devices/COMP_001/telemetry',
          will_retain: true,
        },
      ],
      // Sessions under a client id that is not its thing: every operation is denied too.
      [
        'a publish under a borrowed client id',
        connection('COMP_002', 'cert-comp-001'),
        { op: 'publish', topic: 'devices/COMP_002/telemetry', retain: false },
      ],
      [
        'a subscribe under a client id that is no thing',
        connection('spy', 'cert-comp-001'),
        { op: 'subscribe', filter: 'devices/spy/+/set' },
      ],
    ];
    const allowed = hostile
      .filter(([, session, operation]) => authorize(policy, session, operation, arn).allowed)
      .map(([name]) => name);
    expect(allowed).toEqual([]);
  });
});

describe('the claim policy of fleet provisioning (infra/iot-fleet-provisioning.yml)', () => {
  // The claim certificate is attached to no thing; a device holding it connects as
  // easysmart-claim-<its id> (CLAIM_CLIENT_ID_PREFIX).
  const claimSession = connection('easysmart-claim-COMP_001', 'cert-claim');
  const template = '$aws/provisioning-templates/easysmart-prod-fleet/provision/json';
  const certificates = '$aws/certificates/create/json';

  it("allows the firmware's claim exchange: a certificate, then RegisterThing with the platform's template", async () => {
    // Printed by the firmware core's ClaimProvisioner (firmware/core/claim.hpp), which
    // follows "Device provisioning MQTT API" (iot/latest/developerguide/fleet-provision-api).
    const { stdout } = await run(path.join(repoRoot, 'firmware/build/mqtt-operations'), [
      '--claim',
      'easysmart-prod-fleet',
      'COMP_001',
    ]);
    const recorded: MqttOperation[] = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(recorded.map((o) => o.op)).toEqual([
      'connect',
      'subscribe',
      'subscribe',
      'subscribe',
      'subscribe',
      'publish',
      'receive',
      'publish',
      'receive',
    ]);
    // AWS IoT may answer either way: the refusals must reach the device too.
    const exchange: MqttOperation[] = [
      ...recorded,
      { op: 'receive', topic: `${certificates}/rejected` },
      { op: 'receive', topic: `${template}/rejected` },
    ];
    const refused = exchange.filter(
      (operation) => !authorize(claimPolicy, claimSession, operation, arn).allowed,
    );
    expect(refused).toEqual([]);
  });

  it('lets the claim do nothing else', () => {
    const hostile: Array<[string, typeof claimSession, MqttOperation]> = [
      [
        "connect as a device (would close that device's session)",
        connection('COMP_001', 'cert-claim'),
        { op: 'connect', client_id: 'COMP_001', clean_session: true },
      ],
      [
        'connect under any other client id',
        connection('spy', 'cert-claim'),
        { op: 'connect', client_id: 'spy', clean_session: true },
      ],
      [
        'connect with a Will on a device topic',
        claimSession,
        {
          op: 'connect',
          client_id: 'easysmart-claim-COMP_001',
          clean_session: true,
          will_topic: 'devices/COMP_001/status',
          will_retain: true,
        },
      ],
      [
        'publish a reading',
        claimSession,
        { op: 'publish', topic: 'devices/COMP_001/telemetry', retain: false },
      ],
      [
        'publish a status',
        claimSession,
        { op: 'publish', topic: 'devices/COMP_001/status', retain: true },
      ],
      [
        'Basic Ingest a reading',
        claimSession,
        {
          op: 'publish',
          topic: '$aws/rules/easysmart_prod_telemetry/devices/COMP_001/telemetry',
          retain: false,
        },
      ],
      ['subscribe #', claimSession, { op: 'subscribe', filter: '#' }],
      ['subscribe devices/#', claimSession, { op: 'subscribe', filter: 'devices/#' }],
      [
        'receive a command',
        claimSession,
        { op: 'receive', topic: 'devices/COMP_001/relay_main/set' },
      ],
      [
        'another provisioning template',
        claimSession,
        {
          op: 'publish',
          topic: '$aws/provisioning-templates/other-template/provision/json',
          retain: false,
        },
      ],
      [
        "another template's answers",
        claimSession,
        { op: 'subscribe', filter: '$aws/provisioning-templates/+/provision/json/accepted' },
      ],
      [
        'every certificate answer (#)',
        claimSession,
        { op: 'subscribe', filter: '$aws/certificates/#' },
      ],
      [
        'a certificate from a CSR (not the exchange the platform uses)',
        claimSession,
        { op: 'publish', topic: '$aws/certificates/create-from-csr/json', retain: false },
      ],
      [
        'the CBOR API',
        claimSession,
        { op: 'publish', topic: '$aws/certificates/create/cbor', retain: false },
      ],
      [
        'a retained certificate request',
        claimSession,
        { op: 'publish', topic: certificates, retain: true },
      ],
      [
        'publish to an answer topic',
        claimSession,
        { op: 'publish', topic: `${template}/accepted`, retain: false },
      ],
      [
        'a shadow',
        claimSession,
        { op: 'publish', topic: '$aws/things/COMP_001/shadow/update', retain: false },
      ],
      ['lifecycle events', claimSession, { op: 'subscribe', filter: '$aws/events/#' }],
    ];
    const allowed = hostile
      .filter(([, session, operation]) => authorize(claimPolicy, session, operation, arn).allowed)
      .map(([name]) => name);
    expect(allowed).toEqual([]);
  });

  it('gives a device certificate nothing of the claim, and the claim nothing of a device', () => {
    // The device policy does not open the provisioning API to a provisioned device.
    const own = connection('COMP_001', 'cert-comp-001');
    expect(
      authorize(policy, own, { op: 'publish', topic: certificates, retain: false }, arn).allowed,
    ).toBe(false);
    expect(
      authorize(policy, own, { op: 'publish', topic: template, retain: false }, arn).allowed,
    ).toBe(false);
  });
});
