import { z } from 'zod';
import { EARLIEST_INSTANT, storableString } from './schemas.ts';

/**
 * Predictive maintenance's request and response bodies, as the route table names them.
 */
// The maintenance domain's kinds and step units (shared/maintenance/domain/model.ts): the
// handlers pass these values to its service, so the type checker holds the two lists together.
const MAINTENANCE_KINDS = ['failure', 'repair', 'replacement', 'inspection'] as const;
const STEP_UNITS = ['cycles', 'hours'] as const;

const named = <S extends z.ZodType>(id: string, schema: S): S => schema.meta({ id }) as S;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const maintenanceEventBody = z.strictObject({
  kind: z.enum(MAINTENANCE_KINDS),
  time: z
    .string()
    .max(64)
    .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO 8601 time')
    .refine((value) => Date.parse(value) >= EARLIEST_INSTANT, 'must be after 1970-01-01')
    .transform((value) => new Date(value))
    .optional()
    .describe('When it happened (ISO 8601); now when left out; never ahead of now'),
  note: storableString().trim().max(2000).optional(),
});

export const entityLimitBody = z
  .strictObject({
    above: finite.optional().describe('The reading must stay at or below this'),
    below: finite.optional().describe('The reading must stay at or above this'),
  })
  .describe('Either side or both; neither removes the limit');

export const trainFleetBody = z.strictObject({
  device_type: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .describe("The fleet: the tenant's devices of this type"),
  step_unit: z
    .enum(STEP_UNITS)
    .default('hours')
    .describe(
      'What one step of life is: an hour of readings, or one reading time per operating cycle',
    ),
});

const isoTime = z.string().describe('ISO 8601 time, UTC');

export const maintenanceEvent = named(
  'MaintenanceEvent',
  z.looseObject({
    id: z.number().int(),
    device_id: z.number().int(),
    kind: z.enum(MAINTENANCE_KINDS),
    time: isoTime,
    note: z.string().nullable(),
    recorded_by: z.number().int().nullable(),
    created_at: isoTime,
  }),
);

const limit = named(
  'EntityLimit',
  z.object({ above: z.number().nullable(), below: z.number().nullable() }),
);

const rul = named(
  'RemainingUsefulLife',
  z.looseObject({
    value: z.number(),
    low: z.number(),
    high: z.number(),
    unit: z.enum(STEP_UNITS),
    model_version: z.string(),
    computed_at: isoTime,
  }),
);

export const healthResponse = named(
  'DeviceHealth',
  z.looseObject({
    device_id: z.string(),
    rul: rul.nullable(),
    thresholds: z.array(
      z.looseObject({
        entity_id: z.string(),
        limit,
        eta: z.object({ time: isoTime, low: isoTime, high: isoTime }).nullable(),
        trend: z.enum(['rising', 'falling', 'flat', 'insufficient-data']),
        crossed: z.boolean().describe('The trend level is past the limit now'),
        slope_per_hour: z
          .number()
          .describe(
            "The trend's slope per hour in the entity's unit (0 while the history is short)",
          ),
      }),
    ),
    status: z.enum(['ok', 'watch', 'service_soon']),
  }),
);

export const limitResponse = z.looseObject({ entity_id: z.string(), limit: limit.nullable() });

export const fleetModel = named(
  'FleetModel',
  z.looseObject({
    id: z.number().int(),
    device_type: z.string(),
    version: z.string(),
    step_unit: z.enum(STEP_UNITS),
    histories: z.number().int(),
    metrics: z.record(z.string(), z.unknown()),
    status: z.enum(['active', 'superseded', 'rejected']),
    status_reason: z.string().nullable(),
    trained_at: isoTime,
  }),
);

export const devicesRulResponse = z.object({
  devices: z.array(
    z.looseObject({ id: z.number().int(), device_id: z.string(), rul: rul.nullable() }),
  ),
});

export const trainingRequestResponse = z.looseObject({
  device_type: z.string(),
  step_unit: z.enum(STEP_UNITS),
  requested_at: isoTime,
});
