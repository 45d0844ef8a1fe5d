import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import {
  type DocumentedOperation,
  documentedOperations,
  FIXTURE_PASSWORD,
  inProcessApi,
  seedTenant,
  type Tenant,
} from './support/api-fixtures.ts';

/**
 * Property-based fuzz of every request schema in the OpenAPI document: bodies, path ids and
 * query parameters full of NUL, lone surrogates, extremes and wrong types. No answer may be
 * a 5xx, and a refused request stores nothing.
 */
const { handlers, admin } = await inProcessApi();

const SOURCE = '10.88.0.1';
const RUNS_PER_OPERATION = Number(process.env.FUZZ_RUNS ?? 60);
let tenant: Tenant;
let token = '';

async function signIn(): Promise<void> {
  const response = await callRoute(
    handlers.get('POST /api/auth/login') as never,
    'POST /api/auth/login',
    {
      sourceIp: SOURCE,
      body: { username: tenant.owner.username, password: FIXTURE_PASSWORD },
    },
  );
  token = response.body.token;
}

const hostileString = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '',
    ' ',
    '\n\t',
    '💥',
    "' OR 1=1 --",
    '"; DROP TABLE users; --',
    '") |> drop()',
    '/* */',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, literally
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    '-1',
    '0',
    '2147483648',
    '99999999999999999999',
    '1e309',
    'NaN',
    '0001-01-01T00:00:00Z',
    '1677-09-21T00:12:43.145224194Z',
    '2262-04-11T23:47:16.854775807Z',
    '999999w',
    '9'.repeat(300),
    'é'.repeat(40),
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 300 }),
);
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 0.5, 5e-324),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const hostileValue = fc.oneof(
  hostileString,
  hostileNumber,
  fc.constantFrom(null, true, false, [], {}, [null], { nested: { deeper: ['\u0000'] } }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A body: the example with fields replaced, added or dropped, or no object at all. */
function bodyFor(operation: DocumentedOperation): fc.Arbitrary<unknown> {
  const example = operation.example ?? {};
  const keys = Object.keys(example);
  const mutated = fc
    .record({
      replace: fc.dictionary(fc.constantFrom(...(keys.length ? keys : ['x'])), hostileValue, {
        maxKeys: 3,
      }),
      extra: fc.option(fc.dictionary(hostileString, hostileValue, { maxKeys: 2 }), {
        nil: undefined,
      }),
      drop: fc.subarray(keys, { maxLength: Math.min(2, keys.length) }),
    })
    .map(({ replace, extra, drop }) => {
      const body: Record<string, unknown> = { ...example, ...replace, ...extra };
      for (const key of drop) delete body[key];
      return body;
    });
  return fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: hostileValue });
}

const pathValue = fc.oneof(
  hostileString,
  fc.integer().map(String),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
);

function requestFor(operation: DocumentedOperation) {
  return fc.record({
    params: fc.record(
      Object.fromEntries(
        operation.pathParams.map((name) => [
          name,
          name === 'id'
            ? fc.oneof(pathValue, fc.constant(String(tenant.device.id)))
            : name === 'entity_id'
              ? fc.oneof(pathValue, fc.constant('relay'))
              : pathValue,
        ]),
      ),
    ),
    query: fc.dictionary(
      fc.constantFrom(...operation.query.map((parameter) => parameter.name), 'unknown'),
      hostileString,
      { maxKeys: 4 },
    ),
    body: operation.bodySchema ? bodyFor(operation) : fc.constant(undefined),
  });
}

/** What a refused request must have left as it was: the tenant's rows, and no new user. */
async function storedState(body: unknown): Promise<string> {
  const username =
    body &&
    typeof body === 'object' &&
    typeof (body as { username?: unknown }).username === 'string'
      ? (body as { username: string }).username
      : null;
  const { rows } = await admin.query(
    `SELECT (SELECT count(*) FROM devices WHERE tenant_id = $1)::int AS devices,
            (SELECT count(*) FROM users WHERE tenant_id = $1)::int AS users,
            (SELECT count(*) FROM entities WHERE tenant_id = $1)::int AS entities,
            (SELECT count(*) FROM commands WHERE tenant_id = $1)::int AS commands,
            (SELECT string_agg(name || type || coalesce(location, '') || coalesce(config::text, ''), '|' ORDER BY id)
               FROM devices WHERE tenant_id = $1) AS devices_text,
            (SELECT count(*) FROM users WHERE $2::text IS NOT NULL
               AND lower(username) = lower($2::text))::int AS named_user`,
    [tenant.id, username !== null && !username.includes('\u0000') ? username : null],
  );
  return JSON.stringify(rows[0]);
}

beforeAll(async () => {
  tenant = await seedTenant(handlers, admin, SOURCE);
  await signIn();
});

describe('request-schema fuzz of every operation in the OpenAPI document', () => {
  it('no request gets a 5xx, and a refused one stores nothing', async () => {
    const operations = documentedOperations();
    const found = { cases: 0, serverErrors: 0, storedWhenRefused: 0 };
    const failures: string[] = [];
    for (const operation of operations) {
      const started = performance.now();
      const handler = handlers.get(operation.routeKey);
      if (!handler) throw new Error(`no function serves ${operation.routeKey}`);
      await fc.assert(
        fc.asyncProperty(requestFor(operation), async (request) => {
          const before = await storedState(request.body);
          const response = await callRoute(handler, operation.routeKey, {
            token,
            sourceIp: SOURCE,
            params: request.params,
            query: request.query,
            ...(request.body === undefined
              ? {}
              : { rawBody: JSON.stringify(request.body) ?? 'null' }),
          });
          found.cases++;
          if (operation.routeKey.startsWith('POST /api/auth/') && response.status < 300) {
            await signIn();
          }
          const label = `${operation.routeKey} ${JSON.stringify(request).slice(0, 300)}`;
          if (response.status >= 500) {
            found.serverErrors++;
            failures.push(`${label}: ${response.status}`);
          } else if (response.status >= 400 && (await storedState(request.body)) !== before) {
            found.storedWhenRefused++;
            failures.push(`${label}: refused with ${response.status} but stored`);
          }
        }),
        { numRuns: RUNS_PER_OPERATION, seed: 20_261_207, endOnFailure: true },
      );
      if (process.env.FUZZ_TIMING)
        console.info(operation.routeKey, Math.round(performance.now() - started));
    }
    console.info(
      `request fuzz: ${operations.length} operations, ${found.cases} cases, ` +
        `${found.serverErrors} answered 5xx, ${found.storedWhenRefused} refused but stored`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
  }, 240_000);
});
