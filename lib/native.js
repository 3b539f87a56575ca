'use strict'
// The native core (src/, through the generated binding.js): loading it with a message that says
// what to install, and the one decoder of its errors. Every call into it that can fail goes
// through `callNative` / `awaitNative`, so a caller sees the errors Node's own fs functions throw.
//
// The error contract, both ends: src/error.rs (`impl From<Error> for napi::Error`, `Error::to_json`)
// writes `{ code, message, errno?, syscall?, path? }` (a failed sweep adds `removed` and `errors`,
// one such object per file) as JSON into the JS error's message; `fromNative` here is its only
// reader.

const { existsSync } = require('node:fs')
const { join } = require('node:path')
const {
  codedError,
  CorruptFileError,
  LockDeadlockError,
  LockUpgradeError,
  PatchError,
  SweepError,
} = require('./errors')

/** The classes of the native registry's refusals (the lock layer's own are built in lib/errors.js). */
const REFUSALS = new Map([
  ['ELOCKDEADLOCK', LockDeadlockError],
  ['ELOCKUPGRADE', LockUpgradeError],
])

let manifest = {}
try {
  manifest = require('../package.json')
} catch {}

/**
 * The generated loader throws "Cannot find native binding" with a hint about an npm bug, naming
 * neither the platform nor the package to install; rethrow naming both.
 */
function loadBinding() {
  try {
    return require('../binding.js')
  } catch (err) {
    throw bindingError(err)
  }
}

/** `platform-arch-abi` as napi-rs names packages and binaries: linux-x64-gnu, darwin-arm64, ... */
function platformArchAbi() {
  const { platform, arch } = process
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform !== 'linux') return `${platform}-${arch}`
  let glibc = true
  try {
    glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
  } catch {}
  return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
}

const CPUS = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64', powerpc64le: 'ppc64' }
const SYSTEMS = { darwin: 'darwin', windows: 'win32', linux: 'linux', freebsd: 'freebsd', android: 'android' }

/** A Rust target triple as napi-rs names its package: x86_64-unknown-linux-gnu -> linux-x64-gnu. */
function platformOfTriple(triple) {
  const parts = triple.split('-')
  // <cpu>-<vendor>-<system>[-<abi>], or <cpu>-<system>-<abi> (no vendor).
  const [cpu, system, abi] =
    parts.length === 3 && !(parts[2] in SYSTEMS) ? [parts[0], parts[1], parts[2]] : [parts[0], parts[2], parts[3]]
  const platform = `${SYSTEMS[system] ?? system}-${CPUS[cpu] ?? cpu}`
  return abi && system !== 'darwin' && system !== 'android' ? `${platform}-${abi}` : platform
}

/** The platforms with a prebuilt binary package: package.json `napi.targets`, as napi-rs names them. */
const PREBUILT = (manifest.napi?.targets ?? []).map(platformOfTriple)

/** Whether this is a clone of the repository: the published package leaves Cargo.toml out. */
function isCheckout() {
  return existsSync(join(__dirname, '..', 'Cargo.toml'))
}

function bindingError(err) {
  const target = platformArchAbi()
  const version = manifest.version ? `@${manifest.version}` : ''
  // Why each candidate failed, less the "not found"s: a binary that exists but does not load
  // (too old a glibc, a version mismatch) says so here.
  const reasons = []
  for (let e = err; e; e = e.cause) {
    const first = String(e?.message).split('\n')[0]
    if (!/^(Cannot find module|Cannot find native binding|Failed to load native binding)/.test(first)) {
      reasons.push(first)
    }
  }
  const lines = [`index-lock: no usable native binary for ${target} (Node ${process.version}).`]
  if (reasons.length) lines.push(`Loading it failed: ${reasons.join('; ')}`)
  if (isCheckout()) {
    // A clone has no platform package to install, and `npm install` there builds nothing.
    lines.push(
      'This is a source checkout of index-lock (Cargo.toml beside package.json): build the addon ' +
        'with `npm run build` (after `npm ci`; it needs a Rust toolchain, cargo).',
    )
  } else {
    if (PREBUILT.includes(target)) {
      lines.push(
        `Install the prebuilt one: npm i index-lock-${target}${version}`,
        '(npm installs it with index-lock as an optional dependency, unless optional dependencies ' +
          'are omitted, e.g. --omit=optional, or a lock file made on another platform leaves it out: ' +
          'then reinstall index-lock without --omit=optional).',
      )
    } else {
      lines.push(`There is no prebuilt binary for ${target}; prebuilt: ${PREBUILT.join(', ')}.`)
    }
    lines.push(
      'Or build it from source with a Rust toolchain (cargo): in a clone of the index-lock ' +
        'repository run `npm ci && npm run build`, then point NAPI_RS_NATIVE_LIBRARY_PATH at the ' +
        `built index-lock.${target}.node.`,
    )
  }
  const out = new Error(lines.join('\n'), { cause: err })
  out.code = 'INDEX_LOCK_NO_BINARY'
  return out
}

const native = loadBinding()

/** The JSON a native error carries in its message (undefined: another error). */
function nativeInfo(err) {
  try {
    return JSON.parse(err?.message)
  } catch {
    return undefined
  }
}

/** A native error rebuilt as the error Node's own fs functions throw; any other error as it is. */
function fromNative(err) {
  const info = nativeInfo(err)
  if (info === null || typeof info !== 'object') return err
  if (Array.isArray(info.errors)) {
    const errors = info.errors.map((e) => fromNative(new Error(JSON.stringify(e))))
    return new SweepError(errors, info.message, info.removed)
  }
  const Refusal = REFUSALS.get(info.code)
  if (Refusal) return new Refusal(info.path, info.message)
  if (info.code === 'ECORRUPT') {
    // A file the native JSON engine could not parse, reported as readJson reports it.
    const position =
      info.line === undefined ? undefined : { line: info.line, column: info.column, offset: info.position }
    const detail = position
      ? `${info.reason} at line ${info.line} column ${info.column} (position ${info.position})`
      : info.reason
    return new CorruptFileError(info.path, detail, position)
  }
  if (info.code === 'EPATCH') return new PatchError(info.message, info.path, info.index, info.op)
  // As Node's own errors of these codes: ERR_INVALID_ARG_VALUE a TypeError, ERR_OUT_OF_RANGE a
  // RangeError (a document nested too deep).
  const Ctor = info.code === 'ERR_INVALID_ARG_VALUE' ? TypeError : info.code === 'ERR_OUT_OF_RANGE' ? RangeError : Error
  const out = codedError(Ctor, info.code, info.message)
  for (const field of ['errno', 'syscall', 'path']) {
    if (info[field] !== undefined) out[field] = info[field]
  }
  // The save failed after its rename (its directory fsync): the file holds the new content.
  if (info.renamed === true) out.renamed = true
  return out
}

function callNative(fn) {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

/** `callNative` for the native core's promises. */
async function awaitNative(promise) {
  try {
    return await promise
  } catch (err) {
    throw fromNative(err)
  }
}

module.exports = { native, fromNative, callNative, awaitNative, PREBUILT, platformOfTriple }
