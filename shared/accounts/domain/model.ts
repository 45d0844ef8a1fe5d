import type { Role } from './caller.ts';

export const PLAN_NAMES = ['free', 'starter', 'professional', 'industrial'] as const;
export type PlanName = (typeof PLAN_NAMES)[number];

export interface Plan {
  name: PlanName;
  display_name: string;
  rank: number;
  /** null: unlimited */
  max_devices: number | null;
  max_users: number | null;
  max_entities_per_device: number | null;
  max_series: number | null;
  retention_days: number | null;
  influx_retention_policy: string;
  anomaly_detection: 'none' | 'basic' | 'advanced';
  predictive_maintenance: boolean;
  pattern_recognition: boolean;
  custom_models: boolean;
  edge_deployment: boolean;
}

export interface Tenant {
  id: number;
  name: string;
  /** The plan the tenant subscribed to. */
  plan: PlanName;
  /** The plan in force now: `free` once a trial has ended. */
  effective_plan: PlanName;
  status: 'active' | 'suspended';
  trial_ends_at: string | null;
  created_at: string;
}

export interface User {
  id: number;
  tenant_id: number;
  username: string;
  email: string;
  role: Role;
  last_login_at: string | null;
  created_at: string;
}

export interface LoginCandidate {
  userId: number;
  tenantId: number;
  passwordHash: string;
}

export interface TenantOverview {
  tenant: Tenant;
  plan: Plan;
  usage: { devices: number; users: number; entities: number };
}
