import { describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { useTestStack } from './support/stack-env.ts';
import { addDevice, signUp } from './support/tenants.ts';

/**
 * The audit trail of device credentials and predictive-maintenance work, through the
 * functions in-process against real PostgreSQL and InfluxDB: each change a person makes
 * shows on `GET /api/audit` with who did it, to what, and what changed (a credential's
 * issue and revocation, never its secret).
 */
const stack = useTestStack();
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const maintenance = (await import('../functions/maintenance/handler.ts')).handler;
const audit = (await import('../functions/audit/handler.ts')).handler;
const { ingestionService } = await import('../shared/ingestion/composition.ts');
const admin = adminPool(stack);

interface Entry {
  action: string;
  user_id: number | null;
  target: string | null;
  details: Record<string, unknown> | null;
}

async function trail(token: string, action?: string): Promise<Entry[]> {
  const answer = await callRoute(audit, 'GET /api/audit', {
    token,
    query: action ? { action } : {},
  });
  expect(answer.status).toBe(200);
  return (answer.body.entries as Entry[]).reverse();
}

describe('the audit trail', () => {
  it('records a device credential issued at registration (one by one and in bulk) and revoked at removal, never its secret', async () => {
    const owner = await signUp(auth);
    const device = await addDevice(devices, owner.token, { type: 'press' });
    const bulk = await callRoute(devices, 'POST /api/devices/bulk', {
      token: owner.token,
      body: [{ device_id: `${device.deviceId}-b`, name: 'Second press', type: 'press' }],
    });
    expect(bulk.status).toBe(201);
    const removed = await callRoute(devices, 'DELETE /api/devices/{id}', {
      token: owner.token,
      params: { id: String(device.id) },
    });
    expect(removed.status).toBe(204);

    const entries = await trail(owner.token, 'device.');
    expect(entries).toMatchObject([
      {
        action: 'device.register',
        user_id: owner.userId,
        target: `device:${device.id}`,
        details: {
          device_id: device.deviceId,
          credential: { change: 'issued', client_id: device.credentials.username },
        },
      },
      {
        action: 'device.register',
        details: {
          device_id: `${device.deviceId}-b`,
          bulk: true,
          credential: { change: 'issued', client_id: `${device.deviceId}-b` },
        },
      },
      {
        action: 'device.delete',
        user_id: owner.userId,
        target: `device:${device.id}`,
        details: { device_id: device.deviceId, credential: { change: 'revoked' } },
      },
    ]);
    const text = JSON.stringify(entries);
    expect(text).not.toContain(device.credentials.password as string);
  });

  it('records maintenance events, limits and fleet training requests with who asked', async () => {
    const owner = await signUp(auth, { plan: 'professional', admin });
    const device = await addDevice(devices, owner.token, { type: 'pump' });
    const summary = await ingestionService().ingest([
      {
        payload: Buffer.from(
          JSON.stringify({ entities: [{ entity_id: 'oil', entity_type: 'sensor', name: 'Oil' }] }),
        ).toString('base64'),
        topic: `devices/${device.deviceId}/discovery`,
        client_id: device.deviceId,
        received_at: Date.now(),
      },
    ]);
    expect(summary.rejected).toEqual({});
    const id = String(device.id);
    const event = await callRoute(maintenance, 'POST /api/devices/{id}/maintenance', {
      token: owner.token,
      params: { id },
      body: { kind: 'failure', note: 'seal' },
    });
    expect(event.status).toBe(201);
    const limit = await callRoute(maintenance, 'PUT /api/devices/{id}/entities/{entity_id}/limit', {
      token: owner.token,
      params: { id, entity_id: 'oil' },
      body: { above: 90 },
    });
    expect(limit.status).toBe(200);
    const training = await callRoute(maintenance, 'POST /api/maintenance/models', {
      token: owner.token,
      body: { device_type: 'pump', step_unit: 'hours' },
    });
    expect(training.status).toBe(202);
    // A refused change (a limit on an unknown entity) is not on the trail.
    const refused = await callRoute(
      maintenance,
      'PUT /api/devices/{id}/entities/{entity_id}/limit',
      { token: owner.token, params: { id, entity_id: 'nothing' }, body: { above: 1 } },
    );
    expect(refused.status).toBe(404);

    const entries = (await trail(owner.token)).filter(
      (entry) => !entry.action.startsWith('tenant.') && !entry.action.startsWith('device.'),
    );
    expect(entries).toMatchObject([
      {
        action: 'maintenance.record',
        user_id: owner.userId,
        target: `device:${device.id}`,
        details: { kind: 'failure', note: 'seal' },
      },
      {
        action: 'entity_limit.set',
        user_id: owner.userId,
        target: `device:${device.id}`,
        details: { entity_id: 'oil', limit: { above: 90, below: null } },
      },
      {
        action: 'rul_model.train',
        user_id: owner.userId,
        target: 'device_type:pump',
        details: { step_unit: 'hours' },
      },
    ]);
  });
});
