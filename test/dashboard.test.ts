import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import pg from 'pg';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changePlan, setPlan } from '../infra/admin.ts';
import { readRunningStack } from '../local/stack-file.ts';
import { loadTfModel, minimumTrainingPoints, trainModel } from '../shared/ml/domain/training.ts';
import { InfluxClient } from '../shared/timeseries/adapters/influx-client.ts';
import { tierMoves } from '../shared/timeseries/composition.ts';
import { startCommand } from './support/local-stack.ts';
import { layersUpload, motorMinutes, recordActiveModel } from './support/models.ts';
import { freePort, temporaryDataDir, waitUntil } from './support/servers.ts';

/**
 * The dashboard in a real headless Chromium against the whole local stack (`local/start.ts`)
 * and the virtual device from `firmware/`: what a person does on a first day, end to end.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The README's screenshots are refreshed on request (`npm run screenshots`); an ordinary run
// keeps its own in a temporary folder so `npm test` leaves the work tree as it was.
const screenshots = process.env.UPDATE_SCREENSHOTS
  ? path.join(repoRoot, 'docs', 'screenshots')
  : path.join(tmpdir(), 'easysmart-dashboard-screenshots');

interface Ready {
  api: string;
  mqtt: string;
  dashboard: string;
}

interface Spawned {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so the whole tree can be stopped like a terminal job.
    detached: true,
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => output.push(line));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output, exited };
}

async function stop(spawned: Spawned | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!spawned?.child.pid || spawned.child.exitCode !== null) return;
  try {
    process.kill(-spawned.child.pid, signal);
  } catch {
    return;
  }
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000));
  if ((await Promise.race([spawned.exited, timeout])) === 'timeout') {
    process.kill(-spawned.child.pid, 'SIGKILL');
  }
}

const tail = (lines: string[]) => lines.slice(-40).join('\n');

let data: Awaited<ReturnType<typeof temporaryDataDir>> | undefined;
let stack: Spawned | undefined;
let device: Spawned | undefined;
let ready: Ready;
let browser: Browser;
let ownerContext: BrowserContext;
let otherContext: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

const owner = {
  tenant: 'Dashboard Acme',
  username: 'dash-owner',
  email: 'owner@dashboard.example',
  password: 'correct horse battery staple',
};
const deviceId = `esp32-dash-${Date.now().toString(36)}`;
const credential = { username: '', password: '', broker: '' };
let devicePk = 0;

async function startStack(): Promise<Ready> {
  const ports = { api: await freePort(), mqtt: await freePort(), dashboard: await freePort() };
  data = await temporaryDataDir('dashboard');
  stack = spawnLogged(process.execPath, startCommand(), {
    API_PORT: String(ports.api),
    MQTT_PORT: String(ports.mqtt),
    DASHBOARD_PORT: String(ports.dashboard),
    LOCAL_DATA_DIR: data.dir,
    DEMO: '0',
    DATABASE_URL: '',
    INFLUX_URL: '',
  });
  const running = stack;
  let found: Ready | undefined;
  await waitUntil(
    'the READY line of local/start.ts',
    async () => {
      for (const line of running.output) {
        const match = /^READY api=(\S+) mqtt=(\S+) dashboard=(\S+)$/.exec(line);
        if (match)
          found = {
            api: match[1] as string,
            mqtt: match[2] as string,
            dashboard: match[3] as string,
          };
      }
      return found !== undefined;
    },
    {
      timeoutMs: 150_000,
      intervalMs: 250,
      abort: () =>
        running.child.exitCode !== null
          ? `the stack exited with ${running.child.exitCode}:\n${tail(running.output)}`
          : undefined,
    },
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- stack output ---\n${tail(running.output)}`);
  });
  return found as Ready;
}

async function newPage(context: BrowserContext, width = 1280): Promise<Page> {
  const created = await context.newPage();
  await created.setViewportSize({ width, height: 900 });
  created.on('pageerror', (error) => pageErrors.push(error.message));
  return created;
}

async function signUp(target: Page, account: typeof owner): Promise<void> {
  await target.goto(`${ready.dashboard}/#/signup`);
  await target.getByLabel('Organisation name').fill(account.tenant);
  await target.getByLabel('Username').fill(account.username);
  await target.getByLabel('Email').fill(account.email);
  await target.getByLabel('Password').fill(account.password);
  await target.getByRole('button', { name: 'Create organisation' }).click();
  await target.getByRole('heading', { name: 'Devices', exact: true }).waitFor({ timeout: 15_000 });
}

/** The text of the value rows on a device card, e.g. "Temperature=21.3 °C|Pressure=...". */
async function cardValues(target: Page): Promise<string> {
  return target
    .locator(`li[data-device-id="${deviceId}"] .value-row`)
    .evaluateAll((rows) =>
      rows
        .map(
          (row) =>
            `${row.querySelector('dt')?.textContent}=${row.querySelector('dd')?.textContent}`,
        )
        .join('|'),
    );
}

beforeAll(async () => {
  // The stack builds the dashboard when a source is newer than its build, so the test sees
  // the dashboard as it is in the tree.
  await mkdir(screenshots, { recursive: true });
  ready = await startStack();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  ownerContext = await browser.newContext();
  otherContext = await browser.newContext();
  page = await newPage(ownerContext);
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await stop(device, 'SIGTERM');
  await stop(stack, 'SIGINT');
  await data?.remove();
}, 60_000);

describe('the dashboard against the local stack', () => {
  it('is served with a config.json naming the API and the WebSocket API', async () => {
    const index = await fetch(`${ready.dashboard}/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<div id="app">');
    const config = (await (await fetch(`${ready.dashboard}/config.json`)).json()) as Record<
      string,
      unknown
    >;
    expect(config.apiUrl).toBe(ready.api);
    expect(config.wsUrl, 'config.json must carry wsUrl for live updates').toMatch(/^wss?:\/\//);
  });

  it('signs up a new organisation and keeps the token in sessionStorage only', async () => {
    await signUp(page, owner);
    await page.getByRole('heading', { name: 'No devices yet' }).waitFor({ timeout: 10_000 });
    const storage = await page.evaluate(() => ({
      session: Object.keys(sessionStorage),
      local: Object.keys(localStorage),
    }));
    expect(storage.session).toContain('easysmart.session');
    expect(storage.local).toEqual([]);
  }, 30_000);

  it('registers a device and shows its credential once, with firmware snippets', async () => {
    await page.getByRole('button', { name: 'Register device' }).first().click();
    await page.getByLabel('Device ID').fill(deviceId);
    await page.getByLabel('Name', { exact: true }).fill('Boiler room');
    await page.getByLabel('Type').fill('esp32');
    await page.getByLabel(/^Location/).fill('Plant 2, line A');
    await page.getByRole('button', { name: 'Register device' }).click();
    await page.locator('#cred-password').waitFor({ timeout: 15_000 });
    credential.username = (await page.locator('#cred-username').textContent()) ?? '';
    credential.password = (await page.locator('#cred-password').textContent()) ?? '';
    credential.broker = (await page.locator('#cred-broker').textContent()) ?? '';
    expect(credential.username).toBe(deviceId);
    expect(credential.password.length).toBeGreaterThanOrEqual(16);
    expect(credential.broker).toBe(ready.mqtt);
    const serial = await page.locator('#snippet-serial').textContent();
    expect(serial).toContain(`set device_id ${deviceId}`);
    expect(serial).toContain(`set mqtt_url ${ready.mqtt}`);
    expect(serial).toContain(`set mqtt_pass ${credential.password}`);
    const cli = await page.locator('#snippet-cli').textContent();
    expect(cli).toContain(`npm run device -- --device-id ${deviceId} --username ${deviceId}`);
    const href = await page.getByRole('link', { name: 'Open device' }).getAttribute('href');
    devicePk = Number(/#\/devices\/(\d+)$/.exec(href ?? '')?.[1]);
    expect(devicePk).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'I have saved it' }).click();
    await expect(page.locator('#cred-password').count()).resolves.toBe(0);
    const card = page.locator(`li[data-device-id="${deviceId}"]`);
    await expect(card.textContent()).resolves.toMatch(/Offline/i);
  }, 30_000);

  it('shows the virtual device come online with live values', async () => {
    device = spawnLogged(
      process.execPath,
      [
        'firmware/host/run-virtual-device.mjs',
        '--device-id',
        deviceId,
        '--username',
        credential.username,
        '--password',
        credential.password,
        '--mqtt',
        credential.broker,
        '--interval-ms',
        '500',
        // Batched as by default, with an age short enough to watch the values move.
        '--batch-age-ms',
        '1000',
      ],
      {},
    );
    const running = device;
    const card = page.locator(`li[data-device-id="${deviceId}"]`);
    await waitUntil(
      'the device card to show Online and a temperature',
      async () => {
        const badge = await card.locator('.badge').textContent();
        const temperature = await card
          .locator('[data-entity-id="temperature"] dd')
          .textContent({ timeout: 500 })
          .catch(() => null);
        return /online/i.test(badge ?? '') && /\d/.test(temperature ?? '');
      },
      {
        timeoutMs: 60_000,
        intervalMs: 500,
        abort: () =>
          running.child.exitCode !== null
            ? `the virtual device exited with ${running.child.exitCode}:\n${tail(running.output)}`
            : undefined,
      },
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}\n--- virtual device ---\n${tail(running.output)}\n--- stack ---\n${tail(stack?.output ?? [])}`,
      );
    });
    for (const entity of ['relay_main', 'temperature', 'pressure']) {
      await expect(card.locator(`[data-entity-id="${entity}"]`).count()).resolves.toBe(1);
    }

    // Live: the values move without a reload, faster than the 15 s polling fallback.
    const before = await cardValues(page);
    await waitUntil(
      'the card values to change without a reload',
      async () => (await cardValues(page)) !== before,
      {
        timeoutMs: 10_000,
        intervalMs: 250,
      },
    );
    await expect(card.textContent()).resolves.toMatch(/Last seen (just now|\d+ s ago)/);
    await page.screenshot({ path: path.join(screenshots, 'devices.png'), fullPage: true });
  }, 90_000);

  it('receives them through the WebSocket API', async () => {
    await page.locator('.live-open').waitFor({ timeout: 10_000 });
  }, 15_000);

  it('opens the device page, toggles the relay and sees the command confirmed', async () => {
    await page.getByRole('link', { name: 'Boiler room' }).click();
    const relay = page.locator('[data-entity-id="relay_main"]');
    const toggle = relay.getByRole('switch', { name: 'Main relay' });
    await toggle.waitFor({ timeout: 15_000 });
    for (const kind of ['Controls', 'Sensors']) {
      await expect(
        page.getByRole('heading', { name: kind, exact: true }).isVisible(),
      ).resolves.toBe(true);
    }
    await expect(
      page.locator('[data-entity-id="setpoint"] input[type="number"]').count(),
    ).resolves.toBe(1);
    await expect(page.locator('[data-entity-id="label"] input').count()).resolves.toBe(1);

    const wasOn = (await toggle.getAttribute('aria-checked')) === 'true';
    await toggle.click();
    const status = relay.locator('[data-command-status]');
    await waitUntil(
      'the relay command to be sent',
      async () =>
        ['sent', 'confirmed'].includes((await status.getAttribute('data-command-status')) ?? ''),
      { timeoutMs: 10_000 },
    );
    await waitUntil(
      'the relay command to be confirmed',
      async () => {
        const phase = await status.getAttribute('data-command-status');
        if (phase && ['timed_out', 'failed', 'error'].includes(phase)) {
          throw new Error(`command ended as ${phase}: ${await status.textContent()}`);
        }
        return phase === 'confirmed';
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- virtual device ---\n${tail(device?.output ?? [])}`);
    });
    await expect(toggle.getAttribute('aria-checked')).resolves.toBe(String(!wasOn));
  }, 75_000);

  it('draws live charts and switches the history to 7 d, showing the source', async () => {
    const chart = page.locator('[data-entity-id="temperature"] .chart canvas');
    await chart.waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Show the last 7 d' }).click();
    await expect(
      page.getByRole('button', { name: 'Show the last 7 d' }).getAttribute('aria-pressed'),
    ).resolves.toBe('true');
    const source = page.locator('.source-tag');
    await waitUntil(
      'the history source to be shown',
      async () => /source: (raw|5m|1h)/.test((await source.textContent()) ?? ''),
      {
        timeoutMs: 15_000,
        intervalMs: 250,
      },
    ).catch(async (error: Error) => {
      const problem = await page.locator('.notice-error').allTextContents();
      throw new Error(`${error.message}; page says: ${problem.join(' | ') || '(nothing)'}`);
    });
    const label = await page
      .locator('[data-entity-id="temperature"] .chart')
      .getAttribute('aria-label');
    expect(label).toMatch(/Temperature: \d+ points/);

    // The free plan has no anomaly detection: the API refuses with plan_required.
    await page
      .getByText('Anomaly detection is not in your plan')
      .waitFor({ timeout: 30_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}\n(the anomalies route should answer 403 plan_required)`);
      });

    // Back to the live hour for the screenshot: a device a minute old has one 7-day bucket.
    await page.getByRole('button', { name: 'Show the last 1 h' }).click();
    await waitUntil(
      'the live hour to have a few points',
      async () => {
        const text = await page
          .locator('[data-entity-id="temperature"] .chart')
          .getAttribute('aria-label');
        return Number(/(\d+) points/.exec(text ?? '')?.[1] ?? 0) >= 3;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await page.screenshot({ path: path.join(screenshots, 'device.png'), fullPage: true });
  }, 120_000);

  it('makes, edits and deletes an alarm rule on the device page; its alarm is shaded on the chart, counted in the header and acknowledged on the Alarms page', async () => {
    const rules = page.locator('section.alarm-rules');
    const editor = page.locator('form.rule-editor');
    await rules.getByRole('button', { name: 'New rule' }).click();
    await editor.getByLabel('Rule name').fill('Boiler warm');
    await editor.getByLabel('Severity').selectOption('critical');
    await editor.getByLabel('Entity', { exact: true }).selectOption('temperature');
    await editor.getByLabel('Alarm when the value is').selectOption('>');
    // The virtual boiler is always above 0 °C: its next reading raises the alarm.
    await editor.getByLabel('Limit', { exact: true }).fill('0');
    await editor.getByRole('button', { name: 'Create rule' }).click();
    const row = rules.locator('tr', { hasText: 'Boiler warm' });
    await row.waitFor({ timeout: 10_000 });
    await expect(row.textContent()).resolves.toContain('temperature > 0');

    const chart = page.locator('[data-entity-id="temperature"] .chart');
    await waitUntil(
      'the temperature chart to shade the alarm and draw its limit',
      async () => {
        const label = (await chart.getAttribute('aria-label')) ?? '';
        return /1 alarm period shaded/.test(label) && /alarm limits at 0/.test(label);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await waitUntil(
      'the header badge to count the active alarm',
      async () =>
        (await page
          .locator('.badge-alarm')
          .textContent()
          .catch(() => null)) === '1',
      { timeoutMs: 20_000, intervalMs: 250 },
    );

    // Edited: the list shows the change.
    await rules.getByRole('button', { name: 'Edit Boiler warm' }).click();
    await editor.getByLabel('Rule name').fill('Boiler too warm');
    await editor.getByLabel('Hysteresis').fill('2');
    await editor.getByRole('button', { name: 'Save rule' }).click();
    await rules.locator('tr', { hasText: 'Boiler too warm' }).waitFor({ timeout: 10_000 });
    await expect(
      rules.locator('tr', { hasText: 'Boiler too warm' }).textContent(),
    ).resolves.toContain('clears 2 inside');

    // A kind the free plan does not have is refused with the API's reason, nothing stored.
    await rules.getByRole('button', { name: 'New rule' }).click();
    await editor.getByLabel('Rule name').fill('Wearing out');
    await editor.getByLabel('Condition').selectOption('rul_below');
    await editor.getByLabel('Remaining life below (cycles or hours)').fill('10');
    await editor.getByRole('button', { name: 'Create rule' }).click();
    await editor.getByText(/need a plan with predictive maintenance/).waitFor({ timeout: 10_000 });
    await editor.getByRole('button', { name: 'Cancel' }).click();
    await expect(rules.locator('tbody tr').count()).resolves.toBe(1);

    // The device's readings of the shown range, downloaded as CSV.
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 20_000 }),
      page.getByRole('button', { name: /^Download CSV \(last 1 h\)/ }).click(),
    ]);
    const csv = await readFile((await download.path()) as string, 'utf8');
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('time,device_id,entity_id,value');
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.some((line) => line.includes(`,${deviceId},temperature,`))).toBe(true);

    await page.goto(`${ready.dashboard}/#/alarms`);
    const alarmRow = page.locator('table.alarms tr', { hasText: /Boiler (too )?warm/ });
    await alarmRow.waitFor({ timeout: 15_000 });
    await expect(alarmRow.textContent()).resolves.toMatch(/critical/);
    await alarmRow.getByRole('button', { name: 'Acknowledge' }).click();
    await waitUntil(
      'the alarm to read acknowledged, by whom',
      async () => /acknowledged\s*by /.test((await alarmRow.textContent()) ?? ''),
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    // Acknowledged is no longer active: the header badge goes at once.
    await page.locator('.badge-alarm').waitFor({ state: 'detached', timeout: 10_000 });
    await page.screenshot({ path: path.join(screenshots, 'alarms.png'), fullPage: true });

    // Every device's last day as one job, then its link.
    await page.goto(`${ready.dashboard}/#/devices`);
    await page.getByRole('button', { name: 'Export all devices (CSV, 24 h)' }).click();
    const link = page.locator('a[data-export-link]');
    await link.waitFor({ timeout: 30_000 });
    const all = await (await fetch((await link.getAttribute('href')) as string)).text();
    expect(all.split('\n')[0]).toBe('time,device_id,entity_id,value');
    expect(all).toContain(`,${deviceId},temperature,`);

    await page.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    page.once('dialog', (dialog) => void dialog.accept());
    await rules.getByRole('button', { name: 'Delete Boiler too warm' }).click();
    await rules.getByText('No rule watches this device.').waitFor({ timeout: 10_000 });
  }, 150_000);

  it('lists the models page; a plan without custom models sees why it cannot train or upload', async () => {
    await page.getByRole('link', { name: 'Models' }).click();
    await page.getByRole('heading', { name: 'Models', level: 1 }).waitFor({ timeout: 15_000 });
    await page.getByText('Custom models are not in your plan').waitFor({ timeout: 15_000 });
    await page.getByText('No models yet').waitFor({ timeout: 15_000 });
    expect(await page.locator('form.train-model, form.upload-model').count()).toBe(0);
    await page.getByRole('link', { name: 'Organisation' }).click();
    const row = page.locator('[data-feature="custom_models"]');
    await row.waitFor({ timeout: 15_000 });
    // The feature exists now: the free plan shows it as not included, not as coming.
    expect(await row.locator('dd').textContent()).not.toMatch(/Coming/);
    await expect(
      page.locator('[data-feature="predictive_maintenance"] dd').textContent(),
    ).resolves.toBe('Not included');
    // So does edge deployment.
    await expect(page.locator('[data-feature="edge_deployment"] dd').textContent()).resolves.toBe(
      'Not included',
    );
  }, 45_000);

  it('shows operating modes only on a plan that has them; an owner discovers and names them, the charts show them', async () => {
    await page.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    const modes = page.locator('section.patterns-card, section[aria-labelledby="patterns-title"]');
    await modes.getByText('Pattern recognition is not in your plan').waitFor({ timeout: 15_000 });
    // A discovery needs at least 4 whole windows of every sensor: at two readings a second
    // (a step of 1 s, windows of 8 s) about 48 s of history. Wait for a minute of it before
    // the plan changes: readings written after a change are read from the new storage tier
    // only once the scheduled tier move has begun (up to 5 minutes later).
    let seen = 'nothing yet';
    await waitUntil(
      'a minute of history from the virtual device',
      async () => {
        const span = await page.evaluate(
          async ({ api, id }) => {
            const session = JSON.parse(sessionStorage.getItem('easysmart.session') ?? '{}');
            const from = new Date(Date.now() - 600_000).toISOString();
            const response = await fetch(
              `${api}/api/devices/${id}/telemetry?entity_id=vibration&from=${from}`,
              { headers: { authorization: `Bearer ${session.token}` } },
            );
            const points: Array<{ time: string }> =
              (await response.json()).series?.[0]?.points ?? [];
            return {
              status: response.status,
              points: points.length,
              first: points[0]?.time ?? null,
              last: points.at(-1)?.time ?? null,
            };
          },
          { api: ready.api, id: devicePk },
        );
        seen = JSON.stringify(span);
        return (
          span.first !== null &&
          span.last !== null &&
          Date.parse(span.last) - Date.parse(span.first) >= 60_000
        );
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last answer: ${seen}`);
    });
    // The operator moves the organisation to Industrial (npm run admin -- set-plan).
    const admin = new pg.Client({
      connectionString: (await readRunningStack((data as NonNullable<typeof data>).dir))
        .databaseAdminUrl,
    });
    await admin.connect();
    try {
      await setPlan(admin, owner.tenant, 'industrial');
    } finally {
      await admin.end();
    }
    await page.reload();
    const card = page.locator('section.patterns-card');
    await card.locator('[data-no-patterns]').waitFor({ timeout: 15_000 });
    const answer = page.waitForResponse(
      (response) =>
        response.request().method() === 'POST' && response.url().endsWith('/patterns/discover'),
    );
    await card.getByRole('button', { name: 'Discover modes' }).click();
    // As on AWS the job runs in its own asynchronous invocation, not in the request: queued.
    expect((await (await answer).json()).job).toMatchObject({ status: 'pending', attempts: 0 });
    await card.locator('[data-job-done], [data-job-failed]').first().waitFor({ timeout: 30_000 });
    const failed = card.locator('[data-job-failed]');
    if ((await failed.count()) > 0)
      throw new Error(`discovery failed: ${await failed.textContent()}`);
    // The job's outcome shows first; the card then loads the modes it found.
    await card.locator('tbody tr').first().waitFor({ timeout: 15_000 });
    await expect(card.locator('[data-current-pattern]').count()).resolves.toBe(1);

    await card.getByLabel('Name of Pattern 1').fill('warming');
    await card.getByRole('button', { name: 'Save' }).first().click();
    await waitUntil(
      'the name to be kept',
      async () => (await card.getByLabel('Name of warming').count()) === 1,
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    const chart = page.locator('[data-entity-id="temperature"] .chart');
    await waitUntil(
      'the temperature chart to show the device in its modes',
      async () =>
        /operating modes shown: .*(warming|Pattern|Novel)/.test(
          (await chart.getAttribute('aria-label')) ?? '',
        ),
      { timeoutMs: 40_000, intervalMs: 500 },
    );
    await page.screenshot({ path: path.join(screenshots, 'patterns.png'), fullPage: true });
  }, 210_000);

  it('on a plan with predictive maintenance: the Organisation page includes it, the device page shows the health card, and a limit set there is drawn on its chart', async () => {
    // The tenant is on Industrial since the previous step.
    await page.getByRole('link', { name: 'Organisation' }).click();
    const feature = page.locator('[data-feature="predictive_maintenance"] dd');
    await waitUntil(
      'the Organisation page to show predictive maintenance as included',
      async () => (await feature.textContent().catch(() => null)) === 'Included',
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    await page.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    const card = page.locator('section.health-card');
    await card
      .locator('[data-rul]')
      .getByText(/No prediction/)
      .waitFor({ timeout: 15_000 });
    const form = card.getByRole('form', { name: 'Set a limit' });
    await form.getByLabel(/^Limit on/).selectOption('temperature');
    await form.getByLabel('at most').fill('500');
    await form.getByRole('button', { name: 'Set limit' }).click();
    const limit = card.locator('table.thresholds tr[data-entity-id="temperature"]');
    await limit.waitFor({ timeout: 15_000 });
    await expect(limit.textContent()).resolves.toMatch(/≤ 500/);
    // Minutes of history are too few for a trend: the limit is drawn, no crossing forecast.
    const chart = page.locator('[data-entity-id="temperature"] .chart');
    await waitUntil(
      'the temperature chart to draw the limit',
      async () =>
        /limit at most 500\b.*, no crossing forecast/.test(
          (await chart.getAttribute('aria-label')) ?? '',
        ),
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    // Neither side removes it.
    await form.getByRole('button', { name: 'Remove limit' }).click();
    await limit.waitFor({ state: 'detached', timeout: 15_000 });
  }, 60_000);

  it('fits a 375 px phone without sideways scrolling', async () => {
    // The same tab: sessionStorage, and so the session, belongs to one tab only.
    await page.setViewportSize({ width: 375, height: 800 });
    for (const route of ['#/devices', `#/devices/${devicePk}`, '#/tenant', '#/models']) {
      await page.goto(`${ready.dashboard}/${route}`);
      await page.locator('#main h1').waitFor({ timeout: 15_000 });
      // Measured once the page has its data: nothing says it is still loading.
      await page.waitForFunction(
        () =>
          !document.querySelector('.loading') &&
          !document.querySelector('#main')?.textContent?.includes('Loading'),
        undefined,
        { timeout: 15_000 },
      );
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width, `${route} is ${width} px wide`).toBeLessThanOrEqual(375);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 45_000);

  it('trains, uploads and rolls back models on the Models page of an Industrial organisation', async () => {
    // The operator moves the organisation to Industrial as `npm run admin -- set-plan` does,
    // history included (readings dated before the move are read from the old tier until it ends).
    const running = await readRunningStack((data as NonNullable<typeof data>).dir);
    const admin = new pg.Pool({ connectionString: running.databaseAdminUrl, max: 2 });
    const influx = new InfluxClient({ url: running.influxUrl, database: 'iot_data' });
    const operator = await admin.connect();
    try {
      await changePlan(
        operator,
        tierMoves(admin, influx),
        owner.tenant,
        'industrial',
        undefined,
        () => {},
      );
    } finally {
      operator.release();
      await admin.end();
    }
    // A motor that reported every minute for a day: its winding temperature follows its current.
    const token = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('easysmart.session') ?? '{}').token as string,
    );
    const registered = await fetch(`${ready.api}/api/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: `${deviceId}-motor`, name: 'Motor', type: 'motor' }),
    });
    expect(registered.status).toBe(201);
    const motor = (await registered.json()) as {
      device: { id: number };
      credentials: { client_id: string; username: string; password: string };
    };
    const minutes = motorMinutes(1500, Date.now() - 5 * 60_000);
    const client = await mqtt.connectAsync(ready.mqtt, {
      clientId: motor.credentials.client_id,
      username: motor.credentials.username,
      password: motor.credentials.password,
    });
    try {
      const topic = `devices/${motor.credentials.client_id}`;
      await client.publishAsync(
        `${topic}/discovery`,
        JSON.stringify({
          entities: [
            {
              entity_id: 'temperature',
              entity_type: 'sensor',
              name: 'Winding',
              unit: '°C',
              measuring_range: { min: 0, max: 180 },
            },
            { entity_id: 'current', entity_type: 'sensor', name: 'Current', unit: 'A' },
          ],
        }),
        { qos: 1, retain: true },
      );
      // Readings of an entity the platform has not yet heard announced are refused.
      await waitUntil(
        "the motor's entities to be announced",
        async () => {
          const answer = await fetch(`${ready.api}/api/devices/${motor.device.id}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          const body = (await answer.json()) as { entities?: Array<{ entity_id: string }> };
          return (body.entities ?? []).some((e) => e.entity_id === 'current');
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      for (const m of minutes) {
        await client.publishAsync(
          `${topic}/telemetry`,
          JSON.stringify({
            timestamp: m.timeMs / 1000,
            values: { temperature: m.temperature, current: m.current },
          }),
          { qos: 1 },
        );
      }
    } finally {
      await client.endAsync();
    }
    // A device's messages are ingested in order: once the last reading is stored, all are.
    const lastMs = (minutes.at(-1) as { timeMs: number }).timeMs;
    let stored = 'nothing yet';
    await waitUntil(
      "the motor's history to be stored",
      async () => {
        const from = new Date(lastMs - 60_000).toISOString();
        const answer = await fetch(
          `${ready.api}/api/devices/${motor.device.id}/telemetry?entity_id=current&from=${from}`,
          { headers: { authorization: `Bearer ${token}` } },
        );
        const body = (await answer.json()) as {
          series?: Array<{ points: Array<{ time: string }> }>;
        };
        stored = `${answer.status} ${JSON.stringify(body).slice(0, 300)}`;
        return (body.series?.[0]?.points ?? []).some((p) => Date.parse(p.time) === lastMs);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}; last answer: ${stored}\n--- stack output ---\n${tail((stack as Spawned).output)}`,
      );
    });

    await page.goto(`${ready.dashboard}/#/models`);
    // The page may already be there, loaded under the old plan.
    await page.reload();
    const trainForm = page.locator('form.train-model');
    await trainForm.waitFor({ timeout: 15_000 });
    await trainForm.getByLabel('Device', { exact: true }).selectOption(String(motor.device.id));
    await trainForm.locator('#train-entity option[value="current"]').waitFor({ state: 'attached' });
    await trainForm.getByLabel('Sensor', { exact: true }).selectOption('temperature');
    await trainForm.getByLabel('Size').selectOption('small');
    await trainForm.getByLabel('Window (readings)').fill('8');
    await trainForm.getByLabel('Current', { exact: true }).check();
    await trainForm.getByLabel(/Readings of each/).fill('4');
    await trainForm.getByRole('button', { name: 'Train' }).click();
    const trainedNotice = trainForm.locator('.notice');
    await trainedNotice.waitFor({ timeout: 60_000 });
    expect(
      await trainedNotice.textContent(),
      tail(
        (stack as Spawned).output.filter(
          (l) => !/Warning|AWS SDK|node >=22|a\.co|trace-warnings/.test(l),
        ),
      ),
    ).toMatch(/^Trained and active/);
    const trained = page.locator('table.models tr', { hasText: 'with current (last 4 each)' });
    await expect(trained.getAttribute('data-status')).resolves.toBe('active');

    // The tenant's own network, trained outside the platform on the same machine's history.
    const outside = await trainModel(
      minutes.map((m) => ({ timeMs: m.timeMs, value: m.temperature })),
      { windowSize: 8, hidden: [8], seed: 3 },
    );
    const net = await loadTfModel(outside);
    const files = await layersUpload(net);
    net.dispose();
    const folder = await mkdtemp(path.join(tmpdir(), 'easysmart-upload-'));
    await writeFile(path.join(folder, 'model.json'), JSON.stringify(files.model_json));
    await writeFile(path.join(folder, 'weights.bin'), Buffer.from(files.weights, 'base64'));
    const uploadForm = page.locator('form.upload-model');
    await uploadForm.getByLabel('Device', { exact: true }).selectOption(String(motor.device.id));
    await uploadForm
      .locator('#upload-entity option[value="current"]')
      .waitFor({ state: 'attached' });
    await uploadForm.getByLabel('Sensor', { exact: true }).selectOption('temperature');
    await uploadForm.getByLabel('model.json').setInputFiles(path.join(folder, 'model.json'));
    await uploadForm.getByLabel('Weight files').setInputFiles(path.join(folder, 'weights.bin'));
    await uploadForm.getByLabel('Window (readings)').fill('8');
    await uploadForm.getByLabel('Mean').fill(String(outside.normalisation.mean));
    await uploadForm.getByLabel('Standard deviation').fill(String(outside.normalisation.std));
    await uploadForm.getByRole('button', { name: 'Upload' }).click();
    const outcome = uploadForm.locator('.notice');
    await outcome.waitFor({ timeout: 60_000 });
    expect(await outcome.textContent()).toMatch(/^Uploaded and active/);
    await rm(folder, { recursive: true, force: true });
    const uploaded = page.locator('table.models tr', { hasText: 'uploaded:' });
    await expect(uploaded.getAttribute('data-status')).resolves.toBe('active');
    await expect(trained.getAttribute('data-status')).resolves.toBe('superseded');

    // Roll back to the trained model.
    await trained.getByRole('button', { name: 'Make active' }).click();
    await waitUntil(
      'the trained model to be active again',
      async () =>
        (await trained.getAttribute('data-status')) === 'active' &&
        (await uploaded.getAttribute('data-status')) === 'superseded',
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    await page.screenshot({ path: path.join(screenshots, 'models.png'), fullPage: true });

    // The device page shows the measuring range the motor announced for its winding sensor.
    await page.goto(`${ready.dashboard}/#/devices/${motor.device.id}`);
    const range = page.locator('[data-entity-id="temperature"] [data-measuring-range="0,180"]');
    await range.waitFor({ timeout: 15_000 });
    expect(await range.textContent()).toMatch(/range 0 to 180 °C/);
    expect(await range.getAttribute('title')).toMatch(/the device announced/);
    // An owner sets the tenant's own range, which wins over the device's, then clears it.
    const rangeForm = page.getByRole('form', { name: 'Set a measuring range' });
    await rangeForm.getByRole('combobox').selectOption('temperature');
    await rangeForm.getByLabel('from').fill('-20');
    await rangeForm.getByLabel('to').fill('150');
    await rangeForm.getByRole('button', { name: 'Set range' }).click();
    const set = page.locator('[data-entity-id="temperature"] [data-measuring-range="-20,150"]');
    await set.waitFor({ timeout: 15_000 });
    expect(await set.getAttribute('title')).toMatch(/set for this entity/);
    await page
      .locator('article[data-entity-id="temperature"]')
      .screenshot({ path: path.join(screenshots, 'measuring-range.png') });
    await rangeForm.getByRole('button', { name: /^Clear/ }).click();
    await range.waitFor({ timeout: 15_000 });
    expect(await range.getAttribute('title')).toMatch(/the device announced/);
  }, 180_000);

  it('shows which edge model the device runs; an owner deploys one and rolls it back, a viewer only sees it', async () => {
    // Industrial since the models test. Two versions of a model of the virtual device's
    // temperature, as the trainer stores them (it trains on weeks of one-minute means, which
    // minutes of readings do not make): an earlier one, superseded, and the active one.
    const token = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('easysmart.session') ?? '{}').token as string,
    );
    let points: Array<{ time: string; value: number }> = [];
    await waitUntil(
      'enough of the virtual device temperature history to train on',
      async () => {
        const from = new Date(Date.now() - 3_600_000).toISOString();
        const history = await fetch(
          `${ready.api}/api/devices/${devicePk}/telemetry?entity_id=temperature&from=${from}`,
          { headers: { authorization: `Bearer ${token}` } },
        );
        const body = (await history.json()) as {
          series?: Array<{ points: Array<{ time: string; value: number }> }>;
        };
        points = body.series?.[0]?.points ?? [];
        return points.length >= minimumTrainingPoints(8);
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    const trained = await trainModel(
      points.map((p) => ({ timeMs: Date.parse(p.time), value: p.value })),
      { windowSize: 8, epochs: 2 },
    );
    const earlier = { ...trained, version: `${trained.version}-earlier` };
    const current = { ...trained, version: `${trained.version}-current` };
    const dataDir = (data as NonNullable<typeof data>).dir;
    const running = await readRunningStack(dataDir);
    const admin = new pg.Client({ connectionString: running.databaseAdminUrl });
    await admin.connect();
    const tenantId = await admin
      .query<{ tenant_id: number }>('SELECT tenant_id FROM devices WHERE id = $1', [devicePk])
      .then(({ rows }) => rows[0]?.tenant_id as number)
      .finally(() => admin.end());
    // The earlier one is superseded when the current one is recorded.
    for (const model of [earlier, current]) {
      await recordActiveModel(
        { dataDir, databaseAdminUrl: running.databaseAdminUrl },
        { tenantId, devicePk, entityId: 'temperature' },
        model,
      );
    }

    await page.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    await page.reload();
    const card = page.locator('section.edge-card');
    await card.waitFor({ timeout: 15_000 });
    expect(await card.getAttribute('data-status')).toBe('none');
    expect(await card.locator('[data-running]').textContent()).toMatch(/No model/);
    const runs = async (version: string) =>
      (await card.getAttribute('data-status')) === 'confirmed' &&
      ((await card.locator('[data-running]').textContent()) ?? '').includes(version);

    // The active model is offered first; the device confirms it over the broker.
    await card.getByRole('button', { name: 'Deploy to device' }).click();
    await waitUntil('the device to confirm the active model', () => runs(current.version), {
      timeoutMs: 60_000,
      intervalMs: 500,
    }).catch(async (error: Error) => {
      throw new Error(
        `${error.message}; the card shows: ${await card.textContent()}\n--- virtual device ---\n${tail((device as Spawned).output)}`,
      );
    });
    expect(await card.locator('.badge').textContent()).toBe('Running on the device');
    expect(await card.locator('[data-last-sent]').textContent()).toContain(current.version);

    // Roll back to the earlier one.
    await card.getByLabel('Model').selectOption(`temperature ${earlier.version}`);
    await card.getByRole('button', { name: 'Deploy to device' }).click();
    await waitUntil('the device to confirm the earlier model', () => runs(earlier.version), {
      timeoutMs: 60_000,
      intervalMs: 500,
    });

    // A viewer sees what the device runs, and no way to send it another model.
    const viewer = { username: 'dash-viewer', password: 'another long password' };
    const added = await fetch(`${ready.api}/api/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...viewer, email: 'viewer@dashboard.example', role: 'viewer' }),
    });
    expect(added.status).toBe(201);
    const viewing = await newPage(otherContext);
    await viewing.goto(`${ready.dashboard}/#/signin`);
    await viewing.getByLabel('Username or email').fill(viewer.username);
    await viewing.getByLabel('Password').fill(viewer.password);
    await viewing.getByRole('button', { name: 'Sign in' }).click();
    await viewing
      .getByRole('heading', { name: 'Devices', exact: true })
      .waitFor({ timeout: 15_000 });
    await viewing.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    const seen = viewing.locator('section.edge-card');
    await seen.waitFor({ timeout: 15_000 });
    expect(await seen.locator('[data-running]').textContent()).toContain(earlier.version);
    await expect(seen.getByRole('button', { name: 'Deploy to device' }).count()).resolves.toBe(0);
    await viewing.close();

    // The organisation's plan includes edge deployment.
    await page.getByRole('link', { name: 'Organisation' }).click();
    const row = page.locator('[data-feature="edge_deployment"] dd');
    await row.waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toBe('Included');
  }, 180_000);

  it('shows another tenant none of it', async () => {
    const other = await newPage(otherContext);
    await signUp(other, {
      tenant: 'Other Works',
      username: 'other-owner',
      email: 'owner@other.example',
      password: 'another long password',
    });
    await other.getByRole('heading', { name: 'No devices yet' }).waitFor({ timeout: 10_000 });
    await expect(other.locator(`li[data-device-id="${deviceId}"]`).count()).resolves.toBe(0);
    await other.goto(`${ready.dashboard}/#/devices/${devicePk}`);
    await other.getByRole('heading', { name: 'Device not found' }).waitFor({ timeout: 10_000 });
    await expect(other.locator('body').textContent()).resolves.not.toContain(deviceId);
    await other.close();
  }, 30_000);

  it('goes back to sign-in with a message when the API refuses the token', async () => {
    const stale = await newPage(otherContext);
    await stale.goto(`${ready.dashboard}/#/tenant`);
    // The app starts after the page's load event, once config.json is in: set the stale
    // session only when it has, or a slow start reads it, is refused, and clears it before
    // the reload below (which then showed the sign-in page without its notice).
    await stale.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 10_000 });
    await stale.evaluate(() =>
      sessionStorage.setItem(
        'easysmart.session',
        JSON.stringify({ token: 'not.a-valid.token', expiresAt: Date.now() + 3_600_000 }),
      ),
    );
    await stale.reload();
    await stale.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 10_000 });
    // Say what the page showed if the notice is missing, so that a failure explains itself.
    const notice = await stale
      .getByRole('status')
      .first()
      .textContent({ timeout: 10_000 })
      .catch(async (error: Error) => {
        const stored = await stale.evaluate(() => sessionStorage.getItem('easysmart.session'));
        throw new Error(
          `${error.message}\npage shows: ${await stale.locator('body').textContent()}\nsession: ${stored}`,
        );
      });
    expect(notice).toMatch(/sign in again/i);
    await stale.getByLabel('Username or email').fill('other-owner');
    await stale.getByLabel('Password').fill('another long password');
    await stale.getByRole('button', { name: 'Sign in' }).click();
    // Back where the person was when the session ended.
    await stale
      .getByRole('heading', { name: 'Organisation' })
      .waitFor({ timeout: 20_000 })
      .catch(async (error: Error) => {
        throw new Error(
          `${error.message}\npage shows: ${await stale.locator('body').textContent()}`,
        );
      });
    await stale.close();
  }, 45_000);

  it('raised no uncaught errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
