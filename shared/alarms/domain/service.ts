import type { AuditTrail } from '../../audit/domain/audit.ts';
import { changedFields } from '../../audit/domain/audit.ts';
import { Conflict, InvalidInput, NotFound, NotPermitted } from '../../domain-errors.ts';
import { evaluateBatch, evaluateSchedule, type ObservedDevice } from './evaluator.ts';
import type {
  Alarm,
  AlarmStatus,
  Evaluation,
  NewRule,
  RulePatch,
  RuleTarget,
  Severity,
  TouchedAlarm,
} from './model.ts';
import type {
  AlarmEvaluationStore,
  AlarmLivePublisher,
  AlarmRuleStore,
  AlarmStore,
  DeliveryDispatcher,
  RuleFields,
  RuleRecord,
  WebhookAddressPolicy,
} from './ports.ts';

/** Who acts: the signed-in user, their tenant and role. */
export interface Actor {
  userId: number;
  tenantId: number;
  role: string;
}

const DEFAULT_QUIET_MINUTES = 10;

/** A rule as the API shows it: webhook secrets are write-only. */
export function ruleView(rule: RuleRecord) {
  return {
    id: rule.id,
    name: rule.name,
    device_id: rule.devicePk,
    device_type: rule.deviceType,
    entity_id: rule.entityId,
    severity: rule.severity,
    condition: rule.condition,
    notify: {
      webhooks: rule.notify.webhooks.map((hook) => ({ url: hook.url })),
      emails: rule.notify.emails,
    },
    quiet_minutes: rule.quietMinutes,
    enabled: rule.enabled,
    created_at: rule.createdAt,
    updated_at: rule.updatedAt,
  };
}
export type RuleView = ReturnType<typeof ruleView>;

/** What the audit trail keeps of a rule: everything but secrets. */
function auditedFields(rule: RuleView): Record<string, unknown> {
  const { created_at: _created, updated_at: _updated, id: _id, ...fields } = rule;
  return fields;
}

export class AlarmRefused extends InvalidInput {}

/**
 * Alarm rules and alarms as people manage them: viewers read; owners and admins create,
 * change and delete rules and acknowledge alarms (the route table's roles), and every
 * change is on the audit trail.
 */
export class AlarmService {
  constructor(
    private readonly deps: {
      rules: AlarmRuleStore;
      alarms: AlarmStore;
      audit: AuditTrail;
      webhooks: WebhookAddressPolicy;
      clock?: () => Date;
    },
  ) {}

  #now(): Date {
    return this.deps.clock?.() ?? new Date();
  }

  async #fields(actor: Actor, body: NewRule): Promise<RuleFields> {
    if ((body.device_id === undefined) === (body.device_type === undefined)) {
      throw new InvalidInput('invalid_rule', 'Give exactly one of device_id and device_type');
    }
    const condition = body.condition;
    if (condition.type === 'threshold' && body.entity_id === undefined) {
      throw new InvalidInput('invalid_rule', 'A threshold rule needs entity_id');
    }
    if (condition.type === 'anomaly') {
      const features = await this.deps.rules.planFeatures(actor.tenantId);
      if (!features.anomalyDetection) {
        throw new NotPermitted(
          'plan_required',
          'Anomaly rules need a plan with anomaly detection (Professional or Industrial)',
        );
      }
    }
    if (condition.type === 'rul_below') {
      if (body.entity_id !== undefined) {
        throw new InvalidInput(
          'invalid_rule',
          'A rul_below rule watches the whole device: leave out entity_id',
        );
      }
      const features = await this.deps.rules.planFeatures(actor.tenantId);
      if (!features.predictiveMaintenance) {
        throw new NotPermitted(
          'plan_required',
          'Remaining-useful-life rules need a plan with predictive maintenance (Professional or Industrial)',
        );
      }
    }
    const notify = { webhooks: body.notify?.webhooks ?? [], emails: body.notify?.emails ?? [] };
    for (const hook of notify.webhooks) {
      const refusal = await this.deps.webhooks.refusal(hook.url);
      if (refusal) throw new InvalidInput('webhook_refused', `${hook.url}: ${refusal}`);
    }
    return {
      name: body.name,
      devicePk: body.device_id ?? null,
      deviceType: body.device_type ?? null,
      entityId: body.entity_id ?? null,
      severity: body.severity,
      condition,
      notify,
      quietMinutes: body.quiet_minutes ?? DEFAULT_QUIET_MINUTES,
      enabled: body.enabled ?? true,
    };
  }

  async createRule(actor: Actor, body: NewRule) {
    const fields = await this.#fields(actor, body);
    const created = await this.deps.rules.create(actor.tenantId, actor.userId, fields);
    if ('refused' in created) {
      if (created.refused === 'no_device') throw new NotFound('device_not_found', 'No such device');
      throw new NotPermitted(
        'plan_limit_reached',
        `Your plan allows ${created.limit} alarm rules; upgrade to add more`,
      );
    }
    const rule = ruleView(created);
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'alarm_rule.create',
      target: `alarm_rule:${rule.id}`,
      changes: changedFields({}, auditedFields(rule)),
    });
    return { rule };
  }

  async listRules(actor: Actor) {
    return { rules: (await this.deps.rules.list(actor.tenantId)).map(ruleView) };
  }

  async getRule(actor: Actor, id: number) {
    const rule = await this.deps.rules.get(actor.tenantId, id);
    if (!rule) throw new NotFound('alarm_rule_not_found', 'No such alarm rule');
    return { rule: ruleView(rule) };
  }

  async updateRule(actor: Actor, id: number, patch: RulePatch) {
    const current = await this.deps.rules.get(actor.tenantId, id);
    if (!current) throw new NotFound('alarm_rule_not_found', 'No such alarm rule');
    // The merged rule is checked whole: a patch may not leave it half of one kind.
    const merged: NewRule = {
      name: patch.name ?? current.name,
      severity: patch.severity ?? current.severity,
      condition: patch.condition ?? current.condition,
      notify: patch.notify ?? current.notify,
      quiet_minutes: patch.quiet_minutes ?? current.quietMinutes,
      enabled: patch.enabled ?? current.enabled,
      ...(patch.device_id !== undefined || patch.device_type !== undefined
        ? { device_id: patch.device_id, device_type: patch.device_type }
        : current.devicePk !== null
          ? { device_id: current.devicePk }
          : { device_type: current.deviceType as string }),
      ...(patch.entity_id !== undefined
        ? { entity_id: patch.entity_id }
        : current.entityId !== null
          ? { entity_id: current.entityId }
          : {}),
    };
    const fields = await this.#fields(actor, merged);
    const updated = await this.deps.rules.update(actor.tenantId, id, fields);
    if (!updated) throw new NotFound('alarm_rule_not_found', 'No such alarm rule or device');
    const before = ruleView(current);
    const rule = ruleView(updated);
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'alarm_rule.update',
      target: `alarm_rule:${id}`,
      changes: changedFields(auditedFields(before), auditedFields(rule)),
    });
    return { rule };
  }

  async deleteRule(actor: Actor, id: number) {
    const removed = await this.deps.rules.remove(actor.tenantId, id, this.#now());
    if (!removed) throw new NotFound('alarm_rule_not_found', 'No such alarm rule');
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'alarm_rule.delete',
      target: `alarm_rule:${id}`,
      changes: changedFields(auditedFields(ruleView(removed)), {}),
    });
  }

  async listAlarms(
    actor: Actor,
    query: { status?: AlarmStatus; severity?: Severity; device_id?: number; limit?: number },
  ): Promise<{ alarms: Alarm[] }> {
    const alarms = await this.deps.alarms.list(actor.tenantId, {
      status: query.status,
      severity: query.severity,
      devicePk: query.device_id,
      limit: query.limit ?? 200,
    });
    return { alarms };
  }

  async getAlarm(actor: Actor, id: number) {
    const found = await this.deps.alarms.get(actor.tenantId, id);
    if (!found) throw new NotFound('alarm_not_found', 'No such alarm');
    return { alarm: { ...found.alarm, history: found.history, deliveries: found.deliveries } };
  }

  async acknowledge(actor: Actor, id: number) {
    const result = await this.deps.alarms.acknowledge(
      actor.tenantId,
      id,
      actor.userId,
      this.#now(),
    );
    if ('refused' in result) {
      if (result.refused === 'not_found') throw new NotFound('alarm_not_found', 'No such alarm');
      throw new Conflict(
        'alarm_not_open',
        `The alarm is ${result.alarm?.status}; only an active alarm can be acknowledged`,
      );
    }
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'alarm.acknowledge',
      target: `alarm:${id}`,
      changes: { status: { before: 'active', after: 'acknowledged' } },
    });
    return { alarm: result.alarm };
  }
}

/**
 * Runs rules against what happened: each ingested batch (one read of the rules and states
 * of the batch's devices, one write only when something changed) and the scheduled pass.
 * Then it tells dashboards and hands the new deliveries to the dispatcher.
 */
export class AlarmEvaluator {
  constructor(
    private readonly deps: {
      store: AlarmEvaluationStore;
      dispatcher: DeliveryDispatcher;
      live?: AlarmLivePublisher;
      onError?: (what: string, error: unknown) => void;
    },
  ) {}

  /**
   * The ingestion hook (its port, matched by shape so neither context imports the other):
   * ingestion names the devices whose readings it is about to store, and the rules that
   * apply to them are read while it writes; once stored, it hands over each device's
   * readings, judged with those rules.
   */
  expect(devicePks: readonly number[]): {
    readingsStored(batch: {
      nowMs: number;
      devices: Array<{
        device: { devicePk: number; tenantId: number };
        readings: ObservedDevice['readings'];
      }>;
    }): Promise<void>;
  } {
    const targets = this.deps.store.batchTargets([...devicePks]);
    // Awaited below; until then (or if the batch stores nothing) its failure is no one's.
    targets.catch(() => {});
    return {
      readingsStored: async (batch) => {
        await this.#evaluateWith(
          await targets,
          // Anomalies come later, from the scheduled scoring pass (`evaluateBatch`).
          batch.devices.map(({ device, readings }) => ({
            devicePk: device.devicePk,
            tenantId: device.tenantId,
            readings,
            anomalies: [],
          })),
          batch.nowMs,
        );
      },
    };
  }

  /**
   * Judges devices' stored readings and anomalies (the scheduled anomaly scoring hands over
   * what it found, with no readings); throws if the store fails.
   */
  async evaluateBatch(devices: ObservedDevice[], nowMs: number): Promise<TouchedAlarm[]> {
    if (devices.length === 0) return [];
    const targets = await this.deps.store.batchTargets([
      ...new Set(devices.map((device) => device.devicePk)),
    ]);
    return this.#evaluateWith(targets, devices, nowMs);
  }

  /** Judges the devices' readings with the rules read for them (rules of other devices are skipped). */
  #evaluateWith(
    targets: RuleTarget[],
    devices: ObservedDevice[],
    nowMs: number,
  ): Promise<TouchedAlarm[]> {
    if (devices.length === 0 || targets.length === 0) return Promise.resolve([]);
    const byPk = new Map(devices.map((device) => [device.devicePk, device]));
    return this.#apply(evaluateBatch(targets, byPk, nowMs));
  }

  /** The scheduled pass over time-driven rules and event-like alarms. */
  async evaluateSchedule(nowMs: number): Promise<TouchedAlarm[]> {
    const targets = await this.deps.store.scheduleTargets();
    if (targets.length === 0) return [];
    return this.#apply(evaluateSchedule(targets, nowMs));
  }

  async #apply(evaluation: Evaluation): Promise<TouchedAlarm[]> {
    if (evaluation.states.length === 0 && evaluation.transitions.length === 0) return [];
    const touched = await this.deps.store.apply(evaluation);
    if (touched.length === 0) return touched;
    const deliveries = touched.flatMap((alarm) => alarm.deliveryIds);
    // Notifications and live pushes follow the stored decision; their failure never undoes
    // it: pending deliveries are retried by the scheduled run.
    if (deliveries.length > 0) {
      await this.deps.dispatcher
        .dispatch(deliveries)
        .catch((error: unknown) => this.deps.onError?.('dispatch', error));
    }
    if (this.deps.live) {
      const byTenant = new Map<number, TouchedAlarm[]>();
      for (const alarm of touched) {
        byTenant.set(alarm.tenantId, [...(byTenant.get(alarm.tenantId) ?? []), alarm]);
      }
      for (const [tenantId, alarms] of byTenant) {
        await this.deps.live
          .publish(tenantId, alarms)
          .catch((error: unknown) => this.deps.onError?.('live', error));
      }
    }
    return touched;
  }
}
