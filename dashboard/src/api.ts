import type { paths } from './api-types.ts';
import type { Anomaly, Role, Value } from './types.ts';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Path = keyof paths;
/** The generated description of `method path`, from the OpenAPI document. */
type Operation<P extends Path, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<R> = R extends { content: { 'application/json': infer Body } } ? Body : undefined;
/** The body of the route's success answer (undefined for a 204). */
type Answer<O> = O extends { responses: infer R }
  ? { [S in keyof R]: S extends 200 | 201 | 202 | 204 ? JsonOf<R[S]> : never }[keyof R]
  : never;
type RequestBody<O> = O extends { requestBody: { content: { 'application/json': infer Body } } }
  ? Body
  : undefined;
type ParametersIn<O, Where extends 'path' | 'query'> = O extends { parameters: infer All }
  ? Where extends keyof All
    ? NonNullable<All[Where]>
    : undefined
  : undefined;

interface CallOptions<O> {
  params?: ParametersIn<O, 'path'>;
  query?: ParametersIn<O, 'query'>;
  body?: RequestBody<O>;
}

/** An API answer that was not a success, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds: number | null = null,
    /** For a bulk registration refused row by row: each failing row and why. */
    readonly rows: Array<{ row: number; device_id?: string; code: string; message: string }> = [],
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

const REQUEST_TIMEOUT_MS = 30_000;

export class Api {
  constructor(private readonly options: ApiOptions) {}

  /**
   * Calls one route of the OpenAPI document; its path, parameters, body and answer are
   * typed from the generated API types, so a changed route fails the dashboard's build.
   */
  async call<P extends Path, M extends Method>(
    method: M,
    path: P,
    options: CallOptions<Operation<P, M>> = {},
  ): Promise<Answer<Operation<P, M>>> {
    const params = (options.params ?? {}) as Record<string, string | number>;
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(String(params[name])),
    );
    const url = new URL(`${this.options.baseUrl}${filled}`, document.baseURI);
    const query = (options.query ?? {}) as Record<string, string | undefined>;
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const body: unknown = options.body;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const text = await this.send(
      method,
      url,
      headers,
      body === undefined ? undefined : JSON.stringify(body),
    );
    try {
      return (text ? JSON.parse(text) : undefined) as Answer<Operation<P, M>>;
    } catch {
      return undefined as Answer<Operation<P, M>>;
    }
  }

  /**
   * Registers the devices of a file (`POST /api/devices/bulk`, a CSV or a JSON array) and
   * returns their credentials as the CSV file the API writes.
   */
  registerDevicesFromFile(text: string, contentType: string): Promise<string> {
    const url = new URL(`${this.options.baseUrl}/api/devices/bulk`, document.baseURI);
    url.searchParams.set('format', 'csv');
    return this.send('post', url, { accept: 'text/csv', 'content-type': contentType }, text);
  }

  /** One request; the answer's text on success, else an ApiError for the person at the screen. */
  private async send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<string> {
    const token = this.options.token();
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: method.toUpperCase(),
        headers,
        body,
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
    if (response.ok) return text;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const error = (
      parsed as { error?: { code?: string; message?: string; rows?: ApiError['rows'] } } | undefined
    )?.error;
    const retryAfter = Number(response.headers.get('retry-after'));
    const apiError = new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? (response.statusText || `The API answered ${response.status}`),
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
      Array.isArray(error?.rows) ? error.rows : [],
    );
    if (response.status === 401 && token) {
      this.options.onUnauthorized('Your session has ended. Sign in again to continue.');
    }
    throw apiError;
  }

  register(body: RequestBody<Operation<'/api/auth/register', 'post'>>) {
    return this.call('post', '/api/auth/register', { body });
  }

  login(body: RequestBody<Operation<'/api/auth/login', 'post'>>) {
    return this.call('post', '/api/auth/login', { body });
  }

  me() {
    return this.call('get', '/api/auth/me');
  }

  tenant() {
    return this.call('get', '/api/tenant');
  }

  async users() {
    return (await this.call('get', '/api/users')).users;
  }

  async addUser(body: RequestBody<Operation<'/api/users', 'post'>>) {
    return (await this.call('post', '/api/users', { body })).user;
  }

  async changeRole(id: number, role: Role) {
    return (
      await this.call('patch', '/api/users/{id}', { params: { id: String(id) }, body: { role } })
    ).user;
  }

  removeUser(id: number) {
    return this.call('delete', '/api/users/{id}', { params: { id: String(id) } });
  }

  async devices() {
    return (await this.call('get', '/api/devices')).devices;
  }

  registerDevice(body: RequestBody<Operation<'/api/devices', 'post'>>) {
    return this.call('post', '/api/devices', { body });
  }

  device(id: number) {
    return this.call('get', '/api/devices/{id}', { params: { id: String(id) } });
  }

  async updateDevice(id: number, body: RequestBody<Operation<'/api/devices/{id}', 'patch'>>) {
    return (await this.call('patch', '/api/devices/{id}', { params: { id: String(id) }, body }))
      .device;
  }

  removeDevice(id: number) {
    return this.call('delete', '/api/devices/{id}', { params: { id: String(id) } });
  }

  telemetry(id: number, query: { entityIds: string[]; from: Date; to: Date; every?: string }) {
    return this.call('get', '/api/devices/{id}/telemetry', {
      params: { id: String(id) },
      query: {
        entity_id: query.entityIds.join(','),
        from: query.from.toISOString(),
        to: query.to.toISOString(),
        every: query.every,
        fn: query.every ? 'mean' : undefined,
      },
    });
  }

  sendCommand(id: number, entityId: string, value: Value) {
    return this.call('post', '/api/devices/{id}/entities/{entity_id}/commands', {
      params: { id: String(id), entity_id: entityId },
      body: { value },
    });
  }

  command(id: number, commandId: string) {
    return this.call('get', '/api/devices/{id}/commands/{command_id}', {
      params: { id: String(id), command_id: commandId },
    });
  }

  async anomalies(id: number, from: Date, to: Date): Promise<Anomaly[]> {
    const answer = await this.call('get', '/api/devices/{id}/anomalies', {
      params: { id: String(id) },
      query: { from: from.toISOString(), to: to.toISOString() },
    });
    return answer.anomalies;
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
