/**
 * The dashboard's API types, generated from the OpenAPI document (which the route table
 * makes) by openapi-typescript into dashboard/src/api-types.ts, checked in:
 *
 *   npm run api:types
 *
 * test/unit/api-types.test.ts fails while the checked-in file differs from what this makes,
 * so a route or response change that the dashboard's types miss cannot land.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import { openApiDocument } from '../shared/http/openapi.ts';

export const API_TYPES_FILE = path.join(
  import.meta.dirname,
  '..',
  'dashboard',
  'src',
  'api-types.ts',
);

const HEADER = `/**
 * Generated from the HTTP API's OpenAPI document by \`npm run api:types\`: do not edit.
 * Change the route table (shared/http/route-table.ts) or the response schemas
 * (shared/http/responses.ts) and run it again.
 */

`;

export async function apiTypes(): Promise<string> {
  const ast = await openapiTS(openApiDocument() as unknown as OpenAPI3, {
    silent: true,
  });
  return HEADER + astToString(ast);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(API_TYPES_FILE, await apiTypes());
  console.log(`wrote ${path.relative(process.cwd(), API_TYPES_FILE)}`);
}
