import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { routeTable } from '../../shared/http/route-table.ts';

// Built once per container; the document only changes with a deploy.
const body = JSON.stringify(openApiDocument());
const served = routeTable['GET /api/openapi.json'];

/**
 * GET /api/openapi.json, public. No configuration and no middy stack: the function must
 * answer even where the API's own settings (database, signing key) are broken.
 */
export async function handler(_event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> {
  return {
    statusCode: served.success.status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...served.headers },
    body,
  };
}
