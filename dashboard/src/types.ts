/** Response shapes of the platform's HTTP API (DESIGN.md section 5), as the dashboard reads them. */

export type Role = 'owner' | 'admin' | 'viewer';
export type PlanName = 'free' | 'starter' | 'professional' | 'industrial' | (string & {});
export type EntityType = 'switch' | 'sensor' | 'number' | 'text';
export type Value = number | boolean | string;

export interface User {
  id: number;
  tenant_id: number;
  username: string;
  email: string;
  role: Role;
  last_login_at: string | null;
  created_at: string;
}

export interface Tenant {
  id: number;
  name: string;
  plan: PlanName;
  effective_plan: PlanName;
  status: 'active' | 'suspended';
  trial_ends_at: string | null;
}

export interface Plan {
  name: PlanName;
  display_name: string;
  max_devices: number | null;
  max_users: number | null;
  retention_days: number | null;
  anomaly_detection: 'none' | 'basic' | 'advanced';
  predictive_maintenance?: boolean;
  pattern_recognition?: boolean;
  custom_models?: boolean;
  edge_deployment?: boolean;
}

export interface TenantOverview {
  tenant: Tenant;
  plan: Plan;
  usage: { devices: number; users: number; entities: number };
}

export interface Profile {
  user: User;
  tenant: Tenant;
}

export interface Device {
  id: number;
  device_id: string;
  name: string;
  type: string;
  location: string | null;
  status: 'online' | 'offline';
  last_seen: string | null;
  entity_count: number;
  created_at?: string;
}

export interface Latest {
  value: Value;
  time: string;
}

export interface Entity {
  entity_id: string;
  entity_type: EntityType;
  name: string;
  unit: string | null;
  icon?: string | null;
  config: Record<string, unknown> | null;
  latest: Latest | null;
}

export interface DeviceDetail {
  device: Device;
  entities: Entity[];
}

export interface Credentials {
  client_id: string;
  username?: string;
  password?: string;
  certificate_pem?: string;
  private_key?: string;
  certificate_id?: string;
  broker_url?: string;
}

export interface Point {
  time: string;
  value: number | boolean | null;
}

export interface Telemetry {
  device_id: string;
  source: 'raw' | '5m' | '1h' | (string & {});
  series: Array<{ entity_id: string; points: Point[] }>;
}

export type CommandStatus = 'sent' | 'confirmed' | 'timed_out' | 'failed';

export interface Command {
  command_id: string;
  status: CommandStatus;
  value?: unknown;
  entity_id?: string;
}

/** One detected anomaly; the ML service is newer than the dashboard, so most fields are optional. */
export interface Anomaly {
  entity_id?: string;
  time?: string;
  start?: string;
  end?: string;
  value?: number;
  score?: number;
  severity?: string;
  reason?: string | null;
}

export type LiveEvent =
  | {
      type: 'readings';
      device_id: number;
      readings: Array<{ entity_id: string; value: Value; time: string }>;
    }
  | { type: 'status'; device_id: number; status: 'online' | 'offline'; time: string };
