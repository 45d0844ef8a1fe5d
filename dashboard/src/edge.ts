import type { Api } from './api.ts';
import type { components } from './api-types.ts';

/** Edge deployment's answers, named from the generated API types. */
type Schemas = components['schemas'];
export type EdgeModel = Schemas['EdgeModel'];
export type EdgeStatus = EdgeModel['status'];
export type TrainedModelSummary = Schemas['Model'];

export const EDGE_STATUS_LABELS: Record<EdgeStatus, string> = {
  none: 'Not deployed',
  sent: 'Sent, waiting for the device',
  confirmed: 'Running on the device',
  failed: 'Failed',
};

export function edgeModel(api: Api, id: number) {
  return api.call('get', '/api/devices/{id}/edge-model', { params: { id: String(id) } });
}

/** `version`: an earlier model of the entity (a roll-back); without it the active one. */
export function deployEdgeModel(api: Api, id: number, entityId: string, version?: string) {
  return api.call('post', '/api/devices/{id}/edge-model', {
    params: { id: String(id) },
    body: version ? { entity_id: entityId, version } : { entity_id: entityId },
  });
}

/** The device's trained models that may be sent (active first, then older ones to roll back to). */
export async function deployableModels(api: Api, deviceId: number): Promise<TrainedModelSummary[]> {
  const { models } = await api.call('get', '/api/ml/models');
  return models
    .filter((m) => m.device_id === deviceId && m.status !== 'rejected')
    .sort((a, b) => (a.status === 'active' ? -1 : b.status === 'active' ? 1 : 0));
}
