import type { Caller } from '../../accounts/domain/caller.ts';
import type { AuditTrail } from '../../audit/domain/audit.ts';
import {
  Conflict,
  InvalidInput,
  NotFound,
  NotPermitted,
  Unprocessable,
} from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import type { CoEntitySeries } from '../../ml/domain/co-entities.ts';
import {
  DEFAULT_CO_WINDOW,
  DEFAULT_SETTINGS,
  type ModelSettings,
  parseSettings,
} from '../../ml/domain/families.ts';
import {
  calibrateUpload,
  ModelUploadError,
  parseLayersModel,
  type UploadInput,
  uploadedNetwork,
} from '../../ml/domain/layers-upload.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import { trainAndJudge } from '../../ml/domain/quality-gate.ts';
import type { HistoryPoint } from '../../ml/domain/training.ts';
import type { PredictionRow, PredictionStore } from '../../timeseries/domain/prediction-store.ts';
import type { ReadingStore } from '../../timeseries/domain/reading-store.ts';
import type { ModelOrigin, ModelSummary, TypeSettings } from './model.ts';
import type {
  AnomalyTarget,
  AnomalyTargets,
  ModelRegistry,
  ModelStore,
  TypeSettingsStore,
} from './ports.ts';

/**
 * Trains a model of the given family and settings from history (and, when the settings name
 * other entities of the device, their readings); throws `TrainingDataError` when the data
 * cannot teach one.
 */
export type Train = (
  history: HistoryPoint[],
  settings: ModelSettings,
  co: CoEntitySeries[],
) => Promise<TrainedModel>;

/** A tenant's own TensorFlow.js Layers model for one entity. */
export interface ModelUpload {
  devicePk: number;
  entityId: string;
  /** The parsed `model.json`. */
  modelJson: unknown;
  /** Every weight file of the manifest, concatenated in manifest order, base64. */
  weightsBase64: string;
  input: UploadInput;
}

const customModelsRequired = () =>
  new NotPermitted(
    'plan_required',
    'Choosing, training and uploading models needs a plan with custom models (Industrial); upgrade to use it',
  );

const planRequired = (needed: string) =>
  new NotPermitted('plan_required', `This needs the ${needed} plan or higher; upgrade to use it`);

export interface AnomalyServiceOptions {
  targets: AnomalyTargets;
  registry: ModelRegistry;
  readings: ReadingStore;
  predictions: PredictionStore;
  models: ModelStore;
  typeSettings: TypeSettingsStore;
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
  readonly #typeSettings: TypeSettingsStore;
  readonly #train: Train;
  readonly #logger: Logger;
  readonly #audit: AuditTrail | undefined;

  constructor(options: AnomalyServiceOptions) {
    this.#targets = options.targets;
    this.#registry = options.registry;
    this.#readings = options.readings;
    this.#predictions = options.predictions;
    this.#models = options.models;
    this.#typeSettings = options.typeSettings;
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
  async trainOnRequest(
    caller: Caller,
    devicePk: number,
    entityId: string,
    settings?: ModelSettings,
  ): Promise<ModelSummary> {
    const target = await this.#customModelTarget(caller.tenantId, devicePk, entityId);
    // Without settings of its own, the request trains what was chosen for the device's type.
    const chosen =
      settings ??
      (await this.#typeSettings.forDevice(caller.tenantId, devicePk, entityId)) ??
      DEFAULT_SETTINGS;
    const model = await this.#trainEntity(caller.tenantId, devicePk, target, entityId, chosen);
    await this.#record(caller, 'model.train', model);
    return model;
  }

  /**
   * Chooses the family and settings of an entity's model on every device of a type: the
   * scheduled trainer trains those entities with them within the hour (and again after each
   * change), each model through the quality gate.
   */
  async chooseForType(
    caller: Caller,
    deviceType: string,
    entityId: string,
    settings: ModelSettings,
  ): Promise<TypeSettings> {
    if (!(await this.#targets.customModels(caller.tenantId))) throw customModelsRequired();
    if (settings.coEntities?.includes(entityId)) {
      throw new InvalidInput(
        'co_entity_unusable',
        `${entityId} cannot be an input of its own model beside its window`,
      );
    }
    const chosen = await this.#typeSettings.put(caller.tenantId, deviceType, entityId, settings);
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'model.settings',
      target: `device_type:${deviceType}/${entityId}`,
      details: {
        family: chosen.family,
        window_size: chosen.window_size,
        size: chosen.size,
        co_entities: chosen.co_entities,
        co_window: chosen.co_window,
      },
    });
    return chosen;
  }

  typeSettings(caller: Caller): Promise<TypeSettings[]> {
    return this.#typeSettings.list(caller.tenantId);
  }

  /** The entity of a custom model: the plan must allow them and the entity must be numeric. */
  async #customModelTarget(
    tenantId: number,
    devicePk: number,
    entityId: string,
  ): Promise<AnomalyTarget> {
    const target = await this.#target(tenantId, devicePk, entityId);
    if (!target.customModels) throw customModelsRequired();
    if (!target.entityType) throw new NotFound('entity_not_found', 'The device has no such entity');
    if (target.entityType !== 'sensor' && target.entityType !== 'number') {
      throw new InvalidInput('not_trainable', 'Models are trained for numeric sensors only');
    }
    return target;
  }

  /**
   * Takes a tenant's own TensorFlow.js Layers model for an entity. The upload is checked in
   * full (layer types, shapes, sizes, the declared input against the entity's readings)
   * before anything is stored; then it is calibrated on the entity's history like a trained
   * model and passes the same quality gate: it becomes active only if it forecasts the
   * held-back readings better than the naive forecasts, and is recorded as rejected otherwise.
   */
  async upload(caller: Caller, upload: ModelUpload): Promise<ModelSummary> {
    const target = await this.#customModelTarget(caller.tenantId, upload.devicePk, upload.entityId);
    let draft: TrainedModel;
    let parameters: number;
    try {
      const parsed = parseLayersModel(upload.modelJson, upload.weightsBase64);
      draft = uploadedNetwork(parsed, upload.input, new Date().toISOString());
      parameters = parsed.parameters;
    } catch (error) {
      if (error instanceof ModelUploadError) {
        throw new InvalidInput(`model_${error.reason}`, error.message, { cause: error });
      }
      throw error;
    }
    const history = await this.#history(caller.tenantId, target, {
      entityId: upload.entityId,
      entityType: target.entityType as 'sensor' | 'number',
    });
    const settings = {
      layers: draft.layers,
      parameters,
      window_size: upload.input.windowSize,
      encoding: upload.input.encoding,
      time_of_day: upload.input.timeOfDay,
      normalisation: upload.input.normalisation,
    };
    const model = await this.#judgeAndRecord(
      caller.tenantId,
      upload.devicePk,
      target,
      upload.entityId,
      {
        history,
        origin: 'uploaded',
        settings,
        produce: async (part) => calibrateUpload(draft, part),
      },
    );
    await this.#record(caller, 'model.upload', model);
    return model;
  }

  /**
   * Rolls an entity back (or forward) to one of its earlier accepted models. A rejected model
   * never scores: it failed the quality gate.
   */
  async activate(caller: Caller, modelId: number): Promise<ModelSummary> {
    if (!(await this.#targets.customModels(caller.tenantId))) throw customModelsRequired();
    const model = await this.#registry.find(caller.tenantId, modelId);
    if (!model) throw new NotFound('model_not_found', 'No such model');
    const target = await this.#target(caller.tenantId, model.device_id);
    if (model.status === 'rejected') {
      throw new Conflict(
        'model_rejected',
        `This model failed the quality gate and cannot be activated: ${model.status_reason ?? ''}`.trim(),
      );
    }
    const activated = await this.#registry.activate(caller.tenantId, modelId);
    if (!activated) throw new NotFound('model_not_found', 'No such model');
    this.#logger.info('model activated', {
      tenantId: caller.tenantId,
      deviceId: target.deviceId,
      entityId: model.entity_id,
      version: model.version,
    });
    await this.#record(caller, 'model.activate', activated);
    return activated;
  }

  /** A model change a person asked for, on the audit trail with the quality gate's verdict. */
  async #record(caller: Caller, action: string, model: ModelSummary): Promise<void> {
    await this.#audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action,
      target: `model:${model.id}`,
      details: {
        device_id: model.device_id,
        entity_id: model.entity_id,
        version: model.version,
        status: model.status,
        status_reason: model.status_reason,
      },
    });
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
          parseSettings(candidate.settings) ?? DEFAULT_SETTINGS,
        );
        if (model.status === 'rejected') outcome.rejected += 1;
        else outcome.trained += 1;
      } catch (error) {
        if (
          error instanceof Unprocessable &&
          (error.code === 'training_failed' || error.code === 'co_entity_unusable')
        ) {
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
    entity: { entityId: string; entityType: 'sensor' | 'number' },
    to = new Date(),
  ): Promise<HistoryPoint[]> {
    const from = new Date(to.getTime() - 30 * 86_400_000);
    // One-minute means: raw for one-minute sensors, and a chattier entity's month still
    // fits in one query (a longer span would otherwise be served from the 5m rollup).
    const result = await this.#readings.series({
      tenantId,
      deviceId: target.deviceId,
      entities: [entity],
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
    settings: ModelSettings,
  ): Promise<ModelSummary> {
    const coIds = settings.coEntities ?? [];
    const coTypes = await this.#coEntityTypes(tenantId, devicePk, entityId, coIds);
    const to = new Date();
    const history = await this.#history(
      tenantId,
      target,
      { entityId, entityType: target.entityType as 'sensor' | 'number' },
      to,
    );
    // The same span as the entity's, one query each (a month of one-minute means apiece).
    const co: CoEntitySeries[] = [];
    for (const [i, coId] of coIds.entries()) {
      const entity = { entityId: coId, entityType: coTypes[i] as 'sensor' | 'number' };
      co.push({ entityId: coId, points: await this.#history(tenantId, target, entity, to) });
    }
    return this.#judgeAndRecord(tenantId, devicePk, target, entityId, {
      history,
      co,
      origin: 'trained',
      settings: {
        family: settings.family,
        window_size: settings.windowSize,
        ...(settings.family === 'dense' ? { size: settings.size } : {}),
        ...(coIds.length > 0
          ? { co_entities: coIds, co_window: settings.coWindow ?? DEFAULT_CO_WINDOW }
          : {}),
      },
      produce: (part) => this.#train(part, settings, co),
    });
  }

  /** The types of the other entities a model is to read: each must be another numeric entity of the device. */
  async #coEntityTypes(
    tenantId: number,
    devicePk: number,
    entityId: string,
    coIds: readonly string[],
  ): Promise<string[]> {
    const types: string[] = [];
    for (const coId of coIds) {
      const unusable = (why: string) =>
        new Unprocessable('co_entity_unusable', `${coId} cannot be a model input: ${why}`);
      if (coId === entityId) {
        throw new InvalidInput(
          'co_entity_unusable',
          `${coId} cannot be an input of its own model beside its window`,
        );
      }
      const co = await this.#targets.find(tenantId, devicePk, coId);
      if (!co?.entityType) throw unusable('the device has no such entity');
      if (co.entityType !== 'sensor' && co.entityType !== 'number') {
        throw unusable('only numeric sensors can be model inputs');
      }
      types.push(co.entityType);
    }
    return types;
  }

  /**
   * Produces the model from all but the held-back readings, judges it on those, stores it
   * and records it: active when it passed the gate, rejected (with the reason) otherwise.
   */
  async #judgeAndRecord(
    tenantId: number,
    devicePk: number,
    target: AnomalyTarget,
    entityId: string,
    job: {
      history: HistoryPoint[];
      /** The other entities' readings, for a model that reads them. */
      co?: CoEntitySeries[];
      origin: ModelOrigin;
      settings: Record<string, unknown>;
      produce: (history: HistoryPoint[]) => Promise<TrainedModel>;
    },
  ): Promise<ModelSummary> {
    let trained: Awaited<ReturnType<typeof trainAndJudge>>;
    try {
      trained = await trainAndJudge(job.history, job.produce, job.co);
    } catch (error) {
      if ((error as Error).name === 'TrainingDataError') {
        throw new Unprocessable(
          'training_failed',
          `No model could be ${job.origin === 'uploaded' ? 'calibrated' : 'trained'}: ${(error as Error).message}`,
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
      origin: job.origin,
      settings: job.settings,
    });
    this.#logger.info(verdict.accepted ? 'model accepted' : 'model rejected by the quality gate', {
      tenantId,
      deviceId: target.deviceId,
      entityId,
      origin: job.origin,
      version: model.version,
      reason: verdict.reason,
      points: model.metrics.trainingPoints,
      durationMs: model.metrics.durationMs,
    });
    return summary;
  }
}
