import type { AuditTrail } from '../../audit/domain/audit.ts';
import { InvalidInput, NotFound, NotPermitted } from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import {
  type EntityLimit,
  type FleetModelSummary,
  type HealthReport,
  healthStatus,
  type MaintenanceEvent,
  type NewMaintenanceEvent,
  NUMERIC_ENTITY_TYPES,
  type RulAnswer,
  type StepUnit,
  type ThresholdAnswer,
} from './model.ts';
import type {
  ActiveModel,
  DeviceRul,
  LifeBoundary,
  Machine,
  MachineHistory,
  MaintenanceStore,
  RulModelStore,
  StepHistory,
  StoredPrediction,
} from './ports.ts';
import { type RulModel, RulPredictor } from './rul-model.ts';
import { forecastThresholdCrossing } from './time-to-threshold.ts';

export interface MaintenanceCaller {
  tenantId: number;
  userId: number;
}

export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface MaintenanceSettings {
  /** How far back a life without a recorded start is read (ingestion keeps up to 366 days). */
  lifeLookbackMs: number;
  /** The history a limit's trend is fitted to. */
  thresholdLookbackMs: number;
  /** A recorded event may be at most this far ahead of the server's clock (clock skew). */
  futureToleranceMs: number;
}

export const DEFAULT_MAINTENANCE_SETTINGS: MaintenanceSettings = {
  lifeLookbackMs: 366 * DAY_MS,
  thresholdLookbackMs: 14 * DAY_MS,
  futureToleranceMs: 60_000,
};

export const planRequired = () =>
  new NotPermitted(
    'plan_required',
    'Predictive maintenance needs the Professional plan or higher; upgrade to use it',
  );

/** The latest failure, repair or replacement at or before `atMs`: where the current life began. */
export function lifeStartAt(boundaries: readonly LifeBoundary[], atMs: number): number | null {
  let start: number | null = null;
  for (const b of boundaries)
    if (b.timeMs <= atMs && (start === null || b.timeMs > start)) start = b.timeMs;
  return start;
}

/** Drops the steps before the first reading (a life whose start was not recorded). */
export function fromFirstReading(history: StepHistory): StepHistory {
  const first = history.rows.findIndex((row) => row.some(Number.isFinite));
  if (first <= 0) return first < 0 ? { times: [], rows: [] } : history;
  return { times: history.times.slice(first), rows: history.rows.slice(first) };
}

export interface MaintenanceServiceOptions {
  store: MaintenanceStore;
  history: MachineHistory;
  models: RulModelStore;
  logger: Logger;
  now?: () => number;
  settings?: Partial<MaintenanceSettings>;
  /** Where people's changes (events, limits, training requests) are recorded. */
  audit?: AuditTrail;
}

/**
 * Predictive maintenance for the API and the scheduled prediction refresh: maintenance
 * events, entity limits, each device's health (time to threshold per limit, remaining useful
 * life from its fleet's active model). Gated to plans with predictive maintenance.
 */
export class MaintenanceService {
  readonly #store: MaintenanceStore;
  readonly #history: MachineHistory;
  readonly #models: RulModelStore;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #audit: AuditTrail | undefined;
  readonly settings: MaintenanceSettings;
  /** Stored models never change under a key: each is loaded once per process. */
  readonly #predictors = new Map<string, Promise<RulPredictor | null>>();

  constructor(options: MaintenanceServiceOptions) {
    this.#store = options.store;
    this.#history = options.history;
    this.#models = options.models;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#audit = options.audit;
    this.settings = { ...DEFAULT_MAINTENANCE_SETTINGS, ...options.settings };
  }

  /** The device, once the tenant's plan is known to allow predictive maintenance. */
  async #machine(tenantId: number, devicePk: number): Promise<Machine> {
    if (!(await this.#store.planAllows(tenantId))) throw planRequired();
    const machine = await this.#store.machine(tenantId, devicePk);
    if (!machine) throw new NotFound('device_not_found', 'No such device');
    return machine;
  }

  async recordEvent(
    caller: MaintenanceCaller,
    devicePk: number,
    event: NewMaintenanceEvent,
  ): Promise<MaintenanceEvent> {
    const machine = await this.#machine(caller.tenantId, devicePk);
    const now = this.#now();
    const time = event.time ?? new Date(now);
    if (time.getTime() > now + this.settings.futureToleranceMs) {
      throw new InvalidInput(
        'time_in_future',
        `A maintenance event cannot be recorded ahead of now (${new Date(now).toISOString()})`,
      );
    }
    const recorded = await this.#store.addEvent(caller.tenantId, machine.id, {
      kind: event.kind,
      time,
      note: event.note,
      recordedBy: caller.userId,
    });
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'maintenance.record',
      target: `device:${machine.id}`,
      details: { kind: event.kind, time: time.toISOString(), note: event.note ?? null },
    });
    return recorded;
  }

  async events(caller: MaintenanceCaller, devicePk: number): Promise<MaintenanceEvent[]> {
    const machine = await this.#machine(caller.tenantId, devicePk);
    return this.#store.events(caller.tenantId, machine.id);
  }

  /** Sets (or, with neither side, removes) a numeric entity's limit. */
  async setLimit(
    caller: MaintenanceCaller,
    devicePk: number,
    entityId: string,
    limit: { above?: number | undefined; below?: number | undefined },
  ): Promise<{ entity_id: string; limit: EntityLimit | null }> {
    const machine = await this.#machine(caller.tenantId, devicePk);
    const entity = machine.entities.find((e) => e.entityId === entityId);
    if (!entity) throw new NotFound('entity_not_found', 'The device has no such entity');
    if (!NUMERIC_ENTITY_TYPES.includes(entity.entityType)) {
      throw new InvalidInput(
        'entity_not_numeric',
        `A limit needs a numeric entity (sensor or number); ${entityId} is a ${entity.entityType}`,
      );
    }
    const above = limit.above ?? null;
    const below = limit.below ?? null;
    if (above !== null && below !== null && !(below < above)) {
      throw new InvalidInput('invalid_limit', '`below` must be less than `above`');
    }
    const stored = above === null && below === null ? null : { above, below };
    await this.#store.setLimit(caller.tenantId, machine.id, entityId, stored);
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'entity_limit.set',
      target: `device:${machine.id}`,
      details: { entity_id: entityId, limit: stored },
    });
    return { entity_id: entityId, limit: stored };
  }

  async health(caller: MaintenanceCaller, devicePk: number): Promise<HealthReport> {
    const machine = await this.#machine(caller.tenantId, devicePk);
    const now = this.#now();
    const limits = await this.#store.limits(caller.tenantId, machine.id);
    const forecasts = await Promise.all(
      [...limits.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(async ([entityId, limit]) => {
          const points = await this.#history.hourly({
            tenantId: caller.tenantId,
            machine,
            entityId,
            fromMs: now - this.settings.thresholdLookbackMs,
            toMs: now,
          });
          const forecast = forecastThresholdCrossing(
            points,
            {
              ...(limit.above !== null ? { above: limit.above } : {}),
              ...(limit.below !== null ? { below: limit.below } : {}),
            },
            { nowMs: now },
          );
          return { entityId, limit, forecast };
        }),
    );
    const thresholds: ThresholdAnswer[] = forecasts.map(({ entityId, limit, forecast }) => ({
      entity_id: entityId,
      limit,
      eta: forecast.eta
        ? {
            time: iso(forecast.eta.timeMs),
            low: iso(forecast.eta.lowMs),
            high: iso(forecast.eta.highMs),
          }
        : null,
      trend: forecast.trend,
      crossed: forecast.crossed,
      slope_per_hour: forecast.slopePerHour,
    }));
    const current = await this.#currentRul(caller.tenantId, machine, now);
    return {
      device_id: machine.deviceId,
      rul: current?.answer ?? null,
      thresholds,
      status: healthStatus(
        forecasts.map(({ forecast }) => ({
          crossed: forecast.crossed,
          etaMs: forecast.eta ? { time: forecast.eta.timeMs, low: forecast.eta.lowMs } : null,
        })),
        current ? { ...current.answer, cap: current.cap } : null,
        now,
      ),
    };
  }

  /** Every device's latest remaining useful life, for the devices list. */
  async devicesRul(caller: MaintenanceCaller): Promise<DeviceRul[]> {
    if (!(await this.#store.planAllows(caller.tenantId))) throw planRequired();
    return this.#store.devicesRul(caller.tenantId);
  }

  async requestTraining(
    caller: MaintenanceCaller,
    request: { deviceType: string; stepUnit: StepUnit },
  ): Promise<{ device_type: string; step_unit: StepUnit; requested_at: string }> {
    if (!(await this.#store.planAllows(caller.tenantId))) throw planRequired();
    const fleet = await this.#store.fleet(caller.tenantId, request.deviceType);
    if (fleet.length === 0) {
      throw new NotFound('device_type_not_found', 'No device of the tenant has this type');
    }
    const { requested_at } = await this.#store.requestTraining(
      caller.tenantId,
      request.deviceType,
      request.stepUnit,
      caller.userId,
    );
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'rul_model.train',
      target: `device_type:${request.deviceType}`,
      details: { step_unit: request.stepUnit },
    });
    return { device_type: request.deviceType, step_unit: request.stepUnit, requested_at };
  }

  async models(caller: MaintenanceCaller): Promise<FleetModelSummary[]> {
    if (!(await this.#store.planAllows(caller.tenantId))) throw planRequired();
    return this.#store.models(caller.tenantId);
  }

  async #predictor(active: ActiveModel): Promise<RulPredictor | null> {
    let loading = this.#predictors.get(active.storageKey);
    if (!loading) {
      loading = this.#models
        .load(active.storageKey)
        .then((model) => model && new RulPredictor(model));
      // A failed load is not remembered: the next request tries again.
      loading.catch(() => this.#predictors.delete(active.storageKey));
      this.#predictors.set(active.storageKey, loading);
    }
    return loading;
  }

  /**
   * The machine's RUL now from its fleet's active model, over its readings since its life
   * began; stored as its latest prediction. Null without an active model or a reading.
   */
  async #currentRul(
    tenantId: number,
    machine: Machine,
    now: number,
  ): Promise<{ answer: RulAnswer; cap: number } | null> {
    const active = await this.#store.activeModel(tenantId, machine.type);
    if (!active) return null;
    const predictor = await this.#predictor(active);
    if (!predictor) {
      this.#logger.error('active RUL model missing from the model store', {
        tenantId,
        storageKey: active.storageKey,
      });
      return null;
    }
    const boundaries = (await this.#store.lifeBoundaries(tenantId, [machine.id])).get(machine.id);
    const prediction = await this.predictMachine(tenantId, machine, predictor.model, predictor, {
      boundaries: boundaries ?? [],
      nowMs: now,
    });
    if (!prediction) return null;
    await this.#store.savePrediction(tenantId, { ...prediction, modelId: active.id });
    return {
      cap: predictor.model.cap,
      answer: {
        value: round(prediction.value),
        low: round(prediction.low),
        high: round(prediction.high),
        unit: prediction.unit,
        model_version: prediction.modelVersion,
        computed_at: iso(prediction.computedAtMs),
      },
    };
  }

  /** The RUL after the machine's latest step, or null when its current life has no reading. */
  async predictMachine(
    tenantId: number,
    machine: Machine,
    model: RulModel,
    predictor: RulPredictor,
    at: { boundaries: readonly LifeBoundary[]; nowMs: number },
  ): Promise<Omit<StoredPrediction, 'modelId'> | null> {
    const start = lifeStartAt(at.boundaries, at.nowMs);
    const unit = model.stepUnit;
    // Hours: complete hours only, so a prediction is made once per new reading window.
    const toMs = unit === 'hours' ? Math.floor(at.nowMs / HOUR_MS) * HOUR_MS : at.nowMs;
    let steps = await this.#history.steps({
      tenantId,
      machine,
      entities: model.entities,
      unit,
      fromMs: start ?? at.nowMs - this.settings.lifeLookbackMs,
      toMs,
    });
    if (start === null) steps = fromFirstReading(steps);
    if (!steps.rows.some((row) => row.some(Number.isFinite))) return null;
    const estimate = predictor.predict(steps.rows);
    return {
      devicePk: machine.id,
      value: estimate.value,
      low: estimate.low,
      high: estimate.high,
      unit,
      modelVersion: model.version,
      windowEndMs: steps.times[steps.times.length - 1] as number,
      computedAtMs: at.nowMs,
    };
  }

  /** The scheduled refresh: devices that reported since their last prediction get a new one. */
  async refreshPredictions(maxDevices: number) {
    const outcome = { predicted: 0, withoutReadings: 0, failed: 0 };
    const candidates = await this.#store.predictionCandidates(maxDevices);
    for (const { tenantId, devicePk } of candidates) {
      try {
        const machine = await this.#store.machine(tenantId, devicePk);
        if (!machine) continue;
        const result = await this.#currentRul(tenantId, machine, this.#now());
        if (result) outcome.predicted += 1;
        else outcome.withoutReadings += 1;
      } catch (error) {
        outcome.failed += 1;
        this.#logger.error('RUL prediction failed', { tenantId, devicePk, error });
      }
    }
    return outcome;
  }

  /** Predicts every device of a fleet at once (after a new model was activated). */
  async predictFleet(tenantId: number, deviceType: string): Promise<number> {
    let predicted = 0;
    for (const machine of await this.#store.fleet(tenantId, deviceType)) {
      if (await this.#currentRul(tenantId, machine, this.#now())) predicted += 1;
    }
    return predicted;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (x: number) => Math.round(x * 10) / 10;
