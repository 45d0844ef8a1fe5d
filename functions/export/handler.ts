import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { authenticator, logger } from '../../shared/composition.ts';
import { exportService } from '../../shared/export/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const exports = exportService();
const DAY_MS = 86_400_000;

/** The range asked for; a missing end is now, a missing start a day before the end. */
function rangeOrLastDay(from: Date | undefined, to: Date | undefined) {
  const end = to ?? new Date();
  return { from: from ?? new Date(end.getTime() - DAY_MS), to: end };
}
const api = httpApi(
  'export',
  {
    'GET /api/devices/{id}/export': ({ caller, params, query }) =>
      exports.exportDevice(caller, params.id, {
        ...rangeOrLastDay(query.from, query.to),
        entityIds: query.entity_id,
        format: query.format,
        source: query.source,
      }),
    'POST /api/exports': ({ caller, body }) =>
      exports.startTenantExport(caller, {
        from: body.from,
        to: body.to,
        format: body.format,
        source: body.source,
        deviceIds: body.device_ids,
      }),
    'GET /api/exports/{id}': ({ caller, params }) => exports.getJob(caller, params.id),
  },
  { authenticator: authenticator(), logger: logger() },
);

/** HTTP routes, and the asynchronous invocation `{tenantId, jobId}` that runs a tenant export. */
export async function handler(
  event: APIGatewayProxyEventV2 | { tenantId?: unknown; jobId?: unknown },
  context: Context,
) {
  if ('routeKey' in event) return api(event, context);
  const { tenantId, jobId } = event as { tenantId?: unknown; jobId?: unknown };
  if (!Number.isSafeInteger(tenantId) || !Number.isSafeInteger(jobId)) {
    throw new Error('expected {tenantId, jobId}');
  }
  await exports.runJob(tenantId as number, jobId as number);
  return { jobId };
}
