/**
 * Predictive maintenance's vocabulary: what operators record about a machine, the limits
 * they set on its sensors, and what the platform answers about its health.
 */

export const MAINTENANCE_KINDS = ['failure', 'repair', 'replacement', 'inspection'] as const;
export type MaintenanceKind = (typeof MAINTENANCE_KINDS)[number];

export const STEP_UNITS = ['cycles', 'hours'] as const;
/**
 * What one step of a machine's life is. `hours`: each hour of its sensors' readings (the
 * 1-hour rollups). `cycles`: each distinct reading time, for machines that report once per
 * operating cycle (a flight, a press stroke, a batch).
 */
export type StepUnit = (typeof STEP_UNITS)[number];

export interface MaintenanceEvent {
  id: number;
  device_id: number;
  kind: MaintenanceKind;
  /** ISO 8601 UTC */
  time: string;
  note: string | null;
  recorded_by: number | null;
  created_at: string;
}

export interface NewMaintenanceEvent {
  kind: MaintenanceKind;
  time?: Date | undefined;
  note?: string | undefined;
}

export interface EntityLimit {
  above: number | null;
  below: number | null;
}

/** The entity types a limit (and a forecast) makes sense for. */
export const NUMERIC_ENTITY_TYPES: readonly string[] = ['sensor', 'number'];

export type HealthStatus = 'ok' | 'watch' | 'service_soon';

export interface RulAnswer {
  value: number;
  low: number;
  high: number;
  unit: StepUnit;
  model_version: string;
  computed_at: string;
}

export interface ThresholdAnswer {
  entity_id: string;
  limit: EntityLimit;
  eta: { time: string; low: string; high: string } | null;
  trend: 'rising' | 'falling' | 'flat' | 'insufficient-data';
  /** The trend is past the limit now. */
  crossed: boolean;
  /** Trend slope per hour, in the entity's unit. */
  slope_per_hour: number;
}

export interface HealthReport {
  device_id: string;
  rul: RulAnswer | null;
  thresholds: ThresholdAnswer[];
  status: HealthStatus;
}

export interface FleetModelSummary {
  id: number;
  device_type: string;
  version: string;
  step_unit: StepUnit;
  histories: number;
  metrics: Record<string, unknown>;
  status: 'active' | 'superseded' | 'rejected';
  status_reason: string | null;
  trained_at: string;
}

/**
 * When a device needs attention. A limit's trend: crossed, or crossing within a week, is
 * `service_soon`; its 10th-percentile crossing within 30 days is `watch`. The RUL: a
 * predicted remaining life within a fifth of the model's horizon (its cap, 125 steps by
 * default) is `service_soon`; a 10th percentile within half of it is `watch`.
 */
export const STATUS_RULES = {
  serviceSoonEtaMs: 7 * 86_400_000,
  watchEtaMs: 30 * 86_400_000,
  serviceSoonRulShare: 0.2,
  watchRulShare: 0.5,
} as const;

export function healthStatus(
  thresholds: readonly { crossed: boolean; etaMs: { time: number; low: number } | null }[],
  rul: { value: number; low: number; cap: number } | null,
  nowMs: number,
): HealthStatus {
  let status: HealthStatus = 'ok';
  const worst = (next: HealthStatus) => {
    if (next === 'service_soon' || (next === 'watch' && status === 'ok')) status = next;
  };
  for (const t of thresholds) {
    if (t.crossed) worst('service_soon');
    else if (t.etaMs && t.etaMs.time - nowMs <= STATUS_RULES.serviceSoonEtaMs)
      worst('service_soon');
    else if (t.etaMs && t.etaMs.low - nowMs <= STATUS_RULES.watchEtaMs) worst('watch');
  }
  if (rul) {
    if (rul.value <= rul.cap * STATUS_RULES.serviceSoonRulShare) worst('service_soon');
    else if (rul.low <= rul.cap * STATUS_RULES.watchRulShare) worst('watch');
  }
  return status;
}
