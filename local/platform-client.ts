/** A small JSON client for the platform's HTTP API, for local tooling (demo, fleet). */

export interface ApiResponse<T> {
  status: number;
  body: T;
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export class ApiError extends Error {
  constructor(
    readonly what: string,
    readonly response: ApiResponse<unknown>,
  ) {
    const body = response.body as ErrorBody | undefined;
    const detail = body?.error?.message ?? JSON.stringify(response.body);
    super(`${what}: ${response.status} ${detail}`);
  }

  get code(): string | undefined {
    return (this.response.body as ErrorBody | undefined)?.error?.code;
  }
}

export class PlatformClient {
  token: string | undefined;

  constructor(
    readonly apiUrl: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Any status; the body parsed as JSON when it is JSON. */
  async request<T>(method: string, route: string, body?: unknown): Promise<ApiResponse<T>> {
    const response = await fetch(`${this.apiUrl}${route}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a proxy's error page): kept as text for the message.
    }
    return { status: response.status, body: parsed as T };
  }

  /** The body if the status is `expected`, else an ApiError naming `what`. */
  async expect<T>(
    expected: number,
    what: string,
    method: string,
    route: string,
    body?: unknown,
  ): Promise<T> {
    const response = await this.request<T>(method, route, body);
    if (response.status !== expected) throw new ApiError(what, response);
    return response.body;
  }
}

export interface RegisteredDevice {
  device: { id: number; device_id: string };
  credentials: { client_id: string; username: string; password: string };
}

export interface SignedUp {
  token: string;
  tenant: { id: number; name: string; plan: string };
}
