import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { LiveConnections } from '../shared/live/adapters/api-gateway-live-connections.ts';
import { PostgresLiveConnectionStore } from '../shared/live/adapters/postgres-live-connection-store.ts';
import {
  LiveSubscriptions,
  MAX_WATCHED_DEVICES,
  takeToken,
} from '../shared/live/domain/subscriptions.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { signUp } from './support/tenants.ts';

/**
 * What a dashboard connection watches and how fast it may talk, against the real
 * PostgreSQL: subscriptions, their bound, the per-connection throttle (an injected clock),
 * and pushes that reach only the connections watching the device.
 */

const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const app = new pg.Pool({ connectionString: stack.databaseUrl, max: 4 });

afterAll(async () => {
  await app.end();
});

const newTenant = async () => (await signUp(auth)).tenantId;

/** API Gateway's push API, recording what it is asked to send. */
function pushRecorder() {
  const pushed: Array<{ connection: string; message: any }> = [];
  const management = {
    send: async (command: { input: { ConnectionId?: string; Data?: Uint8Array } }) => {
      pushed.push({
        connection: command.input.ConnectionId ?? '',
        message: JSON.parse(new TextDecoder().decode(command.input.Data)),
      });
    },
  } as unknown as ApiGatewayManagementApiClient;
  return { pushed, management };
}

describe('the token bucket', () => {
  it('starts full, spends one a message, refills at its rate, and says when the next comes', () => {
    const policy = { perSecond: 2, burst: 3 };
    let budget = null;
    for (let i = 0; i < 3; i++) {
      const taken = takeToken(budget, 1000, policy);
      expect(taken.allowed).toBe(true);
      if (taken.allowed) budget = taken.budget;
    }
    expect(takeToken(budget, 1000, policy)).toEqual({ allowed: false, retryAfterMs: 500 });
    expect(takeToken(budget, 1499, policy).allowed).toBe(false);
    expect(takeToken(budget, 1500, policy).allowed).toBe(true);
    // A long quiet spell refills to the burst, not beyond.
    const rested = takeToken(budget, 60_000, policy);
    expect(rested.allowed && rested.budget.tokens).toBe(2);
  });
});

describe('live subscriptions in PostgreSQL', () => {
  it('a new connection watches nothing; subscribe and unsubscribe change its set, within the bound', async () => {
    const tenant = await newTenant();
    const { management } = pushRecorder();
    const connections = new LiveConnections(app, management);
    const id = unique('conn');
    await connections.connect(id, tenant, 1);
    let now = 0;
    const live = new LiveSubscriptions(new PostgresLiveConnectionStore(app), () => now, {
      perSecond: 1000,
      burst: 1000,
    });
    expect(await live.handle(id, { action: 'subscribe', deviceIds: [5, 3] })).toEqual({
      type: 'subscribed',
      device_ids: [3, 5],
    });
    expect(await live.handle(id, { action: 'subscribe', deviceIds: [4, 5] })).toEqual({
      type: 'subscribed',
      device_ids: [3, 4, 5],
    });
    expect(await live.handle(id, { action: 'unsubscribe', deviceIds: [3, 99] })).toEqual({
      type: 'subscribed',
      device_ids: [4, 5],
    });
    // Over the bound: refused whole, the set stays as it was.
    const many = Array.from({ length: MAX_WATCHED_DEVICES - 1 }, (_, i) => 1000 + i);
    expect(await live.handle(id, { action: 'subscribe', deviceIds: many })).toMatchObject({
      type: 'error',
      error: { code: 'too_many_devices' },
    });
    expect(await live.handle(id, { action: 'subscribe', deviceIds: [] })).toEqual({
      type: 'subscribed',
      device_ids: [4, 5],
    });
    expect(await live.handle(id, null)).toMatchObject({
      type: 'error',
      error: { code: 'invalid_message' },
    });
    expect(await live.handle(id, { action: 'ping' })).toEqual({ type: 'pong' });
    // Messages of a connection that is gone change nothing and get no answer.
    expect(await live.handle(unique('gone'), { action: 'ping' })).toBeNull();
    now += 1;
    await connections.disconnect(id);
  });

  it('throttles each connection on its own, by the injected clock', async () => {
    const tenant = await newTenant();
    const { management } = pushRecorder();
    const connections = new LiveConnections(app, management);
    const [busy, quiet] = [unique('busy'), unique('quiet')];
    await connections.connect(busy, tenant, 1);
    await connections.connect(quiet, tenant, 1);
    let now = Date.UTC(2026, 0, 1);
    const live = new LiveSubscriptions(new PostgresLiveConnectionStore(app), () => now, {
      perSecond: 5,
      burst: 20,
    });
    const replies = [];
    for (let i = 0; i < 25; i++) replies.push(await live.handle(busy, { action: 'ping' }));
    expect(replies.filter((reply) => reply?.type === 'pong')).toHaveLength(20);
    expect(replies.at(-1)).toMatchObject({
      type: 'error',
      error: { code: 'throttled' },
      retry_after_ms: 200,
    });
    // The other connection of the same tenant is not affected.
    expect(await live.handle(quiet, { action: 'ping' })).toEqual({ type: 'pong' });
    // A refused message spends nothing; 200 ms later there is a token again.
    now += 199;
    expect(await live.handle(busy, { action: 'ping' })).toMatchObject({ type: 'error' });
    now += 1;
    expect(await live.handle(busy, { action: 'ping' })).toEqual({ type: 'pong' });
    await connections.disconnect(busy);
    await connections.disconnect(quiet);
  });

  it('keeps every change of concurrent messages of one connection', async () => {
    const tenant = await newTenant();
    const connections = new LiveConnections(app, pushRecorder().management);
    const id = unique('conn');
    await connections.connect(id, tenant, 1);
    const live = new LiveSubscriptions(new PostgresLiveConnectionStore(app), () => 0, {
      perSecond: 1,
      burst: 100,
    });
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        live.handle(id, { action: 'subscribe', deviceIds: [i + 1] }),
      ),
    );
    expect(await live.handle(id, { action: 'subscribe', deviceIds: [] })).toEqual({
      type: 'subscribed',
      device_ids: Array.from({ length: 12 }, (_, i) => i + 1),
    });
    await connections.disconnect(id);
  });

  it('pushes a device’s events only to the connections watching it (API Gateway’s push API mocked)', async () => {
    const tenant = await newTenant();
    const { pushed, management } = pushRecorder();
    const connections = new LiveConnections(app, management);
    const live = new LiveSubscriptions(new PostgresLiveConnectionStore(app));
    const [watchesOne, watchesBoth, watchesNothing] = [unique('a'), unique('b'), unique('c')];
    for (const id of [watchesOne, watchesBoth, watchesNothing]) {
      await connections.connect(id, tenant, 1);
    }
    await live.handle(watchesOne, { action: 'subscribe', deviceIds: [1] });
    await live.handle(watchesBoth, { action: 'subscribe', deviceIds: [1, 2] });
    const one = { type: 'status', device_id: 1, status: 'online', time: 'now' } as const;
    const two = { type: 'status', device_id: 2, status: 'offline', time: 'now' } as const;
    const three = { type: 'status', device_id: 3, status: 'online', time: 'now' } as const;
    await connections.publish(tenant, () => [one, two, three]);
    const byConnection = Object.fromEntries(
      pushed.map((push) => [push.connection, push.message.events]),
    );
    expect(byConnection).toEqual({ [watchesOne]: [one], [watchesBoth]: [one, two] });
    // Nobody watches device 3 alone: its events are not even built when nothing is watched.
    pushed.length = 0;
    await live.handle(watchesOne, { action: 'unsubscribe', deviceIds: [1] });
    await live.handle(watchesBoth, { action: 'unsubscribe', deviceIds: [1, 2] });
    let built = false;
    await connections.publish(tenant, () => {
      built = true;
      return [one];
    });
    expect(built).toBe(false);
    expect(pushed).toEqual([]);
    for (const id of [watchesOne, watchesBoth, watchesNothing]) await connections.disconnect(id);
  });
});
