import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests talk to real servers (and one starts the whole local stack), so the defaults
    // are generous; a hung server still fails the run instead of stalling it.
    testTimeout: 30_000,
    hookTimeout: 150_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    // The files mostly wait on servers, so more of them than cores run at once.
    maxWorkers: 4,
    fileParallelism: true,
  },
});
