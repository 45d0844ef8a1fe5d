import { z } from 'zod';

/** The export routes' inputs and answers (here, not in shared/export, which the route table must not import: shared/export reads timeseries, which imports shared/http). */

const instant = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid time');
const format = z.enum(['csv', 'jsonl']).default('csv');
const source = z.enum(['raw', '5m', '1h']).default('raw');

/** Without `from` and `to`: the last 24 hours. */
export const deviceExportQuery = z.strictObject({
  from: instant.optional(),
  to: instant.optional(),
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

const isoTime = z.string().describe('ISO 8601 time, UTC');

export const deviceExport = z.object({
  export: z
    .looseObject({
      url: z.string().describe('Where the file is fetched; it expires'),
      expires_at: isoTime,
      format: z.enum(['csv', 'jsonl']),
      source: z.enum(['raw', '5m', '1h']),
      rows: z.number().int(),
      bytes: z.number().int(),
    })
    .meta({ id: 'DeviceExport' }),
});

export const exportJob = z.object({
  job: z
    .looseObject({
      id: z.number().int(),
      status: z.enum(['pending', 'running', 'done', 'failed']),
      request: z.looseObject({
        from: isoTime,
        to: isoTime,
        format: z.enum(['csv', 'jsonl']),
        source: z.enum(['raw', '5m', '1h']),
        device_ids: z.array(z.number().int()).nullable(),
      }),
      rows: z.number().int().nullable(),
      bytes: z.number().int().nullable(),
      error: z.string().nullable(),
      created_at: isoTime,
      finished_at: isoTime.nullable(),
      url: z.string().nullable(),
      expires_at: isoTime.nullable(),
    })
    .meta({ id: 'ExportJob' }),
});
