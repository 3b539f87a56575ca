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
    // scripts/generic-unix.js runs the suite on another build of the addon. INDEX_LOCK_BINARY
    // becomes napi-rs's override only in the test processes (and their children): in vitest's
    // own process it would also replace rolldown's native binding.
    env: process.env.INDEX_LOCK_BINARY ? { NAPI_RS_NATIVE_LIBRARY_PATH: process.env.INDEX_LOCK_BINARY } : {},
  },
})
