/**
 * A Lambda endpoint for the rules emulator's tests: a small HTTP server answering
 * serverless-offline's Invoke route the way serverless-offline@13 does (with the local
 * function host's expansion of the emulator's Kinesis batches), with what the test makes the
 * function do.
 */
import { createServer, type Server } from 'node:http';
import { expandKinesisBatch, isLocalKinesisBatch } from '../../local/iot-rules/kinesis-batch.mjs';

export interface Invocation {
  functionName: string;
  event: unknown;
}

/** Mimics serverless-offline@13's `POST /2015-03-31/functions/{name}/invocations`. */
export class SimulatedLambdaEndpoint {
  readonly calls: Invocation[] = [];
  readonly succeeded: Invocation[] = [];
  concurrent = 0;
  maxConcurrent = 0;
  /** What the function does; what it returns (if anything) is the invocation's answer. */
  behaviour: (call: Invocation) => Promise<unknown> | unknown = () => undefined;
  private server: Server | undefined;
  url = '';

  constructor(private readonly functionNames: string[]) {}

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', async () => {
        const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(request.url ?? '');
        const functionName = decodeURIComponent(match?.[1] ?? '');
        if (request.method !== 'POST' || !this.functionNames.includes(functionName)) {
          response.writeHead(404, {
            'content-type': 'application/json',
            'x-amzn-ErrorType': 'ResourceNotFoundException',
          });
          response.end(
            JSON.stringify({ Message: `Function not found: ${functionName}`, Type: 'User' }),
          );
          return;
        }
        const text = Buffer.concat(chunks).toString('utf8');
        const parsed: unknown = text ? JSON.parse(text) : {};
        // As the function host does (local/services/function-host-preload.mjs).
        const event = isLocalKinesisBatch(parsed) ? expandKinesisBatch(parsed) : parsed;
        const call = { functionName, event };
        this.calls.push(call);
        this.concurrent += 1;
        this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
        try {
          const answer = await this.behaviour(call);
          this.succeeded.push(call);
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(answer === undefined ? '{"ok":true}' : JSON.stringify(answer));
        } catch (error) {
          response.writeHead(200, {
            'content-type': 'application/json',
            'X-Amz-Function-Error': 'Unhandled',
          });
          response.end(
            JSON.stringify({
              errorMessage: (error as Error).message,
              errorType: 'Error',
              trace: [],
            }),
          );
        } finally {
          this.concurrent -= 1;
        }
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
