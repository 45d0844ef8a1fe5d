import { defineConfig } from 'vitest/config';

/**
 * Two projects, both run by `npm test`:
 * - `unit`: the files under test/unit. They start no server and build no firmware, so
 *   `npx vitest run --project unit` answers in seconds; a test that needs PostgreSQL,
 *   InfluxDB, Mosquitto, a child process or a whole local stack does not belong there.
 * - `integration`: every other test file, against the real servers the global setup starts.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    // The integration files mostly wait on servers, so more of them than cores run at once.
    maxWorkers: 4,
    fileParallelism: true,
    // Stopping the integration servers must not hang the run.
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Generous for code that waits on nothing but itself: on a 2-core machine shared with
          // other work (load average 20) the property tests took 20 times their quiet duration.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          // Only this project starts the servers (and builds the virtual device); a run of
          // the unit project alone never does.
          globalSetup: ['test/global-setup.ts'],
          // Tests talk to real servers (and some start the whole local stack), so the
          // defaults are generous; a hung server still fails the run instead of stalling it.
          testTimeout: 30_000,
          hookTimeout: 150_000,
        },
      },
    ],
  },
});
