import pg from 'pg';
import { afterAll } from 'vitest';
import { startDataPlaneEndpoint } from '../../local/data-plane/endpoint.ts';
import type { TestStack } from './test-stack.ts';

/** A logger that drops everything, for the local services a test starts. */
export const silentLog = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A superuser pool to the test database (for what an operator or the test itself does behind
 * the API), closed when the file's tests are done.
 */
export function adminPool(stack: TestStack): pg.Pool {
  const pool = new pg.Pool({ connectionString: stack.databaseAdminUrl, max: 2 });
  afterAll(() => pool.end());
  return pool;
}

/**
 * Starts the local IoT Data Plane endpoint on the stack's broker and points the functions'
 * `IOT_DATA_ENDPOINT` at it, so the commands a handler sends reach Mosquitto. Call before
 * importing a handler; stopped when the file's tests are done.
 */
export async function useDataPlane(stack: TestStack) {
  const dataPlane = await startDataPlaneEndpoint({
    mqtt: { url: stack.mqttUrl, ...stack.mqttPlatform },
    log: silentLog,
  });
  process.env.IOT_DATA_ENDPOINT = dataPlane.url;
  afterAll(() => dataPlane.stop());
  return dataPlane;
}
