import { z } from 'zod';
import { idParam, storableString } from './schemas.ts';

/** Pattern recognition's request and response bodies, as the route table names them. */

const named = <S extends z.ZodType>(id: string, schema: S): S => schema.meta({ id }) as S;

const instant = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid time');

const positiveId = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
  .transform(Number)
  .refine((id) => id <= 2_147_483_647, 'must be at most 2147483647');

const entityId = z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id');
const isoTime = z.string().describe('ISO 8601 time, UTC');

export const patternParams = idParam.extend({ pattern_id: positiveId });
export const patternJobParams = idParam.extend({ job_id: positiveId });

export const discoverPatternsBody = z
  .strictObject({
    entity_ids: z
      .array(entityId)
      .min(1)
      .max(8)
      .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an entity')
      .optional()
      .describe(
        "Sensor or number entities to find the device's modes in; default: its sensors (up to 8), else its numbers",
      ),
    from: instant
      .optional()
      .describe('Start of the history to learn from; default: 7 days before `to`'),
    to: instant.optional().describe('End of the history; default: now'),
  })
  .describe(
    'Everything is optional: an empty body learns from the last 7 days of every sensor entity',
  );

export const patternLabelBody = z.strictObject({
  label: storableString()
    .trim()
    .min(1)
    .max(100)
    .nullable()
    .describe('The name users know the mode by ("idle", "full load"); null removes it'),
});

export const patternTimelineQuery = z.strictObject({
  from: instant.optional().describe('Default: a day before `to`'),
  to: instant.optional().describe('Default: now'),
});

const jobStatus = z.enum(['pending', 'running', 'done', 'failed']);

export const patternJob = named(
  'PatternJob',
  z.looseObject({
    job_id: z.number().int(),
    device_id: z.number().int(),
    status: jobStatus,
    request: z.looseObject({
      entity_ids: z.array(z.string()).nullable(),
      from: isoTime.nullable(),
      to: isoTime.nullable(),
    }),
    result: z
      .looseObject({
        patterns: z.number().int(),
        windows: z.number().int(),
        silhouette: z.number().nullable(),
        entity_ids: z.array(z.string()).describe('The entities the patterns were learnt from'),
        left_out: z
          .array(z.looseObject({ entity_id: z.string(), readings: z.number().int() }))
          .describe(
            "Sensors a discovery without `entity_ids` left out, with their readings in the range: fewer than 32, or than a quarter of the densest sensor's (the windows would follow their pace)",
          ),
        step_seconds: z.number(),
        window_seconds: z.number(),
        from: isoTime,
        to: isoTime,
      })
      .nullable(),
    error: z
      .looseObject({ code: z.string(), message: z.string() })
      .nullable()
      .describe(
        'Why it failed; `discovery_lost` when its worker stopped before finishing (out of time or memory) and no retry will come',
      ),
    attempts: z
      .number()
      .int()
      .describe('Workers that have taken the job: a lost worker is retried, 3 attempts at most'),
    created_at: isoTime,
    started_at: isoTime.nullable(),
    deadline_at: isoTime
      .nullable()
      .describe('When the worker that has it is certainly ended; past it a running job was lost'),
    finished_at: isoTime.nullable(),
  }),
);

export const pattern = named(
  'Pattern',
  z.looseObject({
    pattern_id: z.number().int(),
    label: z.string().nullable(),
    entity_ids: z.array(z.string()),
    occurrences: z.number().int().describe('Separate stretches of the history in this mode'),
    example: z.looseObject({ from: isoTime, to: isoTime }).describe('Its longest stretch'),
    total_seconds: z.number(),
    share: z.number().describe('Share of the history (with readings) in this mode, 0-1'),
    profile: z.array(
      z.looseObject({
        entity_id: z.string(),
        mean: z.number(),
        std: z.number(),
        min: z.number(),
        max: z.number(),
      }),
    ),
    discovered_at: isoTime,
  }),
);

export const currentPattern = named(
  'CurrentPattern',
  z
    .looseObject({
      pattern_id: z.number().int().nullable(),
      label: z.string().nullable(),
      novel: z.boolean().describe('True when the latest window is like none of the patterns'),
      distance_ratio: z
        .number()
        .describe(
          "The smallest distance to a pattern over that pattern's novelty distance (above 1: novel)",
        ),
      window: z.looseObject({ from: isoTime, to: isoTime }),
    })
    .nullable(),
);

export const patternsResponse = z.looseObject({
  patterns: z.array(pattern),
  current_pattern: currentPattern,
});

export const patternTimeline = z.looseObject({
  segments: z.array(
    z.looseObject({
      from: isoTime,
      to: isoTime,
      pattern_id: z.number().int().nullable(),
      label: z.string().nullable(),
      novel: z.boolean(),
    }),
  ),
  window_seconds: z.number().nullable(),
});
