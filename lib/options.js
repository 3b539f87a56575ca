'use strict'
// Argument checks, and nothing else: each returns the value to use (defaults filled in) or throws
// the TypeError/RangeError Node itself would, with its ERR_* code.

const { invalidArgType, invalidArgValue, outOfRange } = require('./errors')

const DEFAULT_TIMEOUT_MS = 30_000

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

/**
 * The options of a lock request, `{ mode, timeoutMs, signal, networkFs }`, for a call of `kind`:
 * `'async'`; `'sync'`, which cannot be interrupted and so refuses a signal; `'try'` (tryAcquire),
 * which never waits, so only `mode` and `networkFs` are read.
 */
function lockOptions(options, kind = 'async') {
  const o = checkOptions(options)
  if (kind === 'try') return { mode: checkMode(o.mode), networkFs: checkNetworkFs(o.networkFs) }
  const sync = kind === 'sync'
  if (sync && o.signal !== undefined) {
    throw invalidArgValue(
      'options.signal',
      o.signal,
      'is not supported by synchronous calls (they cannot be interrupted)',
    )
  }
  return {
    mode: checkMode(o.mode),
    timeoutMs: checkTimeout(o.timeoutMs),
    signal: sync ? undefined : checkSignal(o.signal),
    networkFs: checkNetworkFs(o.networkFs),
  }
}

function checkSpace(space) {
  if (space === undefined) return space
  if (typeof space === 'string') {
    // JSON.stringify inserts the string as it is (cut to 10 characters): anything but JSON's own
    // whitespace would be written as invalid JSON.
    if (space.length > 10 || !/^[ \t\n\r]*$/.test(space)) {
      throw invalidArgValue(
        'options.space',
        space,
        'must be at most 10 JSON whitespace characters (space, tab, CR, LF)',
      )
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

/**
 * The options of a write: `{ fsync, mode, networkFs }` for bytes (`mode`: the file's permission
 * bits), `{ fsync, space, networkFs }` for JSON (where `mode` is the lock mode of an update).
 */
function writeOptions(options, { json = false } = {}) {
  const o = checkOptions(options)
  const fsync = checkBoolean(o.fsync, 'options.fsync', true)
  if (json) return { fsync, space: checkSpace(o.space), networkFs: checkNetworkFs(o.networkFs) }
  return { fsync, mode: checkFileMode(o.mode), networkFs: checkNetworkFs(o.networkFs) }
}

function checkData(data) {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  throw invalidArgType('data', 'of type string or an instance of Uint8Array', data)
}

module.exports = {
  checkPath,
  checkPaths,
  checkFunction,
  checkOptions,
  lockOptions,
  writeOptions,
  checkData,
}
