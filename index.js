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
  /** `waitedMs`: how long the caller waited in all, when that is not `timeoutMs` (a lock set). */
  constructor(path, mode, timeoutMs, holders, waitedMs = timeoutMs) {
    const pids = [...new Set(holders.map((h) => h.pid))]
    const held = pids.length ? `held by pid ${pids.join(', ')}` : 'holder unknown'
    const limit = waitedMs === timeoutMs ? '' : ` (timeoutMs: ${timeoutMs})`
    super(`Timed out after ${Math.round(waitedMs)} ms${limit} waiting for the ${mode} lock on '${path}' (${held})`)
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
  if (space === undefined) return space
  if (typeof space === 'string') {
    // JSON.stringify inserts the string as it is (cut to 10 characters): anything but JSON's own
    // whitespace would be written as invalid JSON.
    if (space.length > 10 || !/^[ \t\n\r]*$/.test(space)) {
      throw invalidArgValue('options.space', space, 'must be at most 10 JSON whitespace characters (space, tab, CR, LF)')
    }
    return space
  }
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

  /** Every path this handle holds, as given, in the order given. */
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

// Every native lock this thread holds beyond the synchronous section running now. A collected
// native lock releases, so a handle the program drops (`if (!tryAcquire(p)) process.exit(1)`, a
// CLI holding a lock for its whole run) would let another process in at the next GC: the set
// keeps them until release(). A terminated worker still frees them, since its teardown runs the
// native finalizers of everything it still references.
const retained = new Set()
/** Requests of this thread queued in the registry: a grant may reach one at any moment. */
let queuedWaits = 0

function retain(lock) {
  retained.add(lock)
  return lock
}

function releaseLock(lock) {
  retained.delete(lock)
  lock.release()
}

function releaseAll(locks) {
  for (let i = locks.length - 1; i >= 0; i--) releaseLock(locks[i])
}

/** Locks this thread holds or awaits across event-loop turns (sections, handles, batches). */
function asyncHeld() {
  return retained.size + queuedWaits + batches.size
}

function resolveKey(path) {
  return callNative(() => native.resolvePath(path))
}

/** `timeoutMs` for a native call: `null` (forever) where a JS timer could not express it. */
function finiteTimeout(timeoutMs) {
  return timeoutMs <= TIMER_MAX_MS ? timeoutMs : null
}

// Node warns about a possible leak once an AbortSignal has more than 10 listeners, which 11 waits
// sharing one signal reach: each signal gets one listener, which calls every wait's callback.
const abortWatches = new WeakMap()

/** Calls `onAbort` once when `signal` aborts; returns the function that stops watching. */
function watchAbort(signal, onAbort) {
  if (!signal) return () => {}
  let watch = abortWatches.get(signal)
  if (!watch) {
    const callbacks = new Set()
    const listener = () => {
      abortWatches.delete(signal)
      for (const callback of [...callbacks]) callback()
    }
    watch = { callbacks, listener }
    abortWatches.set(signal, watch)
    signal.addEventListener('abort', listener, { once: true })
  }
  const mine = watch
  const callback = () => onAbort()
  mine.callbacks.add(callback)
  return () => {
    if (!mine.callbacks.delete(callback) || mine.callbacks.size > 0) return
    if (abortWatches.get(signal) === mine) abortWatches.delete(signal)
    signal.removeEventListener?.('abort', mine.listener)
  }
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
  if (now) return Promise.resolve(retain(now))
  if (timeoutMs === 0) {
    return Promise.reject(new LockTimeoutError(path, mode, 0, native.lockHolders(key)))
  }
  const id = native.nextWaitId()
  const pending = native.lock(key, exclusive, id)
  queuedWaits++
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
    const unwatch = watchAbort(signal, () => cancel(() => new AbortError(signal)))
    const settle = () => {
      queuedWaits--
      if (timer) clearTimeout(timer)
      unwatch()
    }
    pending.then(
      (lock) => {
        settle()
        resolve(retain(lock))
      },
      (err) => {
        settle()
        reject(failure ?? fromNative(err))
      },
    )
  })
}

function syncDeadlockError(path) {
  const err = codedError(
    Error,
    'ELOCKDEADLOCK',
    `Cannot wait synchronously for the lock on '${path}' while this thread holds or awaits other locks ` +
      'asynchronously (an async section, a handle, a queued call): blocking the thread keeps them from ' +
      'being released, so a process waiting for one of them would never let this one in. Use the async ' +
      'function, release them first, or pass timeoutMs: 0',
  )
  err.path = path
  return err
}

/** Blocks this thread for the lock of `key`; throws LockTimeoutError when `timeoutMs` passes. */
function lockKeySync(key, path, { mode, timeoutMs }) {
  const exclusive = mode === 'exclusive'
  // First without waiting: the registry refuses a path this thread holds or awaits, and a free
  // lock needs no wait at all.
  let lock = callNative(() => native.lockSync(key, exclusive, 0))
  if (!lock && timeoutMs !== 0) {
    if (asyncHeld() > 0) throw syncDeadlockError(path)
    lock = callNative(() => native.lockSync(key, exclusive, finiteTimeout(timeoutMs)))
  }
  if (!lock) throw new LockTimeoutError(path, mode, timeoutMs, native.lockHolders(key))
  return lock
}

/** The options for the next lock of a set whose whole wait ends at `deadline`. */
function leftOf(opts, deadline) {
  return { ...opts, timeoutMs: Math.max(0, Math.min(opts.timeoutMs, deadline - Date.now())) }
}

/** A timeout of one step of a longer wait, reported with the caller's `timeoutMs` and real wait. */
function asCallersTimeout(err, timeoutMs, started) {
  if (!(err instanceof LockTimeoutError) || err.timeoutMs === timeoutMs) return err
  return new LockTimeoutError(err.path, err.mode, timeoutMs, err.holders, Date.now() - started)
}

/** Takes every lock of `targets` in order within one overall timeout; on failure none is kept. */
async function lockSet(targets, opts) {
  if (targets.length === 1) return [await lockKey(targets[0].key, targets[0].path, opts)]
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const taken = []
  try {
    for (const { key, path } of targets) taken.push(await lockKey(key, path, leftOf(opts, deadline)))
  } catch (err) {
    releaseAll(taken)
    throw asCallersTimeout(err, opts.timeoutMs, started)
  }
  return taken
}

function lockSetSync(targets, opts) {
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const taken = []
  try {
    for (const { key, path } of targets) taken.push(lockKeySync(key, path, leftOf(opts, deadline)))
  } catch (err) {
    releaseAll(taken)
    throw asCallersTimeout(err, opts.timeoutMs, started)
  }
  return taken
}

// What the current call chain holds: canonical path -> its hold. A hold is one section:
//   { active, sync, mutator, busy, queue, idle, of: Map<key, { mode, parent }> }
// Nested calls on a held path take turns on the hold (`busy`, FIFO `queue`) and run with a child
// hold of their own, so their own nested calls queue on the child. A section ends only once its
// nested calls are done (`idle`); a call that finds its hold ended looks up the hold it was
// nested in (`parent`), and with none it is an ordinary caller. Sync calls see the same store, so
// sync and async sections nest in each other.
const holds = new AsyncLocalStorage()

function newHold(of, { sync = false, mutator = false } = {}) {
  return { active: true, sync, mutator, busy: false, queue: [], idle: [], of: new Map(of) }
}

/** The active hold of `key` in `store`, if any. */
function holdOf(store, key) {
  let hold = store?.get(key)
  while (hold && !hold.active) hold = hold.of?.get(key)?.parent
  return hold
}

function nestedError(path) {
  const err = codedError(
    Error,
    'ELOCKNESTED',
    `Cannot lock '${path}' inside an updateJson mutator of the same file: the update's write would ` +
      'replace whatever this call did. The mutator should change the object it was given (or return a new one)',
  )
  err.path = path
  return err
}

/**
 * How to run a request of this chain for `targets`: the holds it must take a turn on (with one of
 * their targets each) and the targets it must lock, plus the child hold's `of`. Refuses at once a
 * request inside a mutator of one of the paths (ELOCKNESTED) or an exclusive one inside a shared
 * hold (ELOCKUPGRADE).
 */
function planFor(store, targets, mode) {
  const turns = []
  const need = []
  const of = []
  for (const target of targets) {
    const hold = holdOf(store, target.key)
    if (!hold) {
      need.push(target)
      of.push([target.key, { mode, parent: undefined }])
      continue
    }
    if (hold.mutator) throw nestedError(target.path)
    const held = hold.of.get(target.key).mode
    if (held === 'shared' && mode === 'exclusive') throw upgradeError(target.path)
    if (!turns.some((t) => t.hold === hold)) turns.push({ hold, target })
    // The child covers what the chain already holds (exclusive covers shared).
    of.push([target.key, { mode: held, parent: hold }])
  }
  return { turns, need, of }
}

/** Throws ELOCKNESTED for a handle requested inside a mutator of one of its paths. */
function refuseInMutator(targets) {
  const store = holds.getStore()
  for (const target of targets) {
    if (holdOf(store, target.key)?.mutator) throw nestedError(target.path)
  }
}

/** Resolves when it is this call's turn among the nested calls of `hold` (call order). */
function takeTurn(hold, { key, path }, mode, { timeoutMs, signal }) {
  if (signal?.aborted) return Promise.reject(new AbortError(signal))
  if (!hold.busy) {
    hold.busy = true
    return Promise.resolve()
  }
  if (timeoutMs === 0) return Promise.reject(new LockTimeoutError(path, mode, 0, native.lockHolders(key)))
  return new Promise((resolve, reject) => {
    const turn = {}
    const leave = (makeError) => {
      const i = hold.queue.indexOf(turn)
      if (i < 0) return
      hold.queue.splice(i, 1)
      stop()
      reject(makeError())
    }
    const ms = finiteTimeout(timeoutMs)
    const timer =
      ms === null
        ? null
        : setTimeout(() => leave(() => new LockTimeoutError(path, mode, timeoutMs, native.lockHolders(key))), ms)
    const unwatch = watchAbort(signal, () => leave(() => new AbortError(signal)))
    const stop = () => {
      if (timer) clearTimeout(timer)
      unwatch()
    }
    turn.go = () => {
      stop()
      resolve()
    }
    hold.queue.push(turn)
  })
}

function endTurn(hold) {
  const next = hold.queue.shift()
  if (next) return next.go()
  hold.busy = false
  for (const done of hold.idle.splice(0)) done()
}

/** Resolves once no nested call runs or waits on `hold`. */
function idle(hold) {
  return new Promise((resolve) => hold.idle.push(resolve))
}

function childStore(store, targets, hold) {
  const inner = new Map(store)
  for (const { key } of targets) inner.set(key, hold)
  return inner
}

/**
 * Runs `fn` under the locks of `targets`. Reentrant for the same async chain: nested calls on a
 * held path run one at a time, in call order, and the section releases once they are done.
 */
async function runLocked(targets, opts, fn) {
  const store = holds.getStore()
  let plan = planFor(store, targets, opts.mode)
  if (plan.turns.some((t) => t.hold.sync)) {
    // A synchronous section cannot wait for async work: a call made inside one starts once it
    // has ended (by the next microtask), under whatever then holds the path.
    await null
    plan = planFor(store, targets, opts.mode)
  }
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const taken = []
  let locks = []
  try {
    for (const { hold, target } of plan.turns) {
      await takeTurn(hold, target, opts.mode, leftOf(opts, deadline))
      taken.push(hold)
    }
    if (plan.need.length > 0) locks = await lockSet(plan.need, leftOf(opts, deadline))
  } catch (err) {
    for (const hold of taken) endTurn(hold)
    throw asCallersTimeout(err, opts.timeoutMs, started)
  }
  const mine = newHold(plan.of)
  try {
    return await holds.run(childStore(store, targets, mine), fn)
  } finally {
    // Nested calls made during the section finish under the lock; later ones find it ended.
    while (mine.busy) await idle(mine)
    mine.active = false
    releaseAll(locks)
    for (const hold of taken) endTurn(hold)
  }
}

/**
 * Runs an updateJson mutator of `key`: a lock request for `key` from inside it is refused
 * (ELOCKNESTED), since the update's write would replace what it did.
 */
function asMutator(key, fn) {
  const store = holds.getStore()
  const hold = newHold([[key, { mode: 'exclusive', parent: holdOf(store, key) }]], { mutator: true })
  const end = () => (hold.active = false)
  let result
  try {
    result = holds.run(childStore(store, [{ key }], hold), fn)
  } catch (err) {
    end()
    throw err
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    return Promise.resolve(result).finally(end)
  }
  end()
  return result
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

function busyTurnError(path) {
  const err = codedError(
    Error,
    'ELOCKDEADLOCK',
    `Cannot lock '${path}' synchronously: another nested call of this async call chain runs or waits ` +
      'for it, and a blocked thread would never let it finish. Await it first, or use the async function',
  )
  err.path = path
  return err
}

function runLockedSync(targets, opts, fn) {
  const store = holds.getStore()
  const plan = planFor(store, targets, opts.mode)
  for (const { hold, target } of plan.turns) if (hold.busy) throw busyTurnError(target.path)
  for (const { hold } of plan.turns) hold.busy = true
  let locks = []
  try {
    if (plan.need.length > 0) locks = lockSetSync(plan.need, opts)
  } catch (err) {
    for (const { hold } of plan.turns) endTurn(hold)
    throw err
  }
  const mine = newHold(plan.of, { sync: true })
  try {
    return checkSyncResult(holds.run(childStore(store, targets, mine), fn), 'fn')
  } finally {
    mine.active = false
    releaseAll(locks)
    for (const { hold } of plan.turns) endTurn(hold)
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

/** The paths a handle reports: as given, in the caller's order, one spelling per file. */
function pathsOf(pathOrPaths, targets) {
  if (!Array.isArray(pathOrPaths)) return [pathOrPaths]
  const spellings = new Set(targets.map((t) => t.path))
  return pathOrPaths.filter((p) => spellings.delete(p))
}

async function acquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = lockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs)
  refuseInMutator(targets)
  const locks = await lockSet(targets, opts)
  return new LockHandle(handleToken, locks, pathsOf(pathOrPaths, targets), opts.mode)
}

function acquireSync(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = syncLockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs)
  refuseInMutator(targets)
  const locks = lockSetSync(targets, opts).map(retain)
  return new LockHandle(handleToken, locks, pathsOf(pathOrPaths, targets), opts.mode)
}

function tryAcquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const o = checkOptions(options)
  const mode = checkMode(o.mode)
  const targets = targetsOf(pathOrPaths, checkNetworkFs(o.networkFs))
  refuseInMutator(targets)
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
    locks.push(retain(lock))
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

/** A copy of a default, so that no caller can change what a later one gets. */
function copyOf(value) {
  if (value === null || typeof value !== 'object') return value
  try {
    return structuredClone(value)
  } catch {}
  // Not cloneable (a function or class instance inside): as JSON would store it.
  try {
    const text = JSON.stringify(value)
    if (text !== undefined) return JSON.parse(text)
  } catch {}
  return value
}

/** How to read a JSON file: its `default`, if any, as a fresh copy per call. */
function readPlan(o) {
  // Read once: a getter on the options is not asked again while a batch runs.
  const value = o.default
  return { hasDefault: value !== undefined, fallback: () => copyOf(value) }
}

// Invalid UTF-8 is corrupt JSON: decoding it lossily would write U+FFFD back. Strips a BOM.
const utf8 = new TextDecoder('utf-8', { fatal: true })
// JSON's whitespace; a file of nothing else is empty (other Unicode spaces are corrupt JSON).
const BLANK = /^[ \t\n\r]*$/

function decode(path, bytes) {
  try {
    return utf8.decode(bytes)
  } catch (err) {
    if (err?.code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw err
    throw corruptError(path, bytes, 'invalid UTF-8')
  }
}

/** A CorruptFileError naming where `bytes` stop being valid (V8's messages do not always say). */
function corruptError(path, bytes, detail) {
  const at = native.jsonErrorPosition(bytes)
  if (!at) return new CorruptFileError(path, detail)
  return new CorruptFileError(path, `${at.reason} at line ${at.line} column ${at.column} (position ${at.offset})`, at)
}

/** Parses the bytes of a JSON file (`null`: missing) the way every JSON reader here does. */
function parseJson(path, bytes, plan) {
  return parseText(path, bytes, bytes === null ? null : decode(path, bytes), plan)
}

/** `parseJson` for bytes already decoded to `text`. */
function parseText(path, bytes, text, { hasDefault, fallback }) {
  if (bytes === null) {
    if (hasDefault) return fallback()
    throw notFound(path)
  }
  if (BLANK.test(text)) {
    if (hasDefault) return fallback()
    throw new CorruptFileError(path, 'the file is empty')
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    // Anything but a SyntaxError (out of memory, say) says nothing about the file.
    if (!(err instanceof SyntaxError)) throw err
    throw corruptError(path, bytes, err.message)
  }
}

function readBytes(path) {
  return awaitNative(native.readFile(path))
}

async function readJson(path, options) {
  checkPath(path)
  const plan = readPlan(checkOptions(options))
  return parseJson(path, await readBytes(path), plan)
}

function readJsonSync(path, options) {
  checkPath(path)
  const plan = readPlan(checkOptions(options))
  return parseJson(path, callNative(() => native.readFileSync(path)), plan)
}

function serialize(value, space) {
  let text
  try {
    text = JSON.stringify(value, null, space)
  } catch (err) {
    // BigInt and cycles: V8 throws a TypeError with no code. (A toJSON's own errors pass as they are.)
    if (!(err instanceof TypeError) || err.code !== undefined) throw err
    const out = invalidArgValue('value', value, `must be serializable as JSON (${err.message.split('\n')[0]})`)
    out.cause = err
    throw out
  }
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
// fsync pair), then each caller gets the state after its own mutator. Every caller ends as if the
// calls had run one after another, and no later:
// - a mutator that throws (or returns something JSON cannot hold) fails only its own call; the
//   next one starts from the last good state;
// - a mutator still pending once the microtask queue drains (it waits for IO or a timer) first
//   has the calls before it written and settled; calls after it keep their own timeoutMs and
//   signal until their mutator starts;
// - a failed write is retried one call at a time, in call order; a call computed on top of one
//   whose write failed runs its mutator again on the state actually on disk (the only re-run).

/** Most calls one write carries, and the most state copies (calls x file size) one batch holds. */
const MAX_BATCH_CALLS = 64
const MAX_BATCH_BYTES = 64 * 2 ** 20
const MISSING = Symbol('missing')
const SLOW = Symbol('slow')
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
  // Inside a section that holds the path: take a turn among its nested calls (no group commit),
  // or be refused (inside a mutator of the path, or in a shared hold).
  if (holdOf(holds.getStore(), plan.targets[0].key)) {
    return runLocked(plan.targets, plan.opts, () => updateOnce(path, plan, mutator))
  }
  return joinBatch(path, plan, mutator)
}

/** One read-mutate-write, for a caller that already holds the lock. */
async function updateOnce(path, plan, mutator) {
  const current = parseJson(path, await readBytes(path), plan.read)
  const returned = await asMutator(plan.targets[0].key, () => mutator(current))
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
    const call = { mutator, read: plan.read, resolve, reject, settled: false, started: false, outer: holds.getStore() }
    armTurn(call)
    opened.calls.push(call)
    // A call's own timeout and signal apply until its mutator starts: while its batch waits for
    // the lock, and while the mutators before it run.
    const leave = (makeError) => {
      if (call.started || call.settled) return
      settleCall(call, makeError())
      if (opened.started) return
      opened.calls.splice(opened.calls.indexOf(call), 1)
      if (opened.calls.length === 0) opened.abandon()
    }
    const ms = finiteTimeout(timeoutMs)
    const timer =
      ms === null || timeoutMs === 0
        ? null
        : setTimeout(() => leave(() => new LockTimeoutError(path, 'exclusive', timeoutMs, native.lockHolders(key))), ms)
    const unwatch = watchAbort(signal, () => leave(() => new AbortError(signal)))
    call.cleanup = () => {
      if (timer) clearTimeout(timer)
      unwatch()
    }
  })
}

/**
 * Arms the next run of a call's mutator: `call.go({ input, store })` starts it, `call.ran` (take
 * it before `go`) resolves with `{ returned }`. The mutator runs in its caller's async context
 * (all AsyncLocalStorage stores, as if it had run alone): the reaction is registered in that
 * context, here from joinBatch and again from inside each run, so a re-run keeps it too.
 * (AsyncLocalStorage.snapshot() does the same at ~10 us a call on Node 20.)
 */
function armTurn(call) {
  const turn = new Promise((go) => (call.go = go))
  call.ran = turn.then(({ input, store }) => {
    armTurn(call)
    return { returned: holds.run(store, () => call.mutator(input)) }
  })
}

function settleCall(call, error, value) {
  if (call.settled) return
  call.settled = true
  if (error) call.reject(error)
  else call.resolve(value)
  stopWaiting(call)
}

/** Drops a call's timer and abort listener (a signal-like object that fails to remove a
 * listener must not keep other callers from settling). */
function stopWaiting(call) {
  const cleanup = call.cleanup
  call.cleanup = null
  try {
    cleanup?.()
  } catch {}
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function'
}

/** Resolves with SLOW after the microtask queue has drained (and pending IO callbacks ran). */
function afterMicrotasks() {
  return new Promise((resolve) => setImmediate(resolve, SLOW))
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
    (lock) => runBatch(id, batch, retain(lock), key, path, plan),
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
  const hold = { mode: 'exclusive', active: true, mutator: true }
  const after = []
  try {
    if (calls.length > 0) await commit(calls, hold, key, path, plan, after)
  } catch (err) {
    // Only a bug gets here; even then no caller is left waiting and nothing rejects unhandled.
    for (const call of calls) after.push([call, err])
  } finally {
    hold.active = false
    releaseLock(lock)
  }
  // The last outcomes are settled after the release, as a lone call's are: its caller may take
  // the lock again at once (a sync call would otherwise find this thread still holding it).
  for (const [call, error, value] of after) settleCall(call, error, value)
}

/**
 * Runs a batch's mutators and writes their states, under the lock. A state is
 * `{ text, value, fresh }`: `text` as written (null: no file yet), `value` MISSING or parsed,
 * `fresh` while nobody has `value` itself.
 */
async function commit(calls, hold, key, path, plan, after) {
  /** Once no mutator is left to run, outcomes go to `after` (settled after the release). */
  let draining = false
  const settle = (call, error, value) => (draining ? after.push([call, error, value]) : settleCall(call, error, value))
  let bytes
  try {
    bytes = await readBytes(path)
  } catch (err) {
    for (const call of calls) after.push([call, err])
    return
  }
  /** The state on disk. */
  let saved
  try {
    const fileText = bytes === null ? null : decode(path, bytes)
    const base = parseText(path, bytes, fileText, { hasDefault: true, fallback: () => MISSING })
    saved = base === MISSING ? { text: null, value: MISSING, fresh: false } : { text: fileText, value: base, fresh: true }
  } catch (err) {
    for (const call of calls) after.push([call, err])
    return
  }
  const missing = () => (bytes === null ? notFound(path) : new CorruptFileError(path, 'the file is empty'))
  /** The state after the last good mutator; `pending`: the calls done but not yet written. */
  let last = saved
  let pending = []
  /** Bumped when a write fails and `last` falls back to the state on disk. */
  let epoch = 0

  const write = async (text) => {
    await awaitNative(native.atomicWrite(path, text, plan.fsync, undefined))
    if (writtenBytes.size > 10_000) writtenBytes.clear()
    writtenBytes.set(key, text.length)
  }

  /** Runs a call's mutator on `state`: `{ state }` after it, or `{ error }`. */
  const apply = async (call, state, flushIfSlow) => {
    try {
      let input
      if (state.value === MISSING) {
        if (!call.read.hasDefault) return { error: missing() }
        input = call.read.fallback()
      } else if (state.fresh) {
        state.fresh = false
        input = state.value
      } else {
        input = JSON.parse(state.text)
      }
      const ran = call.ran
      const store = new Map(call.outer)
      store.set(key, hold)
      call.go({ input, store })
      let { returned } = await ran
      if (isThenable(returned)) {
        const result = Promise.resolve(returned)
        // Run alone, the calls before this one would be written by now.
        if (flushIfSlow && pending.length > 0 && (await Promise.race([result, afterMicrotasks()])) === SLOW) {
          await flush()
        }
        returned = await result
      }
      const value = returned === undefined ? input : returned
      return { state: { text: serialize(value, plan.space), value, fresh: false } }
    } catch (error) {
      return { error }
    }
  }

  /** Writes the pending calls' last state and settles them; if that fails, each call alone. */
  const flush = async () => {
    if (pending.length === 0) return
    const group = pending
    pending = []
    const top = group[group.length - 1].state
    let failure
    try {
      await write(top.text)
      saved = top
      for (const d of group) settle(d.call, null, d.state.value)
      return
    } catch (err) {
      failure = err
    }
    if (group.length === 1) {
      settle(group[0].call, failure)
    } else {
      // In call order. A call's state is exact while every call before it was written; after a
      // failed one, the later mutators run again on the state actually on disk.
      let exact = true
      for (const d of group) {
        let state = d.state
        if (!exact) {
          const again = await apply(d.call, saved, false)
          if (again.error) {
            settle(d.call, again.error)
            continue
          }
          state = again.state
        }
        try {
          await write(state.text)
          saved = state
          settle(d.call, null, state.value)
        } catch (err) {
          settle(d.call, err)
          exact = false
        }
      }
      if (exact) return
    }
    last = saved
    epoch++
  }

  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]
    // Left before its turn (its timeout or signal).
    if (call.settled) continue
    call.started = true
    stopWaiting(call)
    let outcome
    for (;;) {
      const seen = epoch
      outcome = await apply(call, last, true)
      // A write failed while this mutator ran, on a state that is not on disk: run it again.
      if (seen === epoch) break
    }
    if (!calls.some((c, k) => k > i && !c.settled)) draining = true
    if (outcome.error) {
      // Only this call fails; the next starts from the last good state.
      settle(call, outcome.error)
    } else {
      pending.push({ call, state: outcome.state })
      last = outcome.state
    }
  }
  draining = true
  await flush()
}

function updateJsonSync(path, mutator, options) {
  const plan = updatePlan(path, mutator, options, syncLockOptions)
  return runLockedSync(plan.targets, plan.opts, () => {
    const current = parseJson(path, callNative(() => native.readFileSync(path)), plan.read)
    const returned = checkSyncResult(asMutator(plan.targets[0].key, () => mutator(current)), 'mutator')
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
