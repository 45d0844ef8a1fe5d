import { beforeAll, describe, expect, it } from 'vitest';
import { setPlan } from '../infra/admin.ts';
import { PLAN_NAMES, type PlanName } from '../shared/accounts/domain/model.ts';
import { type RouteDefinition, type RouteKey, routeTable } from '../shared/http/route-table.ts';
import { callRoute } from './support/api-event.ts';
import { FIXTURE_PASSWORD, inProcessApi, seedTenant, type Tenant } from './support/api-fixtures.ts';

/**
 * The route table's plan gates are what the platform does: a route with `plan` answers 403
 * `plan_required` to a tenant on any lower plan and never to one on that plan, and a
 * read-only route without `plan` never answers `plan_required`, even on the free plan.
 */
const { handlers, admin } = await inProcessApi();
const SOURCE = '10.77.0.9';
let tenant: Tenant;
let token = '';

beforeAll(async () => {
  tenant = await seedTenant(handlers, admin, SOURCE);
  const answer = await callRoute(handlerOf('POST /api/auth/login'), 'POST /api/auth/login', {
    sourceIp: SOURCE,
    body: { username: tenant.owner.username, password: FIXTURE_PASSWORD },
  });
  token = answer.body.token;
});

function handlerOf(routeKey: string) {
  const handler = handlers.get(routeKey);
  if (!handler) throw new Error(`no function serves ${routeKey}`);
  return handler;
}

async function onPlan(plan: PlanName): Promise<void> {
  const client = await admin.connect();
  try {
    await setPlan(client, String(tenant.id), plan);
  } finally {
    client.release();
  }
}

/** A valid request of the route on the tenant's own resources; its code when refused. */
async function errorCodeOf(routeKey: RouteKey): Promise<string | null> {
  const route: RouteDefinition = routeTable[routeKey];
  const fixtures: Record<string, string> = {
    id: String(tenant.device.id),
    entity_id: 'temperature',
    command_id: tenant.commandId,
  };
  const params = Object.fromEntries(
    [...routeKey.matchAll(/\{(\w+)\}/g)].map(([, name]) => [name, fixtures[name ?? ''] ?? '1']),
  );
  const body = route.example && {
    ...route.example,
    ...(typeof route.example.device_id === 'number' ? { device_id: tenant.device.id } : {}),
  };
  const answer = await callRoute(handlerOf(routeKey), routeKey, {
    token,
    sourceIp: SOURCE,
    params,
    ...(body ? { body } : {}),
  });
  expect(answer.status, `${routeKey}: ${JSON.stringify(answer.body)}`).toBeLessThan(500);
  return answer.status >= 400 ? answer.body.error.code : null;
}

const gated = (Object.keys(routeTable) as RouteKey[]).filter(
  (routeKey) => (routeTable[routeKey] as RouteDefinition).plan,
);

describe('plan gates', () => {
  it('the table gates some routes (else this test proves nothing)', () => {
    expect(gated.length).toBeGreaterThan(0);
  });

  for (const plan of PLAN_NAMES) {
    it(`on the ${plan} plan, exactly the routes gated above it answer plan_required`, async () => {
      await onPlan(plan);
      for (const routeKey of Object.keys(routeTable) as RouteKey[]) {
        const route: RouteDefinition = routeTable[routeKey];
        // Ungated writes change the fixture (sign-out, password, removals) and are left to
        // their own tests; every gated route and every ungated read is asked.
        if (!route.plan && !routeKey.startsWith('GET ')) continue;
        const refused =
          route.plan !== undefined && PLAN_NAMES.indexOf(plan) < PLAN_NAMES.indexOf(route.plan);
        const code = await errorCodeOf(routeKey);
        if (refused) expect(code, `${routeKey} on ${plan}`).toBe('plan_required');
        else expect(code, `${routeKey} on ${plan}`).not.toBe('plan_required');
      }
    });
  }
});
