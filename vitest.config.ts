import { defineConfig } from 'vitest/config';

// One real PostgreSQL for the whole run (test/support/global-setup.ts); test files run
// in forked workers, two at a time to match the 2-core machines this project targets.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
