import type { Api } from './api.ts';

/** Predictive maintenance's answers (GET /api/devices/{id}/health and friends). */
export type HealthStatus = 'ok' | 'watch' | 'service_soon';

export interface Rul {
  value: number;
  low: number;
  high: number;
  unit: 'cycles' | 'hours';
  model_version: string;
  computed_at: string;
}

export interface Limit {
  above: number | null;
  below: number | null;
}

export interface ThresholdForecast {
  entity_id: string;
  limit: Limit;
  eta: { time: string; low: string; high: string } | null;
  trend: 'rising' | 'falling' | 'flat' | 'insufficient-data';
  crossed?: boolean;
  slope_per_hour?: number;
}

export interface Health {
  device_id: string;
  rul: Rul | null;
  thresholds: ThresholdForecast[];
  status: HealthStatus;
}

export type MaintenanceKind = 'failure' | 'repair' | 'replacement' | 'inspection';

export interface MaintenanceEvent {
  id: number;
  kind: MaintenanceKind;
  time: string;
  note: string | null;
  created_at: string;
}

export interface DeviceRul {
  id: number;
  device_id: string;
  rul: Rul | null;
}

export const STATUS_LABELS: Record<HealthStatus, string> = {
  ok: 'OK',
  watch: 'Watch',
  service_soon: 'Service soon',
};

export function health(api: Api, id: number) {
  return api.request<Health>('GET', `/api/devices/${id}/health`);
}

export async function maintenanceEvents(api: Api, id: number) {
  return (
    await api.request<{ events: MaintenanceEvent[] }>('GET', `/api/devices/${id}/maintenance`)
  ).events;
}

export async function recordMaintenance(
  api: Api,
  id: number,
  event: { kind: MaintenanceKind; time?: string; note?: string },
) {
  return (
    await api.request<{ event: MaintenanceEvent }>('POST', `/api/devices/${id}/maintenance`, event)
  ).event;
}

export function setLimit(
  api: Api,
  id: number,
  entityId: string,
  limit: { above?: number; below?: number },
) {
  return api.request<{ entity_id: string; limit: Limit | null }>(
    'PUT',
    `/api/devices/${id}/entities/${encodeURIComponent(entityId)}/limit`,
    limit,
  );
}

export async function devicesRul(api: Api) {
  return (await api.request<{ devices: DeviceRul[] }>('GET', '/api/maintenance/devices')).devices;
}

export function formatRul(rul: Rul): string {
  return `${Math.round(rul.value)} ${rul.unit}`;
}
