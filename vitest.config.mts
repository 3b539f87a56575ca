import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.ts'],
    globalSetup: ['__test__/setup/fault-build.ts'],
    // Child processes, flock(1) and real fsyncs: generous per-test time on a shared 2-core box.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Several files spawn 4+ processes each; two files at once keeps the box responsive.
    maxWorkers: 2,
  },
})
