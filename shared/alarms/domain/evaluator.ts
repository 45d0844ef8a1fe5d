import type {
  AlarmRule,
  Condition,
  Delivery,
  Evaluation,
  RuleState,
  RuleTarget,
  StateChange,
  Transition,
} from './model.ts';

/** A stored reading as the evaluator sees it. */
export interface ObservedReading {
  entityId: string;
  entityType: 'switch' | 'sensor' | 'number' | 'text';
  value: number | boolean | string;
  timeMs: number;
  /** Who caused a relay state: a command's sender, or 'device' when nobody asked for it. */
  triggeredBy?: string;
}

export interface ObservedAnomaly {
  entityId: string;
  timeMs: number;
  score: number;
  value: number;
}

/** One device's share of an ingested batch. */
export interface ObservedDevice {
  devicePk: number;
  tenantId: number;
  readings: ObservedReading[];
  anomalies: ObservedAnomaly[];
}

/** The device's latest remaining-useful-life prediction (predictive maintenance). */
export interface RulPrediction {
  value: number;
  low: number;
  high: number;
  unit: 'cycles' | 'hours';
  computedAtMs: number;
}

/** What the scheduler knows of a device: its status, its last message, its predicted life. */
export interface DevicePresence {
  status: 'online' | 'offline';
  lastSeenMs: number | null;
  createdAtMs: number;
  /** Null without a prediction, or when the tenant's plan has no predictive maintenance. */
  rul?: RulPrediction | null;
}

type Threshold = Extract<Condition, { type: 'threshold' }>;

function violates(condition: Threshold, value: number): boolean {
  switch (condition.op) {
    case '>':
      return value > (condition.value as number);
    case '<':
      return value < (condition.value as number);
    case 'outside':
      return value < (condition.low as number) || value > (condition.high as number);
    case 'inside':
      return value >= (condition.low as number) && value <= (condition.high as number);
  }
}

/** Back inside the hysteresis band's far side: the alarm may clear. */
function recovered(condition: Threshold, value: number): boolean {
  const h = condition.hysteresis;
  switch (condition.op) {
    case '>':
      return value <= (condition.value as number) - h;
    case '<':
      return value >= (condition.value as number) + h;
    case 'outside':
      return value >= (condition.low as number) + h && value <= (condition.high as number) - h;
    case 'inside':
      return value < (condition.low as number) - h || value > (condition.high as number) + h;
  }
}

function describe(condition: Threshold): string {
  return condition.op === '>' || condition.op === '<'
    ? `${condition.op} ${condition.value}`
    : `${condition.op} [${condition.low}, ${condition.high}]`;
}

/**
 * Decides the notifications of a new alarm or a clear: every recipient of the rule, each
 * recorded as suppressed while the rule's quiet period since the last notification runs.
 */
function deliveriesFor(rule: AlarmRule, state: RuleState, nowMs: number): Delivery[] {
  const recipients: Delivery[] = [
    ...rule.notify.webhooks.map((hook) => ({
      channel: 'webhook' as const,
      target: hook.url,
      secret: hook.secret,
      status: 'pending' as const,
    })),
    ...rule.notify.emails.map((address) => ({
      channel: 'email' as const,
      target: address,
      status: 'pending' as const,
    })),
  ];
  if (recipients.length === 0) return [];
  const quiet =
    state.lastNotifiedAt !== null && nowMs - state.lastNotifiedAt < rule.quietMinutes * 60_000;
  if (quiet) return recipients.map((recipient) => ({ ...recipient, status: 'suppressed' }));
  state.lastNotifiedAt = nowMs;
  return recipients;
}

/** Collects a batch's decisions; a target's state is written only when it changed. */
class Decisions {
  readonly transitions: Transition[] = [];
  readonly #states = new Map<string, StateChange>();

  constructor(private readonly nowMs: number) {}

  raise(
    target: RuleTarget,
    state: RuleState,
    at: number,
    value: unknown,
    reason: string,
    entityId: string | null,
  ) {
    // A new alarm notifies; one more occurrence of an open one only counts.
    const deliveries = target.open ? [] : deliveriesFor(target.rule, state, this.nowMs);
    this.transitions.push({
      kind: 'raise',
      tenantId: target.rule.tenantId,
      ruleId: target.rule.id,
      devicePk: target.devicePk,
      entityId,
      at,
      value,
      reason,
      deliveries,
      payload: this.payload(target, entityId, at, value, reason),
    });
    target.open = true;
    this.changed(target, state);
  }

  payload(target: RuleTarget, entityId: string | null, at: number, value: unknown, reason: string) {
    const { rule } = target;
    return {
      rule_id: rule.id,
      rule_name: rule.name,
      severity: rule.severity,
      device_id: target.devicePk,
      entity_id: entityId,
      value,
      reason,
      at: new Date(at).toISOString(),
    };
  }

  clear(target: RuleTarget, state: RuleState, at: number, value: unknown, reason: string) {
    this.transitions.push({
      kind: 'clear',
      tenantId: target.rule.tenantId,
      ruleId: target.rule.id,
      devicePk: target.devicePk,
      entityId: target.rule.entityId,
      at,
      value,
      reason,
      deliveries: deliveriesFor(target.rule, state, this.nowMs),
      payload: this.payload(target, target.rule.entityId, at, value, reason),
    });
    target.open = false;
    this.changed(target, state);
  }

  changed(target: RuleTarget, state: RuleState) {
    target.state = state;
    this.#states.set(`${target.rule.id}:${target.devicePk}`, {
      tenantId: target.rule.tenantId,
      ruleId: target.rule.id,
      devicePk: target.devicePk,
      state,
    });
  }

  evaluation(): Evaluation {
    return { states: [...this.#states.values()], transitions: this.transitions };
  }
}

function evaluateThreshold(
  target: RuleTarget,
  condition: Threshold,
  readings: ObservedReading[],
  decisions: Decisions,
) {
  const entityId = target.rule.entityId;
  const state = { ...target.state };
  const before = { ...target.state };
  let acted = false;
  for (const reading of readings) {
    if (reading.entityId !== entityId || typeof reading.value !== 'number') continue;
    // Readings older than one already judged (a device flushing its buffer, a retried batch)
    // are history, not news: judging them again would raise or clear out of order. Another
    // value in the same millisecond replaces the stored one (the last write wins), so it counts.
    if (
      state.lastEventAt !== null &&
      (reading.timeMs < state.lastEventAt ||
        (reading.timeMs === state.lastEventAt && reading.value === state.lastValue))
    )
      continue;
    state.lastEventAt = reading.timeMs;
    state.lastValue = reading.value;
    const value = reading.value;
    if (target.open) {
      if (recovered(condition, value)) {
        state.pendingSince = null;
        decisions.clear(
          target,
          state,
          reading.timeMs,
          value,
          `back within ${describe(condition)} less ${condition.hysteresis}`,
        );
        acted = true;
      } else if (violates(condition, value)) {
        // Back over the limit after a spell inside the band: one more occurrence.
        if (state.pendingSince === null) {
          state.pendingSince = reading.timeMs;
          decisions.raise(
            target,
            state,
            reading.timeMs,
            value,
            `${value} ${describe(condition)}`,
            entityId,
          );
          acted = true;
        }
      } else state.pendingSince = null;
      continue;
    }
    if (!violates(condition, value)) {
      state.pendingSince = null;
      continue;
    }
    state.pendingSince ??= reading.timeMs;
    if (reading.timeMs - state.pendingSince >= condition.for_seconds * 1000) {
      const held = condition.for_seconds > 0 ? ` for ${condition.for_seconds} s` : '';
      decisions.raise(
        target,
        state,
        reading.timeMs,
        value,
        `${value} ${describe(condition)}${held}`,
        entityId,
      );
      acted = true;
    }
  }
  // Only a change of what decides the future is written; a newer judged time alone is not.
  if (!acted && state.pendingSince !== before.pendingSince) decisions.changed(target, state);
}

function evaluateAnomaly(
  target: RuleTarget,
  minScore: number,
  anomalies: ObservedAnomaly[],
  decisions: Decisions,
) {
  const state = { ...target.state };
  const entityId = target.rule.entityId;
  const counted = anomalies
    .filter(
      (anomaly) =>
        anomaly.score >= minScore &&
        (entityId === null || anomaly.entityId === entityId) &&
        (state.lastEventAt === null || anomaly.timeMs > state.lastEventAt),
    )
    .sort((a, b) => a.timeMs - b.timeMs);
  for (const anomaly of counted) {
    state.lastEventAt = anomaly.timeMs;
    decisions.raise(
      target,
      state,
      anomaly.timeMs,
      anomaly.value,
      `anomaly score ${anomaly.score.toFixed(2)} on ${anomaly.entityId} (at least ${minScore})`,
      anomaly.entityId,
    );
  }
}

function evaluateRelay(target: RuleTarget, readings: ObservedReading[], decisions: Decisions) {
  const state = { ...target.state };
  const entityId = target.rule.entityId;
  const last = { ...((state.lastValue as Record<string, unknown> | null) ?? {}) };
  let changed = false;
  for (const reading of readings) {
    if (reading.entityType !== 'switch') continue;
    if (entityId !== null && reading.entityId !== entityId) continue;
    if (state.lastEventAt !== null && reading.timeMs <= state.lastEventAt) continue;
    const previous = last[reading.entityId];
    if (previous === reading.value) continue;
    last[reading.entityId] = reading.value;
    state.lastValue = { ...last };
    changed = true;
    // The first state seen is the baseline, not a change.
    if (previous === undefined || reading.triggeredBy !== 'device') continue;
    state.lastEventAt = reading.timeMs;
    decisions.raise(
      target,
      state,
      reading.timeMs,
      reading.value,
      `${reading.entityId} changed from ${JSON.stringify(previous)} to ${JSON.stringify(reading.value)} without a command`,
      reading.entityId,
    );
  }
  if (changed) decisions.changed(target, state);
}

/**
 * Judges one ingested batch against the rules that apply to its devices: each reading of a
 * device in time order, so a batch holding a spike and its recovery raises and clears.
 * Pure: the store loads `targets` before and applies the result after, once per batch.
 */
export function evaluateBatch(
  targets: RuleTarget[],
  devices: ReadonlyMap<number, ObservedDevice>,
  nowMs: number,
): Evaluation {
  const decisions = new Decisions(nowMs);
  const sorted = new Map<number, ObservedReading[]>();
  for (const target of targets) {
    const device = devices.get(target.devicePk);
    if (!device) continue;
    let readings = sorted.get(device.devicePk);
    if (!readings) {
      readings = [...device.readings].sort((a, b) => a.timeMs - b.timeMs);
      sorted.set(device.devicePk, readings);
    }
    const condition = target.rule.condition;
    if (condition.type === 'threshold') evaluateThreshold(target, condition, readings, decisions);
    else if (condition.type === 'anomaly')
      evaluateAnomaly(target, condition.min_score, device.anomalies, decisions);
    else if (condition.type === 'relay_uncommanded') evaluateRelay(target, readings, decisions);
  }
  return decisions.evaluation();
}

const round = (value: number) => Math.round(value * 10) / 10;

/**
 * The scheduled pass: time-driven rules (no data, offline, remaining useful life) against each
 * device's presence and latest prediction, and event-like alarms (anomaly, relay) that clear
 * after a quiet spell without a new event.
 */
export function evaluateSchedule(
  targets: Array<RuleTarget & { presence: DevicePresence }>,
  nowMs: number,
): Evaluation {
  const decisions = new Decisions(nowMs);
  for (const target of targets) {
    const condition = target.rule.condition;
    const state = { ...target.state };
    const { presence } = target;
    const silentSince = presence.lastSeenMs ?? presence.createdAtMs;
    if (condition.type === 'no_data') {
      const silentFor = nowMs - silentSince;
      const late = silentFor >= condition.minutes * 60_000;
      const last =
        presence.lastSeenMs === null ? 'never' : new Date(presence.lastSeenMs).toISOString();
      if (late && !target.open)
        decisions.raise(
          target,
          state,
          nowMs,
          last,
          `no data for ${Math.floor(silentFor / 60_000)} min (last ${last})`,
          null,
        );
      else if (!late && target.open)
        decisions.clear(target, state, nowMs, last, 'data arrived again');
    } else if (condition.type === 'offline') {
      const offline =
        presence.status === 'offline' && nowMs - silentSince >= condition.minutes * 60_000;
      if (offline && !target.open)
        decisions.raise(
          target,
          state,
          nowMs,
          'offline',
          `offline since ${new Date(silentSince).toISOString()}`,
          null,
        );
      else if (presence.status === 'online' && target.open)
        decisions.clear(target, state, nowMs, 'online', 'back online');
    } else if (condition.type === 'rul_below') {
      const rul = presence.rul ?? null;
      // A prediction already judged is not news: the alarm raised on it counts once.
      if (rul === null || (state.lastEventAt !== null && rul.computedAtMs <= state.lastEventAt)) {
        if (rul === null && target.open)
          decisions.clear(target, state, nowMs, null, 'no remaining-useful-life prediction');
        continue;
      }
      state.lastEventAt = rul.computedAtMs;
      const life = `${round(rul.value)} ${rul.unit} (10-90%: ${round(rul.low)}-${round(rul.high)})`;
      if (!target.open && rul.value < condition.value)
        decisions.raise(
          target,
          state,
          rul.computedAtMs,
          rul.value,
          `remaining useful life ${life} below ${condition.value}`,
          null,
        );
      else if (target.open && rul.value >= condition.value + condition.hysteresis)
        decisions.clear(
          target,
          state,
          rul.computedAtMs,
          rul.value,
          `remaining useful life ${life} back at or above ${condition.value + condition.hysteresis}`,
        );
      else decisions.changed(target, state);
    } else if (
      (condition.type === 'anomaly' || condition.type === 'relay_uncommanded') &&
      target.open
    ) {
      const lastEvent = state.lastEventAt ?? 0;
      if (nowMs - lastEvent >= condition.clear_after_minutes * 60_000)
        decisions.clear(
          target,
          state,
          nowMs,
          null,
          `no new event for ${condition.clear_after_minutes} min`,
        );
    }
  }
  return decisions.evaluation();
}
