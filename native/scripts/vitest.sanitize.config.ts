// vitest config for sanitizer runs: the native concurrency and learning tests, no embedded
// PostgreSQL (the sanitizer runtime is LD_PRELOADed into every process started).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/native/concurrency.test.ts', 'test/native/learn.test.ts', 'test/native/prepared-filter.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 600_000,
  },
});
