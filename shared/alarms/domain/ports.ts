import type { DevicePresence } from './evaluator.ts';
import type {
  Alarm,
  AlarmRule,
  AlarmStatus,
  Evaluation,
  RuleTarget,
  Severity,
  TouchedAlarm,
} from './model.ts';

/** A rule as stored, before the API view hides its webhook secrets. */
export type RuleRecord = AlarmRule & { createdAt: string; updatedAt: string };

export type RuleFields = Omit<AlarmRule, 'id' | 'tenantId'>;

/** Port: the tenant's rules. Every call is scoped to `tenantId`. */
export interface AlarmRuleStore {
  /**
   * Stores a new rule unless the plan's rule limit is reached (then `limit_reached` with the
   * limit) or the rule names a device the tenant does not have (`no_device`).
   */
  create(
    tenantId: number,
    createdBy: number,
    fields: RuleFields,
  ): Promise<RuleRecord | { refused: 'no_device' } | { refused: 'limit_reached'; limit: number }>;
  list(tenantId: number): Promise<RuleRecord[]>;
  get(tenantId: number, id: number): Promise<RuleRecord | null>;
  /** Replaces the rule's fields; null when the rule (or the device it names) is not there. */
  update(tenantId: number, id: number, fields: RuleFields): Promise<RuleRecord | null>;
  /** Removes the rule and clears its open alarms (their history stays). */
  remove(tenantId: number, id: number, at: Date): Promise<RuleRecord | null>;
  /** The features of the tenant's current plan that rule kinds depend on. */
  planFeatures(
    tenantId: number,
  ): Promise<{ anomalyDetection: boolean; predictiveMaintenance: boolean }>;
}

export interface AlarmFilter {
  status?: AlarmStatus;
  severity?: Severity;
  devicePk?: number;
  limit: number;
}

export interface AlarmEventView {
  type: 'raised' | 'repeated' | 'acknowledged' | 'cleared';
  at: string;
  value: unknown;
  user_id: number | null;
  reason: string | null;
}

export interface DeliveryView {
  id: number;
  event: string;
  channel: 'webhook' | 'email';
  target: string;
  status: 'pending' | 'delivered' | 'dead' | 'suppressed';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  next_attempt_at: string | null;
}

/** Port: alarms as people read and acknowledge them. */
export interface AlarmStore {
  list(tenantId: number, filter: AlarmFilter): Promise<Alarm[]>;
  get(
    tenantId: number,
    id: number,
  ): Promise<{ alarm: Alarm; history: AlarmEventView[]; deliveries: DeliveryView[] } | null>;
  /**
   * Marks an open, unacknowledged alarm acknowledged by `userId` and records it in the
   * history; `not_open` when it is cleared or already acknowledged.
   */
  acknowledge(
    tenantId: number,
    id: number,
    userId: number,
    at: Date,
  ): Promise<{ alarm: Alarm } | { refused: 'not_found' | 'not_open'; alarm?: Alarm }>;
}

/** Port: the evaluation's one read and one write, across tenants. */
export interface AlarmEvaluationStore {
  /** The reading-driven rules of these devices, each with its state and open flag. */
  batchTargets(devicePks: number[]): Promise<RuleTarget[]>;
  /** Time-driven rules and open event-like alarms, with each device's presence. */
  scheduleTargets(): Promise<Array<RuleTarget & { presence: DevicePresence }>>;
  apply(evaluation: Evaluation): Promise<TouchedAlarm[]>;
}

/** Port: sends the deliveries just created (a queue, an async invocation), best effort. */
export interface DeliveryDispatcher {
  dispatch(deliveryIds: number[]): Promise<void>;
}

/** Port: tells the tenant's open dashboards an alarm changed. */
export interface AlarmLivePublisher {
  publish(tenantId: number, alarms: TouchedAlarm[]): Promise<void>;
}

/** Port: refuses webhook URLs the platform must not call (loopback, private, link-local). */
export interface WebhookAddressPolicy {
  /** Null when allowed; else why not, for the caller. */
  refusal(url: string): Promise<string | null>;
}
