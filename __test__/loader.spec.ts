// The loader's list of prebuilt platforms (named in the missing-binary message) is package.json
// `napi.targets`, not a copy of it: a target added there is offered to users at once. The message
// tells a source checkout (which only `npm run build` gives a binary) from an installed package
// (which needs its platform package).
import { spawnSync } from 'node:child_process'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, tempDir } from './helpers'

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

/** The host as napi-rs names it (this suite runs on glibc Linux and macOS). */
const HOST =
  process.platform === 'linux'
    ? `linux-${process.arch}-${(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ? 'gnu' : 'musl'}`
    : `${process.platform}-${process.arch}`

/**
 * The package's JavaScript without any binary: as installed in a project's node_modules, or as a
 * clone of the repository (`checkout`: with the Cargo.toml the published package leaves out).
 */
function withoutBinary(layout: 'installed' | 'checkout'): string {
  const base = tempDir('loader')
  const dir = layout === 'checkout' ? join(base, 'index-lock') : join(base, 'node_modules', 'index-lock')
  for (const file of ['package.json', 'index.js', 'binding.js']) cpSync(join(ROOT, file), join(dir, file))
  cpSync(join(ROOT, 'lib'), join(dir, 'lib'), { recursive: true })
  if (layout === 'checkout') cpSync(join(ROOT, 'Cargo.toml'), join(dir, 'Cargo.toml'))
  return dir
}

/** What `require(dir)` throws in a fresh process (`arch`: the CPU it claims to run on). */
function loadError(dir: string, arch?: string): { message: string; code: string } {
  const script =
    (arch ? `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} })\n` : '') +
    `try { require(${JSON.stringify(dir)}); console.log('{}') } catch (e) {` +
    ' console.log(JSON.stringify({ message: e.message, code: e.code })) }\n'
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('NAPI_RS_')) delete env[k]
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' })
  return JSON.parse(r.stdout)
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
    // A CPU nobody builds for: the generated loader finds no binary and lib/native.js explains.
    const err = loadError(withoutBinary('installed'), 'mips64el')
    expect(err.code).toBe('INDEX_LOCK_NO_BINARY')
    const expected = pkg.napi.targets.map((t: string) => NAMES[t]).join(', ')
    expect(err.message).toContain(`There is no prebuilt binary for linux-mips64el-gnu; prebuilt: ${expected}.`)
  })

  it('an installed package without its platform package: names the package, and how a build is made', () => {
    const err = loadError(withoutBinary('installed'))
    expect(err.code).toBe('INDEX_LOCK_NO_BINARY')
    expect(err.message).toContain(`npm i index-lock-${HOST}@${pkg.version}`)
    expect(err.message).toMatch(/reinstall .*without --omit=optional/)
    // Building from source: a clone builds with `npm run build`; `npm install` builds nothing.
    expect(err.message).toContain('npm run build')
    expect(err.message).not.toContain('`npm install`')
  })

  it('a source checkout without a build: says `npm run build`, not a package to install', () => {
    const err = loadError(withoutBinary('checkout'))
    expect(err.code).toBe('INDEX_LOCK_NO_BINARY')
    expect(err.message).toContain(`no usable native binary for ${HOST}`)
    expect(err.message).toContain('`npm run build`')
    expect(err.message).not.toContain('npm install')
    expect(err.message).not.toContain('npm i ')
  })
})
