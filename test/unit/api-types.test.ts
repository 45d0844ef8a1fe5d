import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_TYPES_FILE, apiTypes } from '../../infra/api-types.ts';

describe("the dashboard's API types", () => {
  it('are what openapi-typescript makes of the OpenAPI document now (else: npm run api:types)', async () => {
    const generated = await apiTypes();
    expect(generated).toContain('"/api/devices/{id}/telemetry"');
    expect(
      readFileSync(API_TYPES_FILE, 'utf8') === generated,
      'dashboard/src/api-types.ts is stale: run `npm run api:types` and commit it',
    ).toBe(true);
  });
});
