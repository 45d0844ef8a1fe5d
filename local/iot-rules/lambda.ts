import {
  headerOf,
  keepAliveAgent,
  type PostAnswer,
  PostTimeoutError,
  post,
} from '../../shared/http/post.ts';

export type InvokeOutcome = { ok: true } | { ok: false; error: string };

// Idle connections are closed after 4 s, before Node's HTTP server (serverless-offline)
// closes them at 5 s and a request could be sent on one it is closing.
const IDLE_MS = 4_000;
const agents = { http: keepAliveAgent('http:', IDLE_MS), https: keepAliveAgent('https:', IDLE_MS) };

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
  let answer: PostAnswer;
  try {
    answer = await post(url, body, {
      agent: url.protocol === 'https:' ? agents.https : agents.http,
      headers: {
        'content-type': 'application/json',
        'x-amz-invocation-type': 'RequestResponse',
      },
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof PostTimeoutError) {
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
    error: describeFailure(answer.status, functionError ?? errorType, answer.body.toString('utf8')),
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
