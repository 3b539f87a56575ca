'use strict'
// patchJson and mergeJson: JSON changes (RFC 6902 patches, RFC 7396 merge patches) applied by
// the native engine (src/changes.rs) under the path's exclusive lock, in the same queue as every
// other request for the path. Concurrent calls in this thread that wait for the lock together are
// one batch: one acquisition, one read and parse, the changes in call order, one write, the lock
// released on the native thread the moment it is on disk. The document is never parsed,
// stringified or copied on the JS thread; only each call's change crosses, as JSON text.

const { native, callNative, awaitNative, fromNative } = require('./native')
const { invalidArgType, invalidArgValue } = require('./errors')
const { checkOptions, checkPath, lockOptions, writeOptions } = require('./options')
const { targetsOf } = require('./targets')
const { ioTarget } = require('./files')
const { heldByChain, runLocked, runLockedSync } = require('./holds')
const { closeBatch, holdNativeBatch, openBatches, queueBatchLock } = require('./locks')
const { explainLockFile } = require('./errors')
const { armLeave, closeOpen, joinBatch } = require('./batches')
const { armWait, asCallersTimeout, deliver, timedOut, untilDeadline } = require('./wait')
const { lockTimes } = require('./diagnostics')

/** Most calls one batch carries: their changes cross to the native thread together. */
const MAX_BATCH_CALLS = 64

/** JSON text of an argument; a value JSON cannot hold is ERR_INVALID_ARG_VALUE. */
function jsonText(value, name) {
  let text
  let cause
  try {
    text = JSON.stringify(value)
  } catch (err) {
    cause = err
  }
  if (text === undefined) {
    const err = invalidArgValue(name, value, `must be a value JSON can hold${cause ? ` (${cause.message})` : ''}`)
    if (cause) err.cause = cause
    throw err
  }
  return text
}

/**
 * A pointer holding a lone surrogate (valid in a JS string, so in JSON text) names a key the
 * native engine, which matches keys as UTF-8, cannot tell from others: refused, not guessed.
 */
function checkPointers(operations) {
  operations.forEach((op, i) => {
    for (const field of ['path', 'from']) {
      const pointer = op?.[field]
      if (typeof pointer === 'string' && !pointer.isWellFormed()) {
        throw invalidArgValue(
          `operations[${i}].${field}`,
          pointer,
          'must not contain a lone surrogate (use updateJson for such a key)',
        )
      }
    }
  })
}

/** The indentation JSON.stringify(value, null, space) uses (space checked by writeOptions). */
function indentOf(space) {
  if (typeof space === 'number') return ' '.repeat(space)
  if (typeof space === 'string') return space.slice(0, 10)
  return ''
}

/**
 * The checked request of a change: `{ path, key, targets, opts, call, indent, fsync, file }`,
 * `call` as the native engine takes it. A malformed patch or merge patch throws here, before
 * anything is queued.
 */
function changeRequest(path, kind, change, options, sync) {
  checkPath(path)
  const name = kind === 'patch' ? 'operations' : 'mergePatch'
  if (kind === 'patch' && !Array.isArray(change)) throw invalidArgType(name, 'an array', change)
  if (change === undefined) throw invalidArgType(name, 'a JSON value', change)
  const o = checkOptions(options)
  const opts = lockOptions(o, sync ? 'sync' : 'async')
  if (opts.mode !== 'exclusive') {
    throw invalidArgValue('options.mode', o.mode, "must be 'exclusive' for a change (it needs the exclusive lock)")
  }
  const { fsync, space } = writeOptions(o, { json: true })
  if (kind === 'patch') checkPointers(change)
  const text = jsonText(change, name)
  callNative(() => native.checkChange(kind, text))
  const fallback = o.default === undefined ? undefined : jsonText(o.default, 'options.default')
  const targets = targetsOf(path, opts.networkFs, sync)
  return {
    path,
    key: targets[0].key,
    targets,
    opts,
    call: { kind, change: text, default: fallback },
    indent: indentOf(space),
    fsync,
    file: ioTarget(path, targets[0].io, fsync),
  }
}

/** A call's outcome from the engine (null: done) as the error it rejects with, naming `path`. */
function outcomeError(text, { path, file }) {
  const err = fromNative(new Error(text))
  if (err.path === file.io || err.path === undefined) err.path = path
  if (file.io !== path) err.message = String(err.message).split(file.io).join(path)
  return err
}

/** Applies one change under a lock this chain holds (a nested call's turn). */
async function applyNested(req) {
  const {
    outcomes: [outcome],
  } = await awaitNative(callNative(() => native.applyChanges(req.file.io, [req.call], req.indent, req.fsync)))
  if (outcome) throw outcomeError(outcome, req)
}

/** patchJson/mergeJson: nested in a section holding the path, or batched. `context`: tracing. */
function change(req, context = null) {
  if (heldByChain(req.key)) {
    if (context) context.batchSize = 1
    return runLocked(req.targets, req.opts, () => applyNested(req), lockTimes(context))
  }
  return joinChanges(req, context)
}

function changeSync(req) {
  runLockedSync(req.targets, req.opts, () => {
    const {
      outcomes: [outcome],
    } = callNative(() => native.applyChangesSync(req.file.io, [req.call], req.indent, req.fsync))
    if (outcome) throw outcomeError(outcome, req)
  })
}

/**
 * Queues a change in the open batch of its path (same write options): this thread's, else one
 * another thread of the process queued (it rides with that batch), else a new one.
 */
function joinChanges(req, context) {
  const fits = (batch) =>
    batch.native && batch.fsync === req.fsync && batch.indent === req.indent && batch.calls.length < MAX_BATCH_CALLS
  const open = (mustBeFree, watch) => (mustBeFree ? null : ride(req, context, watch)) ?? newChanges(req, mustBeFree)
  return joinBatch(req, fits, open, (batch, watch, resolve, reject) => {
    const entry = { req, seq: native.changeSeq(), resolve, reject, settled: false, context, times: lockTimes(context) }
    batch.calls.push(entry)
    armLeave(batch, entry, watch, req, settle)
  })
}

function settle(entry, error) {
  if (entry.settled) return
  entry.settled = true
  entry.times?.released()
  try {
    entry.cleanup?.()
  } catch {}
  if (error === undefined) entry.resolve()
  else deliver(error, entry.reject)
}

/**
 * Rides with the batch another thread of this process has queued for the path, if there is one
 * with the same file and write options: the promise of the call, or null. The call keeps its own
 * timeoutMs and signal until that batch runs; if the batch is given up first, it queues here.
 */
function ride(req, context, watch) {
  const { key, path, opts } = req
  const ticket = native.nextWaitId()
  const reply = native.changesJoin(key, req.file.io, req.indent, req.fsync, ticket, req.call)
  if (!reply) return null
  // This thread's later calls must not join a batch of its own queued before this one.
  closeBatch(key)
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const entry = { req, resolve, reject, settled: false, context, times: lockTimes(context) }
    entry.cleanup = armWait(
      watch,
      opts,
      () => timedOut(key, path, 'exclusive', opts.timeoutMs),
      (makeError) => {
        if (!entry.settled && native.changesLeave(ticket)) settle(entry, makeError())
      },
    )
    reply.then(({ state, outcome, size }) => {
      if (state === 'left') return
      if (state === 'retry') {
        // Its batch will not run (its worker ended, or its wait failed): queue it here, with the
        // time it has left (its signal is checked again).
        entry.settled = true
        try {
          entry.cleanup()
        } catch {}
        const left = { ...req, opts: untilDeadline(opts, started + opts.timeoutMs) }
        resolve(
          joinChanges(left, context).catch((err) => Promise.reject(asCallersTimeout(err, opts.timeoutMs, started))),
        )
        return
      }
      // When the batch was granted is the owner's to know; the rider learns it with its outcome.
      entry.times?.granted()
      if (context) context.batchSize = size
      settle(entry, outcome ? outcomeError(outcome, req) : undefined)
    })
  })
}

/**
 * Starts a new batch's wait for the lock (taken at once when free). Throws if it cannot even ask.
 * Its lock is held natively for it (see `queueBatchLock`); calls from other threads may ride
 * with it from its request until it runs.
 */
function newChanges(req, mustBeFree) {
  const { key, path, file, indent, fsync } = req
  const batch = {
    native: true,
    calls: [],
    started: false,
    fsync,
    indent,
    id: null,
    abandon: () => {},
    ended: () => {},
  }
  closeBatch(key)
  batch.id = callNative(() => native.changesOpen(key, file.io, indent, fsync))
  let free
  try {
    free = callNative(() => native.changesTryLock(key, batch.id))
    if (!free && mustBeFree) throw timedOut(key, path, 'exclusive', 0)
  } catch (err) {
    native.changesAbandon(batch.id, true)
    throw explainLockFile(err)
  }
  // Held or awaited from now until it has run: a sync wait of this thread must see it.
  batch.ended = holdNativeBatch()
  openBatches.set(key, batch)
  if (free) {
    // Calls made in the same turn of the event loop still join.
    Promise.resolve().then(() => runChanges(batch, req))
    return batch
  }
  const cancel = queueBatchLock(
    key,
    batch.id,
    () => runChanges(batch, req),
    (error) => {
      closeOpen(key, batch)
      native.changesAbandon(batch.id, true)
      batch.ended()
      for (const entry of batch.calls) settle(entry, error)
    },
  )
  // Its own calls all left: the request is withdrawn, unless calls of other threads ride with
  // it (it then runs for them, where they would queue again behind their threads' later calls).
  batch.abandon = () => {
    if (!native.changesAbandon(batch.id, false)) return
    closeOpen(key, batch)
    // Withdrawn; or, if the grant is on its way, run with no calls (which ends it).
    if (cancel()) batch.ended()
  }
  return batch
}

async function runChanges(batch, req) {
  batch.started = true
  closeOpen(req.key, batch)
  const entries = batch.calls.filter((e) => !e.settled)
  for (const entry of entries) {
    entry.times?.granted()
    try {
      entry.cleanup?.()
    } catch {}
    entry.cleanup = null
  }
  let done
  let failure
  try {
    done = await awaitNative(
      callNative(() =>
        native.applyChangesRelease(
          req.file.io,
          entries.map((e) => ({ ...e.req.call, seq: e.seq })),
          batch.indent,
          batch.fsync,
          null,
          batch.id,
        ),
      ),
    )
  } catch (err) {
    failure = err
  }
  batch.ended()
  entries.forEach((entry, i) => {
    const outcome = failure === undefined ? done.outcomes[i] : null
    if (entry.context) entry.context.batchSize = done?.size ?? entries.length
    settle(entry, failure ?? (outcome ? outcomeError(outcome, entry.req) : undefined))
  })
}

module.exports = { changeRequest, change, changeSync }
