import { z } from 'zod';

export const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ALARM_STATUSES = ['active', 'acknowledged', 'cleared'] as const;
export type AlarmStatus = (typeof ALARM_STATUSES)[number];

/** Text PostgreSQL can store: no NUL, no lone UTF-16 surrogate. */
const storable = (max: number) =>
  z
    .string()
    .max(max)
    .refine(
      (value) => !value.includes('\u0000') && !/\p{Cs}/u.test(value),
      'must not contain NUL or unpaired surrogates',
    );

const entityId = z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'an entity id ([a-zA-Z0-9_-]{1,100})');
const finite = z.number().refine(Number.isFinite, 'a finite number');

/** A value crossing a limit, held for `for_seconds`, cleared once back past `hysteresis`. */
export const thresholdCondition = z
  .strictObject({
    type: z.literal('threshold'),
    op: z.enum(['>', '<', 'outside', 'inside']),
    value: finite.optional(),
    low: finite.optional(),
    high: finite.optional(),
    for_seconds: z.number().int().min(0).max(86_400).default(0),
    hysteresis: z.number().min(0).refine(Number.isFinite, 'a finite number').default(0),
  })
  .superRefine((condition, ctx) => {
    if (condition.op === '>' || condition.op === '<') {
      if (condition.value === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: `required with op ${condition.op}`,
        });
    } else if (condition.low === undefined || condition.high === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['low'],
        message: `low and high are required with op ${condition.op}`,
      });
    } else if (condition.low >= condition.high) {
      ctx.addIssue({ code: 'custom', path: ['high'], message: 'must be above low' });
    }
  });

export const conditionSchema = z.union([
  thresholdCondition,
  /** No reading from the device for `minutes`. */
  z.strictObject({ type: z.literal('no_data'), minutes: z.number().int().min(1).max(10_080) }),
  /** The device reported itself offline (its status or last will) and stayed so `minutes`. */
  z.strictObject({ type: z.literal('offline'), minutes: z.number().int().min(0).max(10_080) }),
  /** The plan's anomaly detector scored a reading at or above `min_score`. */
  z.strictObject({
    type: z.literal('anomaly'),
    min_score: z.number().min(0).max(1_000_000),
    clear_after_minutes: z.number().int().min(1).max(10_080).default(15),
  }),
  /**
   * The device's latest remaining-useful-life prediction (predictive maintenance, in its fleet
   * model's unit: cycles or hours) fell below `value`; it clears at `value + hysteresis`.
   */
  z.strictObject({
    type: z.literal('rul_below'),
    value: z.number().gt(0).max(1_000_000),
    hysteresis: z.number().min(0).max(1_000_000).default(0),
  }),
  /** A relay (switch entity) changed state with no command asking for it. */
  z.strictObject({
    type: z.literal('relay_uncommanded'),
    clear_after_minutes: z.number().int().min(1).max(10_080).default(15),
  }),
]);
export type Condition = z.output<typeof conditionSchema>;
export type ConditionType = Condition['type'];

const webhook = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .pipe(storable(2000)),
  secret: storable(200).min(16, 'at least 16 characters'),
});
const notifySchema = z.strictObject({
  webhooks: z.array(webhook).max(5).default([]),
  emails: z.array(z.email().max(254)).max(20).default([]),
});
export type Notify = z.output<typeof notifySchema>;

const ruleFields = {
  name: storable(200).trim().min(1),
  device_id: z.number().int().min(1).max(2_147_483_647).optional(),
  device_type: storable(100).trim().min(1).optional(),
  entity_id: entityId.optional(),
  severity: z.enum(SEVERITIES),
  condition: conditionSchema,
  notify: notifySchema.optional(),
  /** After a notification, further ones of this rule and device wait this long. */
  quiet_minutes: z.number().int().min(0).max(1440).optional(),
  enabled: z.boolean().optional(),
};

/** The body of `POST /api/alarm-rules`. */
export const newRuleSchema = z.strictObject(ruleFields);
export type NewRule = z.output<typeof newRuleSchema>;
/** The body of `PATCH /api/alarm-rules/{id}`: any field, the same checks once merged. */
export const rulePatchSchema = z
  .strictObject(ruleFields)
  .partial()
  .refine((patch) => Object.keys(patch).length > 0, 'at least one field');
export type RulePatch = z.output<typeof rulePatchSchema>;

/** A stored rule, as the domain evaluates it. `devicePk` is the registry row id. */
export interface AlarmRule {
  id: number;
  tenantId: number;
  name: string;
  devicePk: number | null;
  deviceType: string | null;
  entityId: string | null;
  severity: Severity;
  condition: Condition;
  notify: Notify;
  quietMinutes: number;
  enabled: boolean;
}

/** What a rule remembers about one device between evaluations. */
export interface RuleState {
  /** Epoch ms since the condition holds (threshold `for_seconds`, offline `minutes`). */
  pendingSince: number | null;
  /** The last value judged: the relay's state (relay rules), the reading's (threshold rules). */
  lastValue: unknown;
  /** The latest event counted (anomaly, relay change): older ones are not counted again. */
  lastEventAt: number | null;
  lastNotifiedAt: number | null;
}

export const EMPTY_STATE: RuleState = {
  pendingSince: null,
  lastValue: null,
  lastEventAt: null,
  lastNotifiedAt: null,
};

/** A rule applied to one device, with what it remembers and whether an alarm is open. */
export interface RuleTarget {
  rule: AlarmRule;
  devicePk: number;
  state: RuleState;
  open: boolean;
}

export interface Delivery {
  channel: 'webhook' | 'email';
  target: string;
  secret?: string;
  /** 'suppressed': recorded, not sent (the rule's quiet period). */
  status: 'pending' | 'suppressed';
}

/** A decision of the evaluator, applied by the store in one statement. */
export interface Transition {
  kind: 'raise' | 'clear';
  tenantId: number;
  ruleId: number;
  devicePk: number;
  entityId: string | null;
  /** Epoch ms: the reading's time (raise) or when the condition ended (clear). */
  at: number;
  value: unknown;
  reason: string;
  deliveries: Delivery[];
  /** What notifications say about it. */
  payload: Record<string, unknown>;
}

export interface StateChange {
  tenantId: number;
  ruleId: number;
  devicePk: number;
  state: RuleState;
}

export interface Evaluation {
  states: StateChange[];
  transitions: Transition[];
}

/** An alarm as the API shows it. */
export interface Alarm {
  id: number;
  rule_id: number | null;
  rule_name: string;
  device_id: number;
  entity_id: string | null;
  severity: Severity;
  status: AlarmStatus;
  count: number;
  value: unknown;
  reason: string | null;
  started_at: string;
  last_at: string;
  acknowledged_by: number | null;
  acknowledged_at: string | null;
  cleared_at: string | null;
}

/** An alarm that changed, for live events and notifications. */
export interface TouchedAlarm {
  id: number;
  tenantId: number;
  ruleId: number | null;
  devicePk: number;
  entityId: string | null;
  severity: Severity;
  status: AlarmStatus;
  count: number;
  value: unknown;
  event: 'raised' | 'repeated' | 'cleared';
  startedAt: string;
  clearedAt: string | null;
  /** Deliveries to send now. */
  deliveryIds: number[];
}
