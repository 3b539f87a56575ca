'use strict'
// Group-commit batches of this thread, as updateJson (lib/group-commit.js) and patchJson /
// mergeJson (lib/changes.js) share them: a call joins the open batch of its path if it fits, or
// opens one that waits for the exclusive lock in the path's queue; while it waits, each call keeps
// its own timeoutMs and signal. One implementation of joining and leaving, so the two kinds never
// drift apart on the rules every batched call must keep (no call overtakes a request made before
// it; a call that may not wait never joins a batch that waits; everyone leaving withdraws the
// request). `openBatch` is updateJson's: a JSON change batch holds its lock natively instead
// (lib/changes.js `newChanges`).

const { closeBatch, openBatches, queueLock, tryLockKey } = require('./locks')
const { armWait, beginWait, rejectCompleted, timedOut } = require('./wait')

/**
 * Joins `req` (`{ key, path, opts }`) to its path's open batch when `fits(batch)`, else asks
 * `open(mustBeFree)` for a new one (see `openBatch`), which may instead answer with a promise:
 * the call went elsewhere (it rides with another thread's batch) and owns `watch` from then on.
 * Then `enter(batch, watch, resolve, reject)` adds the call (see `armLeave`).
 */
function joinBatch(req, fits, open, enter) {
  const { key, path, opts } = req
  let watch
  try {
    watch = beginWait(opts.signal, path)
  } catch (err) {
    return Promise.reject(err)
  }
  let batch = openBatches.get(key)
  // The open batch is still waiting for the lock: a call that may not wait cannot join it.
  if (batch && opts.timeoutMs === 0) {
    watch.unwatch()
    return rejectCompleted(timedOut(key, path, 'exclusive', 0))
  }
  // One write per batch: other write options, or a full batch, queue a new one behind it.
  if (batch && !fits(batch)) batch = undefined
  if (!batch) {
    try {
      batch = open(opts.timeoutMs === 0, watch)
    } catch (err) {
      watch.unwatch()
      return rejectCompleted(err)
    }
    if (typeof batch?.then === 'function') return batch
  }
  const opened = batch
  return new Promise((resolve, reject) => enter(opened, watch, resolve, reject))
}

/**
 * Arms a call's own timeout and signal while it waits in `batch`: once either fires, if the call
 * has not started (`call.started`, `batch.started`) or settled, `fail(call, error)` settles it,
 * and the call leaves the batch (the last one out withdraws its request). Sets `call.cleanup`.
 */
function armLeave(batch, call, watch, req, fail) {
  const { key, path, opts } = req
  const leave = (makeError) => {
    if (call.started || call.settled) return
    fail(call, makeError())
    if (batch.started) return
    batch.calls.splice(batch.calls.indexOf(call), 1)
    if (batch.calls.length === 0) batch.abandon()
  }
  call.cleanup = armWait(watch, opts, () => timedOut(key, path, 'exclusive', opts.timeoutMs), leave)
}

/**
 * Makes `batch` (`{ calls, started, ... }`) the open batch of `req`'s path and starts its wait for
 * the exclusive lock: taken at once when free (`run(lock)` after the calls of this turn of the
 * event loop have joined), else queued (`run(lock)` at the grant; `failed(error)` if the wait
 * fails). Sets `batch.abandon()`, which withdraws a request nobody waits on any more. Throws if it
 * cannot even ask, or, `mustBeFree`, if the lock is not free.
 */
function openBatch(req, batch, mustBeFree, run, failed) {
  const { key, path } = req
  closeBatch(key)
  const free = tryLockKey(key, true)
  if (!free && mustBeFree) throw timedOut(key, path, 'exclusive', 0)
  batch.abandon = () => {}
  openBatches.set(key, batch)
  if (free) {
    Promise.resolve().then(() => run(free))
    return batch
  }
  const cancel = queueLock(key, true, run, (error) => {
    closeOpen(key, batch)
    failed(error)
  })
  // Everyone left before the grant: withdraw the request (if the grant is already on its way,
  // `run` finds no calls and releases it).
  batch.abandon = () => {
    closeOpen(key, batch)
    cancel()
  }
  return batch
}

/** `batch` takes no more calls (it runs, or was given up). */
function closeOpen(key, batch) {
  if (openBatches.get(key) === batch) openBatches.delete(key)
}

module.exports = { joinBatch, armLeave, openBatch, closeOpen }
