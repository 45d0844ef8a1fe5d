/**
 * The `npm run dlq` CLI as an operator runs it (a separate process), against a dead-letter
 * store in a temporary LOCAL_DATA_DIR and a simulated Lambda endpoint standing in for the
 * stack's serverless-offline.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeadLetterStore, type NewDeadLetter } from '../local/iot-rules/dead-letter-store.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');

async function dlq(dataDir: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'local/dead-letters.ts'), ...args],
      { cwd: repoRoot, env: { ...process.env, LOCAL_DATA_DIR: dataDir } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

function record(overrides: Partial<NewDeadLetter>): NewDeadLetter {
  return {
    rule: 'ingest#1',
    sql: "SELECT * FROM 'devices/+/telemetry'",
    function: 'ingest',
    functionName: 'easysmart-local-ingest',
    batched: false,
    topic: 'devices/d1/telemetry',
    payloadBase64: Buffer.from('{"n":1}').toString('base64'),
    event: { n: 1 },
    error: 'Unhandled: Error: InfluxDB is down',
    attempts: 12,
    receivedAt: new Date().toISOString(),
    ...overrides,
  };
}

let dataDir: string;
let store: DeadLetterStore;
let server: Server | undefined;
const received: Array<{ functionName: string; event: unknown }> = [];
let failing = false;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'easysmart-dlq-'));
  store = new DeadLetterStore(path.join(dataDir, 'dead-letters'));
  received.length = 0;
  failing = false;
});
afterEach(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  }
  await rm(dataDir, { recursive: true, force: true });
});

/** Mimics serverless-offline@13's Invoke route and writes the stack.json the stack would. */
async function runningStack(): Promise<void> {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const name = decodeURIComponent(
        /functions\/([^/]+)\/invocations/.exec(request.url ?? '')?.[1] ?? '',
      );
      received.push({
        functionName: name,
        event: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      if (failing) {
        response.writeHead(200, { 'X-Amz-Function-Error': 'Unhandled' });
        response.end(JSON.stringify({ errorMessage: 'still down', errorType: 'Error', trace: [] }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('null');
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await writeFile(
    path.join(dataDir, 'stack.json'),
    JSON.stringify({ pid: process.pid, lambdaEndpoint: `http://127.0.0.1:${port}` }),
  );
}

describe('npm run dlq (simulated Lambda endpoint)', () => {
  it('lists dead letters as a table and as JSON', async () => {
    const [first, second] = await store.append([
      record({}),
      record({ topic: 'devices/d2/telemetry', error: 'x'.repeat(200) }),
    ]);
    const table = await dlq(dataDir, 'list');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('ID');
    expect(table.stdout).toContain(`${first?.id}`);
    expect(table.stdout).toContain('devices/d2/telemetry');
    expect(table.stdout).toContain('2 dead letters');
    expect(table.stdout).not.toContain('x'.repeat(100));
    const json = await dlq(dataDir, 'list', '--json');
    expect(JSON.parse(json.stdout)).toEqual([first, second]);
  });

  it('says so when there are none', async () => {
    const result = await dlq(dataDir, 'list');
    expect(result).toMatchObject({ code: 0, stdout: 'no dead letters\n' });
  });

  it('replays chosen records with the stored rule output and removes them on success', async () => {
    await runningStack();
    const [single, batched, untouched] = await store.append([
      record({ event: { n: 1 } }),
      record({
        event: { n: 2 },
        batched: true,
        function: 'ingest',
        functionName: 'easysmart-local-batch',
      }),
      record({ event: { n: 3 } }),
    ]);
    const result = await dlq(dataDir, 'replay', single?.id ?? '', batched?.id ?? '');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('replayed 2 of 2');
    // A batched function gets its usual array, of one record.
    expect(received).toEqual([
      { functionName: 'easysmart-local-ingest', event: { n: 1 } },
      { functionName: 'easysmart-local-batch', event: [{ n: 2 }] },
    ]);
    expect((await store.list()).map((r) => r.id)).toEqual([untouched?.id]);
  });

  it('keeps a record whose function fails again and exits non-zero', async () => {
    await runningStack();
    failing = true;
    const [kept] = await store.append([record({})]);
    const result = await dlq(dataDir, 'replay', '--all');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${kept?.id}: ingest failed again, kept: Unhandled: Error: still down`,
    );
    expect(await store.list()).toEqual([kept]);
  });

  it('refuses to replay when the stack is not running', async () => {
    await store.append([record({})]);
    const absent = await dlq(dataDir, 'replay', '--all');
    expect(absent.code).toBe(1);
    expect(absent.stderr).toMatch(/^dlq: no local stack is running \(no .*stack\.json\)[^\n]*\n$/);
    // A stack.json left by a stack that died is not a running stack either.
    await writeFile(
      path.join(dataDir, 'stack.json'),
      JSON.stringify({ pid: 2 ** 22 + 12345, lambdaEndpoint: 'http://127.0.0.1:1' }),
    );
    const stale = await dlq(dataDir, 'replay', '--all');
    expect(stale.stderr).toMatch(/which has exited/);
    expect(await store.list()).toHaveLength(1);
  });

  it('purges chosen records or all of them', async () => {
    const [a, b, c] = await store.append([record({}), record({}), record({})]);
    const one = await dlq(dataDir, 'purge', b?.id ?? '');
    expect(one).toMatchObject({ code: 0, stdout: 'purged 1 dead letter\n' });
    expect((await store.list()).map((r) => r.id)).toEqual([a?.id, c?.id]);
    const missing = await dlq(dataDir, 'purge', 'no-such-id');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no-such-id: no such dead letter');
    const all = await dlq(dataDir, 'purge', '--all');
    expect(all.stdout).toBe('purged 2 dead letters\n');
    expect(await store.list()).toEqual([]);
  });

  it('explains its usage', async () => {
    expect((await dlq(dataDir, 'replay')).stderr).toContain(
      'name the records to act on by id, or pass --all',
    );
    expect((await dlq(dataDir, 'replay', 'x', '--all')).code).toBe(2);
    expect((await dlq(dataDir, 'frobnicate')).stderr).toContain("unknown command 'frobnicate'");
    expect((await dlq(dataDir)).code).toBe(2);
  });
});

describe('dead-letter store', () => {
  it('keeps appends made while records are being removed', async () => {
    const first = await store.append([record({})]);
    const appends = Array.from({ length: 20 }, (_, n) => store.append([record({ event: { n } })]));
    const removal = store.remove(first.map((r) => r.id));
    await Promise.all([...appends, removal]);
    const events = (await store.list()).map((r) => (r.event as { n: number }).n);
    expect(events.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });
});
