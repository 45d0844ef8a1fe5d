export type InvokeOutcome = { ok: true } | { ok: false; error: string };

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
  /** The event: a value, or its JSON text when the caller has it already. */
  payload: unknown;
  payloadIsJson?: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<InvokeOutcome> {
  const url = `${options.lambdaEndpoint.replace(/\/+$/, '')}/2015-03-31/functions/${encodeURIComponent(options.functionName)}/invocations`;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  let body: string;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-amz-invocation-type': 'RequestResponse',
      },
      body: options.payloadIsJson ? (options.payload as string) : JSON.stringify(options.payload),
      signal,
    });
    body = await response.text();
  } catch (error) {
    if (timeout.aborted) {
      return {
        ok: false,
        error: `no answer from ${options.functionName} within ${options.timeoutMs} ms`,
      };
    }
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (error as Error).message;
    return {
      ok: false,
      error: `cannot reach the Lambda endpoint ${options.lambdaEndpoint}: ${detail}`,
    };
  }
  const functionError = response.headers.get('x-amz-function-error');
  const errorType = response.headers.get('x-amzn-errortype');
  if (response.status === 200 && !functionError && !errorType) return { ok: true };
  return { ok: false, error: describeFailure(response.status, functionError ?? errorType, body) };
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
