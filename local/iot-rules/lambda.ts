import http from 'node:http';
import https from 'node:https';

export type InvokeOutcome = { ok: true } | { ok: false; error: string };

// Invocations go through node:http with kept-alive connections rather than fetch: at
// hundreds of thousands of readings a second, fetch's streams and text encoding were a
// tenth of the emulator's time. Idle connections are closed after 4 s, before Node's HTTP
// server (serverless-offline) closes them at 5 s and a request could be sent on one it is
// closing.
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: 4_000 }),
  'https:': new https.Agent({ keepAlive: true, timeout: 4_000 }),
};

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

class NoAnswerError extends Error {}

function post(
  url: URL,
  body: string | Buffer,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Answer> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        agent: agents[url.protocol === 'https:' ? 'https:' : 'http:'],
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'x-amz-invocation-type': 'RequestResponse',
        },
        ...(signal ? { signal } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    // A timer of our own, not `request.setTimeout`: that one measures idle time between
    // packets, and a function that takes long to answer sends none.
    const timer = setTimeout(() => request.destroy(new NoAnswerError()), timeoutMs);
    request.on('close', () => clearTimeout(timer));
    request.on('error', reject);
    request.end(body);
  });
}

const headerOf = (headers: http.IncomingHttpHeaders, name: string): string | null => {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
};

/**
 * Invokes a function synchronously through the Lambda Invoke API that serverless-offline
 * serves, as AWS IoT's Lambda action does, and says whether the function succeeded.
 *
 * serverless-offline@13 answers 200 for a handler that returned, 200 with
 * `X-Amz-Function-Error: Unhandled` and `{errorMessage, errorType, trace}` for a handler that
 * threw, and 4xx with `x-amzn-ErrorType` (e.g. 404 ResourceNotFoundException) when the call
 * itself is refused. Only the first counts as delivered.
 */
export async function invokeFunction(options: {
  lambdaEndpoint: string;
  functionName: string;
  /** The event: a value, or its JSON (text or UTF-8 bytes) when the caller has it already. */
  payload: unknown;
  payloadIsJson?: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<InvokeOutcome> {
  const url = new URL(
    `${options.lambdaEndpoint.replace(/\/+$/, '')}/2015-03-31/functions/${encodeURIComponent(options.functionName)}/invocations`,
  );
  const body = options.payloadIsJson
    ? (options.payload as string | Buffer)
    : JSON.stringify(options.payload);
  let answer: Answer;
  try {
    answer = await post(url, body, options.timeoutMs, options.signal);
  } catch (error) {
    if (error instanceof NoAnswerError) {
      return {
        ok: false,
        error: `no answer from ${options.functionName} within ${options.timeoutMs} ms`,
      };
    }
    const { code, message } = error as Error & { code?: string };
    return {
      ok: false,
      error: `cannot reach the Lambda endpoint ${options.lambdaEndpoint}: ${code ?? message}`,
    };
  }
  const functionError = headerOf(answer.headers, 'x-amz-function-error');
  const errorType = headerOf(answer.headers, 'x-amzn-errortype');
  if (answer.status === 200 && !functionError && !errorType) return { ok: true };
  return {
    ok: false,
    error: describeFailure(answer.status, functionError ?? errorType, answer.body),
  };
}

function describeFailure(status: number, kind: string | null, body: string): string {
  let detail = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const type = parsed.errorType ?? parsed.Type;
    const message = parsed.errorMessage ?? parsed.Message ?? parsed.message;
    if (typeof message === 'string')
      detail = typeof type === 'string' ? `${type}: ${message}` : message;
  } catch {
    // not JSON: the raw text is the best description there is
  }
  return `${kind ?? `HTTP ${status}`}${detail ? `: ${detail}` : ''}`;
}
