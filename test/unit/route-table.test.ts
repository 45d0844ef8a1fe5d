import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HTTP_EVENTS_FILE, httpEvents } from '../../infra/http-events.ts';
import { httpApi } from '../../shared/http/api.ts';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { type HttpFunction, routesOf, routeTable } from '../../shared/http/route-table.ts';

/**
 * The route table is the one place a route is declared: serverless.yml deploys exactly its
 * routes (generated into infra/http-events.json), each to the function the table names, and that function's handler is built for
 * that function's routes; the OpenAPI document lists exactly the table.
 */

const repoRoot = path.join(import.meta.dirname, '..', '..');

interface ServerlessFunction {
  handler: string;
  events?: Array<Record<string, unknown>> | string;
}

// js-yaml (through osls) ships no type declarations; load() is the one call used. The
// file's variables stay unresolved strings: only function names and events are read.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };
const serverless = yaml.load(readFileSync(path.join(repoRoot, 'serverless.yml'), 'utf8')) as {
  provider: { httpApi: { cors: { allowedMethods: string[] } } };
  functions: Record<string, ServerlessFunction>;
};

const tableFunctions = [...new Set(Object.values(routeTable).map((route) => route.function))];

describe('route table', () => {
  it('infra/http-events.json is what the table makes now (else: npm run http:events)', () => {
    expect(
      readFileSync(HTTP_EVENTS_FILE, 'utf8') === httpEvents(),
      'infra/http-events.json is stale: run `npm run http:events` and commit it',
    ).toBe(true);
    const events = JSON.parse(httpEvents()) as Record<string, Array<{ httpApi: string }>>;
    expect(events.devices).toContainEqual({ httpApi: 'GET /api/devices/{id}/telemetry' });
    expect(Object.values(events).flat()).toHaveLength(Object.keys(routeTable).length);
  });

  it("serverless.yml deploys each function's routes from that file, and no other httpApi event", () => {
    for (const [name, fn] of Object.entries(serverless.functions)) {
      if (tableFunctions.includes(name as HttpFunction)) {
        expect(fn.events, `serverless.yml function ${name}'s events`).toBe(
          `\${file(./infra/http-events.json):${name}}`,
        );
        continue;
      }
      const events = Array.isArray(fn.events) ? fn.events : [];
      expect(
        events.filter((event) => 'httpApi' in event),
        `serverless.yml function ${name} is not in the route table and serves no route`,
      ).toEqual([]);
    }
  });

  it("the API's CORS settings let the dashboard use every method in the table", () => {
    const methods = new Set(Object.keys(routeTable).map((routeKey) => routeKey.split(' ')[0]));
    const allowed = serverless.provider.httpApi.cors.allowedMethods;
    for (const method of methods)
      expect(allowed, 'provider.httpApi.cors.allowedMethods').toContain(method);
  });

  it('each function serving routes is built for its own name in the table', () => {
    for (const name of tableFunctions) {
      const handler = serverless.functions[name]?.handler ?? '';
      const file = `${handler.slice(0, handler.lastIndexOf('.'))}.ts`;
      const source = readFileSync(path.join(repoRoot, file), 'utf8');
      if (name === 'docs') {
        // The one function without the API stack (it answers while the API's settings are broken).
        expect(routesOf('docs')).toEqual(['GET /api/openapi.json']);
        continue;
      }
      expect(source, `${file} builds its handler with httpApi('${name}', ...)`).toMatch(
        new RegExp(`httpApi\\(\\s*'${name}'`),
      );
    }
  });

  it('refuses handlers that are not exactly the routes of their function', () => {
    const deps = { authenticator: {} as never, logger: {} as never };
    const answer = async () => ({}) as never;
    const mlHandlers = {
      'GET /api/devices/{id}/anomalies': answer,
      'GET /api/devices/{id}/predictions': answer,
      'GET /api/ml/models': answer,
      'POST /api/ml/models': answer,
      'POST /api/ml/models/upload': answer,
      'GET /api/ml/settings': answer,
      'PUT /api/ml/settings': answer,
      'POST /api/ml/models/{id}/activate': answer,
      'POST /api/devices/{id}/edge-model': answer,
      'GET /api/devices/{id}/edge-model': answer,
    };
    expect(() => httpApi('ml', mlHandlers, deps)).not.toThrow();
    const { 'GET /api/ml/models': _, ...missingOne } = mlHandlers;
    expect(() => httpApi('ml', missingOne as never, deps)).toThrow(
      /missing: GET \/api\/ml\/models/,
    );
    expect(() =>
      httpApi('ml', { ...mlHandlers, 'GET /api/devices': answer } as never, deps),
    ).toThrow(/not in the table for ml: GET \/api\/devices/);
  });

  it('the OpenAPI document lists exactly the table, with its roles and plan gates', () => {
    const document = openApiDocument();
    const documented = Object.entries(document.paths).flatMap(([route, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        routeKey: `${method.toUpperCase()} ${route}`,
        operation: operation as Record<string, unknown>,
      })),
    );
    expect(documented.map(({ routeKey }) => routeKey).sort()).toEqual(
      Object.keys(routeTable).sort(),
    );
    for (const { routeKey, operation } of documented) {
      const route = routeTable[routeKey as keyof typeof routeTable];
      expect(operation['x-plan'], routeKey).toBe('plan' in route ? route.plan : undefined);
      expect(Object.keys(operation.responses as object), routeKey).toContain(
        String(route.success.status),
      );
    }
  });
});
