import type pg from 'pg';
import { setPlan } from '../../infra/admin.ts';
import { callRoute } from './api-event.ts';
import { unique } from './stack-env.ts';

type Handler = Parameters<typeof callRoute>[0];

/** The password of every owner `signUp` creates. */
export const OWNER_PASSWORD = 'owner-password';

export interface SignedUp {
  token: string;
  tenantId: number;
  tenantName: string;
  userId: number;
  username: string;
}

/**
 * Signs a new tenant and its owner up through `POST /api/auth/register`, under names no other
 * test uses. With `plan`, the operator then moves the tenant to that plan (as
 * `npm run admin -- set-plan` does). Anything but a 201 throws with the API's answer.
 */
export async function signUp(
  auth: Handler,
  options: { plan?: string; admin?: pg.Pool; sourceIp?: string } = {},
): Promise<SignedUp> {
  const username = unique('owner');
  const tenantName = unique('Plant');
  const response = await callRoute(auth, 'POST /api/auth/register', {
    body: {
      tenant_name: tenantName,
      username,
      email: `${username}@example.com`,
      password: OWNER_PASSWORD,
    },
    ...(options.sourceIp ? { sourceIp: options.sourceIp } : {}),
  });
  if (response.status !== 201) {
    throw new Error(`sign-up answered ${response.status}: ${JSON.stringify(response.body)}`);
  }
  const signedUp: SignedUp = {
    token: response.body.token,
    tenantId: response.body.tenant.id,
    tenantName,
    userId: response.body.user.id,
    username,
  };
  if (options.plan) {
    if (!options.admin) throw new Error('signUp: a plan needs the admin pool');
    await setTenantPlan(options.admin, signedUp.tenantId, options.plan);
  }
  return signedUp;
}

/** Adds a viewer to the signed-up tenant through `POST /api/users` and returns its token. */
export async function addViewer(auth: Handler, owner: SignedUp): Promise<string> {
  const username = `${owner.username}-viewer`;
  await callRoute(auth, 'POST /api/users', {
    token: owner.token,
    body: { username, email: `${username}@example.com`, password: OWNER_PASSWORD, role: 'viewer' },
  });
  const login = await callRoute(auth, 'POST /api/auth/login', {
    body: { username, password: OWNER_PASSWORD },
  });
  return login.body.token;
}

/** The operator's plan change (infra/admin.ts), on a connection of the superuser pool. */
export async function setTenantPlan(
  admin: pg.Pool,
  tenant: number | string,
  plan: string,
  trialDays?: number,
): Promise<void> {
  const client = await admin.connect();
  try {
    await setPlan(client, String(tenant), plan, trialDays);
  } finally {
    client.release();
  }
}

/**
 * Registers a device for the signed-up tenant through `POST /api/devices`, under a device id
 * no other test uses. Anything but a 201 throws with the API's answer.
 */
export async function addDevice(
  devices: Handler,
  token: string,
  body: { name?: string; type?: string } = {},
): Promise<{ id: number; deviceId: string; credentials: Record<string, string> }> {
  const deviceId = unique('esp32');
  const response = await callRoute(devices, 'POST /api/devices', {
    token,
    body: { device_id: deviceId, name: body.name ?? 'Machine', type: body.type ?? 'sensor' },
  });
  if (response.status !== 201) {
    throw new Error(
      `device registration answered ${response.status}: ${JSON.stringify(response.body)}`,
    );
  }
  return { id: response.body.device.id, deviceId, credentials: response.body.credentials };
}
