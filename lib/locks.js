'use strict'
// Native locks as this thread holds them: taking one (at once, queued, or blocking for a sync
// call), lock sets in the global order, the handles acquire() returns, and the bookkeeping of what
// this thread holds or awaits across event-loop turns. Reentrancy (holds) is lib/holds.js.

const { native, callNative, fromNative } = require('./native')
const { explainLockFile, syncDeadlockError } = require('./errors')
const { QUEUE, asCallersTimeout, finiteTimeout, timedOut, timedOutSync, untilDeadline, waitFor } = require('./wait')
const { asSpelled } = require('./targets')

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// Every native lock this thread holds beyond the synchronous section running now. A collected
// native lock releases, so a handle the program drops (`if (!tryAcquire(p)) process.exit(1)`, a
// CLI holding a lock for its whole run) would let another process in at the next GC: the set
// keeps them until release(). A terminated worker still frees them, since its teardown runs the
// native finalizers of everything it still references. Bounded by the locks held.
const retained = new Set()
/** Requests of this thread queued in the registry: a grant may reach one at any moment. */
let queuedWaits = 0
/**
 * JSON change batches of this thread from their request until they have run: their locks are
 * held (or awaited) natively for them, outside `retained` and `queuedWaits`.
 */
let nativeBatches = 0
/**
 * The group-commit batch a call may join, by lock key: the last lock request this thread made
 * for the path, if it is a batch still waiting for its lock. Any other request for the path (a
 * section, a handle, a batch with other write options) closes it, so that no call overtakes a
 * request made before it. Bounded by the paths with a batch waiting.
 */
const openBatches = new Map()

/** A lock request for `key` is being made: later calls must queue behind it, not join a batch before it. */
function closeBatch(key) {
  openBatches.delete(key)
}

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
  return retained.size + queuedWaits + nativeBatches
}

/** Counts a JSON change batch of this thread as held; returns its end (which counts once). */
function holdNativeBatch() {
  nativeBatches++
  let ended = false
  return () => {
    if (ended) return
    ended = true
    nativeBatches--
  }
}

/**
 * The first half of the native wait sequence: the lock of `key` if that needs no waiting and
 * jumps no queue (retained), else null.
 */
function tryLockKey(key, exclusive) {
  let free
  try {
    free = callNative(() => native.tryLock(key, exclusive))
  } catch (err) {
    throw explainLockFile(err)
  }
  return free ? retain(free) : null
}

/** `lockKey` when no wait is needed: the lock of `key` (retained) if free now, else null. */
function tryLockFree(key, mode) {
  closeBatch(key)
  return tryLockKey(key, mode === 'exclusive')
}

/**
 * The second half: joins the queue of `key` synchronously (so JS call order is queue order);
 * `granted(lock)` (retained) or `failed(error)` follows. Returns `cancel()`, which withdraws the
 * request and is false when the grant is already on its way (then it wins, and nothing leaks).
 */
function queueLock(key, exclusive, granted, failed) {
  const waitId = native.nextWaitId()
  const pending = native.lock(key, exclusive, waitId)
  queuedWaits++
  pending.then(
    (lock) => {
      queuedWaits--
      granted(retain(lock))
    },
    (err) => {
      queuedWaits--
      failed(explainLockFile(fromNative(err)))
    },
  )
  return () => native.cancelWait(key, waitId)
}

/**
 * `queueLock` of an exclusive request of the JSON change batch `batchId` (see
 * lib/changes.js): the lock is held natively for the batch, which takes it when it runs, so
 * `granted()` gets no handle. (Held there, a batch whose thread ends while it waits still runs
 * for the calls of other threads riding with it.)
 */
function queueBatchLock(key, batchId, granted, failed) {
  const waitId = native.nextWaitId()
  const pending = native.changesQueue(key, waitId, batchId)
  queuedWaits++
  pending.then(
    () => {
      queuedWaits--
      granted()
    },
    (err) => {
      queuedWaits--
      failed(explainLockFile(fromNative(err)))
    },
  )
  return () => native.cancelWait(key, waitId)
}

/** A request for the native lock of `key`, as `waitFor` runs it. */
class KeyRequest {
  constructor(key, path, mode, timeoutMs) {
    this.key = key
    this.path = path
    this.mode = mode
    this.timeoutMs = timeoutMs
  }

  now() {
    return tryLockKey(this.key, this.mode === 'exclusive') ?? QUEUE
  }

  timedOut() {
    return timedOut(this.key, this.path, this.mode, this.timeoutMs)
  }

  queue(granted, failed) {
    let failure = null
    const cancel = queueLock(this.key, this.mode === 'exclusive', granted, (err) => failed(failure ?? err))
    return (makeError) => {
      if (cancel()) failure = makeError()
    }
  }
}

/** Resolves with the lock of `key`. Fast path: a free lock is taken on this thread, no thread hop. */
function lockKey(key, path, opts) {
  closeBatch(key)
  return waitFor(opts, new KeyRequest(key, path, opts.mode, opts.timeoutMs))
}

/**
 * `callNative` of a request for the lock of `key`: the registry's refusals (ELOCKDEADLOCK,
 * ELOCKUPGRADE) name the key, and the caller knows the file by `path`. (An error about the lock
 * file keeps its real path: that is where it must be fixed.)
 */
function callFor(key, path, fn) {
  try {
    return callNative(fn)
  } catch (err) {
    throw err?.path === key ? asSpelled(err, key, path) : explainLockFile(err)
  }
}

/** Blocks this thread for the lock of `key`; throws LockTimeoutError when `timeoutMs` passes. */
function lockKeySync(key, path, { mode, timeoutMs }) {
  closeBatch(key)
  const exclusive = mode === 'exclusive'
  // A lock that needs no wait is granted as tryAcquire grants it (shared joins shared, this
  // thread's own shared hold included). Else, still without waiting, the registry refuses a
  // path this thread holds or awaits: only this thread could let that wait end.
  let lock = callFor(key, path, () => native.tryLock(key, exclusive) ?? native.lockSync(key, exclusive, 0))
  if (!lock && timeoutMs !== 0) {
    if (asyncHeld() > 0) throw syncDeadlockError(path)
    lock = callFor(key, path, () => native.lockSync(key, exclusive, finiteTimeout(timeoutMs)))
  }
  if (!lock) throw timedOutSync(key, path, mode, timeoutMs)
  return lock
}

/** Takes every lock of `targets` in order within one overall timeout; on failure none is kept. */
async function lockSet(targets, opts) {
  if (targets.length === 1) return [await lockKey(targets[0].key, targets[0].path, opts)]
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const taken = []
  try {
    for (const { key, path } of targets) taken.push(await lockKey(key, path, untilDeadline(opts, deadline)))
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
    for (const { key, path } of targets) taken.push(lockKeySync(key, path, untilDeadline(opts, deadline)))
  } catch (err) {
    releaseAll(taken)
    throw asCallersTimeout(err, opts.timeoutMs, started)
  }
  return taken
}

/** Every lock of `targets` if each is free now (retained), else null with none kept. */
function tryLockSet(targets, mode) {
  const locks = []
  for (const { key } of targets) {
    closeBatch(key)
    let lock
    try {
      lock = tryLockKey(key, mode === 'exclusive')
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
  return locks
}

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

/** The handle of `locks` (retained), reporting `paths` as given. */
function newHandle(locks, paths, mode) {
  return new LockHandle(handleToken, locks, paths, mode)
}

module.exports = {
  openBatches,
  closeBatch,
  retain,
  releaseLock,
  releaseAll,
  tryLockKey,
  tryLockFree,
  queueLock,
  queueBatchLock,
  holdNativeBatch,
  lockKey,
  lockKeySync,
  lockSet,
  lockSetSync,
  tryLockSet,
  newHandle,
}
