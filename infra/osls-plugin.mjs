/**
 * Local osls plugin for the two things Serverless Framework v3 leaves out:
 *
 * 1. Least-privilege IAM per function. osls gives every function one shared role, so the
 *    union of all permissions would reach every function. Here each function gets its own
 *    role: write access to its own log group only, plus the statements listed under the
 *    function's `iamRoleStatements` (the same key the community plugin
 *    serverless-iam-roles-per-function uses, which cannot be installed offline here). A
 *    function added later without statements gets a logs-only role, never more.
 * 2. The device topic rules, which put each message on the ingest stream (a Kinesis action
 *    with the device id as partition key): osls's `iot` event knows only the Lambda action.
 *    They are compiled from `custom.iotRules.stream`, which the local rules emulator reads
 *    too. And an error action on every IoT topic rule: `custom.iotRules.errorAction` is
 *    applied to each AWS::IoT::TopicRule that has none.
 *
 * 3. A CloudWatch alarm on each function's errors (custom.functionAlarms), for the same
 *    reason: a function added later is covered without anyone remembering to add one.
 *
 *    Next to it an alarm on the function's throttles, and for the IoT topic rules one alarm
 *    each on failed actions, failed error actions and throttled messages, over every rule
 *    in the template.
 *
 * 4. A check before `deploy` that the stage has the settings it cannot work without
 *    (custom.deployChecks), so a forgotten parameter fails with its name instead of
 *    deploying functions that cannot connect.
 *
 * 5. The HTTP API's CORS origins: empty entries of provider.httpApi.cors.allowedOrigins are
 *    dropped, and when none is left the dashboard's CloudFront origin is the one allowed.
 *
 * It only touches the compiled template during `package`; serverless-offline is unaffected.
 */

const VPC_ACCESS_POLICY = {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder
  'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
};

export default class EasySmartInfraPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    serverless.configSchemaHandler.defineFunctionProperties('aws', {
      properties: {
        iamRoleStatements: { $ref: '#/definitions/awsIamPolicyStatements' },
      },
    });
    serverless.configSchemaHandler.defineCustomProperties({
      properties: {
        iotRules: {
          type: 'object',
          properties: {
            errorAction: { type: 'object' },
            stream: {
              type: 'object',
              properties: {
                resource: { type: 'string' },
                partitionKey: { type: 'string' },
                rules: {
                  type: 'object',
                  additionalProperties: {
                    type: 'object',
                    properties: { name: { type: 'string' }, sql: { type: 'string' } },
                    required: ['name', 'sql'],
                    additionalProperties: false,
                  },
                },
              },
              required: ['resource', 'partitionKey', 'rules'],
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
        functionAlarms: {
          type: 'object',
          properties: {
            alarmActions: { type: 'array' },
            threshold: { type: 'number' },
            periodSeconds: { type: 'number' },
          },
          required: ['alarmActions'],
          additionalProperties: false,
        },
        deployChecks: { type: 'object' },
      },
    });
    this.hooks = {
      'before:package:finalize': () => {
        this.assignFunctionRoles();
        this.addStreamTopicRules();
        this.addTopicRuleErrorActions();
        this.addFunctionErrorAlarms();
        this.addTopicRuleAlarms();
        this.restrictCorsOrigins();
      },
      'before:deploy:deploy': () => this.checkDeploySettings(),
    };
  }

  get template() {
    return this.serverless.service.provider.compiledCloudFormationTemplate;
  }

  assignFunctionRoles() {
    const { naming } = this.provider;
    const resources = this.template.Resources;
    const defaultRoleId = naming.getRoleLogicalId();
    for (const name of this.serverless.service.getAllFunctions()) {
      const fn = this.serverless.service.getFunction(name);
      // An explicit role (a shared or pre-existing one) is the author's decision.
      if (fn.role) continue;
      const functionResource = resources[naming.getLambdaLogicalId(name)];
      if (!functionResource) continue;
      const roleId = `${naming.getNormalizedFunctionName(name)}IamRole`;
      const logGroupArn = {
        'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${naming.getLogGroupName(fn.name)}:*`,
      };
      const statements = [
        // The log group is a stack resource, so the function never needs CreateLogGroup.
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: [logGroupArn],
        },
        ...(fn.iamRoleStatements ?? []),
      ];
      resources[roleId] = {
        Type: 'AWS::IAM::Role',
        Properties: {
          AssumeRolePolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: ['lambda.amazonaws.com'] },
                Action: ['sts:AssumeRole'],
              },
            ],
          },
          // Network interfaces for a function in a VPC have no resource-level permissions;
          // AWS's managed policy is the narrowest grant for them.
          ...(functionResource.Properties.VpcConfig
            ? { ManagedPolicyArns: [VPC_ACCESS_POLICY] }
            : {}),
          Policies: [
            {
              PolicyName: `${name}-function`,
              PolicyDocument: { Version: '2012-10-17', Statement: statements },
            },
          ],
          Tags: [{ Key: 'easysmart:function', Value: name }],
        },
      };
      functionResource.Properties.Role = { 'Fn::GetAtt': [roleId, 'Arn'] };
      const dependsOn = [functionResource.DependsOn ?? []]
        .flat()
        .filter((id) => id !== defaultRoleId);
      functionResource.DependsOn = [...dependsOn, roleId];
    }
    // An event source mapping reads its source with its function's role: osls made it wait
    // for the shared role (which it gave the stream permissions), so it waits for the
    // function's own role instead.
    const roleOfFunction = new Map(
      this.serverless.service
        .getAllFunctions()
        .map((name) => [
          naming.getLambdaLogicalId(name),
          `${naming.getNormalizedFunctionName(name)}IamRole`,
        ]),
    );
    for (const resource of Object.values(resources)) {
      if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
      const dependsOn = [resource.DependsOn ?? []].flat();
      if (!dependsOn.includes(defaultRoleId)) continue;
      const functionId = resource.Properties.FunctionName?.['Fn::GetAtt']?.[0];
      const roleId = roleOfFunction.get(functionId);
      resource.DependsOn = [
        ...dependsOn.filter((id) => id !== defaultRoleId),
        ...(roleId && resources[roleId] ? [roleId] : []),
      ];
    }
    // osls creates the shared role before plugins run; dropped once nothing refers to it.
    const { [defaultRoleId]: defaultRole, ...others } = resources;
    if (defaultRole && !JSON.stringify(others).includes(`"${defaultRoleId}"`)) {
      delete resources[defaultRoleId];
    }
  }

  addStreamTopicRules() {
    const stream = this.serverless.service.custom?.iotRules?.stream;
    if (!stream) return;
    const resources = this.template.Resources;
    for (const [key, rule] of Object.entries(stream.rules)) {
      const id = `IngestStream${key[0].toUpperCase()}${key.slice(1).replace(/[^A-Za-z0-9]/g, '')}TopicRule`;
      resources[id] = {
        Type: 'AWS::IoT::TopicRule',
        Properties: {
          RuleName: rule.name,
          TopicRulePayload: {
            Sql: rule.sql,
            AwsIotSqlVersion: '2016-03-23',
            RuleDisabled: false,
            Actions: [
              {
                Kinesis: {
                  StreamName: { Ref: stream.resource },
                  // The device id: its messages stay in one shard, in order.
                  PartitionKey: `\${${stream.partitionKey}}`,
                  RoleArn: { 'Fn::GetAtt': ['IotRuleStreamRole', 'Arn'] },
                },
              },
            ],
          },
        },
      };
    }
  }

  addTopicRuleErrorActions() {
    const errorAction = this.serverless.service.custom?.iotRules?.errorAction;
    if (!errorAction) return;
    for (const resource of Object.values(this.template.Resources)) {
      if (resource.Type !== 'AWS::IoT::TopicRule') continue;
      const payload = resource.Properties.TopicRulePayload;
      payload.ErrorAction ??= structuredClone(errorAction);
    }
  }

  addFunctionErrorAlarms() {
    const settings = this.serverless.service.custom?.functionAlarms;
    if (!settings) return;
    const { naming } = this.provider;
    const resources = this.template.Resources;
    for (const name of this.serverless.service.getAllFunctions()) {
      const functionId = naming.getLambdaLogicalId(name);
      if (!resources[functionId]) continue;
      resources[`${naming.getNormalizedFunctionName(name)}ErrorsAlarm`] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmDescription: `Function ${name} failed (uncaught errors or timeouts)`,
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
          Statistic: 'Sum',
          Period: settings.periodSeconds ?? 300,
          EvaluationPeriods: 1,
          Threshold: settings.threshold ?? 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: settings.alarmActions,
          OKActions: settings.alarmActions,
        },
      };
      // Throttled invocations are requests or stream batches that did not run at all.
      resources[`${naming.getNormalizedFunctionName(name)}ThrottlesAlarm`] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmDescription: `Function ${name} was throttled (concurrency limit reached)`,
          Namespace: 'AWS/Lambda',
          MetricName: 'Throttles',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
          Statistic: 'Sum',
          Period: settings.periodSeconds ?? 300,
          EvaluationPeriods: 1,
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: settings.alarmActions,
          OKActions: settings.alarmActions,
        },
      };
    }
  }

  /**
   * Rule metrics ("AWS IoT metrics and dimensions"): Failure and ErrorActionFailure carry
   * RuleName and ActionType, RuleMessageThrottled only RuleName. A Metrics Insights query
   * sums them over this stack's rules whatever the action type, so one alarm covers each.
   */
  addTopicRuleAlarms() {
    const settings = this.serverless.service.custom?.functionAlarms;
    if (!settings) return;
    const resources = this.template.Resources;
    const ruleNames = Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::IoT::TopicRule')
      .map((resource) => resource.Properties.RuleName)
      .filter((name) => typeof name === 'string')
      .sort();
    if (ruleNames.length === 0) return;
    const where = ruleNames.map((name) => `RuleName = '${name}'`).join(' OR ');
    const alarms = {
      IotRuleActionFailuresAlarm: {
        description: 'IoT rules failed to hand messages on (each went to the error action)',
        query: `SELECT SUM(Failure) FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE ${where}`,
      },
      IotRuleErrorActionFailuresAlarm: {
        description:
          'IoT rules failed to record a failed message in the dead-letter queue (message lost)',
        query: `SELECT SUM(ErrorActionFailure) FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE ${where}`,
      },
      IotRuleThrottledAlarm: {
        description: 'The IoT rules engine throttled device messages',
        query: `SELECT SUM(RuleMessageThrottled) FROM SCHEMA("AWS/IoT", RuleName) WHERE ${where}`,
      },
    };
    for (const [id, { description, query }] of Object.entries(alarms)) {
      resources[id] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmDescription: description,
          Metrics: [
            {
              Id: 'rules',
              Expression: query,
              Period: settings.periodSeconds ?? 300,
              ReturnData: true,
            },
          ],
          EvaluationPeriods: 1,
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: settings.alarmActions,
          OKActions: settings.alarmActions,
        },
      };
    }
  }

  restrictCorsOrigins() {
    const { naming } = this.provider;
    const api = this.template.Resources[naming.getHttpApiLogicalId()];
    const cors = api?.Properties?.CorsConfiguration;
    if (!cors?.AllowOrigins) return;
    const origins = cors.AllowOrigins.filter((origin) => origin !== '' && origin != null);
    if (origins.includes('*')) {
      throw new this.serverless.classes.Error(
        'provider.httpApi.cors.allowedOrigins must name the dashboard origin, not *',
      );
    }
    cors.AllowOrigins =
      origins.length > 0
        ? origins
        : // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder
          [{ 'Fn::Sub': 'https://${DashboardDistribution.DomainName}' }];
  }

  checkDeploySettings() {
    const settings = this.serverless.service.custom?.deployChecks;
    if (settings?.environment !== 'aws') return;
    const missing = [];
    const need = (name, ok) => {
      if (!ok) missing.push(name);
    };
    need('influxUrl', settings.influxUrl);
    need('mqttPublicUrl', settings.mqttPublicUrl);
    if (settings.createDatabase === 'true') {
      need('vpc (private)', settings.vpc === 'private');
      need('vpcId', settings.vpcId);
    } else {
      need('databaseHost', settings.databaseHost);
    }
    if (settings.vpc === 'private') {
      need('vpcSubnetIds', Array.isArray(settings.vpcSubnetIds) && settings.vpcSubnetIds.length);
      need('functionSecurityGroupId', settings.functionSecurityGroupId);
    }
    if (missing.length > 0) {
      const stage = this.provider.getStage();
      throw new this.serverless.classes.Error(
        `Stage ${stage} is missing settings: ${missing.join(', ')}. Set them under params.${stage} in serverless.yml or with --param="name=value" (docs/deploy.md).`,
      );
    }
  }
}
