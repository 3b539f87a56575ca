'use strict'
// The thin JS surface over the native core: argument checks, error classes, reentrancy through
// AsyncLocalStorage, and JSON parse/stringify (which V8 does fastest). Locking and file IO live
// in Rust (src/).

const { AsyncLocalStorage } = require('node:async_hooks')
const native = require('./binding.js')

const DEFAULT_TIMEOUT_MS = 30_000
// setTimeout fires at once for delays above this; longer timeouts are as good as forever.
const TIMER_MAX_MS = 2 ** 31 - 1
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// ---------------------------------------------------------------------------------------------
// Errors

class LockTimeoutError extends Error {
  constructor(path, mode, timeoutMs, pids) {
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

// ---------------------------------------------------------------------------------------------
// Argument checks

function checkPath(path) {
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path)
  if (path === '') throw invalidArgValue('path', path, 'must be a non-empty string')
  if (path.includes('\0')) throw invalidArgValue('path', path, 'must be a string without null bytes')
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

function lockOptions(options) {
  const o = checkOptions(options)
  return { mode: checkMode(o.mode), timeoutMs: checkTimeout(o.timeoutMs), signal: checkSignal(o.signal) }
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

class LockHandle {
  #lock
  #path
  #mode

  constructor(token, lock, path, mode) {
    if (token !== handleToken) throw new TypeError('Illegal constructor: use acquire() or tryAcquire()')
    this.#lock = lock
    this.#path = path
    this.#mode = mode
  }

  /** The path this lock was requested for, as given. */
  get path() {
    return this.#path
  }

  get mode() {
    return this.#mode
  }

  get released() {
    return this.#lock.released
  }

  release() {
    this.#lock.release()
    return Promise.resolve()
  }

  [asyncDispose]() {
    return this.release()
  }
}

function resolveKey(path) {
  return callNative(() => native.resolvePath(path))
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
    const timer =
      timeoutMs <= TIMER_MAX_MS
        ? setTimeout(() => cancel(() => new LockTimeoutError(path, mode, timeoutMs, native.lockHolders(key))), timeoutMs)
        : null
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

// What the current async call chain holds: canonical path -> { mode, active }. A hold is shared
// by reference with nested chains, so work that outlives the lock sees it go inactive.
const holds = new AsyncLocalStorage()

function heldHere(key) {
  const hold = holds.getStore()?.get(key)
  return hold?.active ? hold : undefined
}

/** Runs `fn` under the lock of `path` (already checked); reentrant for the same async chain. */
function runLocked(path, opts, fn) {
  const key = resolveKey(path)
  const hold = heldHere(key)
  if (hold) {
    if (hold.mode === 'shared' && opts.mode === 'exclusive') return Promise.reject(upgradeError(path))
    return (async () => fn())()
  }
  return lockKey(key, path, opts).then(async (lock) => {
    const mine = { mode: opts.mode, active: true }
    const store = new Map(holds.getStore())
    store.set(key, mine)
    try {
      return await holds.run(store, fn)
    } finally {
      mine.active = false
      lock.release()
    }
  })
}

async function withIndexLock(path, fn, options) {
  checkPath(path)
  checkFunction(fn, 'fn')
  return runLocked(path, lockOptions(options), fn)
}

async function acquire(path, options) {
  checkPath(path)
  const opts = lockOptions(options)
  const lock = await lockKey(resolveKey(path), path, opts)
  return new LockHandle(handleToken, lock, path, opts.mode)
}

function tryAcquire(path, options) {
  checkPath(path)
  const mode = checkMode(checkOptions(options).mode)
  const lock = callNative(() => native.tryLock(resolveKey(path), mode === 'exclusive'))
  return lock ? new LockHandle(handleToken, lock, path, mode) : null
}

// ---------------------------------------------------------------------------------------------
// Files

async function atomicWrite(path, data, options) {
  checkPath(path)
  const bytes = checkData(data)
  const o = checkOptions(options)
  const fsync = checkBoolean(o.fsync, 'options.fsync', true)
  const mode = checkFileMode(o.mode)
  try {
    await native.atomicWrite(path, bytes, fsync, mode)
  } catch (err) {
    throw fromNative(err)
  }
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

async function readJsonChecked(path, hasDefault, fallback) {
  let bytes
  try {
    bytes = await native.readFile(path)
  } catch (err) {
    throw fromNative(err)
  }
  if (bytes === null) {
    if (hasDefault) return fallback()
    throw notFound(path)
  }
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (text.trim() === '') {
    if (hasDefault) return fallback()
    throw new CorruptFileError(path, 'the file is empty')
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    const at = native.jsonErrorPosition(bytes)
    if (!at) throw new CorruptFileError(path, err.message)
    throw new CorruptFileError(
      path,
      `${at.reason} at line ${at.line} column ${at.column} (position ${at.offset})`,
      at,
    )
  }
}

async function readJson(path, options) {
  checkPath(path)
  const o = checkOptions(options)
  return readJsonChecked(path, o.default !== undefined, () => o.default)
}

function serialize(value, space) {
  const text = JSON.stringify(value, null, space)
  if (text === undefined) throw invalidArgValue('value', value, 'must be serializable as JSON')
  return `${text}\n`
}

async function writeJson(path, value, options) {
  checkPath(path)
  const o = checkOptions(options)
  const fsync = checkBoolean(o.fsync, 'options.fsync', true)
  const text = serialize(value, checkSpace(o.space))
  try {
    await native.atomicWrite(path, text, fsync, undefined)
  } catch (err) {
    throw fromNative(err)
  }
}

async function updateJson(path, mutator, options) {
  checkPath(path)
  checkFunction(mutator, 'mutator')
  const o = checkOptions(options)
  const opts = lockOptions(o)
  if (opts.mode !== 'exclusive') {
    throw invalidArgValue('options.mode', o.mode, "must be 'exclusive' for updateJson (an update needs the exclusive lock)")
  }
  const fsync = checkBoolean(o.fsync, 'options.fsync', true)
  const space = checkSpace(o.space)
  const hasDefault = o.default !== undefined
  // A fresh copy each time, so a mutator editing the default in place cannot change it for
  // later calls.
  const fallback = () => copyOf(o.default)
  return runLocked(path, opts, async () => {
    const current = await readJsonChecked(path, hasDefault, fallback)
    const returned = await mutator(current)
    const next = returned === undefined ? current : returned
    const text = serialize(next, space)
    try {
      await native.atomicWrite(path, text, fsync, undefined)
    } catch (err) {
      throw fromNative(err)
    }
    return next
  })
}

module.exports = {
  withIndexLock,
  acquire,
  tryAcquire,
  atomicWrite,
  readJson,
  writeJson,
  updateJson,
  LockTimeoutError,
  CorruptFileError,
  AbortError,
}
