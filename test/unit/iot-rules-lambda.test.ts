import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invokeFunction } from '../../local/iot-rules/lambda.ts';
import { freePort } from '../../local/services/process.ts';

/** A stand-in for serverless-offline's Lambda Invoke endpoint, answering as it does. */
describe('invoking a function through the Lambda Invoke API', () => {
  const received: Array<{ path: string; body: string; type: string | undefined }> = [];
  /** Requests to the `slow` function: held unanswered until the test ends. */
  const held: http.ServerResponse[] = [];
  let server: http.Server;
  let endpoint = '';

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = request.url ?? '';
        received.push({
          path,
          body,
          type: request.headers['x-amz-invocation-type'] as string | undefined,
        });
        if (path.includes('/functions/throws/')) {
          response.writeHead(200, { 'x-amz-function-error': 'Unhandled' });
          response.end(JSON.stringify({ errorType: 'Error', errorMessage: 'InfluxDB is down' }));
        } else if (path.includes('/functions/missing/')) {
          response.writeHead(404, { 'x-amzn-errortype': 'ResourceNotFoundException' });
          response.end(JSON.stringify({ Message: 'Function not found: missing' }));
        } else if (path.includes('/functions/slow/')) {
          held.push(response);
        } else {
          response.end(JSON.stringify({ readings: 1 }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  /** An empty event to `functionName`, with a 2 s timeout unless `options` say otherwise. */
  const invoke = (
    functionName: string,
    options: { lambdaEndpoint?: string; timeoutMs?: number } = {},
  ) =>
    invokeFunction({
      lambdaEndpoint: endpoint,
      functionName,
      payload: {},
      timeoutMs: 2_000,
      ...options,
    });

  afterAll(async () => {
    for (const response of held) response.end('{}');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts the event (a value, JSON text or JSON bytes) and succeeds on a plain 200', async () => {
    const events = [{ topic: 'devices/a/status' }, '[{"topic":"devices/b/status"}]'];
    expect(
      await invokeFunction({
        lambdaEndpoint: endpoint,
        functionName: 'ok',
        payload: events[0],
        timeoutMs: 2_000,
      }),
    ).toMatchObject({ ok: true });
    expect(
      await invokeFunction({
        lambdaEndpoint: `${endpoint}/`,
        functionName: 'ok',
        payload: Buffer.from(events[1] as string),
        payloadIsJson: true,
        timeoutMs: 2_000,
      }),
    ).toMatchObject({ ok: true });
    expect(received.slice(-2)).toEqual([
      {
        path: '/2015-03-31/functions/ok/invocations',
        body: JSON.stringify(events[0]),
        type: 'RequestResponse',
      },
      { path: '/2015-03-31/functions/ok/invocations', body: events[1], type: 'RequestResponse' },
    ]);
  });

  it("fails with the function's own error when the handler threw, and with the API's when refused", async () => {
    expect(await invoke('throws')).toEqual({
      ok: false,
      error: 'Unhandled: Error: InfluxDB is down',
    });
    expect(await invoke('missing')).toEqual({
      ok: false,
      error: 'ResourceNotFoundException: Function not found: missing',
    });
  });

  it('fails, without throwing, when the endpoint is down or does not answer in time', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    expect(await invoke('ok', { lambdaEndpoint: closed })).toEqual({
      ok: false,
      error: `cannot reach the Lambda endpoint ${closed}: ECONNREFUSED`,
    });
    // The stand-in never answers `slow`, so only the caller's own timeout can end this call.
    expect(await invoke('slow', { timeoutMs: 200 })).toEqual({
      ok: false,
      error: 'no answer from slow within 200 ms',
    });
    // The connection it gave up on is not reused: the next call is answered normally.
    expect(await invoke('ok')).toMatchObject({ ok: true });
  });

  it('stops waiting when the caller aborts', async () => {
    const stop = new AbortController();
    const heldBefore = held.length;
    const pending = invokeFunction({
      lambdaEndpoint: endpoint,
      functionName: 'slow',
      payload: {},
      timeoutMs: 5_000,
      signal: stop.signal,
    });
    // Abort once the request is in (the stand-in never answers it): only the abort ends it.
    await vi.waitFor(() => expect(held.length).toBe(heldBefore + 1));
    stop.abort();
    const outcome = await pending;
    expect(outcome.ok).toBe(false);
  });
});
