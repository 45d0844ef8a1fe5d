import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';
import { patternService } from '../../shared/patterns/composition.ts';

const patterns = patternService();

const api = httpApi(
  'patterns',
  {
    'POST /api/devices/{id}/patterns/discover': async ({ caller, params, body }) => ({
      job: await patterns.startDiscovery(caller, params.id, {
        entityIds: body.entity_ids,
        from: body.from,
        to: body.to,
      }),
    }),
    'GET /api/devices/{id}/patterns/jobs/{job_id}': async ({ caller, params }) => ({
      job: await patterns.job(caller, params.id, params.job_id),
    }),
    'GET /api/devices/{id}/patterns': ({ caller, params }) => patterns.patterns(caller, params.id),
    'PATCH /api/devices/{id}/patterns/{pattern_id}': async ({ caller, params, body }) => ({
      pattern: await patterns.label(caller, params.id, params.pattern_id, body.label),
    }),
    'GET /api/devices/{id}/patterns/timeline': ({ caller, params, query }) =>
      patterns.timeline(caller, params.id, query),
  },
  { authenticator: authenticator(), logger: logger() },
);

/** HTTP routes, and the asynchronous invocation `{tenantId, jobId}` that runs a discovery. */
export async function handler(
  event: APIGatewayProxyEventV2 | { tenantId?: unknown; jobId?: unknown },
  context: Context,
) {
  if ('routeKey' in event) return api(event, context);
  const { tenantId, jobId } = event as { tenantId?: unknown; jobId?: unknown };
  if (!Number.isSafeInteger(tenantId) || !Number.isSafeInteger(jobId)) {
    throw new Error('expected {tenantId, jobId}');
  }
  await patterns.runJob(tenantId as number, jobId as number, context.getRemainingTimeInMillis());
  return { jobId };
}
