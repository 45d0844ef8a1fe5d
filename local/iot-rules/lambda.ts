import {
  headerOf,
  keepAliveAgent,
  type PostAnswer,
  PostTimeoutError,
  post,
} from '../../shared/http/post.ts';

export type InvokeOutcome = { ok: true; body: Buffer } | { ok: false; error: string };

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
  if (answer.status === 200 && !functionError && !errorType) return { ok: true, body: answer.body };
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

/** How a function that reads a Kinesis stream answered a batch. */
export type StreamAnswer =
  | { kind: 'success' }
  /** Every record from `from` (an index into the batch) on is tried again. */
  | { kind: 'partial'; from: number; failed: Set<string> }
  | { kind: 'failure'; error: string };

/**
 * A partial batch response, read as Lambda reads it for Kinesis with ReportBatchItemFailures
 * (AWS Lambda Developer Guide, "Configuring partial batch response with Kinesis Data Streams
 * and Lambda"): an empty or null answer, or an empty or null `batchItemFailures`, is success;
 * an `itemIdentifier` that is empty, null or misnamed makes the whole batch a failure;
 * otherwise the lowest sequence number named is the checkpoint, and every record from it on
 * is retried. Without ReportBatchItemFailures any answer of a returned invocation is success.
 * A sequence number that is not in the batch is taken as a failure of the whole batch.
 */
export function readStreamAnswer(
  body: Buffer,
  sequenceNumbers: readonly string[],
  reportBatchItemFailures: boolean,
): StreamAnswer {
  if (!reportBatchItemFailures) return { kind: 'success' };
  const text = body.toString('utf8').trim();
  if (text === '' || text === 'null') return { kind: 'success' };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { kind: 'success' };
  }
  const failures =
    answer !== null && typeof answer === 'object'
      ? (answer as { batchItemFailures?: unknown }).batchItemFailures
      : undefined;
  if (failures === undefined || failures === null) return { kind: 'success' };
  if (!Array.isArray(failures)) {
    return { kind: 'failure', error: 'batchItemFailures is not a list' };
  }
  if (failures.length === 0) return { kind: 'success' };
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '') {
      return { kind: 'failure', error: 'a batchItemFailures entry has no itemIdentifier' };
    }
    failed.add(id);
  }
  const from = sequenceNumbers.findIndex((sequence) => failed.has(sequence));
  if (from === -1) {
    return { kind: 'failure', error: 'batchItemFailures names no record of the batch' };
  }
  const inBatch = new Set(sequenceNumbers);
  for (const id of failed) {
    if (!inBatch.has(id)) {
      return { kind: 'failure', error: `batchItemFailures names ${id}, not in the batch` };
    }
  }
  return { kind: 'partial', from, failed };
}
