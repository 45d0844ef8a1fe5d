import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi, route } from '../../shared/http/api.ts';
import { idParam, telemetryQuery, trainModelBody } from '../../shared/http/schemas.ts';

const anomalies = anomalyService();

export const handler = httpApi(
  {
    'GET /api/devices/{id}/anomalies': route(
      { access: 'read', params: idParam, query: telemetryQuery },
      async ({ caller, params, query }) => ({
        status: 200,
        body: await anomalies.results(caller, params.id, query, true),
      }),
    ),
    'GET /api/devices/{id}/predictions': route(
      { access: 'read', params: idParam, query: telemetryQuery },
      async ({ caller, params, query }) => ({
        status: 200,
        body: await anomalies.results(caller, params.id, query, false),
      }),
    ),
    'GET /api/ml/models': route({ access: 'read' }, async ({ caller }) => ({
      status: 200,
      body: { models: await anomalies.listModels(caller) },
    })),
    'POST /api/ml/models': route(
      { access: 'write', body: trainModelBody },
      async ({ caller, body }) => ({
        status: 201,
        body: { model: await anomalies.trainOnRequest(caller, body.device_id, body.entity_id) },
      }),
    ),
  },
  { authenticator: authenticator(), logger: logger() },
);
