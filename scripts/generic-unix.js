#!/usr/bin/env node
'use strict'
// `node scripts/generic-unix.js [vitest args...]`: runs the vitest suite against the generic-Unix
// backend (src/sys/generic.rs), the code macOS and other Unixes run, built here on Linux with the
// `generic-unix` cargo feature: no /proc/locks (lockHolders and LockTimeoutError.holders are
// empty), no mountinfo (statfs classification), no real-time signal (a polling lock wait). The
// binary goes to target/generic-unix/ (its own target directory, so the regular build stays up
// to date) and is loaded through NAPI_RS_NATIVE_LIBRARY_PATH, by the test processes and by every
// child process they start (vitest.config.mts sets it from INDEX_LOCK_BINARY for the test
// processes only: napi-rs's override would also replace vitest's own rolldown binding). INDEX_LOCK_FEATURES makes the crash tests' fault-injection build
// (__test__/setup/fault-build.ts) the generic one too. Ends with a plain `N passed, N failed`.

const { spawnSync } = require('node:child_process')
const { copyFileSync, mkdirSync, readFileSync, rmSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
const targetDir = join(root, 'target', 'generic-unix')
const binary = join(targetDir, 'index-lock.generic-unix.node')
const results = join(targetDir, 'vitest-results.json')

function run(cmd, args, env = process.env) {
  console.log(`\n=== ${[cmd, ...args].join(' ')}`)
  return spawnSync(cmd, args, { cwd: root, env, stdio: 'inherit' }).status
}

if (process.platform !== 'linux') {
  console.log(
    `generic-unix: skipped, the feature forces the generic backend on Linux only (this is ${process.platform})`,
  )
  process.exit(0)
}

const built = run('cargo', ['build', '--profile', 'quick', '--features', 'generic-unix', '--target-dir', targetDir])
if (built !== 0) process.exit(built ?? 1)
mkdirSync(targetDir, { recursive: true })
copyFileSync(join(targetDir, 'quick', 'libindex_lock.so'), binary)

const env = { ...process.env, INDEX_LOCK_BINARY: binary, INDEX_LOCK_FEATURES: 'generic-unix' }
const which = spawnSync(process.execPath, ['-p', "require('./binding.js').backend()"], {
  cwd: root,
  env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: binary },
  encoding: 'utf8',
})
if (which.stdout.trim() !== 'generic-unix') {
  console.error(`generic-unix: the loaded binary reports backend '${which.stdout.trim()}' ${which.stderr}`)
  process.exit(1)
}

// Suites that never load this binary, so a second run here would test nothing new (`npm test`
// runs them): the other platforms' binaries under qemu and wine, the packed and published
// packages (built from the regular build), the benchmark's smoke run, and the docs' samples.
const BACKEND_INDEPENDENT = [
  'platforms.spec.ts',
  'registry.spec.ts',
  'package.spec.ts',
  'bench.spec.ts',
  'docs.spec.ts',
]
for (const name of BACKEND_INDEPENDENT)
  console.log(`generic-unix: not run again: __test__/${name} (loads no generic build)`)

rmSync(results, { force: true })
const status = run(
  join(root, 'node_modules', '.bin', 'vitest'),
  [
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${results}`,
    ...BACKEND_INDEPENDENT.map((name) => `--exclude=__test__/${name}`),
    ...process.argv.slice(2),
  ],
  env,
)
let passed = 0
let failed = 1
try {
  const r = JSON.parse(readFileSync(results, 'utf8'))
  passed = r.numPassedTests
  failed = r.numFailedTests + (r.numFailedTestSuites ?? 0)
} catch {}
if (status !== 0 && failed === 0) failed = 1
console.log(`generic-unix backend: ${passed} passed, ${failed} failed`)
process.exit(status === 0 ? 0 : 1)
