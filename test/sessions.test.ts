import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { callRoute } from './support/api-event.ts';
import { adminPool } from './support/in-process.ts';
import { unique, useTestStack } from './support/stack-env.ts';
import { signUp as signUpWith } from './support/tenants.ts';
import { callWebsocket, startManagementStandIn } from './support/websocket-management.ts';

// Tokens are checked against the user's current role and token version on every request;
// an ended session also closes the user's WebSockets (API Gateway's management API mocked).
const management = await startManagementStandIn();
const stack = useTestStack({ WEBSOCKET_MANAGEMENT_ENDPOINT: management.url });
const auth = (await import('../functions/auth/handler.ts')).handler;
const devices = (await import('../functions/devices/handler.ts')).handler;
const live = (await import('../functions/live/handler.ts')).handler;
const admin = adminPool(stack);
afterAll(() => management.stop());

// The free plan's two users are too few for these scenarios.
const signUp = () => signUpWith(auth, { plan: 'professional', admin });

async function addUser(ownerToken: string, role: 'owner' | 'admin' | 'viewer') {
  const username = unique(role);
  const added = await callRoute(auth, 'POST /api/users', {
    token: ownerToken,
    body: { username, email: `${username}@example.com`, password: `${role}-password`, role },
  });
  expect(added.status).toBe(201);
  const token = await login(username, `${role}-password`);
  return { username, token, userId: added.body.user.id as number };
}

async function login(username: string, password: string): Promise<string> {
  const response = await callRoute(auth, 'POST /api/auth/login', { body: { username, password } });
  expect(response.status).toBe(200);
  return response.body.token;
}

/** Opens a WebSocket as the live function sees it; returns its connection id. */
async function openWebsocket(token: string): Promise<string> {
  const connectionId = `conn-${randomUUID()}`;
  expect(await callWebsocket(live, '$connect', connectionId, { token })).toBe(200);
  return connectionId;
}

async function connectionExists(connectionId: string): Promise<boolean> {
  const { rowCount } = await admin.query('SELECT 1 FROM ws_connections WHERE connection_id = $1', [
    connectionId,
  ]);
  return rowCount === 1;
}

const me = (token: string) => callRoute(auth, 'GET /api/auth/me', { token });
const newDevice = (token: string) =>
  callRoute(devices, 'POST /api/devices', {
    token,
    body: { device_id: unique('esp32'), name: 'Press', type: 'sensor' },
  });

describe('every request sees the user as they are now', () => {
  it("a demoted admin's old token can no longer create devices or admins, nor promote itself back; its WebSocket closes", async () => {
    const owner = await signUp();
    const demoted = await addUser(owner.token, 'admin');
    const socket = await openWebsocket(demoted.token);

    const demotion = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: owner.token,
      params: { id: String(demoted.userId) },
      body: { role: 'viewer' },
    });
    expect(demotion.status).toBe(200);

    expect((await me(demoted.token)).status).toBe(401);
    expect((await newDevice(demoted.token)).status).toBe(401);
    const promoteBack = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: demoted.token,
      params: { id: String(demoted.userId) },
      body: { role: 'admin' },
    });
    expect(promoteBack.status).toBe(401);
    expect(management.closed).toContain(socket);
    expect(await connectionExists(socket)).toBe(false);

    // Signed in again, the user has the rights the owner left them.
    const viewerToken = await login(demoted.username, 'admin-password');
    expect((await newDevice(viewerToken)).status).toBe(403);
    const again = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: viewerToken,
      params: { id: String(demoted.userId) },
      body: { role: 'admin' },
    });
    expect(again.status).toBe(403);
    expect((await me(viewerToken)).body.user.role).toBe('viewer');
  });

  it("a deleted user's token reads nothing, opens no WebSocket, and their open WebSocket closes", async () => {
    const owner = await signUp();
    const removed = await addUser(owner.token, 'admin');
    const socket = await openWebsocket(removed.token);
    const deletion = await callRoute(auth, 'DELETE /api/users/{id}', {
      token: owner.token,
      params: { id: String(removed.userId) },
    });
    expect(deletion.status).toBe(204);

    expect((await callRoute(devices, 'GET /api/devices', { token: removed.token })).status).toBe(
      401,
    );
    expect((await newDevice(removed.token)).status).toBe(401);
    expect(management.closed).toContain(socket);
    expect(await connectionExists(socket)).toBe(false);
    expect(
      await callWebsocket(live, '$connect', `conn-${randomUUID()}`, { token: removed.token }),
    ).toBe(401);
  });

  it('a password change ends every other session and hands back a working token', async () => {
    const owner = await signUp();
    const user = await addUser(owner.token, 'admin');
    const otherSession = await login(user.username, 'admin-password');
    const socket = await openWebsocket(otherSession);

    const wrong = await callRoute(auth, 'POST /api/auth/password', {
      token: user.token,
      body: { current_password: 'not-my-password', new_password: 'a-brand-new-password' },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('wrong_password');
    const weak = await callRoute(auth, 'POST /api/auth/password', {
      token: user.token,
      body: { current_password: 'admin-password', new_password: 'password123' },
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.code).toBe('weak_password');
    expect((await me(user.token)).status).toBe(200);

    const changed = await callRoute(auth, 'POST /api/auth/password', {
      token: user.token,
      body: { current_password: 'admin-password', new_password: 'a-brand-new-password' },
    });
    expect(changed.status).toBe(200);
    expect((await me(changed.body.token)).status).toBe(200);
    expect((await me(user.token)).status).toBe(401);
    expect((await me(otherSession)).status).toBe(401);
    expect(management.closed).toContain(socket);

    const oldPassword = await callRoute(auth, 'POST /api/auth/login', {
      body: { username: user.username, password: 'admin-password' },
    });
    expect(oldPassword.status).toBe(401);
    await login(user.username, 'a-brand-new-password');
  });

  it("sign-out ends the user's tokens and WebSockets, and nobody else's", async () => {
    const owner = await signUp();
    const colleague = await addUser(owner.token, 'viewer');
    const socket = await openWebsocket(owner.token);
    const colleagueSocket = await openWebsocket(colleague.token);

    expect((await callRoute(auth, 'POST /api/auth/logout', { token: owner.token })).status).toBe(
      204,
    );
    expect((await me(owner.token)).status).toBe(401);
    expect((await callRoute(auth, 'POST /api/auth/logout', { token: owner.token })).status).toBe(
      401,
    );
    expect(management.closed).toContain(socket);
    expect(management.closed).not.toContain(colleagueSocket);
    expect(await connectionExists(colleagueSocket)).toBe(true);
    expect((await me(colleague.token)).status).toBe(200);
  });
});

describe('owners', () => {
  it('an admin can neither demote nor remove an owner, even one of two', async () => {
    const owner = await signUp();
    const second = await addUser(owner.token, 'owner');
    const anAdmin = await addUser(owner.token, 'admin');
    for (const target of [owner.userId, second.userId]) {
      const params = { id: String(target) };
      const demote = await callRoute(auth, 'PATCH /api/users/{id}', {
        token: anAdmin.token,
        params,
        body: { role: 'admin' },
      });
      expect(demote.status).toBe(403);
      const remove = await callRoute(auth, 'DELETE /api/users/{id}', {
        token: anAdmin.token,
        params,
      });
      expect(remove.status).toBe(403);
    }
    expect((await me(owner.token)).body.user.role).toBe('owner');
    expect((await me(second.token)).body.user.role).toBe('owner');
  });

  it('only an owner changes or removes an owner, and a tenant always keeps one', async () => {
    const owner = await signUp();
    const anAdmin = await addUser(owner.token, 'admin');
    const ownerId = { id: String(owner.userId) };

    const demote = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: anAdmin.token,
      params: ownerId,
      body: { role: 'viewer' },
    });
    expect(demote.status).toBe(403);
    const remove = await callRoute(auth, 'DELETE /api/users/{id}', {
      token: anAdmin.token,
      params: ownerId,
    });
    expect(remove.status).toBe(403);
    expect((await me(owner.token)).body.user.role).toBe('owner');

    // The last owner cannot step down or leave; with a second owner, one may go.
    const stepDown = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: owner.token,
      params: ownerId,
      body: { role: 'admin' },
    });
    expect(stepDown.status).toBe(409);
    expect(stepDown.body.error.code).toBe('last_owner');
    const second = await addUser(owner.token, 'owner');
    const demoteFirst = await callRoute(auth, 'PATCH /api/users/{id}', {
      token: second.token,
      params: ownerId,
      body: { role: 'admin' },
    });
    expect(demoteFirst.status).toBe(200);
    const leaveAlone = await callRoute(auth, 'DELETE /api/users/{id}', {
      token: second.token,
      params: { id: String(second.userId) },
    });
    expect(leaveAlone.status).toBe(409);
  });
});
