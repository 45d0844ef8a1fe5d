import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';

export const APP_ROLE = 'easysmart_app';
export const DEFINER_ROLE = 'easysmart_definer';

const migrationsDir = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations',
);

export interface MigrateOptions {
  /** A connection as the schema owner (a superuser locally, the master user on RDS). */
  adminUrl: string;
  /** Password for the application role; the role is created or its password reset. */
  appPassword: string;
  log?: (message: string) => void;
}

/**
 * Creates the roles the schema refers to, applies pending migrations, and returns the
 * connection URL for the application role (same server and database, the app's credentials).
 */
export async function migrate(options: MigrateOptions): Promise<{ appUrl: string }> {
  await ensureRoles(options.adminUrl, options.appPassword);
  await runner({
    databaseUrl: options.adminUrl,
    dir: migrationsDir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Number.POSITIVE_INFINITY,
    singleTransaction: true,
    log: options.log ?? (() => {}),
    verbose: false,
  });
  const appUrl = new URL(options.adminUrl);
  appUrl.username = APP_ROLE;
  appUrl.password = options.appPassword;
  return { appUrl: appUrl.toString() };
}

/** Creates the roles the schema's grants and policies name, where missing. */
export async function createRolesIfMissing(client: pg.ClientBase): Promise<void> {
  // Role names are constants, not input.
  await client.query(
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
         CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
       END IF;
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${DEFINER_ROLE}') THEN
         CREATE ROLE ${DEFINER_ROLE} NOLOGIN BYPASSRLS;
       END IF;
     END $$`,
  );
}

async function ensureRoles(adminUrl: string, appPassword: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await createRolesIfMissing(client);
    // The password goes through format(%L), so it cannot inject.
    await client.query(`SELECT set_config('easysmart.app_password', $1, false)`, [appPassword]);
    await client.query(
      `DO $$ BEGIN
         EXECUTE format('ALTER ROLE ${APP_ROLE} WITH LOGIN PASSWORD %L', current_setting('easysmart.app_password'));
       END $$`,
    );
  } finally {
    await client.end();
  }
}
