import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { migrationTargets } from '../infra/migrate.ts';
import { AccessTokens } from '../shared/accounts/adapters/jose-access-tokens.ts';
import { parseConfig } from '../shared/config.ts';
import { createPool } from '../shared/db/postgres.ts';
import { AwsSecretsManagerStore } from '../shared/secrets/adapters/aws-secrets-manager.ts';
import { LocalFileSecretStore } from '../shared/secrets/adapters/local-files.ts';
import {
  CachedSecretStore,
  SecretNotFoundError,
  type SecretStore,
  secretField,
} from '../shared/secrets/domain/secrets.ts';
import { InfluxClient, influxCredentials } from '../shared/timeseries/adapters/influx-client.ts';

/**
 * Credentials the functions read at run time (Secrets Manager on AWS, files in the data
 * directory locally), once per process: the stores, and the PostgreSQL pool, the InfluxDB
 * client, the migrations and the token verifiers that use them.
 */

const client = new SecretsManagerClient({ region: 'eu-west-1' });
const secretsManager = mockClient(client);

/** Counts reads, so "once per process" is observable. */
class CountingStore implements SecretStore {
  reads: string[] = [];
  constructor(private readonly inner: SecretStore) {}
  read(name: string) {
    this.reads.push(name);
    return this.inner.read(name);
  }
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'easysmart-secrets-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  secretsManager.reset();
});

describe('secret stores', () => {
  it('reads a Secrets Manager secret once per process, and again after a failure (AWS SDK mocked)', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: 'easysmart/prod/influx' })
      .rejectsOnce(new Error('throttled'))
      .resolves({ SecretString: '{"token":"t-1"}' });
    const store = new CachedSecretStore(new AwsSecretsManagerStore(client));
    await expect(store.read('easysmart/prod/influx')).rejects.toThrow('throttled');
    const [first, second] = await Promise.all([
      store.read('easysmart/prod/influx'),
      store.read('easysmart/prod/influx'),
    ]);
    expect(first).toBe('{"token":"t-1"}');
    expect(second).toBe(first);
    await expect(secretField(store, 'easysmart/prod/influx', 'token')).resolves.toBe('t-1');
    // The failed read, then one read for the three uses after it.
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('names a missing secret (AWS SDK mocked)', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: {} }));
    const store = new AwsSecretsManagerStore(client);
    await expect(store.read('easysmart/prod/nope')).rejects.toThrow(
      new SecretNotFoundError('secret easysmart/prod/nope does not exist'),
    );
  });

  it('reads local secret files from the data directory, never outside it', async () => {
    await writeFile(path.join(dir, 'database-app-password'), 'local-pw\n', { mode: 0o600 });
    await writeFile(path.join(dir, 'influx'), '{"token":"abc","other":1}');
    const store = new LocalFileSecretStore(dir);
    await expect(secretField(store, 'database-app-password', 'password')).resolves.toBe('local-pw');
    await expect(secretField(store, 'influx', 'token')).resolves.toBe('abc');
    await expect(secretField(store, 'influx', 'other')).rejects.toThrow('has no string field');
    await expect(store.read('missing')).rejects.toBeInstanceOf(SecretNotFoundError);
    for (const name of ['../etc/passwd', '/etc/passwd', '.hidden', 'a/b']) {
      await expect(store.read(name), name).rejects.toBeInstanceOf(SecretNotFoundError);
    }
  });
});

describe('what reads them', () => {
  it('connects to PostgreSQL with the password from a secret, read once for all connections', async () => {
    const stack = inject('testStack');
    const url = new URL(stack.databaseUrl);
    const password = decodeURIComponent(url.password);
    url.password = '';
    await writeFile(path.join(dir, 'app-password'), `${password}\n`);
    const store = new CountingStore(new LocalFileSecretStore(dir));
    const cached = new CachedSecretStore(store);
    const pool = createPool(url.toString(), 3, () =>
      secretField(cached, 'app-password', 'password'),
    );
    try {
      const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
      const users = await Promise.all(clients.map((c) => c.query('SELECT current_user AS u')));
      for (const c of clients) c.release();
      expect(users.map((r) => r.rows[0].u)).toEqual([
        'easysmart_app',
        'easysmart_app',
        'easysmart_app',
      ]);
      expect(store.reads).toEqual(['app-password']);
    } finally {
      await pool.end();
    }
    // The URL alone no longer gets in.
    const withoutSecret = createPool(url.toString(), 1);
    await expect(withoutSecret.query('SELECT 1')).rejects.toThrow();
    await withoutSecret.end();
  });

  it('sends the InfluxDB token from a secret, read on the first request (AWS SDK mocked)', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((request, response) => {
      seen.push(request.headers);
      response.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      secretsManager
        .on(GetSecretValueCommand, { SecretId: 'easysmart/prod/influx' })
        .rejectsOnce(new Error('network'))
        .resolves({ SecretString: '{"token":"influx-token"}' });
      const store = new CachedSecretStore(new AwsSecretsManagerStore(client));
      const influx = new InfluxClient({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        database: 'iot_data',
        ...influxCredentials({ tokenSecret: 'easysmart/prod/influx' }, () => store),
      });
      expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(0);
      // An unreadable secret is an unavailable InfluxDB for the caller; the next call retries.
      await expect(influx.ping()).resolves.toBe(false);
      expect(seen).toHaveLength(0);
      await expect(influx.ping()).resolves.toBe(true);
      await influx.ping();
      expect(seen.map((headers) => headers.authorization)).toEqual([
        'Token influx-token',
        'Token influx-token',
      ]);
      expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    } finally {
      server.close();
    }
  });

  it('migrates with the schema owner and app passwords from secrets (AWS SDK mocked)', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: 'easysmart/prod/database-admin' })
      .resolves({ SecretString: '{"username":"owner","password":"p@ss/word"}' })
      .on(GetSecretValueCommand, { SecretId: 'easysmart/prod/database-app' })
      .resolves({ SecretString: '{"username":"easysmart_app","password":"app-secret"}' });
    const settings = parseConfig({
      SECRET_STORE: 'aws-secrets-manager',
      DATABASE_ADMIN_URL: 'postgresql://db.internal:5432/easysmart?sslmode=verify-full',
      DATABASE_ADMIN_SECRET: 'easysmart/prod/database-admin',
      DATABASE_URL: 'postgresql://easysmart_app@db.internal:5432/easysmart?sslmode=verify-full',
      DATABASE_PASSWORD_SECRET: 'easysmart/prod/database-app',
      INFLUX_URL: 'https://influx.internal:8086',
      DEVICE_PROVISIONER: 'aws-iot',
    });
    const store = new AwsSecretsManagerStore(client);
    const targets = await migrationTargets(settings, () => store);
    const admin = new URL(targets.adminUrl);
    expect(decodeURIComponent(admin.username)).toBe('owner');
    expect(decodeURIComponent(admin.password)).toBe('p@ss/word');
    expect(admin.host).toBe('db.internal:5432');
    expect(admin.searchParams.get('sslmode')).toBe('verify-full');
    expect(targets.appPassword).toBe('app-secret');
  });

  it('verifies tokens with the public JWKS alone, and cannot sign with it', async () => {
    const settings = { issuer: 'easysmart', audience: 'easysmart-api', ttlSeconds: 60 };
    const signer = new AccessTokens({ ...settings, privateJwk: inject('testStack').jwtPrivateJwk });
    const verifier = new AccessTokens({ ...settings, publicJwks: JSON.stringify(signer.jwks()) });
    const caller = { userId: 7, tenantId: 3, role: 'admin' as const, tokenVersion: 0 };
    await expect(verifier.verify(await signer.issue(caller))).resolves.toMatchObject(caller);
    await expect(verifier.issue(caller)).rejects.toThrow('only verifies');
    expect(JSON.stringify(verifier.jwks())).not.toContain('"d"');
    // A private key where the public set belongs is refused at start.
    const privateJwk = JSON.parse(inject('testStack').jwtPrivateJwk);
    expect(
      () => new AccessTokens({ ...settings, publicJwks: JSON.stringify({ keys: [privateJwk] }) }),
    ).toThrow('JWT_PUBLIC_JWKS');
    expect(() => new AccessTokens({ ...settings, publicJwks: '{"keys":[]}' })).toThrow(
      'JWT_PUBLIC_JWKS',
    );
  });
});
