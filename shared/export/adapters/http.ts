import { z } from 'zod';
import { type Route, route } from '../../http/api.ts';
import { idParam } from '../../http/schemas.ts';
import type { ExportService } from '../domain/export.ts';

const instant = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid time');
const format = z.enum(['csv', 'jsonl']).default('csv');
const source = z.enum(['raw', '5m', '1h']).default('raw');

export const deviceExportQuery = z.strictObject({
  from: instant,
  to: instant,
  entity_id: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,100}(,[a-zA-Z0-9_-]{1,100}){0,49}$/, 'entity ids separated by commas')
    .transform((value) => value.split(','))
    .optional(),
  format,
  source,
});

export const tenantExportBody = z.strictObject({
  from: instant,
  to: instant,
  format,
  source,
  device_ids: z.array(z.number().int().min(1).max(2_147_483_647)).min(1).max(1000).optional(),
});

export const exportJobParams = z.object({ id: z.uuid() });

/**
 * Exports. A device's data is streamed into a file whose expiring link comes back; a
 * tenant's many devices export as a job. Viewers may export: reading data is their role.
 */
export function exportRoutes(exports: ExportService): Record<string, Route> {
  return {
    'GET /api/devices/{id}/export': route(
      { access: 'read', params: idParam, query: deviceExportQuery },
      async ({ caller, params, query }) => ({
        status: 200,
        body: await exports.exportDevice(caller, params.id, {
          from: query.from,
          to: query.to,
          entityIds: query.entity_id,
          format: query.format,
          source: query.source,
        }),
      }),
    ),
    'POST /api/exports': route(
      { access: 'read', body: tenantExportBody },
      async ({ caller, body }) => ({
        status: 202,
        body: await exports.startTenantExport(caller, {
          from: body.from,
          to: body.to,
          format: body.format,
          source: body.source,
          deviceIds: body.device_ids,
        }),
      }),
    ),
    'GET /api/exports/{id}': route(
      { access: 'read', params: exportJobParams },
      async ({ caller, params }) => ({
        status: 200,
        body: await exports.getJob(caller, params.id),
      }),
    ),
  };
}
