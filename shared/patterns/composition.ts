import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { auditTrail } from '../audit/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { readingStore } from '../timeseries/composition.ts';
import { InfluxPatternHistory } from './adapters/influx-pattern-history.ts';
import { PostgresPatternStore } from './adapters/postgres-pattern-store.ts';
import { PatternService } from './domain/pattern-service.ts';
import type { DiscoveryDispatcher } from './domain/ports.ts';

const lambdaClient = once(() => {
  const { aws, alarms } = config();
  return new LambdaClient({
    region: aws.region,
    ...(alarms.lambdaEndpoint ? { endpoint: alarms.lambdaEndpoint } : {}),
  });
});

export const patternService = once(() => {
  const { patterns } = config();
  // Without a worker function (a test calling functions in-process) the job runs here.
  const dispatcher: DiscoveryDispatcher = patterns.workerFunction
    ? {
        dispatch: async (tenantId, jobId) => {
          await lambdaClient().send(
            new InvokeCommand({
              FunctionName: patterns.workerFunction,
              InvocationType: 'Event',
              Payload: new TextEncoder().encode(JSON.stringify({ tenantId, jobId })),
            }),
          );
        },
      }
    : { dispatch: (tenantId, jobId) => service.runJob(tenantId, jobId) };
  const service: PatternService = new PatternService({
    store: new PostgresPatternStore(databasePool()),
    history: new InfluxPatternHistory(readingStore()),
    dispatcher,
    audit: auditTrail(),
    logger: logger().child({ component: 'patterns' }),
  });
  return service;
});
