// The loader's list of prebuilt platforms (named in the missing-binary message) is package.json
// `napi.targets`, not a copy of it: a target added there is offered to users at once.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const loader = createRequire(import.meta.url)('../lib/native.js') as {
  PREBUILT: string[]
  platformOfTriple(triple: string): string
}

// napi-rs's names for the triples, written out here independently of lib/native.js.
const NAMES: Record<string, string> = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
  'i686-pc-windows-msvc': 'win32-ia32-msvc',
  'aarch64-pc-windows-msvc': 'win32-arm64-msvc',
  'x86_64-unknown-freebsd': 'freebsd-x64',
  'armv7-unknown-linux-gnueabihf': 'linux-arm-gnueabihf',
  'aarch64-linux-android': 'android-arm64',
}

describe('the loader', () => {
  it('names each triple as napi-rs names its package', () => {
    for (const [triple, name] of Object.entries(NAMES)) expect(loader.platformOfTriple(triple)).toBe(name)
  })

  it('offers exactly the platforms of napi.targets, which are the npm/ packages', () => {
    expect(loader.PREBUILT).toEqual(pkg.napi.targets.map((t: string) => NAMES[t]))
    const packages = readdirSync(join(ROOT, 'npm'), { withFileTypes: true }).filter((d) => d.isDirectory())
    expect([...loader.PREBUILT].sort()).toEqual(packages.map((d) => d.name).sort())
  })

  it('lists napi.targets in the message of a platform with no prebuilt binary', () => {
    // A CPU nobody builds for: the generated loader finds no binary and index.js explains.
    const script =
      "Object.defineProperty(process, 'arch', { value: 'mips64el' })\n" +
      `try { require(${JSON.stringify(ROOT)}); console.log('{}') } catch (e) {` +
      ' console.log(JSON.stringify({ message: e.message, code: e.code })) }\n'
    const env = { ...process.env }
    for (const k of Object.keys(env)) if (k.startsWith('NAPI_RS_')) delete env[k]
    const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' })
    const err = JSON.parse(r.stdout)
    expect(err.code).toBe('INDEX_LOCK_NO_BINARY')
    const expected = pkg.napi.targets.map((t: string) => NAMES[t]).join(', ')
    expect(err.message).toContain(`There is no prebuilt binary for linux-mips64el-gnu; prebuilt: ${expected}.`)
  })
})
