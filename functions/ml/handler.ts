import { z } from 'zod';
import { anomalyService } from '../../shared/anomalies/training-composition.ts';
import { accessTokens, logger } from '../../shared/composition.ts';
import { httpApi, route } from '../../shared/http/api.ts';
import { idParam, telemetryQuery } from '../../shared/http/schemas.ts';

const anomalies = anomalyService();

const trainBody = z.strictObject({
  device_id: z.number().int().positive(),
  entity_id: z.string().regex(/^[a-zA-Z0-9_-]{1,100}$/, 'not an entity id'),
});

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
      { access: 'write', body: trainBody },
      async ({ caller, body }) => ({
        status: 201,
        body: { model: await anomalies.trainOnRequest(caller, body.device_id, body.entity_id) },
      }),
    ),
  },
  { tokens: accessTokens(), logger: logger() },
);
