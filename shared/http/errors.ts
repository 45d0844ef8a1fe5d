/**
 * The one error type the HTTP layer maps to `{"error":{"code","message"}}`.
 * As in middy's http-errors: 4xx messages are written for the client and exposed; anything
 * else is answered with a generic message and the detail stays in `cause` for the logs.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string>;
  /** Exposed beside `code` and `message` in the error object when `expose` is true. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options: {
      cause?: unknown;
      expose?: boolean;
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
    this.headers = options.headers ?? {};
    this.details = options.details;
  }
}

export const badRequest = (code: string, message: string, cause?: unknown) =>
  new HttpError(400, code, message, { cause });
export const unauthorized = (message = 'Authentication required', cause?: unknown) =>
  new HttpError(401, 'unauthorized', message, {
    cause,
    headers: { 'www-authenticate': 'Bearer' },
  });
export const forbidden = (code: string, message: string) => new HttpError(403, code, message);
export const notFound = (code: string, message: string) => new HttpError(404, code, message);
export const conflict = (code: string, message: string) => new HttpError(409, code, message);
