import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from './support/local-stack.ts';

/**
 * `npm run fleet` against the local stack: it finds the stack through its stack.json, signs
 * up a tenant, lifts its plan, registers and runs real virtual devices, and reports what
 * they sent and what the platform stored.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsxCli = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack();
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

function runFleet(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsxCli, 'local/fleet.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, LOCAL_DATA_DIR: stack.dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run fleet', () => {
  it('runs 5 virtual devices for a few seconds and reports sent and stored readings', async () => {
    const result = await runFleet([
      '--count',
      '5',
      '--duration-s',
      '8',
      '--interval-ms',
      '500',
      '--json',
    ]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1) as string);
    expect(summary).toMatchObject({
      requested: 5,
      registered: 5,
      connected: 5,
      dropped: 0,
      exited_early: 0,
      interrupted: false,
    });
    expect(summary.sent).toBeGreaterThan(0);
    // Every acknowledged reading is stored once. Readings still buffered at the stop may have
    // been published already (their PUBACK not yet back), so they may be stored too.
    expect(summary.stored).toBeGreaterThanOrEqual(summary.sent);
    expect(summary.stored).toBeLessThanOrEqual(summary.sent + summary.buffered_at_stop);
    expect(result.stdout).toMatch(/registered\s+5 in [\d.]+ s/);
    expect(result.stdout).toMatch(/connected\s+5\/5/);
    expect(result.stderr).toContain('plan free -> industrial');

    // The tenant it made is real: its devices are listed with the API.
    const login = await stack.request('POST', '/api/auth/login', {
      username: summary.tenant.username,
      password: /sign in as \S+ \/ (\S+)/.exec(result.stderr)?.[1],
    });
    expect(login.status).toBe(200);
    const listed = await stack.request('GET', '/api/devices', undefined, login.body.token);
    expect(listed.body.devices).toHaveLength(5);
  }, 120_000);

  it('refuses a bad count with a usage message', async () => {
    const result = await runFleet(['--count', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--count expects a whole number');
  });
});
