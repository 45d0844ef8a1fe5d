/**
 * The plan features the seed names beyond anomaly detection, and whether the platform has
 * each yet. A plan may already include a feature that is not built; every page shows such a
 * feature as coming, never as included. Turning `available` on here, when the feature ships,
 * is the one change that makes the pages show it by plan.
 *
 * Pure data with no imports, so the dashboard bundles it too.
 */
export const PLAN_FEATURES = [
  { key: 'predictive_maintenance', label: 'Predictive maintenance', available: true },
  { key: 'pattern_recognition', label: 'Pattern recognition', available: true },
  { key: 'custom_models', label: 'Custom models', available: true },
  { key: 'edge_deployment', label: 'Edge deployment', available: true },
] as const satisfies ReadonlyArray<{
  key: 'predictive_maintenance' | 'pattern_recognition' | 'custom_models' | 'edge_deployment';
  label: string;
  available: boolean;
}>;

export type PlanFeatureKey = (typeof PLAN_FEATURES)[number]['key'];
