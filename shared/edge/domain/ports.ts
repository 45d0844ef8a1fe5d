import type { TrainedModel } from '../../ml/domain/model.ts';
import type { WeightEncoding } from './model-format.ts';

/** What the platform keeps of one edge model sent to a device. */
export interface EdgeDeployment {
  id: number;
  deviceId: number;
  entityId: string;
  version: string;
  checksum: string;
  sizeBytes: number;
  weightEncoding: WeightEncoding;
  status: 'sent' | 'confirmed' | 'failed';
  statusReason: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What a device last said it runs. */
export interface RunningModel {
  version: string;
  checksum: string;
  reportedAt: string;
}

export interface EdgeAnomaly {
  entityId: string;
  timeMs: number;
  value: number;
  score: number;
  reason: string | null;
  modelVersion: string;
}

/** The entity's model and its detector's statistics, as the platform's scorer left them. */
export interface ModelSnapshot {
  physicalId: string;
  model: TrainedModel;
  detectorState: unknown | null;
  lastTimeMs: number | null;
}

export interface NewDeployment {
  deviceId: number;
  entityId: string;
  version: string;
  checksum: string;
  sizeBytes: number;
  weightEncoding: WeightEncoding;
  requestedBy: string;
}

/** A device's report on devices/<id>/model/state, checked. */
export interface DeviceReport {
  version: string;
  checksum: string;
  status: 'confirmed' | 'failed';
  reason?: string | undefined;
  anomalies: Omit<EdgeAnomaly, 'modelVersion'>[];
}

/**
 * Edge models in PostgreSQL. Every method runs in the tenant's own transaction: a device of
 * another tenant is simply not found.
 */
export interface EdgeDeploymentStore {
  /** Whether the tenant's plan includes edge deployment (the plan's `edge_deployment`). */
  planAllows(tenantId: number): Promise<boolean>;
  /**
   * The device's `entityId` model (`version`, else the active one) with its detector
   * statistics. Throws the domain's NotFound/Unprocessable when there is none to send.
   */
  snapshot(
    tenantId: number,
    deviceId: number,
    entityId: string,
    version: string | null,
  ): Promise<ModelSnapshot>;
  record(tenantId: number, deployment: NewDeployment): Promise<EdgeDeployment>;
  markFailed(tenantId: number, deploymentId: number, reason: string): Promise<void>;
  /** The newest deployment (null: never deployed), what the device runs and its last anomalies. */
  current(
    tenantId: number,
    deviceId: number,
  ): Promise<{
    deployment: EdgeDeployment | null;
    running: RunningModel | null;
    anomalies: EdgeAnomaly[];
  }>;
  /** Applies a device's report: confirmation or refusal of the newest deployment, anomalies. */
  applyReport(tenantId: number, deviceId: number, report: DeviceReport): Promise<void>;
}

/** Publishes one message to a device topic at QoS 1 (the IoT data plane). */
export interface DeviceTopicPublisher {
  publish(topic: string, payload: unknown): Promise<void>;
}
