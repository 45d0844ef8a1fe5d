import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { openApiDocument } from '../../shared/http/openapi.ts';

// Built once per container; the document only changes with a deploy.
const body = JSON.stringify(openApiDocument());

/**
 * GET /api/openapi.json, public. No configuration and no middy stack: the function must
 * answer even where the API's own settings (database, signing key) are broken.
 */
export async function handler(_event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> {
  return {
    statusCode: 200,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'public, max-age=300',
    },
    body,
  };
}
