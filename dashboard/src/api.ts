import type {
  Anomaly,
  Command,
  Credentials,
  Device,
  DeviceDetail,
  Profile,
  Role,
  Telemetry,
  TenantOverview,
  User,
  Value,
} from './types.ts';

/** An API answer that was not a success, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
  }
}

export interface ApiOptions {
  baseUrl: string;
  token: () => string | null;
  /** Called on any 401 from a signed-in request: the session is over. */
  onUnauthorized: (message: string) => void;
}

type Query = Record<string, string | undefined>;

const REQUEST_TIMEOUT_MS = 30_000;

export class Api {
  constructor(private readonly options: ApiOptions) {}

  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const url = new URL(`${this.options.baseUrl}${path}`, document.baseURI);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const token = this.options.token();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // A hung request would leave a spinner forever; failing lets the page offer a retry.
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new ApiError(
          0,
          'timeout',
          `The EasySmart API did not answer within ${REQUEST_TIMEOUT_MS / 1000} s. Try again in a moment.`,
        );
      }
      throw new ApiError(
        0,
        'network',
        `Cannot reach the EasySmart API at ${url.origin}. Check your connection and try again.`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok) return parsed as T;

    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const retryAfter = Number(response.headers.get('retry-after'));
    const apiError = new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? (response.statusText || `The API answered ${response.status}`),
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    );
    if (response.status === 401 && token) {
      this.options.onUnauthorized('Your session has ended. Sign in again to continue.');
    }
    throw apiError;
  }

  register(input: { tenant_name: string; username: string; email: string; password: string }) {
    return this.request<{ token: string; expires_in?: number } & Profile>(
      'POST',
      '/api/auth/register',
      input,
    );
  }

  login(input: { username: string; password: string }) {
    return this.request<{ token: string; token_type: 'Bearer'; expires_in: number }>(
      'POST',
      '/api/auth/login',
      input,
    );
  }

  me() {
    return this.request<Profile>('GET', '/api/auth/me');
  }

  tenant() {
    return this.request<TenantOverview>('GET', '/api/tenant');
  }

  async users() {
    return (await this.request<{ users: User[] }>('GET', '/api/users')).users;
  }

  async addUser(input: { username: string; email: string; password: string; role: Role }) {
    return (await this.request<{ user: User }>('POST', '/api/users', input)).user;
  }

  async changeRole(id: number, role: Role) {
    return (await this.request<{ user: User }>('PATCH', `/api/users/${id}`, { role })).user;
  }

  removeUser(id: number) {
    return this.request<void>('DELETE', `/api/users/${id}`);
  }

  async devices() {
    return (await this.request<{ devices: Device[] }>('GET', '/api/devices')).devices;
  }

  registerDevice(input: { device_id: string; name: string; type: string; location?: string }) {
    return this.request<{ device: Device; credentials: Credentials }>(
      'POST',
      '/api/devices',
      input,
    );
  }

  device(id: number) {
    return this.request<DeviceDetail>('GET', `/api/devices/${id}`);
  }

  async updateDevice(
    id: number,
    patch: { name?: string; type?: string; location?: string | null },
  ) {
    return (await this.request<{ device: Device }>('PATCH', `/api/devices/${id}`, patch)).device;
  }

  removeDevice(id: number) {
    return this.request<void>('DELETE', `/api/devices/${id}`);
  }

  telemetry(id: number, query: { entityIds: string[]; from: Date; to: Date; every?: string }) {
    return this.request<Telemetry>('GET', `/api/devices/${id}/telemetry`, undefined, {
      entity_id: query.entityIds.join(','),
      from: query.from.toISOString(),
      to: query.to.toISOString(),
      every: query.every,
      fn: query.every ? 'mean' : undefined,
    });
  }

  sendCommand(id: number, entityId: string, value: Value) {
    return this.request<Command>(
      'POST',
      `/api/devices/${id}/entities/${encodeURIComponent(entityId)}/commands`,
      { value },
    );
  }

  command(id: number, commandId: string) {
    return this.request<Command>('GET', `/api/devices/${id}/commands/${commandId}`);
  }

  async anomalies(id: number, from: Date, to: Date): Promise<Anomaly[]> {
    const body = await this.request<{ anomalies?: Anomaly[] } | Anomaly[]>(
      'GET',
      `/api/devices/${id}/anomalies`,
      undefined,
      { from: from.toISOString(), to: to.toISOString() },
    );
    return Array.isArray(body) ? body : (body?.anomalies ?? []);
  }
}

/** A sentence for the person at the screen: what happened and what to do about it. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) {
    return error instanceof Error
      ? error.message
      : 'Something went wrong. Reload the page and try again.';
  }
  if (error.status === 0) return error.message;
  if (error.code === 'insufficient_role') {
    return `${error.message}. Ask an owner or admin of your organisation to do this or to change your role.`;
  }
  if (error.code === 'plan_limit_reached' || error.code === 'plan_required') {
    return `${error.message}. An owner can upgrade the plan on the Organisation page.`;
  }
  if (error.status === 429) {
    const wait = error.retryAfterSeconds;
    return wait
      ? `${error.message}. Try again in ${wait >= 90 ? `${Math.ceil(wait / 60)} minutes` : `${wait} seconds`}.`
      : `${error.message}.`;
  }
  if (error.status >= 500) {
    return `The platform could not complete this (${error.code}: ${error.message}). Try again in a moment.`;
  }
  return error.message.endsWith('.') ? error.message : `${error.message}.`;
}
