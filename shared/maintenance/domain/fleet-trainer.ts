import { Unprocessable } from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import { fromFirstReading, type MaintenanceService } from './maintenance-service.ts';
import { type FleetModelSummary, NUMERIC_ENTITY_TYPES, type StepUnit } from './model.ts';
import type { MachineHistory, MaintenanceStore, RulModelStore } from './ports.ts';
import type { RulModel } from './rul-model.ts';
import { MIN_RUL_HISTORIES, type RulTrainingData, type RunToFailure } from './rul-training.ts';

/** Trains a fleet model; throws `RulTrainingDataError` when the histories cannot teach one. */
export type TrainRul = (data: RulTrainingData) => Promise<RulModel>;

export interface FleetTrainerOptions {
  store: MaintenanceStore;
  history: MachineHistory;
  models: RulModelStore;
  train: TrainRul;
  /** Predicts the fleet's devices once a new model is active. */
  service: MaintenanceService;
  logger: Logger;
}

/** Where a fleet's model is stored: the device type is free text, so it goes in as hex. */
export function fleetModelKey(tenantId: number, deviceType: string, version: string): string {
  return `tenant-${tenantId}/fleet-rul/${Buffer.from(deviceType, 'utf8').toString('hex')}/${version}`;
}

/**
 * Trains a fleet's remaining-useful-life model from the run-to-failure histories its
 * maintenance events mark out: each failure closes a history that began at the device's
 * previous failure, repair or replacement (or at its first reading). The model is stored and
 * recorded either way; it becomes the fleet's active model only if it beat the fleet-mean
 * baseline on the held-back histories, otherwise the previous one stays active.
 */
export class FleetTrainer {
  constructor(private readonly options: FleetTrainerOptions) {}

  async histories(
    tenantId: number,
    deviceType: string,
    stepUnit: StepUnit,
  ): Promise<RulTrainingData> {
    const { store, history, service } = this.options;
    const fleet = await store.fleet(tenantId, deviceType);
    const entities = [
      ...new Set(
        fleet.flatMap((machine) =>
          machine.entities
            .filter((e) => NUMERIC_ENTITY_TYPES.includes(e.entityType))
            .map((e) => e.entityId),
        ),
      ),
    ].sort();
    const boundaries = await store.lifeBoundaries(
      tenantId,
      fleet.map((machine) => machine.id),
    );
    const histories: RunToFailure[] = [];
    if (entities.length === 0) return { entities, stepUnit, histories };
    for (const machine of fleet) {
      const events = boundaries.get(machine.id) ?? [];
      let previous: number | null = null;
      for (const event of events) {
        if (event.kind === 'failure') {
          let steps = await history.steps({
            tenantId,
            machine,
            entities,
            unit: stepUnit,
            fromMs: previous ?? event.timeMs - service.settings.lifeLookbackMs,
            toMs: event.timeMs,
          });
          if (previous === null) steps = fromFirstReading(steps);
          if (steps.rows.length >= 2 && steps.rows.some((row) => row.some(Number.isFinite))) {
            histories.push({
              id: `${machine.deviceId}@${new Date(event.timeMs).toISOString()}`,
              rows: steps.rows,
            });
          }
        }
        previous = event.timeMs;
      }
    }
    return { entities, stepUnit, histories };
  }

  async trainFleet(
    tenantId: number,
    deviceType: string,
    stepUnit: StepUnit,
  ): Promise<FleetModelSummary> {
    const { store, models, train, service, logger } = this.options;
    const data = await this.histories(tenantId, deviceType, stepUnit);
    if (data.entities.length === 0) {
      throw new Unprocessable('training_failed', 'The fleet has no numeric entity to learn from');
    }
    let model: RulModel;
    try {
      model = await train(data);
    } catch (error) {
      if ((error as Error).name === 'RulTrainingDataError') {
        throw new Unprocessable(
          'training_failed',
          `No model could be trained: ${(error as Error).message} (at least ${MIN_RUL_HISTORIES} recorded failures with readings before them are needed)`,
          { cause: error },
        );
      }
      throw error;
    }
    const storageKey = fleetModelKey(tenantId, deviceType, model.version);
    await models.save(storageKey, model);
    const { evaluation } = model;
    const summary = await store.recordModel(tenantId, {
      deviceType,
      version: model.version,
      storageKey,
      stepUnit,
      histories: data.histories.length,
      metrics: { ...evaluation, ...model.metrics },
      activate: evaluation.activate,
      statusReason: evaluation.activate
        ? null
        : `held-back RMSE ${evaluation.rmse.toFixed(2)} does not beat the fleet-mean baseline's ${evaluation.baselineRmse.toFixed(2)}`,
      trainedAt: new Date(model.trainedAt),
    });
    logger.info(evaluation.activate ? 'fleet RUL model trained' : 'fleet RUL model rejected', {
      tenantId,
      deviceType,
      version: model.version,
      histories: data.histories.length,
      rmse: evaluation.rmse,
      baselineRmse: evaluation.baselineRmse,
      durationMs: model.metrics.durationMs,
    });
    if (evaluation.activate) await service.predictFleet(tenantId, deviceType);
    return summary;
  }

  /** The scheduled run: fleets asked for through the API first, then those with new failures. */
  async trainDue(maxFleets: number) {
    const { store, logger } = this.options;
    const outcome = { trained: 0, rejected: 0, skipped: 0, failed: 0 };
    for (const due of await store.trainingCandidates(MIN_RUL_HISTORIES, maxFleets)) {
      let result: string;
      try {
        const summary = await this.trainFleet(due.tenantId, due.deviceType, due.stepUnit);
        result = summary.status === 'rejected' ? 'rejected' : 'trained';
        outcome[result === 'rejected' ? 'rejected' : 'trained'] += 1;
      } catch (error) {
        if (error instanceof Unprocessable) {
          outcome.skipped += 1;
          result = error.message;
          logger.info('fleet RUL model not trained', { ...due, reason: error.message });
        } else {
          // An infrastructure failure: the next run tries again.
          outcome.failed += 1;
          logger.error('fleet RUL training failed', { ...due, error });
          continue;
        }
      }
      await store.trainingAttempted(due.tenantId, due.deviceType, result);
    }
    return outcome;
  }
}
