'use strict'
// Group commit. Concurrent updateJson calls on one path in this thread coalesce while they wait
// for the lock: one acquisition, one read, the mutators in call order, one atomic write (one
// fsync pair), then each caller gets the state after its own mutator. Every caller ends as if the
// calls had run one after another, and no later, but for states too large to write (last item):
// - a mutator that throws (or returns something JSON cannot hold) fails only its own call; the
//   next one starts from the last good state;
// - a mutator still pending once the microtask queue drains (it waits for IO or a timer) first
//   has the calls before it written and settled; calls after it keep their own timeoutMs and
//   signal until their mutator starts;
// - a failed write is retried one call at a time, in call order; a call computed on top of one
//   whose write failed runs its mutator again on the state actually on disk (the only re-run);
//   a write that failed after its rename (`renamed`: the directory fsync) did reach the file and
//   is never retried with an earlier state;
// - only the last state of a batch (or of each part a slow mutator splits off) is written, so a
//   call whose own state is too large to write (EFBIG, ENOSPC) succeeds if a later call shrinks
//   it: inherent to one write per batch.
// A batch costs one read, and per call one serialization and (but the first) one parse: each
// state is serialized right after its own mutator, as alone, so no later mutator or other code
// can change the text written for it, and the next mutator gets the parse of that text, which
// is exactly what it would read alone. (A copy of plain data instead of the parse measured no
// faster here, and had to prove itself equal to the round trip.) The batch's last
// write releases the lock on the native thread that wrote it, as soon as it is on disk: the next
// holder does not wait for the hop back to this thread.

const { holds, mutatorScope } = require('./holds')
const { releaseLock } = require('./locks')
const { armLeave, closeOpen, joinBatch, openBatch } = require('./batches')
const { fileState, isThenable, mutateOnce } = require('./json')
const { readTarget, writeTarget, writeTargetReleasing } = require('./files')
const { deliver } = require('./wait')
const { lockTimes } = require('./diagnostics')

/** Most calls one write carries, and the most state copies (calls x file size) one batch holds. */
const MAX_BATCH_CALLS = 64
const MAX_BATCH_BYTES = 64 * 2 ** 20
/** Most paths whose last write size is remembered (to bound a batch's memory); then it starts over. */
const WRITTEN_SIZES_MAX = 10_000
const SLOW = Symbol('slow')
/** Size of the last write per lock key. */
const writtenBytes = new Map()

function batchLimit(key) {
  const size = writtenBytes.get(key) ?? 0
  return Math.max(1, Math.min(MAX_BATCH_CALLS, Math.floor(MAX_BATCH_BYTES / Math.max(size, 1))))
}

function rememberSize(key, size) {
  if (writtenBytes.size > WRITTEN_SIZES_MAX) writtenBytes.clear()
  writtenBytes.set(key, size)
}

/** Queues an update (see lib/update.js `updateRequest`) in the open batch of its path, or a new one. */
function joinUpdate(req, mutator, context = null) {
  const fits = (batch) =>
    !batch.native && batch.fsync === req.file.fsync && batch.space === req.space && batch.calls.length < batch.limit
  return joinBatch(
    req,
    fits,
    (mustBeFree) => newBatch(req, mustBeFree),
    (batch, watch, resolve, reject) => {
      const call = {
        mutator,
        read: req.read,
        resolve,
        reject,
        settled: false,
        started: false,
        outer: holds.getStore(),
        context,
        times: lockTimes(context),
      }
      armTurn(call)
      batch.calls.push(call)
      // A call's own timeout and signal apply until its mutator starts: while its batch waits for
      // the lock, and while the mutators before it run.
      armLeave(batch, call, watch, req, (c, error) => settleCall(c, { error }))
    },
  )
}

/**
 * Arms the next run of a call's mutator: `call.go({ input, store, hold })` starts it, `call.ran` (take
 * it before `go`) resolves with `{ returned }`. The mutator runs in its caller's async context
 * (all AsyncLocalStorage stores, as if it had run alone): the reaction is registered in that
 * context, here from joinBatch and again from inside each run, so a re-run keeps it too.
 * (AsyncLocalStorage.snapshot() does the same at ~10 us a call on Node 20.)
 */
function armTurn(call) {
  const turn = new Promise((go) => (call.go = go))
  call.ran = turn.then(({ input, store, hold }) => {
    armTurn(call)
    // The run's hold ends when the mutator settles, as a lone call's does: a call its context
    // makes later (a timer it set) is an ordinary caller, not one nested in the mutator.
    const end = () => (hold.active = false)
    let returned
    try {
      returned = holds.run(store, () => call.mutator(input))
      if (isThenable(returned)) {
        returned = Promise.resolve(returned)
        returned.then(end, end)
        return { returned }
      }
    } catch (err) {
      end()
      throw err
    }
    end()
    return { returned }
  })
}

/** Settles a call with `{ value }` or `{ error }` (a mutator may throw any value, even a falsy one). */
function settleCall(call, outcome) {
  if (call.settled) return
  call.settled = true
  call.times?.released()
  if ('error' in outcome) deliver(outcome.error, call.reject)
  else call.resolve(outcome.value)
  stopWaiting(call)
}

/**
 * Drops a call's timer and abort listener (a signal-like object that fails to remove a listener
 * must not keep other callers from settling).
 */
function stopWaiting(call) {
  const cleanup = call.cleanup
  call.cleanup = null
  try {
    cleanup?.()
  } catch {}
}

/** Resolves with SLOW after the microtask queue has drained (and pending IO callbacks ran). */
function afterMicrotasks() {
  return new Promise((resolve) => setImmediate(resolve, SLOW))
}

/** Starts a new batch's wait for the lock (taken at once when free). Throws if it cannot even ask. */
function newBatch(req, mustBeFree) {
  const batch = { calls: [], started: false, limit: batchLimit(req.key), fsync: req.file.fsync, space: req.space }
  return openBatch(
    req,
    batch,
    mustBeFree,
    (lock) => runBatch(batch, lock, req),
    (error) => {
      for (const call of batch.calls) settleCall(call, { error })
    },
  )
}

async function runBatch(batch, lock, req) {
  batch.started = true
  closeOpen(req.key, batch)
  const calls = batch.calls.filter((c) => !c.settled)
  for (const call of calls) {
    if (call.context === null) continue
    call.times.granted()
    call.context.batchSize = calls.length
  }
  const after = []
  try {
    if (calls.length > 0) await commit(calls, req, after, lock)
  } catch (err) {
    // Only a bug gets here; even then no caller is left waiting and nothing rejects unhandled.
    for (const call of calls) after.push([call, { error: err }])
  } finally {
    releaseLock(lock)
  }
  // The last outcomes are settled after the release, as a lone call's are: its caller may take
  // the lock again at once (a sync call would otherwise find this thread still holding it).
  for (const [call, outcome] of after) settleCall(call, outcome)
}

/**
 * Runs a batch's mutators and writes their states, under the lock. A state is lib/json.js
 * `fileState`'s: `{ text, value, unshared }`, `text` as written (null: no file yet).
 */
async function commit(calls, req, after, lock) {
  const { key, path } = req
  /** Once no mutator is left to run, outcomes go to `after` (settled after the release). */
  let draining = false
  const settle = (call, outcome) => (draining ? after.push([call, outcome]) : settleCall(call, outcome))
  /** The state on disk. */
  let saved
  try {
    saved = fileState(path, await readTarget(req.file))
  } catch (err) {
    for (const call of calls) after.push([call, { error: err }])
    return
  }
  /** The state after the last good mutator; `pending`: the calls done but not yet written. */
  let last = saved
  let pending = []
  /** Bumped when a write fails and `last` falls back to the state on disk. */
  let epoch = 0

  /** Writes `text`; `last`: nothing is left to do under the lock once it is written, so the write releases it. */
  const write = async (text, last = false) => {
    if (last) await writeTargetReleasing(req.file, text, lock)
    else await writeTarget(req.file, text)
    rememberSize(key, text.length)
  }

  /** Runs a call's mutator on `state`: `{ state }` after it, or `{ error }`. */
  const apply = async (call, state, flushIfSlow) => {
    try {
      const run = (input) => {
        const ran = call.ran
        // Each run has a hold of its own: a lock request for the path from inside the mutator is
        // refused (ELOCKNESTED) only while it runs.
        const { hold, store } = mutatorScope(call.outer, key)
        call.go({ input, store, hold })
        return ran.then(async ({ returned }) => {
          if (!isThenable(returned)) return returned
          const result = Promise.resolve(returned)
          // Run alone, the calls before this one would be written by now.
          if (flushIfSlow && pending.length > 0 && (await Promise.race([result, afterMicrotasks()])) === SLOW) {
            await flush()
          }
          return await result
        })
      }
      return { state: await mutateOnce(path, state, call.read, req.space, run) }
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
      await write(top.text, draining)
      saved = top
      for (const d of group) {
        if (d.call.context) d.call.context.bytes = Buffer.byteLength(top.text)
        settle(d.call, { value: d.state.value })
      }
      return
    } catch (err) {
      failure = err
    }
    if (failure?.renamed === true) {
      // Only the directory fsync failed: the file holds `top`, the state every call of the
      // group led to, as it would after the same calls one by one. Retrying an earlier call's
      // state would move the file backwards, so none is retried; each call rejects as a lone
      // call whose save failed after its rename does.
      saved = top
      for (const d of group) settle(d.call, { error: failure })
      return
    }
    if (group.length === 1) {
      settle(group[0].call, { error: failure })
    } else {
      // In call order. A call's state is exact while every call before it was written; after a
      // failed one, the later mutators run again on the state actually on disk.
      let exact = true
      for (const d of group) {
        let state = d.state
        if (!exact) {
          const again = await apply(d.call, saved, false)
          if ('error' in again) {
            settle(d.call, again)
            continue
          }
          state = again.state
        }
        try {
          await write(state.text)
          saved = state
          if (d.call.context) d.call.context.bytes = Buffer.byteLength(state.text)
          settle(d.call, { value: state.value })
        } catch (err) {
          settle(d.call, { error: err })
          // Renamed: the file holds this call's state after all, which the next was computed on.
          if (err?.renamed === true) saved = state
          else exact = false
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
    if ('error' in outcome) {
      // Only this call fails; the next starts from the last good state.
      settle(call, outcome)
    } else {
      pending.push({ call, state: outcome.state })
      last = outcome.state
    }
  }
  draining = true
  await flush()
}

module.exports = { joinUpdate }
