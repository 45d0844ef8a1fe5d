import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const anomalies = anomalyService();

export const handler = httpApi(
  'ml',
  {
    'GET /api/devices/{id}/anomalies': async ({ caller, params, query }) => {
      const { scores, ...device } = await anomalies.results(caller, params.id, query, true);
      return { ...device, anomalies: scores };
    },
    'GET /api/devices/{id}/predictions': async ({ caller, params, query }) => {
      const { scores, ...device } = await anomalies.results(caller, params.id, query, false);
      return { ...device, predictions: scores };
    },
    'GET /api/ml/models': async ({ caller }) => ({
      models: await anomalies.listModels(caller),
    }),
    'POST /api/ml/models': async ({ caller, body }) => ({
      model: await anomalies.trainOnRequest(caller, body.device_id, body.entity_id),
    }),
  },
  { authenticator: authenticator(), logger: logger() },
);
