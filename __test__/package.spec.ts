// The package as users get it: `npm pack` (the exact file list), then the tarball installed into
// a fresh TypeScript project in the OS temp directory, used from CommonJS, ESM, TypeScript
// (strict, node16 / nodenext / bundler resolution), the project's own vitest and the CLI; and the
// error a user gets when the platform's binary is missing. The consumer sources are in
// __test__/package/.
import { spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from './helpers'

// The one target built and tested on this machine.
const TARGET = 'linux-x64-gnu'
const BINARY = `index-lock.${TARGET}.node`
const TEMPLATES = join(__dirname, 'package')

// Every value export of the library (index.js). A new export must be added here, to
// index.mjs, to index.d.ts and to __test__/package/consumer.mts.
const VALUE_EXPORTS = [
  'AbortError',
  'CorruptFileError',
  'LockDeadlockError',
  'LockNestedError',
  'LockTimeoutError',
  'LockUpgradeError',
  'PatchError',
  'SweepError',
  'acquire',
  'acquireSync',
  'atomicWrite',
  'atomicWriteSync',
  'backend',
  'inspect',
  'mergeJson',
  'mergeJsonSync',
  'patchJson',
  'patchJsonSync',
  'readJson',
  'readJsonSync',
  'sweep',
  'tryAcquire',
  'updateJson',
  'updateJsonSync',
  'withIndexLock',
  'withIndexLockSync',
  'writeJson',
  'writeJsonSync',
].sort()

const PLATFORMS: Record<string, { triple: string; os: string; cpu: string; libc?: string }> = {
  'linux-x64-gnu': { triple: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-arm64-gnu': { triple: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'linux-x64-musl': { triple: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'linux-arm64-musl': { triple: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  'darwin-x64': { triple: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64' },
  'darwin-arm64': { triple: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64' },
  'win32-x64-msvc': { triple: 'x86_64-pc-windows-msvc', os: 'win32', cpu: 'x64' },
}

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

// Children get no npm lifecycle variables (`npm test` sets npm_config_local_prefix, npm_package_*
// and the like, which must not steer an install in another directory), no vitest worker
// variables and no loader overrides. Registry, cache and proxy settings stay.
function childEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|cafile|strict_ssl|.*proxy)$/i
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(VITEST|NAPI_RS_|TINYPOOL)/i.test(k) || k === 'NODE_OPTIONS' || k === 'INIT_CWD') continue
    if (/^npm_/i.test(k) && !keep.test(k)) continue
    env[k] = v
  }
  return env
}

function sh(cmd: string, args: string[], cwd: string, timeout = 60_000): Result {
  const res = spawnSync(cmd, args, { cwd, env: childEnv(), encoding: 'utf8', timeout, maxBuffer: 64 << 20 })
  if (res.error) throw res.error
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

/** Runs a command that must succeed; the failure message carries its output. */
function ok(cmd: string, args: string[], cwd: string, timeout?: number): string {
  const res = sh(cmd, args, cwd, timeout)
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${res.status}\n${res.stdout}\n${res.stderr}`)
  }
  return res.stdout
}

/** `npm pack` of `dir` into the work directory, without lifecycle scripts; the tarball's path. */
function pack(dir: string): string {
  const out = ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], dir)
  const [info] = JSON.parse(out.slice(out.indexOf('[')))
  return join(work, info.filename)
}

function versionIn(dir: string, pkg: string): string {
  return JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version
}

/** Names exported by a declaration file: `export declare function X`, `export interface X`, ... */
function declaredExports(dts: string): { values: string[]; types: string[] } {
  const values: string[] = []
  const types: string[] = []
  for (const m of dts.matchAll(
    /^export\s+(?:declare\s+)?(function|class|const|let|var|enum|type|interface)\s+(\w+)/gm,
  )) {
    const list = m[1] === 'type' || m[1] === 'interface' ? types : values
    if (!list.includes(m[2]!)) list.push(m[2]!)
  }
  return { values: values.sort(), types: types.sort() }
}

const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
let work = ''
let tarball = ''
let packedFiles: string[] = []

beforeAll(() => {
  // The test packs what is built; it does not build (`npm run build` does, ~10 s).
  const binary = join(ROOT, BINARY)
  if (!existsSync(binary) || statSync(binary).size === 0) {
    throw new Error(`${BINARY} is missing: run \`npm run build\` first`)
  }
  work = realpathSync(mkdtempSync(join(tmpdir(), 'index-lock-package-')))
  tarball = pack(ROOT)
  packedFiles = ok('tar', ['-tzf', tarball], work).split('\n').filter(Boolean).sort()
}, 60_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('npm pack', () => {
  it('holds exactly the built binary, the JS/TS surface, the CLI, README, docs/ and LICENSE', () => {
    // docs/ ships: README's links point into it, and a package page has no repository to resolve them.
    const docs = readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`)
    expect(docs.length).toBeGreaterThan(0)
    expect(packedFiles).toEqual(
      [
        'LICENSE',
        'README.md',
        ...docs,
        'bin/index-lock.js',
        'binding.d.ts',
        'binding.js',
        BINARY,
        'index.d.mts',
        'index.d.ts',
        'index.js',
        'index.mjs',
        ...[
          'batches',
          'changes',
          'diagnostics',
          'errors',
          'files',
          'group-commit',
          'holds',
          'inspect',
          'json',
          'locks',
          'native',
          'options',
          'pointer',
          'targets',
          'update',
          'wait',
        ].map((m) => `lib/${m}.js`),
        'package.json',
      ]
        .map((f) => `package/${f}`)
        .sort(),
    )
    const license = ok('tar', ['-xzOf', tarball, 'package/LICENSE'], work)
    expect(license).toMatch(/^MIT License/)
    expect(license).toContain('Copyright (c) 2026 index-lock contributors')
  })

  it('has a manifest users can install: version, engines, exports, bin', () => {
    const pkg = JSON.parse(ok('tar', ['-xzOf', tarball, 'package/package.json'], work))
    expect(pkg.name).toBe('index-lock')
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+$/)
    expect(pkg.version).toBe('0.1.0')
    expect(pkg.license).toBe('MIT')
    expect(pkg.engines).toEqual({ node: '>= 20' })
    expect(pkg.main).toBe('index.js')
    expect(pkg.types).toBe('index.d.ts')
    expect(pkg.bin).toEqual({ 'index-lock': 'bin/index-lock.js' })
    // It ships prebuilt binaries and runs nothing at install: no script npm would run (or ask
    // about, as npm 11's allowScripts does) in a user's project.
    const installTime = ['preinstall', 'install', 'postinstall', 'prepare']
    expect(Object.keys(pkg.scripts ?? {}).filter((s) => installTime.includes(s))).toEqual([])
    // Types per condition, "types" first in each: an ESM import gets ESM types (index.d.mts), a
    // require CommonJS ones, so neither masquerades as the other.
    expect(Object.keys(pkg.exports['.'])).toEqual(['import', 'require', 'default'])
    expect(pkg.exports['.']).toEqual({
      import: { types: './index.d.mts', default: './index.mjs' },
      require: { types: './index.d.ts', default: './index.js' },
      default: './index.js',
    })
    expect(pkg.exports['./package.json']).toBe('./package.json')
    const targets = Object.values(pkg.exports['.']).flatMap((t) =>
      typeof t === 'string' ? [t] : Object.values(t as Record<string, string>),
    )
    for (const target of targets) {
      expect(packedFiles).toContain(`package/${target.slice(2)}`)
    }
  })
})

describe('per-platform packages (npm/)', () => {
  it('follow napi-rs layout, match napi.targets and the loader', () => {
    const dirs = readdirSync(join(ROOT, 'npm'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
    expect(dirs).toEqual(Object.keys(PLATFORMS).sort())
    expect([...rootPkg.napi.targets].sort()).toEqual(
      Object.values(PLATFORMS)
        .map((p) => p.triple)
        .sort(),
    )
    const loader = readFileSync(join(ROOT, 'binding.js'), 'utf8')
    for (const [platform, want] of Object.entries(PLATFORMS)) {
      const dir = join(ROOT, 'npm', platform)
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      const file = `index-lock.${platform}.node`
      expect(pkg.name).toBe(`index-lock-${platform}`)
      expect(pkg.version).toBe(rootPkg.version)
      expect(pkg.main).toBe(file)
      expect(pkg.files).toEqual([file])
      expect(pkg.os).toEqual([want.os])
      expect(pkg.cpu).toEqual([want.cpu])
      expect(pkg.libc).toEqual(want.libc ? [want.libc] : undefined)
      expect(pkg.license).toBe('MIT')
      expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain(pkg.name)
      // The names the generated loader tries, local file first, then the package.
      expect(loader).toContain(`require('./${file}')`)
      expect(loader).toContain(`require('${pkg.name}')`)
    }
  })
})

describe('platform packages as optionalDependencies, written at publish time', () => {
  /** What the published manifest must list: one package per napi.targets entry, at the version. */
  const wanted = () => Object.fromEntries(Object.keys(PLATFORMS).map((p) => [`index-lock-${p}`, rootPkg.version]))

  /** A copy of the manifest and npm/ in a fresh directory, as the publish step sees them. */
  function stage(name: string): string {
    const dir = join(work, name)
    mkdirSync(dir)
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
    cpSync(join(ROOT, 'npm'), join(dir, 'npm'), { recursive: true })
    return dir
  }
  const prepublish = (dir: string) => sh(process.execPath, [join(ROOT, 'scripts', 'platform-dependencies.js')], dir)

  it('the repository lists none, so the committed lock file is one `npm ci` accepts', () => {
    // npm leaves unpublished (and other platforms') packages out of the lock file, and `npm ci`
    // then refuses it as out of sync.
    expect(rootPkg.optionalDependencies).toBeUndefined()
    const dir = join(work, 'ci-dry-run')
    mkdirSync(dir)
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(dir, f))
    ok('npm', ['ci', '--dry-run', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], dir, 120_000)
  })

  it('prepublishOnly writes all seven, matching napi.targets and npm/*/package.json', () => {
    expect(rootPkg.scripts.prepublishOnly).toBe('node scripts/platform-dependencies.js')
    const dir = stage('prepublish')
    const before = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const r = prepublish(dir)
    expect(r.status, r.stderr).toBe(0)
    const after = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(after.optionalDependencies).toEqual(wanted())
    for (const [name, version] of Object.entries(after.optionalDependencies)) {
      const npmPkg = JSON.parse(
        readFileSync(join(ROOT, 'npm', name.slice('index-lock-'.length), 'package.json'), 'utf8'),
      )
      expect(npmPkg.name).toBe(name)
      expect(npmPkg.version).toBe(version)
    }
    // Nothing else changes, and a second run (napi pre-publish writes the same) is a no-op.
    const { optionalDependencies: _, ...rest } = after
    expect(rest).toEqual(before)
    const text = readFileSync(join(dir, 'package.json'), 'utf8')
    expect(prepublish(dir).status).toBe(0)
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(text)
  })

  it('prepublishOnly refuses to publish when a platform package is missing or at another version', () => {
    const stale = stage('prepublish-stale')
    const manifest = join(stale, 'npm', 'darwin-x64', 'package.json')
    writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), version: '0.0.9' }))
    const original = readFileSync(join(stale, 'package.json'), 'utf8')
    let r = prepublish(stale)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('index-lock-darwin-x64')
    expect(r.stderr).toContain('0.0.9')
    expect(readFileSync(join(stale, 'package.json'), 'utf8')).toBe(original)

    const missing = stage('prepublish-missing')
    rmSync(join(missing, 'npm', 'linux-arm64-musl'), { recursive: true })
    r = prepublish(missing)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(join('npm', 'linux-arm64-musl', 'package.json'))
  })
})

// Generous per-test time: tsc, vitest and npm on a shared, busy 2-core machine.
describe('installed into a fresh TypeScript project', { timeout: 90_000 }, () => {
  let project = ''
  const node = (script: string) => ok(process.execPath, [script], project)

  beforeAll(() => {
    project = join(work, 'consumer')
    cpSync(TEMPLATES, project, { recursive: true })
    writeFileSync(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'index-lock-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
    )
    // The same versions as this repository's, so npm's cache has them.
    const tools = ['typescript', 'vitest', '@types/node'].map((p) => `${p}@${versionIn(ROOT, p)}`)
    ok(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-save', tarball, ...tools],
      project,
      120_000,
    )
  }, 150_000)

  it('installs the package files, not a link to the repository', () => {
    const installed = join(project, 'node_modules', 'index-lock')
    expect(realpathSync(installed)).toBe(installed)
    expect(existsSync(join(installed, BINARY))).toBe(true)
    expect(existsSync(join(installed, 'src'))).toBe(false)
  })

  it('require() from CommonJS gives every export', () => {
    const out = JSON.parse(node('plain.cjs'))
    expect(out.resolved).toBe(join(project, 'node_modules', 'index-lock', 'index.js'))
    expect(out.version).toBe(rootPkg.version)
    expect(out.exports).toEqual(VALUE_EXPORTS)
    for (const name of VALUE_EXPORTS) expect(out.types[name]).toBe('function')
  })

  it('import from ESM gives the same names and the same module instance', () => {
    const out = JSON.parse(node('plain.mjs'))
    expect(out.resolved).toBe(`file://${join(project, 'node_modules', 'index-lock', 'index.mjs')}`)
    expect(out.named).toEqual(VALUE_EXPORTS)
    expect(out.hasDefault).toBe(true)
    expect(out.sameInstance).toBe(true)
    expect(out.value).toBe(42)
  })

  it('index.d.ts declares exactly what the package exports at run time', () => {
    const dts = readFileSync(join(project, 'node_modules', 'index-lock', 'index.d.ts'), 'utf8')
    const { values, types } = declaredExports(dts)
    expect(values).toEqual(VALUE_EXPORTS)
    // Every declared export, type or value, is used by the strict consumer.
    const consumer = readFileSync(join(project, 'consumer.mts'), 'utf8')
    const imported = consumer.slice(consumer.indexOf('import {'), consumer.indexOf("} from 'index-lock'"))
    for (const name of [...values, ...types]) expect(imported).toMatch(new RegExp(`\\b${name}\\b`))
  })

  it('tsc --strict accepts a consumer of every export (nodenext, node16, bundler)', () => {
    // Generated from what the installed package really exports, so a run-time export missing
    // from index.d.ts fails to compile.
    const runtime: string[] = JSON.parse(node('plain.cjs')).exports
    writeFileSync(
      join(project, 'all-exports.mts'),
      `import { ${runtime.join(', ')} } from 'index-lock'\nexport const all = [${runtime.join(', ')}] as const\n`,
    )
    const tsc = join(project, 'node_modules', '.bin', 'tsc')
    for (const config of ['tsconfig.nodenext.json', 'tsconfig.node16.json', 'tsconfig.bundler.json']) {
      ok(tsc, ['-p', config], project)
    }
  })

  it('.mts and .cts files compiled by tsc run against the real addon', () => {
    ok(join(project, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], project)
    expect(JSON.parse(node(join('dist', 'run-esm.mjs')))).toEqual({ n: 20, seen: 20, timeout: 'ELOCKTIMEOUT' })
    expect(JSON.parse(node(join('dist', 'run-cjs.cjs')))).toEqual({ n: 2, corrupt: 'ECORRUPT' })
  })

  it("the project's own vitest suite passes", () => {
    const report = join(project, 'vitest-report.json')
    ok(
      join(project, 'node_modules', '.bin', 'vitest'),
      ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
      project,
    )
    const r = JSON.parse(readFileSync(report, 'utf8'))
    expect(r.numFailedTests).toBe(0)
    expect(r.numPassedTests).toBe(4)
  })

  it('installs the index-lock command', () => {
    const out = ok(join(project, 'node_modules', '.bin', 'index-lock'), ['--version'], project)
    expect(out.trim()).toBe(rootPkg.version)
  })

  it(`loads the binary from the ${TARGET} platform package when it is not next to index.js`, () => {
    // The release layout: the root package without a binary, plus npm/<platform> packed with the
    // binary that `napi artifacts` would have put there.
    const staged = join(work, `stage-${TARGET}`)
    cpSync(join(ROOT, 'npm', TARGET), staged, { recursive: true })
    cpSync(join(ROOT, BINARY), join(staged, BINARY))
    const platformTarball = pack(staged)
    expect(ok('tar', ['-tzf', platformTarball], work).split('\n').filter(Boolean).sort()).toEqual(
      ['package/README.md', `package/${BINARY}`, 'package/package.json'].sort(),
    )
    const app = join(work, 'split')
    cpSync(join(project, 'node_modules', 'index-lock'), join(app, 'node_modules', 'index-lock'), {
      recursive: true,
      filter: (src) => !src.endsWith('.node'),
    })
    const target = join(app, 'node_modules', `index-lock-${TARGET}`)
    mkdirSync(target, { recursive: true })
    ok('tar', ['-xzf', platformTarball, '-C', target, '--strip-components=1'], work)
    const script = join(app, 'use.cjs')
    writeFileSync(
      script,
      "const { updateJsonSync } = require('index-lock')\n" +
        "const found = require.resolve('index-lock-" +
        TARGET +
        "')\n" +
        "console.log(JSON.stringify({ found, n: updateJsonSync(__dirname + '/d.json', (c) => ({ n: c.n + 1 }), { default: { n: 0 } }).n }))\n",
    )
    expect(JSON.parse(ok(process.execPath, [script], app))).toEqual({ found: join(target, BINARY), n: 1 })
  })

  it("names the platform and what to install when the platform's binary is missing", () => {
    // A copy of the installed package without its .node file, as on a platform with no binary.
    const bare = join(work, 'no-binary')
    cpSync(join(project, 'node_modules', 'index-lock'), join(bare, 'node_modules', 'index-lock'), {
      recursive: true,
      filter: (src) => !src.endsWith('.node'),
    })
    const script = join(bare, 'load.cjs')
    writeFileSync(
      script,
      "try { require('index-lock'); console.log('{}') } catch (e) {" +
        ' console.log(JSON.stringify({ message: e.message, code: e.code, cause: Boolean(e.cause) })) }\n',
    )
    const err = JSON.parse(ok(process.execPath, [script], bare))
    expect(err.message).toContain(TARGET)
    expect(err.message).toMatch(new RegExp(`npm i(nstall)? index-lock-${TARGET}`))
    expect(err.message).toMatch(/build .*from source/i)
    expect(err.message).toMatch(/cargo|rust/i)
    expect(err.code).toBe('INDEX_LOCK_NO_BINARY')
    expect(err.cause).toBe(true)
  })
})
