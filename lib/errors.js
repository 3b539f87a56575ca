'use strict'
// Every error the library makes: the public classes, Node-style argument errors, and the coded
// refusals of the lock layer. Timeout errors are built in one place only, lib/wait.js `timedOut`,
// since they need the holders the native layer reports.

/** Who holds a lock, in words: a caller whose own process holds it needs telling, not a pid. */
function heldBy(pids) {
  if (pids.length === 0) return 'holder unknown'
  const others = pids.filter((pid) => pid !== process.pid)
  if (others.length === pids.length) return `held by pid ${pids.join(', ')}`
  const self = `held by this process, pid ${process.pid}`
  if (others.length > 0) return `${self}, and by pid ${others.join(', ')}`
  return `${self}: a lock handle not release()d yet, or a wait for a lock this process's own code holds`
}

class LockTimeoutError extends Error {
  /** `waitedMs`: how long the caller waited in all, when that is not `timeoutMs` (a lock set). */
  constructor(path, mode, timeoutMs, holders, waitedMs = timeoutMs) {
    const pids = [...new Set(holders.map((h) => h.pid))]
    const held = heldBy(pids)
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

/** `path`: the path as given whose wait the signal ended (for a set: the one it was waiting for). */
class AbortError extends Error {
  constructor(signal, path) {
    super('The operation was aborted', { cause: signal.reason })
    this.name = 'AbortError'
    this.code = 'ABORT_ERR'
    this.path = path
  }
}

// The refusals: lock requests refused at once, since waiting could only end in a deadlock or a
// lost update. A class each (not a coded Error) so that callers can tell them apart with
// instanceof, as they can a LockTimeoutError; `path` is the path as given.

/** A lock request for a path from inside an updateJson mutator of the same file. */
class LockNestedError extends Error {
  constructor(path, message) {
    super(message)
    this.name = 'LockNestedError'
    this.code = 'ELOCKNESTED'
    this.path = path
  }
}

/** A request only its own caller's release could grant, or one that breaks the lock order. */
class LockDeadlockError extends Error {
  constructor(path, message) {
    super(message)
    this.name = 'LockDeadlockError'
    this.code = 'ELOCKDEADLOCK'
    this.path = path
  }
}

/** An exclusive request by a caller that holds the path shared. */
class LockUpgradeError extends Error {
  constructor(path, message) {
    super(message)
    this.name = 'LockUpgradeError'
    this.code = 'ELOCKUPGRADE'
    this.path = path
  }
}

/**
 * A JSON Patch operation that cannot be applied to the file (a `test` that does not match, a
 * path that is not there): none of the call's operations is applied. `index` and `op` name it.
 */
class PatchError extends Error {
  constructor(message, path, index, op) {
    super(message)
    this.name = 'PatchError'
    this.code = 'EPATCH'
    this.path = path
    this.index = index
    this.op = op
  }
}

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

function codedError(Ctor, code, message) {
  const err = new Ctor(message)
  err.code = code
  return err
}

// ---------------------------------------------------------------------------------------------
// Arguments, worded as Node's own ERR_* errors are

function received(value) {
  if (value === undefined || value === null) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const ctor = value.constructor?.name
    return ctor ? ` Received an instance of ${ctor}` : ' Received [object]'
  }
  let shown = typeof value === 'bigint' ? `${value}n` : String(value)
  if (typeof value === 'string') shown = `'${value.length > 28 ? `${value.slice(0, 25)}...` : value}'`
  return ` Received type ${typeof value} (${shown})`
}

function invalidArgType(name, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}.${received(value)}`)
}

function invalidArgValue(name, value, reason) {
  return codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}.${received(value)}`)
}

function outOfRange(name, range, value) {
  return codedError(
    RangeError,
    'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}.${received(value)}`,
  )
}

function syncPromiseError(name) {
  return codedError(
    TypeError,
    'ERR_INVALID_RETURN_VALUE',
    `The ${name} of a synchronous call returned a promise; the lock does not cover async work, ` +
      'use the async function instead',
  )
}

function notFound(path) {
  const err = codedError(Error, 'ENOENT', `ENOENT: no such file or directory, open '${path}'`)
  err.errno = -2
  err.syscall = 'open'
  err.path = path
  return err
}

/**
 * An error of a lock call, explained where the lock file itself is in the way: the OS only says
 * EISDIR or ELOOP about `<path>.lock`, and the usual cause (proper-lockfile's lock directory,
 * left from before a switch to index-lock) is not one a newcomer would guess. Code, syscall and
 * path stay as they are.
 */
function explainLockFile(err) {
  if (err?.syscall !== 'open' || typeof err.path !== 'string' || !err.path.endsWith('.lock')) return err
  if (err.code === 'EISDIR') {
    err.message +=
      ': the lock file is a directory, most likely a lock left by proper-lockfile. Nobody can take ' +
      "index-lock's lock until it is removed: make sure no process still uses proper-lockfile on " +
      'this file, then remove the directory (`index-lock status <path>` shows it)'
  } else if (err.code === 'ELOOP') {
    err.message +=
      ': the lock file is a symlink, which index-lock never follows (it could point the lock file ' +
      'anywhere). Nobody can take the lock until it is removed (`index-lock status <path>` shows it)'
  }
  return err
}

// ---------------------------------------------------------------------------------------------
// Lock requests refused at once: each could only end in a deadlock or a lost update

function upgradeError(path) {
  return new LockUpgradeError(
    path,
    `Cannot take the exclusive lock on '${path}' while this async call chain holds it shared; ` +
      'take it exclusive from the start',
  )
}

function nestedError(path) {
  return new LockNestedError(
    path,
    `Cannot lock '${path}' inside an updateJson mutator of the same file: the update's write would ` +
      'replace whatever this call did. The mutator should change the object it was given (or return a new one)',
  )
}

function setOrderError(path, held) {
  return new LockDeadlockError(
    path,
    `Cannot lock a set including '${path}' while this async call chain holds '${held}': '${path}' comes ` +
      'first in the lock order, so taking it now could deadlock with a caller taking the same set. Take ' +
      'the whole set from the start (one withIndexLock of every path around the work)',
  )
}

function heldByChainError(path) {
  return new LockDeadlockError(
    path,
    `Cannot wait for a lock handle on '${path}': this async call chain holds the path in a section, ` +
      'which would have to end first. Nest a withIndexLock/updateJson instead (they are reentrant), ' +
      'or use tryAcquire',
  )
}

function busyTurnError(path) {
  return new LockDeadlockError(
    path,
    `Cannot lock '${path}' synchronously: another nested call of this async call chain runs or waits ` +
      'for it, and a blocked thread would never let it finish. Await it first, or use the async function',
  )
}

function syncDeadlockError(path) {
  return new LockDeadlockError(
    path,
    `Cannot wait synchronously for the lock on '${path}' while this thread holds or awaits other locks ` +
      'asynchronously (an async section, a handle, a queued call): blocking the thread keeps them from ' +
      'being released, so a process waiting for one of them would never let this one in. Use the async ' +
      'function, release them first, or pass timeoutMs: 0',
  )
}

module.exports = {
  LockTimeoutError,
  CorruptFileError,
  AbortError,
  LockNestedError,
  LockDeadlockError,
  LockUpgradeError,
  PatchError,
  SweepError,
  codedError,
  received,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  syncPromiseError,
  notFound,
  explainLockFile,
  upgradeError,
  nestedError,
  setOrderError,
  heldByChainError,
  busyTurnError,
  syncDeadlockError,
}
