import type {
  EntityLimit,
  FleetModelSummary,
  MaintenanceEvent,
  MaintenanceKind,
  NewMaintenanceEvent,
  RulAnswer,
  StepUnit,
} from './model.ts';
import type { RulModel } from './rul-model.ts';
import type { ThresholdPoint } from './time-to-threshold.ts';

/** Where a tenant's readings are kept (its plan's tier, and the prior one during a move). */
export interface ReadingTier {
  retentionPolicy: string;
  priorTier?: { policy: string; before: number };
}

export interface MachineEntity {
  entityId: string;
  entityType: string;
}

/** A device as predictive maintenance sees it. */
export interface Machine {
  /** The database id (`{id}` in the API). */
  id: number;
  /** The physical id. */
  deviceId: string;
  type: string;
  entities: MachineEntity[];
  tier: ReadingTier;
}

export interface LifeBoundary {
  kind: MaintenanceKind;
  timeMs: number;
}

export interface StoredPrediction {
  devicePk: number;
  modelId: number;
  value: number;
  low: number;
  high: number;
  unit: StepUnit;
  modelVersion: string;
  windowEndMs: number;
  computedAtMs: number;
}

export interface ActiveModel {
  id: number;
  version: string;
  storageKey: string;
}

export interface NewFleetModel {
  deviceType: string;
  version: string;
  storageKey: string;
  stepUnit: StepUnit;
  histories: number;
  metrics: Record<string, unknown>;
  activate: boolean;
  statusReason: string | null;
  trainedAt: Date;
}

export interface DeviceRul {
  id: number;
  device_id: string;
  rul: RulAnswer | null;
}

/** Port: predictive maintenance's records in PostgreSQL, each call within one tenant. */
export interface MaintenanceStore {
  /** Whether the tenant's plan (an expired trial counts as free) has predictive maintenance. */
  planAllows(tenantId: number): Promise<boolean>;
  machine(tenantId: number, devicePk: number): Promise<Machine | null>;
  fleet(tenantId: number, deviceType: string): Promise<Machine[]>;
  addEvent(
    tenantId: number,
    devicePk: number,
    event: NewMaintenanceEvent & { time: Date; recordedBy: number | null },
  ): Promise<MaintenanceEvent>;
  events(tenantId: number, devicePk: number): Promise<MaintenanceEvent[]>;
  /** Failures, repairs and replacements of the devices, oldest first. */
  lifeBoundaries(tenantId: number, devicePks: number[]): Promise<Map<number, LifeBoundary[]>>;
  limits(tenantId: number, devicePk: number): Promise<Map<string, EntityLimit>>;
  /** Sets the entity's limit, or removes it (null). */
  setLimit(
    tenantId: number,
    devicePk: number,
    entityId: string,
    limit: EntityLimit | null,
  ): Promise<void>;
  activeModel(tenantId: number, deviceType: string): Promise<ActiveModel | null>;
  /** Records a trained model; an activated one supersedes the fleet's active model. */
  recordModel(tenantId: number, model: NewFleetModel): Promise<FleetModelSummary>;
  models(tenantId: number): Promise<FleetModelSummary[]>;
  requestTraining(
    tenantId: number,
    deviceType: string,
    stepUnit: StepUnit,
    requestedBy: number,
  ): Promise<{ requested_at: string }>;
  /** Notes that the fleet went through training (`outcome` says how) and ends its request. */
  trainingAttempted(tenantId: number, deviceType: string, outcome: string): Promise<void>;
  savePrediction(tenantId: number, prediction: StoredPrediction): Promise<void>;
  /** Each device's latest RUL, for sorting the fleet. */
  devicesRul(tenantId: number): Promise<DeviceRul[]>;
  /** Across tenants (the scheduled job): fleets due for training, asked-for ones first. */
  trainingCandidates(
    minFailures: number,
    maxRows: number,
  ): Promise<Array<{ tenantId: number; deviceType: string; stepUnit: StepUnit }>>;
  /** Across tenants: devices with an active fleet model that reported since their last prediction. */
  predictionCandidates(maxRows: number): Promise<Array<{ tenantId: number; devicePk: number }>>;
}

/** A machine's readings as steps: one row per step in `entities` order, NaN where missing. */
export interface StepHistory {
  /** Each step's time (epoch ms: the reading's, or the hour's start). */
  times: number[];
  rows: number[][];
}

export interface StepsQuery {
  tenantId: number;
  machine: Machine;
  entities: readonly string[];
  unit: StepUnit;
  fromMs: number;
  toMs: number;
}

export interface HourlyQuery {
  tenantId: number;
  machine: Machine;
  entityId: string;
  fromMs: number;
  toMs: number;
}

/** Port: a machine's readings (InfluxDB). */
export interface MachineHistory {
  /** Steps with a time in (fromMs, toMs]; hours from the 1-hour means. */
  steps(query: StepsQuery): Promise<StepHistory>;
  /** One entity's hourly means in [fromMs, toMs). */
  hourly(query: HourlyQuery): Promise<ThresholdPoint[]>;
}

/** Port: where fleet models are kept (the anomaly models' store, with the RUL parser). */
export interface RulModelStore {
  save(key: string, model: RulModel): Promise<void>;
  load(key: string): Promise<RulModel | null>;
}
