#!/usr/bin/env node
'use strict'
// `npm test`: every check the project has, in one run, ending with a plain
// `N passed, N failed` line. Steps: the release build of the addon, rustfmt, clippy, cargo tests,
// Biome's lint and format check of the JS/TS, the strict TypeScript consumer type-check, clippy
// for the other platforms' code and the musl unit tests, and the vitest suite. A failing step
// does not stop the others.

const { spawnSync } = require('node:child_process')
const { existsSync, readFileSync, rmSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)
const vitestJson = join(root, '.vitest-results.json')

let passed = 0
let failed = 0
const failures = []

function step(name, cmd, args, count, env = process.env) {
  console.log(`\n=== ${name}: ${[cmd, ...args].join(' ')}`)
  const res = spawnSync(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  process.stdout.write(res.stdout ?? '')
  process.stderr.write(res.stderr ?? '')
  const ok = res.status === 0
  const counted = count ? count(`${res.stdout}\n${res.stderr}`) : null
  if (counted) {
    passed += counted.passed
    failed += counted.failed
    if (!ok && counted.failed === 0) failed += 1
  } else if (ok) {
    passed += 1
  } else {
    failed += 1
  }
  if (!ok) failures.push(name)
}

function cargoCounts(output) {
  let p = 0
  let f = 0
  for (const m of output.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    p += Number(m[1])
    f += Number(m[2])
  }
  return { passed: p, failed: f }
}

function vitestCounts() {
  try {
    const r = JSON.parse(readFileSync(vitestJson, 'utf8'))
    return { passed: r.numPassedTests, failed: r.numFailedTests + (r.numFailedTestSuites ?? 0) }
  } catch {
    return { passed: 0, failed: 1 }
  }
}

// The addon first (a no-op when cargo finds it current): nothing builds it at install time.
step('build', 'npm', ['run', 'build'])
step('rustfmt', 'cargo', ['fmt', '--check'])
step('clippy', 'cargo', ['clippy', '--all-targets', '--', '-D', 'warnings'])
step('cargo test', 'cargo', ['test'], cargoCounts)
step('lint and format check (biome)', bin('biome'), ['ci', '.'])
step('typecheck (strict consumer of index.d.ts)', bin('tsc'), ['-p', join('__test__', 'types', 'tsconfig.json')])
// The packed package's types resolve for every module mode (node10, node16 from CJS and from
// ESM, bundler): no "masquerading as CJS".
step('types resolution (arethetypeswrong)', bin('attw'), ['--pack', '.'])

// The other platforms' code, where this machine can check it (scripts/platform-tools.sh installs
// the targets; .ci/run always does). macOS and Windows code is linted per target; musl's unit
// tests run natively. A missing target is a printed SKIP with its reason, never silence.
const installed = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).stdout ?? ''
for (const target of [
  'aarch64-apple-darwin',
  'x86_64-pc-windows-gnu',
  'x86_64-pc-windows-msvc',
  'x86_64-unknown-linux-musl',
]) {
  if (!installed.includes(target)) {
    console.log(`\n=== SKIP clippy --target ${target}: not installed (run scripts/platform-tools.sh)`)
    continue
  }
  // napi-build links windows-gnu against node.exe's import library (made by platform-tools.sh).
  const env = { ...process.env, LIBNODE_PATH: process.env.LIBNODE_PATH ?? join(root, 'target', 'libnode') }
  if (target.endsWith('windows-gnu') && !existsSync(join(env.LIBNODE_PATH, 'libnode.dll.a'))) {
    console.log(
      `\n=== SKIP clippy --target ${target}: no node.exe import library in ${env.LIBNODE_PATH} (run scripts/platform-tools.sh)`,
    )
    continue
  }
  step(
    `clippy --target ${target}`,
    'cargo',
    ['clippy', '--all-targets', '--target', target, '--', '-D', 'warnings'],
    null,
    env,
  )
}
if (installed.includes('x86_64-unknown-linux-musl')) {
  step(
    'cargo test --target x86_64-unknown-linux-musl',
    'cargo',
    ['test', '--target', 'x86_64-unknown-linux-musl'],
    cargoCounts,
  )
} else {
  console.log('\n=== SKIP cargo test --target x86_64-unknown-linux-musl: not installed (run scripts/platform-tools.sh)')
}

rmSync(vitestJson, { force: true })
console.log('\n=== vitest')
const v = spawnSync(
  bin('vitest'),
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`],
  { cwd: root, stdio: 'inherit' },
)
const vc = vitestCounts()
passed += vc.passed
failed += vc.failed
if (v.status !== 0) {
  if (vc.failed === 0) failed += 1
  failures.push('vitest')
}

console.log(failures.length ? `\nFailed steps: ${failures.join(', ')}` : '\nAll steps passed.')
console.log(`${passed} passed, ${failed} failed`)
process.exit(failures.length ? 1 : 0)
