import type { Api } from './api.ts';
import type { components } from './api-types.ts';

/** Custom models' answers and requests, named from the generated API types. */
type Schemas = components['schemas'];
export type ModelSummary = Schemas['Model'];

export const MODEL_STATUS_LABELS: Record<ModelSummary['status'], string> = {
  active: 'Active',
  superseded: 'Earlier version',
  rejected: 'Rejected by the quality gate',
};

export interface TrainChoice {
  device_id: number;
  entity_id: string;
  family: 'dense' | 'linear';
  size: 'small' | 'medium' | 'large';
  window_size: number;
  /** Other numeric entities of the device the model also reads. */
  co_entities: string[];
  co_window: number;
}

export interface UploadChoice {
  device_id: number;
  entity_id: string;
  window_size: number;
  encoding: 'relative' | 'standardised';
  time_of_day: boolean;
  mean: number;
  std: number;
}

export async function listModels(api: Api): Promise<ModelSummary[]> {
  return (await api.call('get', '/api/ml/models')).models;
}

export async function trainModel(api: Api, choice: TrainChoice): Promise<ModelSummary> {
  return (await api.call('post', '/api/ml/models', { body: choice })).model;
}

export async function activateModel(api: Api, id: number): Promise<ModelSummary> {
  return (await api.call('post', '/api/ml/models/{id}/activate', { params: { id: String(id) } }))
    .model;
}

/** Why the chosen files are not a TensorFlow.js Layers model; the server checks the rest. */
export class ModelFilesError extends Error {}

/**
 * Reads model.json and its weight files and uploads them: the weights are concatenated in the
 * order the manifest lists their paths, as TensorFlow.js itself loads them.
 */
export async function uploadModel(
  api: Api,
  choice: UploadChoice,
  modelFile: File,
  weightFiles: File[],
): Promise<ModelSummary> {
  let modelJson: Record<string, unknown>;
  try {
    modelJson = JSON.parse(await modelFile.text());
  } catch {
    throw new ModelFilesError(`${modelFile.name} is not JSON`);
  }
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest))
    throw new ModelFilesError(`${modelFile.name} has no weightsManifest`);
  const paths = manifest.flatMap((group: { paths?: unknown }) =>
    Array.isArray(group.paths) ? group.paths.map(String) : [],
  );
  const byName = new Map(weightFiles.map((file) => [file.name, file]));
  const parts: Uint8Array[] = [];
  for (const wanted of paths) {
    const file = byName.get(wanted.split('/').pop() ?? wanted);
    if (!file) throw new ModelFilesError(`the manifest needs the weight file ${wanted}`);
    parts.push(new Uint8Array(await file.arrayBuffer()));
  }
  const body = {
    device_id: choice.device_id,
    entity_id: choice.entity_id,
    model_json: modelJson,
    weights: toBase64(parts),
    input: {
      window_size: choice.window_size,
      encoding: choice.encoding,
      time_of_day: choice.time_of_day,
      normalisation: { mean: choice.mean, std: choice.std },
    },
  };
  return (await api.call('post', '/api/ml/models/upload', { body })).model;
}

function toBase64(parts: Uint8Array[]): string {
  let binary = '';
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 0x8000) {
      binary += String.fromCharCode(...part.subarray(i, i + 0x8000));
    }
  }
  return btoa(binary);
}

/** The family and settings, or the uploaded network, in a few words. */
export function describeSettings(model: ModelSummary): string {
  const s = (model.settings ?? {}) as Record<string, unknown>;
  if (model.origin === 'uploaded') {
    const layers = Array.isArray(s.layers) ? s.layers.length : '?';
    return `uploaded: ${layers} dense layers, ${String(s.parameters ?? '?')} weights, window ${String(s.window_size ?? '?')} (${String(s.encoding ?? '')})`;
  }
  if (!s.family) return 'default (dense, medium, window 24)';
  const own =
    s.family === 'linear'
      ? `linear, window ${String(s.window_size)}`
      : `dense ${String(s.size)}, window ${String(s.window_size)}`;
  const others = Array.isArray(s.co_entities) ? s.co_entities.map(String) : [];
  return others.length > 0
    ? `${own}, with ${others.join(', ')} (last ${String(s.co_window)} each)`
    : own;
}

/** Held-back mean absolute errors: the model's against repeating the last value. */
export function heldBackErrors(model: ModelSummary): { model: number; naive: number } | null {
  const held = (model.metrics as { heldBack?: { modelMae?: number; repeatLastMae?: number } })
    .heldBack;
  if (typeof held?.modelMae !== 'number' || typeof held.repeatLastMae !== 'number') return null;
  return { model: held.modelMae, naive: held.repeatLastMae };
}
