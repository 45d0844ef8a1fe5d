import type { Caller } from '../../accounts/domain/caller.ts';
import type { AuditTrail } from '../../audit/domain/audit.ts';
import { InvalidInput, NotFound, NotPermitted, Unprocessable } from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import { trainAndJudge } from '../../ml/domain/quality-gate.ts';
import type { HistoryPoint } from '../../ml/domain/training.ts';
import type { PredictionRow, PredictionStore } from '../../timeseries/domain/prediction-store.ts';
import type { ReadingStore } from '../../timeseries/domain/reading-store.ts';
import type { ModelSummary } from './model.ts';
import type { AnomalyTarget, AnomalyTargets, ModelRegistry, ModelStore } from './ports.ts';

/** Trains a model from history; throws `TrainingDataError` when the data cannot teach one. */
export type Train = (history: HistoryPoint[]) => Promise<TrainedModel>;

const planRequired = (needed: string) =>
  new NotPermitted('plan_required', `This needs the ${needed} plan or higher; upgrade to use it`);

export interface AnomalyServiceOptions {
  targets: AnomalyTargets;
  registry: ModelRegistry;
  readings: ReadingStore;
  predictions: PredictionStore;
  models: ModelStore;
  train: Train;
  logger: Logger;
  /** Where trainings people ask for (and whether they activated the model) are recorded. */
  audit?: AuditTrail;
}

export interface ResultsQuery {
  from: Date;
  to: Date;
  entityIds?: string[];
}

/**
 * Anomaly results for the API, and model training for the Industrial plan's advanced
 * detector, gated by the tenant's plan: detection needs Professional (basic) or
 * Industrial (advanced); trained models need Industrial.
 */
export class AnomalyService {
  readonly #targets: AnomalyTargets;
  readonly #registry: ModelRegistry;
  readonly #readings: ReadingStore;
  readonly #predictions: PredictionStore;
  readonly #models: ModelStore;
  readonly #train: Train;
  readonly #logger: Logger;
  readonly #audit: AuditTrail | undefined;

  constructor(options: AnomalyServiceOptions) {
    this.#targets = options.targets;
    this.#registry = options.registry;
    this.#readings = options.readings;
    this.#predictions = options.predictions;
    this.#models = options.models;
    this.#train = options.train;
    this.#logger = options.logger;
    this.#audit = options.audit;
  }

  async #target(tenantId: number, devicePk: number, entityId?: string): Promise<AnomalyTarget> {
    const target = await this.#targets.find(tenantId, devicePk, entityId);
    if (!target) throw new NotFound('device_not_found', 'No such device');
    return target;
  }

  /** Every score of the device's detector over a time range. */
  async predictions(caller: Caller, devicePk: number, query: ResultsQuery) {
    const { target, detector, rows } = await this.#results(caller, devicePk, query, false);
    return { device_id: target.deviceId, detector, predictions: rows };
  }

  /** Only the anomalous scores of the device's detector over a time range. */
  async anomalies(caller: Caller, devicePk: number, query: ResultsQuery) {
    const { target, detector, rows } = await this.#results(caller, devicePk, query, true);
    return { device_id: target.deviceId, detector, anomalies: rows };
  }

  async #results(
    caller: Caller,
    devicePk: number,
    query: ResultsQuery,
    onlyAnomalies: boolean,
  ): Promise<{ target: AnomalyTarget; detector: 'basic' | 'advanced'; rows: PredictionRow[] }> {
    const target = await this.#target(caller.tenantId, devicePk);
    if (target.level === 'none') throw planRequired('Professional');
    const rows = await this.#predictions.query({
      tenantId: caller.tenantId,
      deviceId: target.deviceId,
      retentionPolicy: target.retentionPolicy,
      priorTier: target.priorTier,
      from: query.from,
      to: query.to,
      entityIds: query.entityIds,
      onlyAnomalies,
      limit: 100_000,
    });
    return { target, detector: target.level, rows };
  }

  listModels(caller: Caller): Promise<ModelSummary[]> {
    return this.#registry.list(caller.tenantId);
  }

  /**
   * Trains the entity's model now (Industrial only). It becomes the active one if it passes
   * the quality gate; otherwise it is recorded as rejected and the entity keeps its model.
   */
  async trainOnRequest(caller: Caller, devicePk: number, entityId: string): Promise<ModelSummary> {
    const target = await this.#target(caller.tenantId, devicePk, entityId);
    if (target.level !== 'advanced') throw planRequired('Industrial');
    if (!target.entityType) throw new NotFound('entity_not_found', 'The device has no such entity');
    if (target.entityType !== 'sensor' && target.entityType !== 'number') {
      throw new InvalidInput('not_trainable', 'Models are trained for numeric sensors only');
    }
    const model = await this.#trainEntity(caller.tenantId, devicePk, target, entityId);
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: model.status === 'active' ? 'model.activate' : 'model.train',
      target: `model:${model.id}`,
      details: {
        device_id: devicePk,
        entity_id: entityId,
        version: model.version,
        status: model.status,
        status_reason: model.status_reason,
      },
    });
    return model;
  }

  /** The scheduled run: trains every Industrial entity whose model is missing or stale. */
  async trainDue(maxAgeDays: number, maxModels: number) {
    const candidates = await this.#registry.trainingCandidates(maxAgeDays, maxModels);
    const outcome = { trained: 0, rejected: 0, skipped: 0, failed: 0 };
    for (const candidate of candidates) {
      try {
        const target = await this.#target(
          candidate.tenantId,
          candidate.devicePk,
          candidate.entityId,
        );
        const model = await this.#trainEntity(
          candidate.tenantId,
          candidate.devicePk,
          target,
          candidate.entityId,
        );
        if (model.status === 'rejected') outcome.rejected += 1;
        else outcome.trained += 1;
      } catch (error) {
        if (error instanceof Unprocessable && error.code === 'training_failed') {
          outcome.skipped += 1;
        } else {
          outcome.failed += 1;
          this.#logger.error('training failed', { ...candidate, error });
        }
      }
    }
    return outcome;
  }

  async #history(
    tenantId: number,
    target: AnomalyTarget,
    entityId: string,
  ): Promise<HistoryPoint[]> {
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    // One-minute means: raw for one-minute sensors, and a chattier entity's month still
    // fits in one query (a longer span would otherwise be served from the 5m rollup).
    const result = await this.#readings.series({
      tenantId,
      deviceId: target.deviceId,
      entities: [{ entityId, entityType: target.entityType as 'sensor' | 'number' }],
      from,
      to,
      retentionPolicy: target.retentionPolicy,
      ...(target.priorTier ? { priorTier: target.priorTier } : {}),
      every: '1m',
      fn: 'mean',
    });
    return (result.series[0]?.points ?? [])
      .filter((point) => typeof point.value === 'number')
      .map((point) => ({ timeMs: Date.parse(point.time), value: point.value as number }));
  }

  async #trainEntity(
    tenantId: number,
    devicePk: number,
    target: AnomalyTarget,
    entityId: string,
  ): Promise<ModelSummary> {
    const history = await this.#history(tenantId, target, entityId);
    let trained: Awaited<ReturnType<typeof trainAndJudge>>;
    try {
      trained = await trainAndJudge(history, this.#train);
    } catch (error) {
      if ((error as Error).name === 'TrainingDataError') {
        throw new Unprocessable(
          'training_failed',
          `No model could be trained: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throw error;
    }
    const { model, verdict } = trained;
    const storageKey = `tenant-${tenantId}/device-${devicePk}/${entityId}/${model.version}`;
    await this.#models.save(storageKey, model);
    // A rejected model leaves the active one (or the basic signals) in place.
    const summary = await this.#registry.record(tenantId, {
      devicePk,
      entityId,
      kind: model.kind,
      version: model.version,
      storageKey,
      threshold: model.threshold,
      trainingPoints: model.metrics.trainingPoints,
      metrics: { ...model.metrics, heldBack: verdict.metrics },
      trainedAt: model.trainedAt,
      status: verdict.accepted ? 'active' : 'rejected',
      statusReason: verdict.reason,
    });
    this.#logger.info(verdict.accepted ? 'model trained' : 'model rejected by the quality gate', {
      tenantId,
      deviceId: target.deviceId,
      entityId,
      version: model.version,
      reason: verdict.reason,
      points: model.metrics.trainingPoints,
      durationMs: model.metrics.durationMs,
    });
    return summary;
  }
}
