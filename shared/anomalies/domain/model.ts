export type AnomalyLevel = 'none' | 'basic' | 'advanced';

/**
 * A trained model as the API answers it (DESIGN.md's contract): here `device_id` is the
 * device's registry id, not its physical id.
 */
export interface ModelSummary {
  id: number;
  device_id: number;
  entity_id: string;
  kind: string;
  version: string;
  threshold: number;
  training_points: number;
  metrics: Record<string, unknown>;
  status: 'active' | 'superseded' | 'rejected';
  /** Why the quality gate rejected the model; null otherwise. */
  status_reason: string | null;
  /** `trained` by the platform (with the chosen family and settings) or `uploaded` by the tenant. */
  origin: ModelOrigin;
  /** The family and settings it was trained with, or the uploaded network's declaration. */
  settings: Record<string, unknown> | null;
  trained_at: string;
}

export type ModelOrigin = 'trained' | 'uploaded';

/** A model just trained and judged, to be recorded. */
export interface NewModel {
  devicePk: number;
  entityId: string;
  kind: string;
  version: string;
  storageKey: string;
  threshold: number;
  trainingPoints: number;
  metrics: Record<string, unknown>;
  trainedAt: string;
  status: 'active' | 'rejected';
  statusReason: string | null;
  origin: ModelOrigin;
  settings: Record<string, unknown>;
}

export interface TrainingCandidate {
  tenantId: number;
  devicePk: number;
  deviceId: string;
  entityId: string;
  /** The settings chosen for the entity on its device type; null: the default model. */
  settings: unknown;
}

/** A family and settings chosen for an entity on every device of a type (the API's shape). */
export interface TypeSettings {
  device_type: string;
  entity_id: string;
  family: 'dense' | 'linear';
  window_size: number;
  size: 'small' | 'medium' | 'large';
  co_entities: string[];
  co_window: number;
  updated_at: string;
}

export interface DetectedAnomaly {
  entityId: string;
  timeMs: number;
  score: number;
  value: number;
  reason: string | null;
}

/** What scoring needs to know of the device whose readings it scores. */
export interface ScoredDevice {
  /** The registry row id (the API's `{id}`), as ingestion's device context names it. */
  devicePk: number;
  deviceId: string;
  tenantId: number;
  retentionPolicy: string;
  anomalyDetection: AnomalyLevel;
}
