import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimPolicyResource, devicePolicyResource, iotResource } from './support/iot-policy.ts';

/**
 * The AWS shape of the platform, checked on what `osls package --stage prod` produces
 * offline (no AWS account involved): the CloudFormation template and the function zips.
 */

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type Json = any;
interface Resource {
  Type: string;
  Properties: Json;
  Condition?: string;
  DependsOn?: string | string[];
}

/** Zipped bytes each function may reach; a new function gets a limit when it is added. */
const BUNDLE_LIMITS: Record<string, number> = {
  // The password policy's list of about 49,000 common passwords, the WebSocket client that
  // closes an ended session's connections, and the Secrets Manager client.
  auth: 700_000,
  devices: 900_000,
  ingest: 700_000,
  live: 700_000,
  docs: 250_000,
  migrate: 600_000,
  // TensorFlow.js and its WASM backend.
  ml: 2_500_000,
  'ml-training': 2_500_000,
  // Predicts in plain TypeScript; only its scheduled trainer carries TensorFlow.js.
  maintenance: 600_000,
  'maintenance-training': 2_500_000,
  timeseries: 700_000,
};
const DEFAULT_BUNDLE_LIMIT = 5_000_000;

const DOCS_LOG_GROUP =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub placeholders
  'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/easysmart-prod-docs:*';

let workDir: string;
let template: { Resources: Record<string, Resource>; Conditions?: Json };
let service: { functions: Record<string, Json> };

const resources = (type: string) =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

function osls(args: string[], env: Record<string, string> = {}) {
  return run(
    process.execPath,
    [path.join(repoRoot, 'node_modules/osls/bin/serverless.js'), ...args],
    {
      cwd: repoRoot,
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        SLS_INTERACTIVE_SETUP_DISABLE: '1',
        // No credentials at all: packaging must not need AWS.
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
        ...env,
      },
    },
  );
}

/** Entry names and uncompressed sizes from a zip's central directory. */
async function zipEntries(file: string): Promise<Map<string, number>> {
  const zip = await readFile(file);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error(`${file} is not a zip`);
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    entries.set(name, zip.readUInt32LE(at + 24));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The ThingName policy variable, as written inside Fn::Sub (escaped) or plain. */
const THING = /\$\{!?iot:Connection\.Thing\.ThingName\}/;

function policyResources(statement: Json): string[] {
  return [statement.Resource]
    .flat()
    .map((resource: Json) =>
      typeof resource === 'string' ? resource : (resource?.['Fn::Sub'] ?? JSON.stringify(resource)),
    );
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'easysmart-package-'));
  await mkdir(path.join(workDir, 'tmp'));
  await osls(['package', '--stage', 'prod', '--package', path.join(workDir, 'package')], {
    // Its own esbuild folder, so a concurrent local stack's bundles are left alone.
    ESBUILD_WORK_FOLDER: path.relative(repoRoot, path.join(workDir, 'esbuild')),
    // serverless-esbuild leaves each function's zip staging folder in the temporary
    // directory; this one goes with workDir.
    TMPDIR: path.join(workDir, 'tmp'),
  });
  template = JSON.parse(
    await readFile(path.join(workDir, 'package/cloudformation-template-update-stack.json'), 'utf8'),
  );
  service = JSON.parse(
    await readFile(path.join(workDir, 'package/serverless-state.json'), 'utf8'),
  ).service;
}, 180_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('osls package --stage prod (offline)', () => {
  it('device topic rules put messages on the ingest stream, never invoke Lambda directly', () => {
    const stream = (service as Json).custom.iotRules.stream;
    const declared = Object.values(stream.rules) as Json[];
    expect(declared.map((rule) => rule.sql).join(' ')).toMatch(/'devices\/\+\/telemetry'/);
    for (const filter of ['+/+/state', '+/telemetry', '+/discovery', '+/status']) {
      expect(declared.some((rule) => rule.sql.includes(`FROM 'devices/${filter}'`))).toBe(true);
    }
    const rules = resources('AWS::IoT::TopicRule').map(([, rule]) => rule.Properties);
    expect(rules.map((rule) => rule.RuleName).sort()).toEqual(
      declared.map((rule) => rule.name).sort(),
    );
    // No function is a rule's action: osls's `iot` events are gone, and the one permission
    // that lets AWS IoT invoke a function is the fleet provisioning template's, for its hook.
    for (const fn of Object.values(service.functions) as Json[]) {
      expect((fn.events ?? []).filter((event: Json) => event.iot)).toEqual([]);
    }
    const invokePermissions = resources('AWS::Lambda::Permission').filter(
      ([, permission]) => permission.Properties.Principal === 'iot.amazonaws.com',
    );
    expect(invokePermissions.map(([id]) => id)).toEqual(['ProvisioningHookInvokePermission']);
    expect(invokePermissions[0]?.[1].Properties.SourceArn['Fn::Sub']).toMatch(
      /:provisioningtemplate\/[^/*]+$/,
    );
    for (const rule of rules) {
      expect(rule.TopicRulePayload.Sql).toBe(
        declared.find((event) => event.name === rule.RuleName).sql,
      );
      expect(rule.TopicRulePayload.AwsIotSqlVersion).toBe('2016-03-23');
      // One action, and it is the stream, partitioned by device id (topic level 2).
      expect(rule.TopicRulePayload.Actions, rule.RuleName).toEqual([
        {
          Kinesis: {
            StreamName: { Ref: 'IngestStream' },
            // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT substitution template
            PartitionKey: '${topic(2)}',
            RoleArn: { 'Fn::GetAtt': ['IotRuleStreamRole', 'Arn'] },
          },
        },
      ]);
      expect(rule.TopicRulePayload.ErrorAction, rule.RuleName).toEqual({
        Sqs: {
          QueueUrl: { Ref: 'IotDeadLetterQueue' },
          RoleArn: { 'Fn::GetAtt': ['IotRuleErrorActionRole', 'Arn'] },
          UseBase64: false,
        },
      });
    }
    expect(template.Resources.IngestStream?.Type).toBe('AWS::Kinesis::Stream');
    expect(template.Resources.IotDeadLetterQueue?.Type).toBe('AWS::SQS::Queue');
    // The rules' role may put records on that stream and do nothing else.
    const streamRole = template.Resources.IotRuleStreamRole?.Properties;
    expect(streamRole.Policies.flatMap((p: Json) => p.PolicyDocument.Statement)).toEqual([
      {
        Effect: 'Allow',
        Action: 'kinesis:PutRecord',
        Resource: { 'Fn::GetAtt': ['IngestStream', 'Arn'] },
      },
    ]);
  });

  it('ingest reads the stream in batches with ReportBatchItemFailures and a dead-letter destination', () => {
    const mappings = resources('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
    const ingest = mappings.filter((mapping) =>
      JSON.stringify(mapping.FunctionName).includes('IngestLambdaFunction'),
    );
    expect(ingest).toHaveLength(1);
    const mapping = ingest[0];
    // Through the stream's enhanced fan-out consumer, with no batching window: records are
    // pushed as they arrive and invoked at once (AWS Lambda developer guide, "Using Lambda
    // with Kinesis Data Streams"; a standard iterator polls a caught-up shard once a second),
    // which is how the local rules emulator delivers them.
    expect(mapping.EventSourceArn).toEqual({ Ref: 'IngestStreamConsumer' });
    expect(template.Resources.IngestStreamConsumer).toEqual({
      Type: 'AWS::Kinesis::StreamConsumer',
      Properties: {
        StreamARN: { 'Fn::GetAtt': ['IngestStream', 'Arn'] },
        ConsumerName: expect.stringContaining('ingest'),
      },
    });
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.BatchSize).toBeGreaterThan(100);
    expect(mapping.MaximumBatchingWindowInSeconds).toBe(0);
    expect(mapping.StartingPosition).toBe('TRIM_HORIZON');
    // Bounded retries: a record that keeps failing ends in the queue instead of holding up
    // its shard for the stream's whole retention.
    expect(mapping.MaximumRetryAttempts).toBeGreaterThan(0);
    expect(mapping.MaximumRecordAgeInSeconds).toBeGreaterThan(0);
    expect(mapping.DestinationConfig).toEqual({
      OnFailure: { Destination: { 'Fn::GetAtt': ['IotDeadLetterQueue', 'Arn'] } },
    });
    // Its own role reads the stream and writes the dead-letter queue (the shared role that
    // osls would have given those permissions is not used).
    const role = template.Resources.IngestIamRole?.Properties;
    const statements = role.Policies.flatMap((p: Json) => p.PolicyDocument.Statement);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']),
        Resource: { 'Fn::GetAtt': ['IngestStream', 'Arn'] },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: expect.arrayContaining(['kinesis:SubscribeToShard']),
        Resource: { Ref: 'IngestStreamConsumer' },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['sqs:SendMessage'],
        Resource: { 'Fn::GetAtt': ['IotDeadLetterQueue', 'Arn'] },
      }),
    );
  });

  it('routes every httpApi and websocket event', () => {
    const events = Object.values(service.functions).flatMap((fn: Json) => fn.events ?? []);
    const httpRoutes = events.filter((e: Json) => e.httpApi).map((e: Json) => e.httpApi);
    const wsRoutes = events
      .filter((e: Json) => e.websocket)
      .map((e: Json) => (typeof e.websocket === 'string' ? e.websocket : e.websocket.route));
    const routes = resources('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    const httpKeys = routes.filter((r) => r.ApiId.Ref === 'HttpApi').map((r) => r.RouteKey);
    const wsKeys = routes.filter((r) => r.ApiId.Ref === 'WebsocketsApi').map((r) => r.RouteKey);
    expect(httpKeys.sort()).toEqual(
      httpRoutes.map((r: Json) => (typeof r === 'string' ? r : `${r.method} ${r.path}`)).sort(),
    );
    expect(httpKeys).toContain('GET /api/openapi.json');
    expect(wsKeys.sort()).toEqual([...wsRoutes].sort());
    expect(wsKeys).toEqual(expect.arrayContaining(['$connect', '$disconnect', '$default']));
  });

  it('lets a device use only topics under its own thing name', () => {
    // The claim policy is for no thing (test/iot-device-policy.test.ts evaluates it).
    const policies = resources('AWS::IoT::Policy').filter(([id]) => id !== 'IotClaimPolicy');
    expect(policies.length).toBeGreaterThan(0);
    for (const [id, policy] of policies) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        expect(statement.Effect, id).toBe('Allow');
        for (const resource of policyResources(statement)) {
          const scope = /:(topic|topicfilter|client)\/(.*)$/.exec(resource);
          expect(scope, `${id}: ${resource}`).not.toBeNull();
          const name = scope?.[2] ?? '';
          // Any wildcard must come after the device's own id.
          const thing = THING.exec(name);
          expect(thing, `${id}: ${resource} is not scoped to the thing`).not.toBeNull();
          const wildcard = name.search(/[*+#]/);
          if (wildcard >= 0) expect(wildcard, resource).toBeGreaterThan(thing?.index ?? 0);
        }
      }
    }
  });

  it('gives each function a role of its own, with no wildcard action', () => {
    const functions = resources('AWS::Lambda::Function');
    const roleIds = functions.map(([, fn]) => fn.Properties.Role?.['Fn::GetAtt']?.[0]);
    expect(roleIds.every(Boolean)).toBe(true);
    expect(new Set(roleIds).size).toBe(functions.length);
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
    // No statement may grant '*' actions; '*' resources only where AWS has no narrower form.
    const starResourceAllowed = new Set(['iot:CreateKeysAndCertificate']);
    for (const [id, role] of resources('AWS::IAM::Role')) {
      for (const policy of role.Properties.Policies ?? []) {
        for (const statement of policy.PolicyDocument.Statement) {
          const actions: string[] = [statement.Action].flat();
          for (const action of actions) {
            expect(action, id).not.toBe('*');
            expect(action, id).not.toMatch(/:\*$/);
          }
          if ([statement.Resource].flat().includes('*')) {
            for (const action of actions)
              expect(starResourceAllowed, `${id}: ${action}`).toContain(action);
          }
        }
      }
    }
    // A function without statements (docs) may only write to its own log group.
    const docs = template.Resources.DocsIamRole?.Properties.Policies[0].PolicyDocument.Statement;
    expect(docs).toEqual([
      expect.objectContaining({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: [
          {
            'Fn::Sub': DOCS_LOG_GROUP,
          },
        ],
      }),
    ]);
    // auth closes the WebSockets of an ended session, and does nothing else with them.
    const auth = template.Resources.AuthIamRole?.Properties.Policies[0].PolicyDocument.Statement;
    expect(auth).toContainEqual(
      expect.objectContaining({
        Action: ['execute-api:ManageConnections'],
        Resource: { 'Fn::Sub': expect.stringMatching(/\/DELETE\/@connections\/\*$/) },
      }),
    );
  });

  it('gives each function only the secrets it uses, by name, readable by its role alone', () => {
    const functionId = (name: string) =>
      `${name.replace(/-(.)/g, (_, c: string) => `Dash${c}`).replace(/^./, (c) => c.toUpperCase())}LambdaFunction`;
    const env = (name: string): Record<string, Json> =>
      template.Resources[functionId(name)]?.Properties.Environment?.Variables ?? {};
    const secretParams = {
      database: 'easysmart/prod/database-app',
      databaseAdmin: 'easysmart/prod/database-admin',
      influx: 'easysmart/prod/influx',
    };
    // What each function reads: its handler's dependencies (databasePool, influxClient, the
    // migrations), and nothing for docs.
    const expected: Record<string, Array<keyof typeof secretParams>> = {
      auth: ['database'],
      devices: ['database', 'influx'],
      ingest: ['database', 'influx'],
      live: ['database'],
      ml: ['database', 'influx'],
      'ml-training': ['database', 'influx'],
      maintenance: ['database', 'influx'],
      'maintenance-training': ['database', 'influx'],
      timeseries: ['database', 'influx'],
      docs: [],
      migrate: ['database', 'databaseAdmin', 'influx'],
      alarms: ['database'],
      'alarm-notifier': ['database'],
      'anomaly-scoring': ['database', 'influx'],
      audit: ['database'],
      export: ['database', 'influx'],
      patterns: ['database', 'influx'],
      'provisioning-hook': ['database'],
      'claim-retirer': ['database'],
    };
    expect(Object.keys(expected).sort()).toEqual(Object.keys(service.functions).sort());
    for (const [name, secrets] of Object.entries(expected)) {
      const variables = env(name);
      // Secrets travel by name: no value, no dynamic reference to one, no password in a URL.
      const named = Object.entries(variables)
        .filter(([key]) => key.endsWith('_SECRET'))
        .map(([, value]) => value);
      expect(named.sort(), name).toEqual(secrets.map((secret) => secretParams[secret]).sort());
      for (const [key, value] of Object.entries(variables)) {
        const text = JSON.stringify(value);
        if (key === 'JWT_PRIVATE_JWK') continue;
        expect(text, `${name} ${key}`).not.toContain('{{resolve:secretsmanager');
        expect(text, `${name} ${key}`).not.toMatch(/postgresql:\/\/[^@/]*:[^@/]*@/);
      }
      if (secrets.length > 0) expect(variables.SECRET_STORE, name).toBe('aws-secrets-manager');
      // The role may read exactly those secrets (a name plus Secrets Manager's suffix).
      const roleId: string = template.Resources[functionId(name)]?.Properties.Role['Fn::GetAtt'][0];
      const readable = template.Resources[
        roleId
      ]?.Properties.Policies[0].PolicyDocument.Statement.filter((statement: Json) =>
        [statement.Action].flat().includes('secretsmanager:GetSecretValue'),
      ).map((statement: Json) => statement.Resource['Fn::Sub'] as string);
      expect(readable.sort(), name).toEqual(
        secrets
          .map(
            (secret) =>
              `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secretParams[secret]}-??????`,
          )
          .sort(),
      );
    }
    // docs gets nothing beyond the stage and log level.
    expect(Object.keys(env('docs')).sort()).toEqual(['LOG_LEVEL', 'STAGE']);
    // The signing key: auth alone, as a deploy-time reference; verifiers get the public JWKS.
    for (const name of Object.keys(expected)) {
      const variables = env(name);
      if (name === 'auth') {
        expect(variables.JWT_PRIVATE_JWK).toBe(
          '{{resolve:secretsmanager:easysmart/prod/jwt-private-jwk}}',
        );
      } else {
        expect(variables.JWT_PRIVATE_JWK, name).toBeUndefined();
      }
      expect(variables.JWT_PUBLIC_JWKS !== undefined, name).toBe(
        ['devices', 'live', 'ml', 'maintenance', 'alarms', 'audit', 'export', 'patterns'].includes(
          name,
        ),
      );
    }
    expect(env('live').JWT_PUBLIC_JWKS).toBe('{{resolve:ssm:/easysmart/prod/jwt-public-jwks}}');
    expect(env('ingest').WEBSOCKET_MANAGEMENT_ENDPOINT).toEqual({
      'Fn::Join': [
        '',
        [
          'https://',
          { Ref: 'WebsocketsApi' },
          '.execute-api.',
          { Ref: 'AWS::Region' },
          '.amazonaws.com/prod',
        ],
      ],
    });
  });

  it('runs on nodejs22.x arm64 and migrates on every deploy', () => {
    for (const [id, fn] of resources('AWS::Lambda::Function')) {
      expect(fn.Properties.Runtime, id).toBe('nodejs22.x');
      expect(fn.Properties.Architectures, id).toEqual(['arm64']);
    }
    const migrations = template.Resources.DatabaseMigrations;
    expect(migrations?.Properties.ServiceToken).toEqual({
      'Fn::GetAtt': ['MigrateLambdaFunction', 'Arn'],
    });
    // A fresh value per deploy makes CloudFormation call the function every time.
    expect(migrations?.Properties.DeployId).toMatch(/\S{8,}/);
  });

  it('declares the optional database, storage and alarms', () => {
    const conditional = Object.entries(template.Resources)
      .filter(([id]) => id.startsWith('Database') && id !== 'DatabaseMigrations')
      .map(([, r]) => r.Condition);
    expect(conditional.length).toBeGreaterThanOrEqual(5);
    expect(new Set(conditional)).toEqual(new Set(['CreateDatabase']));
    expect(template.Resources.DatabaseProxy?.Properties.RequireTLS).toBe(true);
    for (const bucket of ['ModelBucket', 'DashboardBucket']) {
      const properties = template.Resources[bucket]?.Properties;
      expect(properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(properties.BucketEncryption).toBeDefined();
    }
    const origin =
      template.Resources.DashboardDistribution?.Properties.DistributionConfig.Origins[0];
    expect(origin.OriginAccessControlId).toEqual({
      'Fn::GetAtt': ['DashboardOriginAccessControl', 'Id'],
    });
    const alarms = resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.map((a) => a.MetricName)).toEqual(
      expect.arrayContaining(['ApproximateNumberOfMessagesVisible', 'RejectedMessages']),
    );
    for (const [id] of resources('AWS::Lambda::Function')) {
      expect(alarms, `errors alarm for ${id}`).toContainEqual(
        expect.objectContaining({
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: id } }],
        }),
      );
    }
  });

  it('throttles the API stages, sign-up and sign-in more strictly, and allows only the dashboard origin', () => {
    const httpRoutes = resources('AWS::ApiGatewayV2::Route')
      .map(([, route]) => route.Properties)
      .filter((route) => route.ApiId.Ref === 'HttpApi')
      .map((route) => route.RouteKey as string);
    const stage = template.Resources.HttpApiStage?.Properties;
    const defaults = stage.DefaultRouteSettings;
    expect(defaults.ThrottlingRateLimit).toBeGreaterThan(0);
    expect(defaults.ThrottlingBurstLimit).toBeGreaterThanOrEqual(defaults.ThrottlingRateLimit);
    const strict = Object.entries(stage.RouteSettings as Record<string, Json>);
    expect(strict.map(([key]) => key)).toEqual(
      expect.arrayContaining([
        'POST /api/auth/register',
        'POST /api/auth/login',
        'POST /api/auth/password',
      ]),
    );
    for (const [key, limits] of strict) {
      // A route setting for a route that does not exist fails the deploy.
      expect(httpRoutes, key).toContain(key);
      expect(limits.ThrottlingRateLimit, key).toBeLessThan(defaults.ThrottlingRateLimit);
      expect(limits.ThrottlingBurstLimit, key).toBeLessThan(defaults.ThrottlingBurstLimit);
    }
    const websocket = template.Resources.WebsocketsDeploymentStage?.Properties.DefaultRouteSettings;
    expect(websocket.ThrottlingRateLimit).toBeGreaterThan(0);
    // CORS: the dashboard's CloudFront origin only (params.dashboardOrigin overrides it).
    const cors = template.Resources.HttpApi?.Properties.CorsConfiguration;
    expect(cors.AllowOrigins).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder
      { 'Fn::Sub': 'https://${DashboardDistribution.DomainName}' },
    ]);
    expect(JSON.stringify(cors)).not.toContain('"*"');
  });

  it('alarms on IoT authorisation and rule failures, API 5xx and 4xx, stream lag and every function', () => {
    const alarms = resources('AWS::CloudWatch::Alarm').map(([id, alarm]) => ({
      id,
      ...alarm.Properties,
    }));
    const topic = [{ Ref: 'AlarmTopic' }];
    for (const alarm of alarms) expect(alarm.AlarmActions, alarm.id).toEqual(topic);
    const metricsOf = (alarm: Json): string[] =>
      alarm.MetricName
        ? [`${alarm.Namespace} ${alarm.MetricName}`]
        : alarm.Metrics.filter((m: Json) => m.MetricStat).map(
            (m: Json) => `${m.MetricStat.Metric.Namespace} ${m.MetricStat.Metric.MetricName}`,
          );
    const byId = (id: string) => alarms.find((alarm) => alarm.id === id);
    expect(metricsOf(byId('IotAuthorizationFailuresAlarm'))).toEqual([
      'AWS/IoT Connect.AuthError',
      'AWS/IoT PublishIn.AuthError',
      'AWS/IoT Subscribe.AuthError',
    ]);
    expect(metricsOf(byId('Api5xxAlarm'))).toEqual(['AWS/ApiGateway 5xx']);
    expect(metricsOf(byId('Api4xxAlarm'))).toEqual(['AWS/ApiGateway 4xx']);
    for (const id of ['Api5xxAlarm', 'Api4xxAlarm']) {
      expect(byId(id)?.Dimensions, id).toEqual([
        { Name: 'ApiId', Value: { Ref: 'HttpApi' } },
        { Name: 'Stage', Value: '$default' },
      ]);
    }
    expect(byId('IngestIteratorAgeAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'IngestLambdaFunction' } }],
    });
    // Rule alarms: Metrics Insights queries over every topic rule of the template.
    const ruleNames = resources('AWS::IoT::TopicRule').map(([, rule]) => rule.Properties.RuleName);
    expect(ruleNames.length).toBeGreaterThan(0);
    for (const [id, metric] of [
      ['IotRuleActionFailuresAlarm', 'Failure'],
      ['IotRuleErrorActionFailuresAlarm', 'ErrorActionFailure'],
      ['IotRuleThrottledAlarm', 'RuleMessageThrottled'],
    ] as const) {
      const query: string = byId(id)?.Metrics[0].Expression;
      expect(query, id).toMatch(new RegExp(`^SELECT SUM\\(${metric}\\) FROM SCHEMA\\("AWS/IoT"`));
      for (const rule of ruleNames) expect(query, id).toContain(`RuleName = '${rule}'`);
    }
    for (const [id] of resources('AWS::Lambda::Function')) {
      for (const metric of ['Errors', 'Throttles']) {
        expect(alarms, `${metric} alarm for ${id}`).toContainEqual(
          expect.objectContaining({
            Namespace: 'AWS/Lambda',
            MetricName: metric,
            Dimensions: [{ Name: 'FunctionName', Value: { Ref: id } }],
          }),
        );
      }
    }
  });

  it('packages the device policy that infra/iot-device-policy.yml describes', async () => {
    // test/iot-device-policy.test.ts evaluates the file; this ties it to the template.
    const packaged = template.Resources.IotDevicePolicy;
    expect(packaged).toEqual(await devicePolicyResource('prod'));
    const retained = packaged?.Properties.PolicyDocument.Statement.filter((statement: Json) =>
      [statement.Action].flat().includes('iot:RetainPublish'),
    );
    expect(
      retained.flatMap(policyResources).map((r: string) => r.replace(/^.*:topic\//, '')),
    ).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT policy variable
      'devices/${!iot:Connection.Thing.ThingName}/status',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT policy variable
      'devices/${!iot:Connection.Thing.ThingName}/discovery',
    ]);
  });

  it('packages fleet provisioning by claim as infra/iot-fleet-provisioning.yml describes it', async () => {
    // test/iot-device-policy.test.ts evaluates the claim policy; this ties it to the template.
    expect(template.Resources.IotClaimPolicy).toEqual(await claimPolicyResource('prod'));
    for (const name of [
      'IotFleetProvisioningTemplate',
      'IotProvisioningRole',
      'ProvisioningHookInvokePermission',
    ]) {
      expect(template.Resources[name], name).toEqual(
        await iotResource('infra/iot-fleet-provisioning.yml', name, 'prod'),
      );
    }
    // The hook the template calls is the packaged function, and the devices function is
    // told the claim policy and the template.
    expect(template.Resources.ProvisioningDashhookLambdaFunction?.Type).toBe(
      'AWS::Lambda::Function',
    );
    const devices = template.Resources.DevicesLambdaFunction?.Properties.Environment.Variables;
    expect(devices.IOT_CLAIM_POLICY_NAME).toEqual({ Ref: 'IotClaimPolicy' });
    expect(devices.IOT_PROVISIONING_TEMPLATE_NAME).toBe(
      template.Resources.IotFleetProvisioningTemplate?.Properties.TemplateName,
    );
  });

  it('retires spent claims every hour, with a role that may only deactivate and delete certificates', () => {
    const retirer = template.Resources.ClaimDashretirerLambdaFunction;
    expect(retirer?.Type).toBe('AWS::Lambda::Function');
    const variables = retirer?.Properties.Environment.Variables;
    expect(variables.DEVICE_PROVISIONER).toBe('aws-iot');
    const rules = Object.values(template.Resources as Record<string, Json>).filter(
      (resource) =>
        resource.Type === 'AWS::Events::Rule' &&
        JSON.stringify(resource.Properties.Targets).includes('ClaimDashretirerLambdaFunction'),
    );
    expect(rules.map((rule) => rule.Properties.ScheduleExpression)).toEqual(['rate(1 hour)']);
    const roleId: string = retirer?.Properties.Role['Fn::GetAtt'][0];
    const iotStatements = template.Resources[
      roleId
    ]?.Properties.Policies[0].PolicyDocument.Statement.filter((statement: Json) =>
      [statement.Action].flat().some((action: string) => action.startsWith('iot:')),
    );
    expect(iotStatements).toEqual([
      {
        Effect: 'Allow',
        Action: ['iot:UpdateCertificate', 'iot:DetachPolicy', 'iot:DeleteCertificate'],
        Resource: {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation substitution
          'Fn::Sub': 'arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:cert/*',
        },
      },
    ]);
  });

  it('ships one small bundle per function, without source maps', async () => {
    const report: Array<{ function: string; zipped: number; unzipped: number; limit: number }> = [];
    for (const name of Object.keys(service.functions)) {
      const zip = path.join(workDir, 'package', `${name}.zip`);
      const zipped = (await stat(zip)).size;
      const entries = await zipEntries(zip);
      const unzipped = [...entries.values()].reduce((sum, size) => sum + size, 0);
      const limit = BUNDLE_LIMITS[name] ?? DEFAULT_BUNDLE_LIMIT;
      report.push({ function: name, zipped, unzipped, limit });
      expect(
        [...entries.keys()].filter((entry) => entry.endsWith('.map')),
        name,
      ).toEqual([]);
      expect(zipped, `${name}.zip is ${zipped} bytes`).toBeLessThanOrEqual(limit);
    }
    console.table(report);
    const migrate = await zipEntries(path.join(workDir, 'package', 'migrate.zip'));
    expect([...migrate.keys()].filter((entry) => /^migrations\/.*\.sql$/.test(entry)).length).toBe(
      (await import('node:fs'))
        .readdirSync(path.join(repoRoot, 'migrations'))
        .filter((f) => f.endsWith('.sql')).length,
    );
  });
});

describe('docker-compose.yml', () => {
  it('is a valid compose file (docker-compose config -q)', async () => {
    await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: repoRoot,
      timeout: 30_000,
    });
  });
});
