'use strict'
// The one wait: a request that queues somewhere (the native registry, a hold's turn queue, a
// group-commit batch) and leaves its queue when its timeout passes or its AbortSignal aborts.
// Also the one place a LockTimeoutError is built. A timeout bug is fixed here.

const { native } = require('./native')
const { AbortError, LockTimeoutError } = require('./errors')
const { watchWait } = require('./diagnostics')

// setTimeout fires at once for delays above this; longer timeouts are as good as forever.
const TIMER_MAX_MS = 2 ** 31 - 1
/** Returned by a wait's `now()` when it must queue. */
const QUEUE = Symbol('queue')

/** `timeoutMs` for a native call: `null` (forever) where a JS timer could not express it. */
function finiteTimeout(timeoutMs) {
  return timeoutMs <= TIMER_MAX_MS ? timeoutMs : null
}

/** A LockTimeoutError naming `holders` (as the native layer reported them). */
function timeoutError(path, mode, timeoutMs, holders, waitedMs) {
  return new LockTimeoutError(path, mode, timeoutMs, holders, waitedMs)
}

/** Marks a LockTimeoutError whose holders are still to be read: the lock key to read them for. */
const HOLDERS_OF = Symbol('holdersOf')

/**
 * The LockTimeoutError of an async wait for the lock of `key`. Who holds the lock is read off the
 * JS thread (/proc/locks lists every lock on the host: tens of ms on a busy one), so the error
 * is only complete once `completed` has it: every async rejection goes through that.
 */
function timedOut(key, path, mode, timeoutMs) {
  const err = timeoutError(path, mode, timeoutMs, [])
  err[HOLDERS_OF] = key
  return err
}

/** `timedOut` for a synchronous call, which blocks its thread anyway: holders read at once. */
function timedOutSync(key, path, mode, timeoutMs) {
  return timeoutError(path, mode, timeoutMs, native.lockHolders(key))
}

/** Resolves with `err`, a LockTimeoutError from `timedOut` completed with its holders. */
function completed(err) {
  const key = err?.[HOLDERS_OF]
  if (key === undefined) return Promise.resolve(err)
  return native.lockHoldersAsync(key).then(
    (holders) => timeoutError(err.path, err.mode, err.timeoutMs, holders),
    () => {
      delete err[HOLDERS_OF]
      return err
    },
  )
}

/** A promise rejected with `err` once it is complete (see `completed`). */
function rejectCompleted(err) {
  return completed(err).then((e) => Promise.reject(e))
}

/** `reject(err)`: at once, or once a timeout's holders are read (see `completed`). */
function deliver(err, reject) {
  if (err?.[HOLDERS_OF] === undefined) reject(err)
  else completed(err).then(reject)
}

/** A timeout of one step of a longer wait, reported with the caller's `timeoutMs` and real wait. */
function asCallersTimeout(err, timeoutMs, started) {
  if (!(err instanceof LockTimeoutError) || err.timeoutMs === timeoutMs) return err
  return timeoutError(err.path, err.mode, timeoutMs, err.holders, Date.now() - started)
}

/** `opts` for the next step of a wait that ends at `deadline` (the time left as `timeoutMs`). */
function untilDeadline(opts, deadline) {
  return { ...opts, timeoutMs: Math.max(0, Math.min(opts.timeoutMs, deadline - Date.now())) }
}

// Each AbortSignal's one listener while waits watch it (a WeakMap: bounded by the signals with
// waits pending). Node warns about a possible leak once an AbortSignal has more than 10
// listeners, which 11 waits sharing one signal reach: each signal gets one listener, which calls
// every wait's callback.
const abortWatches = new WeakMap()

/**
 * Calls `onAbort` once when `signal` aborts; returns the function that stops watching (which never
 * throws). Throws what the signal's addEventListener throws, having registered nothing: every
 * wait watches its signal before it queues anywhere, so such a throw leaves nothing behind.
 */
function watchAbort(signal, onAbort) {
  if (!signal) return () => {}
  let watch = abortWatches.get(signal)
  if (!watch) {
    const callbacks = new Set()
    const listener = () => {
      abortWatches.delete(signal)
      for (const callback of [...callbacks]) callback()
    }
    signal.addEventListener('abort', listener, { once: true })
    watch = { callbacks, listener }
    abortWatches.set(signal, watch)
  }
  const mine = watch
  const callback = () => onAbort()
  mine.callbacks.add(callback)
  return () => {
    if (!mine.callbacks.delete(callback) || mine.callbacks.size > 0) return
    if (abortWatches.get(signal) === mine) abortWatches.delete(signal)
    // A signal-like object that fails here must not keep a call from settling.
    try {
      signal.removeEventListener?.('abort', mine.listener)
    } catch {}
  }
}

/** The watch of a wait without a signal: nothing to watch, shared (and never changed). */
const UNWATCHED = Object.freeze({ onAbort: null, unwatch: () => {} })

/**
 * Starts a wait for the lock of `path` (as given), before it queues anywhere: `{ unwatch,
 * onAbort, path }`, where the wait sets `onAbort` once it has something to cancel. Throws an
 * AbortError for an aborted signal, and what the signal throws (registering nothing) if it cannot
 * be watched.
 */
function beginWait(signal, path) {
  if (!signal) return UNWATCHED
  if (signal.aborted) throw new AbortError(signal, path)
  const watch = { onAbort: null, unwatch: null, path }
  watch.unwatch = watchAbort(signal, () => watch.onAbort?.())
  return watch
}

/**
 * Arms the end of a queued wait: `leave(makeError)` once `timeoutMs` passes (`makeError` builds
 * the timeout) or the signal aborts. Returns `stop()`, which disarms both and never throws.
 * A timeout of 0 arms no timer: such a wait never queues where time could pass.
 */
function armWait(watch, { timeoutMs, signal }, makeTimeout, leave) {
  const ms = timeoutMs === 0 ? null : finiteTimeout(timeoutMs)
  const timer = ms === null ? null : setTimeout(() => leave(makeTimeout), ms)
  if (signal) watch.onAbort = () => leave(() => new AbortError(signal, watch.path))
  // NODE_DEBUG=index-lock: a long wait names who holds the lock (the timeout's own description).
  const unlog = watchWait(() => completed(makeTimeout()))
  return () => {
    if (timer) clearTimeout(timer)
    unlog()
    watch.unwatch()
  }
}

/**
 * The wait of one request, an object with three methods: `now()` takes what is free without
 * waiting (`QUEUE`: it is not); a request that may not wait (`timeoutMs: 0`) then fails with
 * `timedOut()`; otherwise `queue(granted, failed)` queues it synchronously (so call order is
 * queue order) and returns `leave(makeError)`, which withdraws it if it is still queued and then
 * fails it with `makeError()`. Resolves with what `now` or `granted` gave. (Methods on one object
 * rather than three closures: a free lock, the common case, allocates nothing more.) Its `path`
 * (as given) is what an AbortError names.
 */
function waitFor(opts, request) {
  let watch
  let value
  try {
    watch = beginWait(opts.signal, request.path)
  } catch (err) {
    return Promise.reject(err)
  }
  try {
    value = request.now()
  } catch (err) {
    watch.unwatch()
    return Promise.reject(err)
  }
  if (value !== QUEUE) {
    watch.unwatch()
    return Promise.resolve(value)
  }
  if (opts.timeoutMs === 0) {
    watch.unwatch()
    return rejectCompleted(request.timedOut())
  }
  return new Promise((resolve, reject) => {
    let stop = null
    const leave = request.queue(
      (result) => {
        stop()
        resolve(result)
      },
      (err) => {
        stop()
        deliver(err, reject)
      },
    )
    stop = armWait(watch, opts, () => request.timedOut(), leave)
  })
}

module.exports = {
  QUEUE,
  finiteTimeout,
  timedOut,
  timedOutSync,
  completed,
  rejectCompleted,
  deliver,
  asCallersTimeout,
  untilDeadline,
  watchAbort,
  beginWait,
  armWait,
  waitFor,
}
