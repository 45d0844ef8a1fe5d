import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { authenticator, logger } from '../../shared/composition.ts';
import { exportService } from '../../shared/export/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const exports = exportService();
const api = httpApi(
  'export',
  {
    'GET /api/devices/{id}/export': ({ caller, params, query }) =>
      exports.exportDevice(caller, params.id, {
        from: query.from,
        to: query.to,
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
  if (!Number.isSafeInteger(tenantId) || typeof jobId !== 'string') {
    throw new Error('expected {tenantId, jobId}');
  }
  await exports.runJob(tenantId as number, jobId);
  return { jobId };
}
