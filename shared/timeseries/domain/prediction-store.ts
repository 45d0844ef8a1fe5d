import type { PriorTier } from './reading-store.ts';

/** One scored reading, as kept in `ml_predictions`. */
export interface Prediction {
  tenantId: number;
  deviceId: string;
  entityId: string;
  timeMs: number;
  retentionPolicy: string;
  detector: 'basic' | 'advanced';
  model: string;
  modelVersion: string;
  score: number;
  anomalous: boolean;
  value: number;
  reason: string | null;
}

export interface PredictionRow {
  entity_id: string;
  time: string;
  score: number;
  anomalous: boolean;
  value: number;
  reason: string | null;
  detector: string;
  model: string;
  model_version: string;
}

export interface PredictionQuery {
  tenantId: number;
  deviceId: string;
  retentionPolicy: string;
  /** During a tier move: older times still come from this tier (see `PriorTier`). */
  priorTier?: PriorTier | undefined;
  from: Date;
  to: Date;
  entityIds?: string[] | undefined;
  onlyAnomalies: boolean;
  limit: number;
}

/**
 * Where anomaly scores are kept, next to the readings they score. Writing the same
 * prediction again (same tenant, device, entity, detector and time) replaces it, so a
 * rescored reading never counts twice.
 */
export interface PredictionStore {
  write(predictions: Prediction[]): Promise<void>;
  query(options: PredictionQuery): Promise<PredictionRow[]>;
}
