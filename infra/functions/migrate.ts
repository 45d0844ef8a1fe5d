import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { logger } from '../../shared/composition.ts';
import { migrateAll, migrationTargets } from '../migrate.ts';

// Kept two folders deep: shared/db/migrate.ts finds migrations/ at ../../migrations from the
// bundle, which is where the function's package puts them.

const PHYSICAL_ID = 'easysmart-migrations';
// Answer before Lambda kills the invocation: CloudFormation would otherwise wait an hour.
const ANSWER_MARGIN_MS = 15_000;

type Status = 'SUCCESS' | 'FAILED';

/**
 * CloudFormation custom resource (infra/resources/migrations.yml): migrates on Create and
 * Update, does nothing on Delete (a removed stack keeps its data). A failure fails the
 * deploy, so new code never runs against an old schema.
 */
export async function handler(event: CloudFormationCustomResourceEvent, context: Context) {
  const log = logger().child({
    function: 'migrate',
    requestId: context.awsRequestId,
    requestType: event.RequestType,
  });
  let status: Status = 'SUCCESS';
  let reason = 'ok';
  if (event.RequestType !== 'Delete') {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('migrations did not finish before the function timeout')),
          Math.max(1000, context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS),
        );
      });
      await Promise.race([
        migrationTargets().then((targets) => migrateAll(targets, (message) => log.info(message))),
        deadline,
      ]);
    } catch (error) {
      status = 'FAILED';
      reason = error instanceof Error ? error.message : String(error);
      log.error('migrations failed', { error });
    } finally {
      clearTimeout(timer);
    }
  }
  await answer(event, status, reason);
  log.info('answered CloudFormation', { status });
}

async function answer(event: CloudFormationCustomResourceEvent, status: Status, reason: string) {
  const body = new TextEncoder().encode(
    JSON.stringify({
      Status: status,
      // CloudFormation shows at most 4 KiB of it.
      Reason: reason.slice(0, 3000),
      PhysicalResourceId: PHYSICAL_ID,
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
    }),
  );
  // A byte body, so fetch adds no content-type the presigned URL was not signed for.
  const response = await fetch(event.ResponseURL, { method: 'PUT', body });
  if (!response.ok) {
    throw new Error(`CloudFormation response upload answered ${response.status}`);
  }
}
