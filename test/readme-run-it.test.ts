import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAN_FEATURES } from '../shared/accounts/domain/plan-features.ts';
import { freePort, temporaryDataDir, waitUntil } from './support/servers.ts';

/**
 * The README's "Run it" section as a newcomer follows it: every command in its `sh` blocks,
 * read from README.md itself, run in order in one shell session (variables carry over)
 * against the stack its first block starts, and the dashboard that stack serves, opened in
 * headless Chromium with the demo account that `npm start` prints.
 *
 * What the test changes, and why: the stack runs on free ports in a temporary data folder
 * (so the README's 3000/1883/3080 URLs are rewritten to those ports, and LOCAL_DATA_DIR
 * names the folder where the README's commands find it "in the same folder"), and
 * `npm install` runs with --dry-run, because the suite runs in an installed checkout
 * (CI's own clean clone ran `npm ci` before it).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(native\)|\(<anonymous>\))$/m;

/** The shell commands of README.md's "Run it" section, continuation lines joined. */
function runItCommands(readme: string): string[] {
  const start = readme.indexOf('\n## Run it\n');
  if (start === -1) throw new Error('README.md has no "## Run it" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const commands: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let pending = '';
    for (const line of (block[1] as string).split('\n')) {
      if (!pending && (line.trim() === '' || line.trim().startsWith('#'))) continue;
      if (line.endsWith('\\')) {
        pending += `${line}\n`;
        continue;
      }
      commands.push(`${pending}${line}`.trim());
      pending = '';
    }
  }
  return commands;
}

/** Commands that run until Ctrl-C, and the output line that shows each is working. */
const RUNS_UNTIL_STOPPED: Array<{ command: RegExp; working: RegExp }> = [
  { command: /^npm start$/, working: /^READY / },
  { command: /^npm run device /, working: /"event":\s*"connected"/ },
];

interface Run {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

function spawnShell(script: string, env: NodeJS.ProcessEnv): Run {
  const child = spawn('bash', ['-c', script], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so Ctrl-C reaches all of it as it would in a terminal.
    detached: true,
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => output.push(line));
  }
  // As a shell reports it: 128 + the signal's number for a process a signal ended.
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ? 128 + constants.signals[signal] : code)),
  );
  return { child, output, exited };
}

async function interrupt(run: Run): Promise<number | null> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.exited;
  process.kill(-(run.child.pid as number), 'SIGINT');
  const timeout = setTimeout(() => process.kill(-(run.child.pid as number), 'SIGKILL'), 30_000);
  const code = await run.exited;
  clearTimeout(timeout);
  return code;
}

const tail = (lines: string[]) => lines.slice(-30).join('\n');

let data: Awaited<ReturnType<typeof temporaryDataDir>>;
let stateFile: string;
let stack: Run | undefined;
let readyAt = 0;
let urls: { api: string; mqtt: string; dashboard: string };
let environment: NodeJS.ProcessEnv;
const commands = runItCommands(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));

/** The README's default addresses, as the stack under test answers them. */
function localised(command: string): string {
  return command
    .replaceAll('http://127.0.0.1:3000', urls?.api ?? 'http://127.0.0.1:3000')
    .replaceAll('mqtt://127.0.0.1:1883', urls?.mqtt ?? 'mqtt://127.0.0.1:1883')
    .replaceAll('http://127.0.0.1:3080', urls?.dashboard ?? 'http://127.0.0.1:3080');
}

/**
 * Runs one README command in the session: the variables of the commands before it are set,
 * its own are kept for the next. Resolves once it exited or, for a command that runs until
 * stopped, once it shows it works.
 */
async function runCommand(command: string): Promise<Run & { working: boolean }> {
  const npmInstall = /^npm (install|i|ci)\b/.test(command);
  const script = `set -a; . '${stateFile}'; ${localised(command)}${npmInstall ? ' --dry-run --no-audit --no-fund' : ''}
status=$?; export -p > '${stateFile}'; exit $status`;
  const run = spawnShell(script, environment);
  const untilStopped = RUNS_UNTIL_STOPPED.find((entry) => entry.command.test(command));
  let working = false;
  await waitUntil(
    `'${command}' to ${untilStopped ? 'show it works' : 'finish'}`,
    async () => {
      working = untilStopped !== undefined && run.output.some((l) => untilStopped.working.test(l));
      return working || run.child.exitCode !== null || run.child.signalCode !== null;
    },
    { timeoutMs: 150_000, intervalMs: 100 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${tail(run.output)}`);
  });
  return { ...run, working };
}

function expectNoStackTrace(command: string, output: string[]): void {
  const trace = output.find((line) => STACK_TRACE.test(line));
  expect(trace, `'${command}' printed a stack trace:\n${tail(output)}`).toBeUndefined();
}

/** A plain shell next to the stack: no settings but the folder the stack keeps its data in. */
function plainShell(command: string): Promise<{ code: number | null; output: string }> {
  const run = spawnShell(command, {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOCAL_DATA_DIR: data.dir,
  });
  return run.exited.then((code) => ({ code, output: run.output.join('\n') }));
}

beforeAll(async () => {
  data = await temporaryDataDir('readme');
  stateFile = path.join(data.dir, 'shell-state.sh');
  await writeFile(stateFile, '');
  const ports = { api: await freePort(), mqtt: await freePort(), dashboard: await freePort() };
  environment = {
    ...process.env,
    API_PORT: String(ports.api),
    MQTT_PORT: String(ports.mqtt),
    DASHBOARD_PORT: String(ports.dashboard),
    LOCAL_DATA_DIR: data.dir,
    DATABASE_URL: '',
    INFLUX_URL: '',
    DEMO: '1',
  };
  // The first block starts the stack everything else runs against.
  const [first] = commands;
  expect(first, 'the first command of "Run it" starts the stack').toMatch(/npm start$/);
  for (const step of (first as string).split(' && ')) {
    const run = await runCommand(step);
    if (run.working) {
      stack = run;
      readyAt = Date.now();
      break;
    }
    expect(await run.exited, `'${step}':\n${tail(run.output)}`).toBe(0);
  }
  const ready = /^READY api=(\S+) mqtt=(\S+) dashboard=(\S+)$/.exec(
    stack?.output.find((line) => line.startsWith('READY ')) ?? '',
  );
  if (!ready) throw new Error(`no READY line:\n${tail(stack?.output ?? [])}`);
  urls = { api: ready[1] as string, mqtt: ready[2] as string, dashboard: ready[3] as string };
}, 240_000);

afterAll(async () => {
  if (stack) {
    const code = await interrupt(stack);
    expect([0, 128 + constants.signals.SIGINT], tail(stack.output)).toContain(code);
    expectNoStackTrace('npm start', stack.output);
  }
  await data?.remove();
}, 60_000);

describe('the dashboard that npm start serves, in headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('signs in with the demo account npm start printed and shows its devices online and charting', async () => {
    let signIn: RegExpExecArray | null = null;
    await waitUntil(
      'the demo sign-in line',
      async () => {
        for (const line of stack?.output ?? []) {
          signIn ??= /^\[demo\] sign in as (\S+) \/ (\S+) at (\S+) /.exec(line);
        }
        return signIn !== null;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${tail(stack?.output ?? [])}`);
    });
    const [, username, password, at] = signIn as unknown as string[];
    expect(at).toBe(urls.dashboard);

    await page.goto(urls.dashboard);
    await page.getByLabel('Username or email').fill(username as string);
    await page.getByLabel('Password').fill(password as string);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Devices', exact: true }).waitFor({ timeout: 15_000 });

    const demoDevices = page.locator('li[data-device-id^="demo-"]');
    await waitUntil(
      'the three demo devices to be online',
      async () => {
        const badges = await demoDevices.locator('.badge').allTextContents();
        return badges.length === 3 && badges.every((badge) => /online/i.test(badge));
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    console.log(`demo devices online in the dashboard ${Date.now() - readyAt} ms after READY`);

    await page.getByRole('link', { name: 'Compressor C-101' }).click();
    const chart = page.locator('[data-entity-id="temperature"] .chart');
    await waitUntil(
      'the compressor temperature chart to have points',
      async () =>
        Number(/(\d+) points/.exec((await chart.getAttribute('aria-label')) ?? '')?.[1] ?? 0) >= 2,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    console.log(`demo compressor charting ${Date.now() - readyAt} ms after READY`);
  }, 120_000);

  it('lists no plan feature the platform lacks as included, after an operator upgrade in a plain shell', async () => {
    const upgrade = await plainShell(`npm run admin -- set-plan "Demo Plant" industrial`);
    expect(upgrade.code, upgrade.output).toBe(0);
    expect(upgrade.output).toMatch(/Demo Plant\): \w+ -> industrial/);

    await page.getByRole('link', { name: 'Organisation' }).click();
    await page.getByRole('heading', { name: /^Plan: Industrial/ }).waitFor({ timeout: 15_000 });
    for (const feature of PLAN_FEATURES) {
      const row = page.locator(`[data-feature="${feature.key}"]`);
      await expect(row.locator('dt').textContent()).resolves.toBe(feature.label);
      const shown = (await row.locator('dd').textContent()) ?? '';
      if (feature.available) expect(shown).toBe('Included');
      else expect(shown).toMatch(/^Coming/);
    }
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

describe('the README "Run it" commands against that stack', () => {
  it('runs every one with exit status 0 and no stack trace', async () => {
    expect(commands.length).toBeGreaterThan(10);
    for (const command of commands.slice(1)) {
      const run = await runCommand(command);
      const code = run.working ? await interrupt(run) : await run.exited;
      // Ctrl-C is how the README says to stop a command that runs until stopped.
      const stoppedByCtrlC = run.working && code === 128 + constants.signals.SIGINT;
      expect(
        stoppedByCtrlC || code === 0,
        `'${command}' exited ${code}:\n${tail(run.output)}`,
      ).toBe(true);
      expectNoStackTrace(command, run.output);
    }
  }, 300_000);

  it('finds the stack from a plain shell, and says in one line when none runs', async () => {
    const listed = await plainShell('npm run admin -- list-tenants');
    expect(listed.code, listed.output).toBe(0);
    expect(listed.output).toContain('Acme Plant');
    const elsewhere = spawnShell(
      `npm run admin -- list-tenants; npm run admin -- set-plan "Acme Plant" professional`,
      {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LOCAL_DATA_DIR: path.join(data.dir, 'no-stack-here'),
      },
    );
    expect(await elsewhere.exited).not.toBe(0);
    const errors = elsewhere.output.filter((line) => /^admin:/.test(line));
    expect(errors, elsewhere.output.join('\n')).toHaveLength(2);
    for (const line of errors) expect(line).toMatch(/no local stack is running/);
    expectNoStackTrace('operator commands without a stack', elsewhere.output);
  }, 60_000);
});
