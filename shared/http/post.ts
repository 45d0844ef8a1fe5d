import http from 'node:http';
import https from 'node:https';

/**
 * Outbound POSTs of large bodies over node:http rather than fetch: fetch's web streams and
 * text encoding copy a body twice more, which showed in the ingest function (InfluxDB
 * writes) and in the IoT rules emulator (invocations) at hundreds of thousands of readings
 * a second.
 */

/** Keeps connections for the next request; `idleTimeoutMs` closes them when unused. */
export function keepAliveAgent(url: string, idleTimeoutMs?: number): http.Agent {
  const options = { keepAlive: true, ...(idleTimeoutMs ? { timeout: idleTimeoutMs } : {}) };
  return url.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
}

export interface PostAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The server did not answer the whole request within the time given. */
export class PostTimeoutError extends Error {
  override readonly name = 'PostTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/**
 * POSTs `body` and resolves with whatever the server answers, any status. Rejects with
 * `PostTimeoutError` if the answer is not complete within `timeoutMs`, with the socket's
 * error if the server cannot be reached, and with an AbortError if `signal` aborts.
 */
export function post(
  url: URL,
  body: string | Buffer,
  options: {
    agent: http.Agent;
    headers: Record<string, string>;
    timeoutMs: number;
    signal?: AbortSignal | undefined;
  },
): Promise<PostAnswer> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<PostAnswer>((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        agent: options.agent,
        headers: { ...options.headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    // A timer of our own, not `request.setTimeout`: that one measures idle time between
    // packets, and a server that takes long to answer sends none.
    const timer = setTimeout(
      () => request.destroy(new PostTimeoutError(options.timeoutMs)),
      options.timeoutMs,
    );
    request.on('close', () => clearTimeout(timer));
    request.on('error', reject);
    request.end(body);
  });
}

/** The first value of a response header, or null. */
export function headerOf(headers: http.IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}
