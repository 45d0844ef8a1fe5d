import type pg from 'pg';
import type { DevicePresence } from '../domain/evaluator.ts';
import type {
  AlarmStatus,
  Evaluation,
  RuleState,
  RuleTarget,
  Severity,
  TouchedAlarm,
} from '../domain/model.ts';
import type { DeliveryResult, DeliveryStore, PendingDelivery } from '../domain/notifications.ts';
import type { AlarmEvaluationStore } from '../domain/ports.ts';
import { ruleOf } from './postgres-alarms.ts';

interface StateJson {
  pending_since: string | null;
  last_value: unknown;
  last_event_at: string | null;
  last_notified_at: string | null;
}

interface TargetJson {
  rule: Parameters<typeof ruleOf>[0];
  device_pk: number;
  state: StateJson | null;
  open: boolean;
  device?: { status: 'online' | 'offline'; last_seen: string | null; created_at: string };
  rul?: {
    value: number;
    low: number;
    high: number;
    unit: 'cycles' | 'hours';
    computed_at: string;
  } | null;
}

const ms = (value: string | null) => (value === null ? null : Date.parse(value));
const iso = (value: number | null) => (value === null ? null : new Date(value).toISOString());

function stateOf(json: StateJson | null): RuleState {
  return {
    pendingSince: ms(json?.pending_since ?? null),
    lastValue: json?.last_value ?? null,
    lastEventAt: ms(json?.last_event_at ?? null),
    lastNotifiedAt: ms(json?.last_notified_at ?? null),
  };
}

function targetOf(json: TargetJson): RuleTarget {
  return {
    rule: ruleOf(json.rule),
    devicePk: json.device_pk,
    state: stateOf(json.state),
    open: json.open,
  };
}

/**
 * The evaluation's reads and its write, each one statement through SECURITY DEFINER
 * functions: a batch spans tenants, and the tenant of each row comes from the registry.
 */
export class PostgresAlarmEvaluationStore implements AlarmEvaluationStore {
  constructor(private readonly pool: pg.Pool) {}

  async batchTargets(devicePks: number[]): Promise<RuleTarget[]> {
    const { rows } = await this.pool.query<{ targets: TargetJson[] }>(
      'SELECT alarm_batch_context($1::integer[]) AS targets',
      [devicePks],
    );
    return (rows[0]?.targets ?? []).map(targetOf);
  }

  async scheduleTargets(): Promise<Array<RuleTarget & { presence: DevicePresence }>> {
    const { rows } = await this.pool.query<{ targets: TargetJson[] }>(
      'SELECT alarm_schedule_context() AS targets',
    );
    return (rows[0]?.targets ?? []).map((json) => ({
      ...targetOf(json),
      presence: {
        status: json.device?.status ?? 'offline',
        lastSeenMs: ms(json.device?.last_seen ?? null),
        createdAtMs: Date.parse(json.device?.created_at ?? '1970-01-01T00:00:00Z'),
        rul: json.rul
          ? {
              value: json.rul.value,
              low: json.rul.low,
              high: json.rul.high,
              unit: json.rul.unit,
              computedAtMs: Date.parse(json.rul.computed_at),
            }
          : null,
      },
    }));
  }

  async apply(evaluation: Evaluation): Promise<TouchedAlarm[]> {
    const changes = {
      states: evaluation.states.map((change) => ({
        tenant_id: change.tenantId,
        rule_id: change.ruleId,
        device_pk: change.devicePk,
        pending_since: iso(change.state.pendingSince),
        last_value: change.state.lastValue,
        last_event_at: iso(change.state.lastEventAt),
        last_notified_at: iso(change.state.lastNotifiedAt),
      })),
      transitions: evaluation.transitions.map((transition) => ({
        kind: transition.kind,
        tenant_id: transition.tenantId,
        rule_id: transition.ruleId,
        device_pk: transition.devicePk,
        entity_id: transition.entityId,
        at: new Date(transition.at).toISOString(),
        value: transition.value,
        reason: transition.reason,
        payload: transition.payload,
        deliveries: transition.deliveries.map((delivery) => ({
          channel: delivery.channel,
          target: delivery.target,
          secret: delivery.secret ?? null,
          status: delivery.status,
        })),
      })),
    };
    const { rows } = await this.pool.query<{
      touched: Array<{
        id: number;
        tenant_id: number;
        rule_id: number | null;
        device_pk: number;
        entity_id: string | null;
        severity: Severity;
        status: AlarmStatus;
        count: number;
        value: unknown;
        event: TouchedAlarm['event'];
        started_at: string;
        cleared_at: string | null;
        deliveries: number[];
      }>;
    }>('SELECT alarm_batch_apply($1::jsonb) AS touched', [JSON.stringify(changes)]);
    return (rows[0]?.touched ?? []).map((row) => ({
      id: row.id,
      tenantId: row.tenant_id,
      ruleId: row.rule_id,
      devicePk: row.device_pk,
      entityId: row.entity_id,
      severity: row.severity,
      status: row.status,
      count: row.count,
      value: row.value,
      event: row.event,
      startedAt: row.started_at,
      clearedAt: row.cleared_at,
      deliveryIds: row.deliveries,
    }));
  }
}

export class PostgresDeliveryStore implements DeliveryStore {
  constructor(private readonly pool: pg.Pool) {}

  async claim(options: {
    ids?: number[];
    max: number;
    leaseSeconds: number;
  }): Promise<PendingDelivery[]> {
    const { rows } = await this.pool.query<{
      id: number;
      tenant_id: number;
      alarm_id: number;
      channel: 'webhook' | 'email';
      target: string;
      secret: string | null;
      payload: Record<string, unknown>;
      attempts: number;
    }>('SELECT * FROM alarm_deliveries_claim($1::bigint[], $2, $3)', [
      options.ids ?? null,
      options.max,
      options.leaseSeconds,
    ]);
    return rows.map((row) => ({
      id: row.id,
      tenantId: row.tenant_id,
      alarmId: row.alarm_id,
      channel: row.channel,
      target: row.target,
      secret: row.secret,
      payload: row.payload,
      attempts: row.attempts,
    }));
  }

  async record(results: DeliveryResult[]): Promise<void> {
    await this.pool.query('SELECT alarm_deliveries_record($1::jsonb)', [
      JSON.stringify(
        results.map((result) => ({
          id: result.id,
          status: result.status,
          error: result.error,
          http_status: result.httpStatus,
          next_attempt_at: result.nextAttemptAt?.toISOString() ?? null,
        })),
      ),
    ]);
  }
}
