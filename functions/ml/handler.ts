import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const anomalies = anomalyService();

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
      model: await anomalies.trainOnRequest(caller, body.device_id, body.entity_id),
    }),
  },
  { authenticator: authenticator(), logger: logger() },
);
