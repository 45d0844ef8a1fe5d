import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { emitMetrics } from '../shared/metrics.ts';
import { callRoute } from './support/api-event.ts';
import { unique, useTestStack } from './support/stack-env.ts';

/**
 * What reaches CloudWatch: every line a structured JSON object, and never a password, a
 * token or a signing key, even at debug level and on failures.
 */

const stack = useTestStack({ LOG_LEVEL: 'debug' });
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;

const captured: string[] = [];
const write = process.stdout.write.bind(process.stdout);

describe('logs', () => {
  beforeAll(() => {
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: any[]) => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return write(chunk, ...rest);
    }) as typeof process.stdout.write;
  });
  afterAll(() => {
    process.stdout.write = write;
  });

  it('never contain passwords, tokens or keys across sign-up, sign-in and failures', async () => {
    const username = unique('owner');
    const password = `pw-${unique('secret')}`;
    const registered = await callRoute(auth, 'POST /api/auth/register', {
      body: { tenant_name: unique('Plant'), username, email: `${username}@example.com`, password },
    });
    expect(registered.status).toBe(201);
    const login = await callRoute(auth, 'POST /api/auth/login', { body: { username, password } });
    expect(login.status).toBe(200);
    const wrong = `${password}-wrong`;
    expect(
      (await callRoute(auth, 'POST /api/auth/login', { body: { username, password: wrong } }))
        .status,
    ).toBe(401);
    expect(
      (await callRoute(auth, 'GET /api/auth/me', { token: `${login.body.token}x` })).status,
    ).toBe(401);
    const device = await callRoute(devices, 'POST /api/devices', {
      token: login.body.token,
      body: { device_id: unique('DEV'), name: 'Pump', type: 'pump' },
    });
    expect(device.status).toBe(201);

    const secrets = [
      password,
      wrong,
      registered.body.token,
      login.body.token,
      device.body.credentials.password,
      JSON.parse(stack.jwtPrivateJwk).d,
      stack.mqttAdmin.password,
      new URL(stack.databaseUrl).password,
    ];
    const lines = captured
      .join('')
      .split('\n')
      .filter((line) => line.trim());
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      for (const secret of secrets) expect(line.includes(secret), line).toBe(false);
    }
    // Refused requests are logged, as JSON, with the request id that the answer carried.
    const refused = lines
      .map((line) => JSON.parse(line))
      .filter((e) => e.message === 'request refused');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const entry of refused) {
      expect(entry).toMatchObject({ level: 'info', service: 'easysmart', stage: 'test' });
      expect(entry.requestId).toMatch(/\S/);
    }
  });
});

describe('metrics', () => {
  it('writes one CloudWatch EMF record with the stage dimension', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { service: 'easysmart' }, (line) => lines.push(line));
    emitMetrics(
      { logger, stage: 'prod' },
      { CommandsSent: 1, LatencyMs: { value: 12.5, unit: 'Milliseconds' }, Broken: Number.NaN },
      { dimensions: { Outcome: 'confirmed' }, fields: { device_id: 'D1' } },
    );
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] as string);
    expect(record).toMatchObject({
      Service: 'easysmart',
      Stage: 'prod',
      Outcome: 'confirmed',
      CommandsSent: 1,
      LatencyMs: 12.5,
      device_id: 'D1',
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'EasySmart',
            Dimensions: [['Service', 'Stage', 'Outcome']],
            Metrics: [
              { Name: 'CommandsSent', Unit: 'Count' },
              { Name: 'LatencyMs', Unit: 'Milliseconds' },
            ],
          },
        ],
      },
    });
    expect(record.Broken).toBeUndefined();
    expect(typeof record._aws.Timestamp).toBe('number');
  });
});
