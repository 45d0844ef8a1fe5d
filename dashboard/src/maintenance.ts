import type { Api } from './api.ts';
import type { components } from './api-types.ts';

/** Predictive maintenance's answers, named from the generated API types. */
type Schemas = components['schemas'];
export type Health = Schemas['DeviceHealth'];
export type HealthStatus = Health['status'];
export type Rul = Schemas['RemainingUsefulLife'];
export type Limit = Schemas['EntityLimit'];
export type ThresholdForecast = Health['thresholds'][number];
export type MaintenanceEvent = Schemas['MaintenanceEvent'];
export type MaintenanceKind = MaintenanceEvent['kind'];

export const STATUS_LABELS: Record<HealthStatus, string> = {
  ok: 'OK',
  watch: 'Watch',
  service_soon: 'Service soon',
};

export function health(api: Api, id: number) {
  return api.call('get', '/api/devices/{id}/health', { params: { id: String(id) } });
}

export async function maintenanceEvents(api: Api, id: number) {
  return (await api.call('get', '/api/devices/{id}/maintenance', { params: { id: String(id) } }))
    .events;
}

export async function recordMaintenance(
  api: Api,
  id: number,
  body: { kind: MaintenanceKind; time?: string; note?: string },
) {
  return (
    await api.call('post', '/api/devices/{id}/maintenance', { params: { id: String(id) }, body })
  ).event;
}

export function setLimit(
  api: Api,
  id: number,
  entityId: string,
  body: { above?: number; below?: number },
) {
  return api.call('put', '/api/devices/{id}/entities/{entity_id}/limit', {
    params: { id: String(id), entity_id: entityId },
    body,
  });
}

export async function devicesRul(api: Api) {
  return (await api.call('get', '/api/maintenance/devices')).devices;
}

export function formatRul(rul: Rul): string {
  return `${Math.round(rul.value)} ${rul.unit}`;
}
