import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { edgeModelService } from '../../shared/edge/composition.ts';
import { httpApi } from '../../shared/http/api.ts';
import { DEFAULT_CO_WINDOW, DEFAULT_SETTINGS } from '../../shared/ml/domain/families.ts';

const anomalies = anomalyService();
const edge = edgeModelService();

export const handler = httpApi(
  'ml',
  {
    'GET /api/devices/{id}/anomalies': ({ caller, params, query }) =>
      anomalies.anomalies(caller, params.id, query),
    'GET /api/devices/{id}/predictions': ({ caller, params, query }) =>
      anomalies.predictions(caller, params.id, query),
    'GET /api/ml/models': async ({ caller }) => ({
      models: await anomalies.listModels(caller),
    }),
    'POST /api/ml/models': async ({ caller, body }) => ({
      model: await anomalies.trainOnRequest(
        caller,
        body.device_id,
        body.entity_id,
        body.family || body.window_size || body.size || body.co_entities || body.co_window
          ? {
              family: body.family ?? DEFAULT_SETTINGS.family,
              windowSize: body.window_size ?? DEFAULT_SETTINGS.windowSize,
              size: body.size ?? DEFAULT_SETTINGS.size,
              coEntities: body.co_entities ?? [],
              coWindow: body.co_window ?? DEFAULT_CO_WINDOW,
            }
          : undefined,
      ),
    }),
    'GET /api/ml/settings': async ({ caller }) => ({
      settings: await anomalies.typeSettings(caller),
    }),
    'PUT /api/ml/settings': async ({ caller, body }) => ({
      settings: await anomalies.chooseForType(caller, body.device_type, body.entity_id, {
        family: body.family,
        windowSize: body.window_size,
        size: body.size,
        coEntities: body.co_entities,
        coWindow: body.co_window,
      }),
    }),
    'POST /api/ml/models/upload': async ({ caller, body }) => ({
      model: await anomalies.upload(caller, {
        devicePk: body.device_id,
        entityId: body.entity_id,
        modelJson: body.model_json,
        weightsBase64: body.weights,
        input: {
          windowSize: body.input.window_size,
          encoding: body.input.encoding,
          timeOfDay: body.input.time_of_day,
          normalisation: body.input.normalisation,
        },
      }),
    }),
    'POST /api/ml/models/{id}/activate': async ({ caller, params }) => ({
      model: await anomalies.activate(caller, params.id),
    }),
    'POST /api/devices/{id}/edge-model': ({ caller, params, body }) =>
      edge.deploy(caller, params.id, body.entity_id, body.version ?? null),
    'GET /api/devices/{id}/edge-model': ({ caller, params }) => edge.current(caller, params.id),
  },
  { authenticator: authenticator(), logger: logger() },
);
