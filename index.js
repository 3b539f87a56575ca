'use strict'
// The thin JS surface over the native core: argument checks, error classes, reentrancy through
// AsyncLocalStorage, and JSON parse/stringify (which V8 does fastest). Locking and file IO live
// in Rust (src/).

const { AsyncLocalStorage } = require('node:async_hooks')
const { dirname } = require('node:path')
const native = loadBinding()

// ---------------------------------------------------------------------------------------------
// Loading the native core

/**
 * The generated loader (binding.js) throws "Cannot find native binding" with a hint about an npm
 * bug, naming neither the platform nor the package to install; rethrow naming both.
 */
function loadBinding() {
  try {
    return require('./binding.js')
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

function bindingError(err) {
  // The prebuilt binaries (package.json `napi.targets`), as `index-lock-<platform>` packages.
  const prebuilt = [
    'linux-x64-gnu',
    'linux-arm64-gnu',
    'linux-x64-musl',
    'linux-arm64-musl',
    'darwin-x64',
    'darwin-arm64',
    'win32-x64-msvc',
  ]
  const target = platformArchAbi()
  let version = ''
  try {
    version = `@${require('./package.json').version}`
  } catch {}
  // Why each candidate failed, less the "not found"s: a binary that exists but does not load
  // (too old a glibc, a version mismatch) says so here.
  const reasons = []
  for (let e = err; e; e = e.cause) {
    const first = String(e && e.message).split('\n')[0]
    if (!/^(Cannot find module|Cannot find native binding|Failed to load native binding)/.test(first)) {
      reasons.push(first)
    }
  }
  const lines = [`index-lock: no usable native binary for ${target} (Node ${process.version}).`]
  if (reasons.length) lines.push(`Loading it failed: ${reasons.join('; ')}`)
  if (prebuilt.includes(target)) {
    lines.push(
      `Install the prebuilt one: npm i index-lock-${target}${version}`,
      '(npm installs it with index-lock as an optional dependency, unless optional dependencies ' +
        'are omitted, e.g. --omit=optional, or a lock file made on another platform leaves it out).',
    )
  } else {
    lines.push(`There is no prebuilt binary for ${target}; prebuilt: ${prebuilt.join(', ')}.`)
  }
  lines.push(
    'Or build it from source with a Rust toolchain (cargo): in a clone of the index-lock ' +
      `repository run \`npm install\`, then point NAPI_RS_NATIVE_LIBRARY_PATH at the built ` +
      `index-lock.${target}.node.`,
  )
  const out = new Error(lines.join('\n'), { cause: err })
  out.code = 'INDEX_LOCK_NO_BINARY'
  return out
}

const DEFAULT_TIMEOUT_MS = 30_000
// setTimeout fires at once for delays above this; longer timeouts are as good as forever.
const TIMER_MAX_MS = 2 ** 31 - 1
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// ---------------------------------------------------------------------------------------------
// Errors

class LockTimeoutError extends Error {
  constructor(path, mode, timeoutMs, holders) {
    const pids = [...new Set(holders.map((h) => h.pid))]
    const held = pids.length ? `held by pid ${pids.join(', ')}` : 'holder unknown'
    super(`Timed out after ${timeoutMs} ms waiting for the ${mode} lock on '${path}' (${held})`)
    this.name = 'LockTimeoutError'
    this.code = 'ELOCKTIMEOUT'
    this.path = path
    this.mode = mode
    this.timeoutMs = timeoutMs
    this.holders = pids.map((pid) => ({ pid }))
  }
}

class CorruptFileError extends Error {
  constructor(path, detail, position) {
    super(`Corrupt JSON in '${path}': ${detail}`)
    this.name = 'CorruptFileError'
    this.code = 'ECORRUPT'
    this.path = path
    if (position) {
      this.line = position.line
      this.column = position.column
      this.position = position.offset
    }
  }
}

class AbortError extends Error {
  constructor(signal) {
    super('The operation was aborted', { cause: signal.reason })
    this.name = 'AbortError'
    this.code = 'ABORT_ERR'
  }
}

function codedError(Ctor, code, message) {
  const err = new Ctor(message)
  err.code = code
  return err
}

function upgradeError(path) {
  return codedError(
    Error,
    'ELOCKUPGRADE',
    `Cannot take the exclusive lock on '${path}' while this async call chain holds it shared; ` +
      'take it exclusive from the start',
  )
}

function received(value) {
  if (value === undefined || value === null) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const ctor = value.constructor && value.constructor.name
    return ctor ? ` Received an instance of ${ctor}` : ' Received [object]'
  }
  let shown = typeof value === 'bigint' ? `${value}n` : String(value)
  if (typeof value === 'string') shown = `'${value.length > 28 ? `${value.slice(0, 25)}...` : value}'`
  return ` Received type ${typeof value} (${shown})`
}

function invalidArgType(name, expected, value) {
  return codedError(
    TypeError,
    'ERR_INVALID_ARG_TYPE',
    `The "${name}" argument must be ${expected}.${received(value)}`,
  )
}

function invalidArgValue(name, value, reason) {
  return codedError(
    TypeError,
    'ERR_INVALID_ARG_VALUE',
    `The argument '${name}' ${reason}.${received(value)}`,
  )
}

function outOfRange(name, range, value) {
  return codedError(
    RangeError,
    'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}.${received(value)}`,
  )
}

// The native core reports errors as JSON (code, message and, for OS errors, errno, syscall and
// path); rebuild them as the errors Node's own fs functions throw.
function fromNative(err) {
  let info
  try {
    info = JSON.parse(err.message)
  } catch {
    return err
  }
  const Ctor = info.code === 'ERR_INVALID_ARG_VALUE' ? TypeError : Error
  const out = codedError(Ctor, info.code, info.message)
  for (const field of ['errno', 'syscall', 'path']) {
    if (info[field] !== undefined) out[field] = info[field]
  }
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

// ---------------------------------------------------------------------------------------------
// Argument checks

function checkPath(path) {
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path)
  if (path === '') throw invalidArgValue('path', path, 'must be a non-empty string')
  if (path.includes('\0')) throw invalidArgValue('path', path, 'must be a string without null bytes')
}

/** Checks a path argument that may also be a non-empty array of paths (a lock set). */
function checkPaths(pathOrPaths) {
  if (!Array.isArray(pathOrPaths)) return checkPath(pathOrPaths)
  if (pathOrPaths.length === 0) throw invalidArgValue('paths', pathOrPaths, 'must name at least one path')
  pathOrPaths.forEach((p, i) => {
    if (typeof p !== 'string') throw invalidArgType(`paths[${i}]`, 'of type string', p)
    checkPath(p)
  })
}

/**
 * Checked path(s) as `[{ key, path }]`: one per file, in the global lock order, each checked
 * against the `networkFs` policy.
 */
function targetsOf(pathOrPaths, networkFs) {
  if (!Array.isArray(pathOrPaths)) {
    const key = resolveKey(pathOrPaths)
    checkFilesystem(key, pathOrPaths, networkFs)
    return [{ key, path: pathOrPaths }]
  }
  const byKey = new Map()
  for (const path of pathOrPaths) {
    const key = resolveKey(path)
    checkFilesystem(key, path, networkFs)
    if (!byKey.has(key)) byKey.set(key, { key, path })
  }
  // Every caller takes a set in the order of the canonical paths, so overlapping sets taken by
  // two callers cannot deadlock.
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

// flock is advisory and local: on SMB, sshfs and other FUSE mounts, NFS with nolock and the like,
// it does not exclude writers on other hosts. Each directory is identified once per process.
const filesystems = new Map()
const warned = new Set()

function checkFilesystem(key, path, policy) {
  if (policy === 'allow') return
  const dir = dirname(key)
  let info = filesystems.get(dir)
  if (info === undefined) {
    try {
      info = native.filesystemInfo(dir)
    } catch {
      info = null // the lock or write itself will report what is wrong with the directory
    }
    if (filesystems.size >= 4096) filesystems.clear()
    filesystems.set(dir, info)
  }
  if (info?.coherence !== 'unsafe') return
  const message =
    `'${path}' is on ${info.fstype} (${info.reason}): index-lock's flock there does not exclude ` +
    'writers on other hosts, so their updates can be lost. Keep the data directory on a local ' +
    "filesystem, or pass { networkFs: 'allow' } if only this host writes it."
  if (policy === 'error') {
    const err = codedError(Error, 'INDEX_LOCK_NETWORK_FS', message)
    err.path = path
    err.fstype = info.fstype
    throw err
  }
  if (!warned.has(dir)) {
    warned.add(dir)
    process.emitWarning(message, { code: 'INDEX_LOCK_NETWORK_FS', detail: `filesystem: ${info.fstype}` })
  }
}

/** `checkFilesystem` for a write, which has no lock key yet: a path that does not resolve is left
 * to the write itself to report. */
function checkWriteFilesystem(path, policy) {
  if (policy === 'allow') return
  let key
  try {
    key = native.resolvePath(path)
  } catch {
    return
  }
  checkFilesystem(key, path, policy)
}

function checkFunction(fn, name) {
  if (typeof fn !== 'function') throw invalidArgType(name, 'of type function', fn)
}

function checkOptions(options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  return options
}

function checkBoolean(value, name, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
  return value
}

function checkMode(mode) {
  if (mode === undefined) return 'exclusive'
  if (mode !== 'exclusive' && mode !== 'shared') {
    throw invalidArgValue('options.mode', mode, "must be 'exclusive' or 'shared'")
  }
  return mode
}

function checkTimeout(timeoutMs) {
  if (timeoutMs === undefined) return DEFAULT_TIMEOUT_MS
  if (typeof timeoutMs !== 'number') throw invalidArgType('options.timeoutMs', 'of type number', timeoutMs)
  if (Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw outOfRange('options.timeoutMs', '>= 0 (Infinity waits forever)', timeoutMs)
  }
  return timeoutMs
}

function checkSignal(signal) {
  if (signal === undefined) return undefined
  if (
    signal === null ||
    typeof signal !== 'object' ||
    typeof signal.aborted !== 'boolean' ||
    typeof signal.addEventListener !== 'function'
  ) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal)
  }
  return signal
}

function checkNetworkFs(policy) {
  if (policy === undefined) return 'warn'
  if (policy !== 'warn' && policy !== 'error' && policy !== 'allow') {
    throw invalidArgValue('options.networkFs', policy, "must be 'warn', 'error' or 'allow'")
  }
  return policy
}

function lockOptions(options) {
  const o = checkOptions(options)
  return {
    mode: checkMode(o.mode),
    timeoutMs: checkTimeout(o.timeoutMs),
    signal: checkSignal(o.signal),
    networkFs: checkNetworkFs(o.networkFs),
  }
}

function checkSpace(space) {
  if (space === undefined || typeof space === 'string') return space
  if (typeof space !== 'number') throw invalidArgType('options.space', 'of type number or string', space)
  if (!Number.isInteger(space) || space < 0 || space > 10) {
    throw outOfRange('options.space', 'an integer from 0 to 10', space)
  }
  return space
}

function checkFileMode(mode) {
  if (mode === undefined) return undefined
  if (typeof mode !== 'number') throw invalidArgType('options.mode', 'of type number', mode)
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw outOfRange('options.mode', 'an integer >= 0 && <= 0o7777', mode)
  }
  return mode
}

function checkData(data) {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  throw invalidArgType('data', 'of type string or an instance of Uint8Array', data)
}

// ---------------------------------------------------------------------------------------------
// Locks

const handleToken = Symbol('LockHandle')

/** A held lock (or set of locks, released in reverse order). */
class LockHandle {
  #locks
  #paths
  #mode

  constructor(token, locks, paths, mode) {
    if (token !== handleToken) throw new TypeError('Illegal constructor: use acquire() or tryAcquire()')
    this.#locks = locks
    this.#paths = paths
    this.#mode = mode
  }

  /** The path this lock was requested for, as given (for a set: the first one given). */
  get path() {
    return this.#paths[0]
  }

  /** Every path this handle holds, as given. */
  get paths() {
    return [...this.#paths]
  }

  get mode() {
    return this.#mode
  }

  get released() {
    return this.#locks.every((l) => l.released)
  }

  release() {
    releaseAll(this.#locks)
    return Promise.resolve()
  }

  [asyncDispose]() {
    return this.release()
  }
}

function releaseAll(locks) {
  for (let i = locks.length - 1; i >= 0; i--) locks[i].release()
}

function resolveKey(path) {
  return callNative(() => native.resolvePath(path))
}

/** `timeoutMs` for a native call: `null` (forever) where a JS timer could not express it. */
function finiteTimeout(timeoutMs) {
  return timeoutMs <= TIMER_MAX_MS ? timeoutMs : null
}

/**
 * Joins the queue of `key` synchronously (so JS call order is queue order) and resolves with the
 * native lock. Fast path: a free lock is taken on this thread with a non-blocking flock.
 */
function lockKey(key, path, { mode, timeoutMs, signal }) {
  if (signal?.aborted) return Promise.reject(new AbortError(signal))
  const exclusive = mode === 'exclusive'
  let now
  try {
    now = callNative(() => native.tryLock(key, exclusive))
  } catch (err) {
    return Promise.reject(err)
  }
  if (now) return Promise.resolve(now)
  if (timeoutMs === 0) {
    return Promise.reject(new LockTimeoutError(path, mode, 0, native.lockHolders(key)))
  }
  const id = native.nextWaitId()
  const pending = native.lock(key, exclusive, id)
  return new Promise((resolve, reject) => {
    let failure = null
    const cancel = (makeError) => {
      // False when the grant is already on its way: then it wins, and nothing is leaked.
      if (native.cancelWait(key, id)) failure = makeError()
    }
    const ms = finiteTimeout(timeoutMs)
    const timer =
      ms === null
        ? null
        : setTimeout(() => cancel(() => new LockTimeoutError(path, mode, timeoutMs, native.lockHolders(key))), ms)
    const onAbort = () => cancel(() => new AbortError(signal))
    signal?.addEventListener('abort', onAbort, { once: true })
    const settle = () => {
      if (timer) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    pending.then(
      (lock) => {
        settle()
        resolve(lock)
      },
      (err) => {
        settle()
        reject(failure ?? fromNative(err))
      },
    )
  })
}

/** Blocks this thread for the lock of `key`; throws LockTimeoutError when `timeoutMs` passes. */
function lockKeySync(key, path, { mode, timeoutMs }) {
  const lock = callNative(() => native.lockSync(key, mode === 'exclusive', finiteTimeout(timeoutMs)))
  if (!lock) throw new LockTimeoutError(path, mode, timeoutMs, native.lockHolders(key))
  return lock
}

/** The options for the next lock of a set whose whole wait ends at `deadline`. */
function leftOf(opts, deadline) {
  return { ...opts, timeoutMs: Math.max(0, Math.min(opts.timeoutMs, deadline - Date.now())) }
}

/** Takes every lock of `targets` in order within one overall timeout; on failure none is kept. */
async function lockSet(targets, opts) {
  if (targets.length === 1) return [await lockKey(targets[0].key, targets[0].path, opts)]
  const deadline = Date.now() + opts.timeoutMs
  const taken = []
  try {
    for (const { key, path } of targets) taken.push(await lockKey(key, path, leftOf(opts, deadline)))
  } catch (err) {
    releaseAll(taken)
    throw err
  }
  return taken
}

function lockSetSync(targets, opts) {
  const deadline = Date.now() + opts.timeoutMs
  const taken = []
  try {
    for (const { key, path } of targets) taken.push(lockKeySync(key, path, leftOf(opts, deadline)))
  } catch (err) {
    releaseAll(taken)
    throw err
  }
  return taken
}

// What the current call chain holds: canonical path -> { mode, active }. A hold is shared by
// reference with nested chains, so work that outlives the lock sees it go inactive. Sync calls
// see the same store, so sync and async sections nest in each other.
const holds = new AsyncLocalStorage()

/**
 * The targets the current chain does not hold yet; throws ELOCKUPGRADE for an exclusive request
 * on a path the chain holds shared.
 */
function notHeld(targets, mode) {
  const store = holds.getStore()
  return targets.filter(({ key, path }) => {
    const hold = store?.get(key)
    if (!hold?.active) return true
    if (hold.mode === 'shared' && mode === 'exclusive') throw upgradeError(path)
    return false
  })
}

/** Runs `fn` in a chain that holds `targets` in `mode`; `done` is called when it no longer does. */
function runHolding(targets, mode, fn) {
  const mine = { mode, active: true }
  const store = new Map(holds.getStore())
  for (const { key } of targets) store.set(key, mine)
  return { result: () => holds.run(store, fn), end: () => (mine.active = false) }
}

/** Runs `fn` under the locks of `targets`; reentrant for the same async chain. */
function runLocked(targets, opts, fn) {
  const need = notHeld(targets, opts.mode)
  if (need.length === 0) return (async () => fn())()
  return lockSet(need, opts).then(async (locks) => {
    const run = runHolding(need, opts.mode, fn)
    try {
      return await run.result()
    } finally {
      run.end()
      releaseAll(locks)
    }
  })
}

function checkSyncResult(value, name) {
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
    throw codedError(
      TypeError,
      'ERR_INVALID_RETURN_VALUE',
      `The ${name} of a synchronous call returned a promise; the lock does not cover async work, ` +
        'use the async function instead',
    )
  }
  return value
}

function runLockedSync(targets, opts, fn) {
  const need = notHeld(targets, opts.mode)
  if (need.length === 0) return checkSyncResult(fn(), 'fn')
  const locks = lockSetSync(need, opts)
  const run = runHolding(need, opts.mode, fn)
  try {
    return checkSyncResult(run.result(), 'fn')
  } finally {
    run.end()
    releaseAll(locks)
  }
}

function syncLockOptions(options) {
  const o = checkOptions(options)
  if (o.signal !== undefined) {
    throw invalidArgValue('options.signal', o.signal, 'is not supported by synchronous calls (they cannot be interrupted)')
  }
  return { mode: checkMode(o.mode), timeoutMs: checkTimeout(o.timeoutMs), networkFs: checkNetworkFs(o.networkFs) }
}

async function withIndexLock(pathOrPaths, fn, options) {
  checkPaths(pathOrPaths)
  checkFunction(fn, 'fn')
  const opts = lockOptions(options)
  return runLocked(targetsOf(pathOrPaths, opts.networkFs), opts, fn)
}

function withIndexLockSync(pathOrPaths, fn, options) {
  checkPaths(pathOrPaths)
  checkFunction(fn, 'fn')
  const opts = syncLockOptions(options)
  return runLockedSync(targetsOf(pathOrPaths, opts.networkFs), opts, fn)
}

function pathsOf(pathOrPaths, targets) {
  return Array.isArray(pathOrPaths) ? targets.map((t) => t.path) : [pathOrPaths]
}

async function acquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = lockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs)
  const locks = await lockSet(targets, opts)
  return new LockHandle(handleToken, locks, pathsOf(pathOrPaths, targets), opts.mode)
}

function acquireSync(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = syncLockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs)
  const locks = lockSetSync(targets, opts)
  return new LockHandle(handleToken, locks, pathsOf(pathOrPaths, targets), opts.mode)
}

function tryAcquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const o = checkOptions(options)
  const mode = checkMode(o.mode)
  const targets = targetsOf(pathOrPaths, checkNetworkFs(o.networkFs))
  const locks = []
  for (const { key } of targets) {
    let lock
    try {
      lock = callNative(() => native.tryLock(key, mode === 'exclusive'))
    } catch (err) {
      releaseAll(locks)
      throw err
    }
    if (!lock) {
      releaseAll(locks)
      return null
    }
    locks.push(lock)
  }
  return new LockHandle(handleToken, locks, pathsOf(pathOrPaths, targets), mode)
}

// ---------------------------------------------------------------------------------------------
// Files

function writeOptions(options) {
  const o = checkOptions(options)
  return {
    fsync: checkBoolean(o.fsync, 'options.fsync', true),
    mode: checkFileMode(o.mode),
    networkFs: checkNetworkFs(o.networkFs),
  }
}

async function atomicWrite(path, data, options) {
  checkPath(path)
  const bytes = checkData(data)
  const { fsync, mode, networkFs } = writeOptions(options)
  checkWriteFilesystem(path, networkFs)
  await awaitNative(native.atomicWrite(path, bytes, fsync, mode))
}

function atomicWriteSync(path, data, options) {
  checkPath(path)
  const bytes = checkData(data)
  const { fsync, mode, networkFs } = writeOptions(options)
  checkWriteFilesystem(path, networkFs)
  callNative(() => native.atomicWriteSync(path, bytes, fsync, mode))
}

function notFound(path) {
  const err = codedError(Error, 'ENOENT', `ENOENT: no such file or directory, open '${path}'`)
  err.errno = -2
  err.syscall = 'open'
  err.path = path
  return err
}

function copyOf(value) {
  try {
    return structuredClone(value)
  } catch {
    return value
  }
}

/** How to read a JSON file: its `default`, if any, as a fresh copy per call when asked. */
function readPlan(o, fresh) {
  return { hasDefault: o.default !== undefined, fallback: fresh ? () => copyOf(o.default) : () => o.default }
}

function decode(bytes) {
  const text = bytes.toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** Parses the bytes of a JSON file (`null`: missing) the way every JSON reader here does. */
function parseJson(path, bytes, plan) {
  return parseText(path, bytes, bytes === null ? null : decode(bytes), plan)
}

/** `parseJson` for bytes already decoded to `text`. */
function parseText(path, bytes, text, { hasDefault, fallback }) {
  if (bytes === null) {
    if (hasDefault) return fallback()
    throw notFound(path)
  }
  if (text.trim() === '') {
    if (hasDefault) return fallback()
    throw new CorruptFileError(path, 'the file is empty')
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    const at = native.jsonErrorPosition(bytes)
    if (!at) throw new CorruptFileError(path, err.message)
    throw new CorruptFileError(path, `${at.reason} at line ${at.line} column ${at.column} (position ${at.offset})`, at)
  }
}

function readBytes(path) {
  return awaitNative(native.readFile(path))
}

async function readJson(path, options) {
  checkPath(path)
  const plan = readPlan(checkOptions(options), false)
  return parseJson(path, await readBytes(path), plan)
}

function readJsonSync(path, options) {
  checkPath(path)
  const plan = readPlan(checkOptions(options), false)
  return parseJson(path, callNative(() => native.readFileSync(path)), plan)
}

function serialize(value, space) {
  const text = JSON.stringify(value, null, space)
  if (text === undefined) throw invalidArgValue('value', value, 'must be serializable as JSON')
  return `${text}\n`
}

function jsonWriteOptions(o) {
  return {
    fsync: checkBoolean(o.fsync, 'options.fsync', true),
    space: checkSpace(o.space),
    networkFs: checkNetworkFs(o.networkFs),
  }
}

async function writeJson(path, value, options) {
  checkPath(path)
  const { fsync, space, networkFs } = jsonWriteOptions(checkOptions(options))
  checkWriteFilesystem(path, networkFs)
  await awaitNative(native.atomicWrite(path, serialize(value, space), fsync, undefined))
}

function writeJsonSync(path, value, options) {
  checkPath(path)
  const { fsync, space, networkFs } = jsonWriteOptions(checkOptions(options))
  checkWriteFilesystem(path, networkFs)
  callNative(() => native.atomicWriteSync(path, serialize(value, space), fsync, undefined))
}

/** Checks shared by updateJson and updateJsonSync. */
function updatePlan(path, mutator, options, lockOpts) {
  checkPath(path)
  checkFunction(mutator, 'mutator')
  const o = checkOptions(options)
  const opts = lockOpts(o)
  if (opts.mode !== 'exclusive') {
    throw invalidArgValue('options.mode', o.mode, "must be 'exclusive' for an update (it needs the exclusive lock)")
  }
  // A fresh copy of the default each time, so a mutator editing it in place cannot change it
  // for later calls.
  return { targets: targetsOf(path, opts.networkFs), opts, read: readPlan(o, true), ...jsonWriteOptions(o) }
}

// Group commit. Concurrent updateJson calls on one path in this thread coalesce while they wait
// for the lock: one acquisition, one read, the mutators in call order, one atomic write (one
// fsync pair), then each caller gets the state after its own mutator. A mutator that throws (or
// returns something JSON cannot hold) fails only its own call; the next one starts from the last
// good state, exactly as if the calls had run one after another.

/** Most calls one write carries, and the most state copies (calls x file size) one batch holds. */
const MAX_BATCH_CALLS = 64
const MAX_BATCH_BYTES = 64 * 2 ** 20
const MISSING = Symbol('missing')
/** Open batches (waiting for their lock) by path and write options. */
const batches = new Map()
/** Size of the last write per path, to bound a batch's memory. */
const writtenBytes = new Map()

function batchLimit(key) {
  const size = writtenBytes.get(key) ?? 0
  return Math.max(1, Math.min(MAX_BATCH_CALLS, Math.floor(MAX_BATCH_BYTES / Math.max(size, 1))))
}

async function updateJson(path, mutator, options) {
  const plan = updatePlan(path, mutator, options, lockOptions)
  // Inside a section that already holds the path (or holds it shared): run directly, or refuse.
  if (notHeld(plan.targets, 'exclusive').length === 0) return runLocked(plan.targets, plan.opts, () => updateOnce(path, plan, mutator))
  return joinBatch(path, plan, mutator)
}

/** One read-mutate-write, for a caller that already holds the lock. */
async function updateOnce(path, plan, mutator) {
  const current = parseJson(path, await readBytes(path), plan.read)
  const returned = await mutator(current)
  const next = returned === undefined ? current : returned
  await awaitNative(native.atomicWrite(path, serialize(next, plan.space), plan.fsync, undefined))
  return next
}

function joinBatch(path, plan, mutator) {
  const { key } = plan.targets[0]
  const { timeoutMs, signal } = plan.opts
  if (signal?.aborted) return Promise.reject(new AbortError(signal))
  const id = `${key}\0${plan.fsync}\0${plan.space ?? ''}`
  let batch = batches.get(id)
  if (batch && (timeoutMs === 0 || batch.calls.length >= batch.limit)) {
    // The open batch is still waiting for the lock: a call that may not wait cannot join it,
    // and a full batch closes; the next one queues behind it.
    if (timeoutMs === 0) return Promise.reject(new LockTimeoutError(path, 'exclusive', 0, native.lockHolders(key)))
    batches.delete(id)
    batch = undefined
  }
  if (!batch) {
    try {
      batch = openBatch(id, key, path, plan, timeoutMs === 0)
    } catch (err) {
      return Promise.reject(err)
    }
  }
  const opened = batch
  return new Promise((resolve, reject) => {
    const call = { mutator, read: plan.read, resolve, reject, settled: false, outer: holds.getStore() }
    // The mutator runs in its caller's async context (all AsyncLocalStorage stores, as if it had
    // run alone): the reaction is registered here, in that context, and the batch fires it.
    // (AsyncLocalStorage.snapshot() does the same at ~10 us a call on Node 20.)
    const turn = new Promise((go) => (call.go = go))
    call.ran = turn.then(({ input, store }) => holds.run(store, () => mutator(input)))
    opened.calls.push(call)
    // A call's own timeout and signal apply while its batch waits for the lock.
    const leave = (makeError) => {
      if (opened.started || call.settled) return
      opened.calls.splice(opened.calls.indexOf(call), 1)
      settleCall(call, makeError())
      if (opened.calls.length === 0) opened.abandon()
    }
    const ms = finiteTimeout(timeoutMs)
    const timer =
      ms === null || timeoutMs === 0
        ? null
        : setTimeout(() => leave(() => new LockTimeoutError(path, 'exclusive', timeoutMs, native.lockHolders(key))), ms)
    const onAbort = () => leave(() => new AbortError(signal))
    signal?.addEventListener('abort', onAbort, { once: true })
    call.cleanup = () => {
      if (timer) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  })
}

function settleCall(call, error, value) {
  if (call.settled) return
  call.settled = true
  call.cleanup?.()
  if (error) call.reject(error)
  else call.resolve(value)
}

/** Starts a batch's wait for the lock (taken at once when free). Throws if it cannot even ask. */
function openBatch(id, key, path, plan, mustBeFree) {
  const now = callNative(() => native.tryLock(key, true))
  if (!now && mustBeFree) throw new LockTimeoutError(path, 'exclusive', 0, native.lockHolders(key))
  const batch = { calls: [], started: false, limit: batchLimit(key), abandon: () => {} }
  batches.set(id, batch)
  let granted
  if (now) {
    granted = Promise.resolve(now)
  } else {
    const waitId = native.nextWaitId()
    granted = native.lock(key, true, waitId)
    // Everyone left before the grant: withdraw the request (if the grant is already on its
    // way, runBatch finds no calls and releases it).
    batch.abandon = () => {
      if (batches.get(id) === batch) batches.delete(id)
      native.cancelWait(key, waitId)
    }
  }
  granted.then(
    (lock) => runBatch(id, batch, lock, key, path, plan),
    (err) => {
      if (batches.get(id) === batch) batches.delete(id)
      const error = fromNative(err)
      for (const call of batch.calls) settleCall(call, error)
    },
  )
  return batch
}

async function runBatch(id, batch, lock, key, path, plan) {
  batch.started = true
  if (batches.get(id) === batch) batches.delete(id)
  const calls = batch.calls.filter((c) => !c.settled)
  const hold = { mode: 'exclusive', active: true }
  try {
    if (calls.length === 0) return
    let bytes
    try {
      bytes = await readBytes(path)
    } catch (err) {
      for (const call of calls) settleCall(call, err)
      return
    }
    const fileText = bytes === null ? null : decode(bytes)
    let base
    try {
      base = parseText(path, bytes, fileText, { hasDefault: true, fallback: () => MISSING })
    } catch (err) {
      for (const call of calls) settleCall(call, err)
      return
    }
    // The last good state as text (null: no file yet), and whether `value` is still unshared
    // (the first mutator may have the parsed file itself; later ones get their own copy).
    let text = base === MISSING ? null : fileText
    let value = base
    let fresh = true
    const done = []
    for (const call of calls) {
      let input
      if (value === MISSING) {
        if (!call.read.hasDefault) {
          settleCall(call, bytes === null ? notFound(path) : new CorruptFileError(path, 'the file is empty'))
          continue
        }
        input = call.read.fallback()
      } else {
        input = fresh ? value : JSON.parse(text)
      }
      fresh = false
      try {
        const store = new Map(call.outer)
        store.set(key, hold)
        call.go({ input, store })
        const returned = await call.ran
        const next = returned === undefined ? input : returned
        text = serialize(next, plan.space)
        value = next
        done.push({ call, value: next })
      } catch (err) {
        // Only this call fails; the next starts from the last good state (`text`).
        settleCall(call, err)
      }
    }
    if (done.length === 0) return
    try {
      await awaitNative(native.atomicWrite(path, text, plan.fsync, undefined))
    } catch (err) {
      for (const d of done) settleCall(d.call, err)
      return
    }
    if (writtenBytes.size > 10_000) writtenBytes.clear()
    writtenBytes.set(key, text.length)
    for (const d of done) settleCall(d.call, null, d.value)
  } finally {
    hold.active = false
    lock.release()
  }
}

function updateJsonSync(path, mutator, options) {
  const plan = updatePlan(path, mutator, options, syncLockOptions)
  return runLockedSync(plan.targets, plan.opts, () => {
    const current = parseJson(path, callNative(() => native.readFileSync(path)), plan.read)
    const returned = checkSyncResult(mutator(current), 'mutator')
    const next = returned === undefined ? current : returned
    callNative(() => native.atomicWriteSync(path, serialize(next, plan.space), plan.fsync, undefined))
    return next
  })
}

// ---------------------------------------------------------------------------------------------
// Maintenance

/** Some orphaned temp files could not be removed: `errors` has one fs error per file. */
class SweepError extends AggregateError {
  constructor(errors, message, removed) {
    super(errors, message)
    this.name = 'SweepError'
    // The first failure's fields, so that code/syscall/path read as a single failure's would.
    const [first] = errors
    this.code = first.code
    this.errno = first.errno
    this.syscall = first.syscall
    this.path = first.path
    this.removed = removed
  }
}

/**
 * Removes temp files of `path` left by writers that died mid-save (no writer holds their lock).
 * Resolves with the names removed; rejects with a `SweepError` naming each file it could not
 * remove. Needs no lock: a live writer's temp file is never removed.
 */
async function sweep(path) {
  checkPath(path)
  const key = resolveKey(path)
  try {
    return await native.sweepTemps(key)
  } catch (err) {
    let info
    try {
      info = JSON.parse(err.message)
    } catch {}
    if (!Array.isArray(info?.errors)) throw fromNative(err)
    const errors = info.errors.map((e) => fromNative(new Error(JSON.stringify(e))))
    throw new SweepError(errors, info.message, info.removed)
  }
}

module.exports = {
  withIndexLock,
  withIndexLockSync,
  acquire,
  acquireSync,
  tryAcquire,
  atomicWrite,
  atomicWriteSync,
  readJson,
  readJsonSync,
  writeJson,
  writeJsonSync,
  updateJson,
  updateJsonSync,
  sweep,
  SweepError,
  LockTimeoutError,
  CorruptFileError,
  AbortError,
}
