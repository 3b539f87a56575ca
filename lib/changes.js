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
const { closeBatch, openBatches, queueLock, releaseLock, tryLockKey } = require('./locks')
const { armWait, beginWait, deliver, rejectCompleted, timedOut } = require('./wait')
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
  const [outcome] = await awaitNative(native.applyChanges(req.file.io, [req.call], req.indent, req.fsync))
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
    const [outcome] = callNative(() => native.applyChangesSync(req.file.io, [req.call], req.indent, req.fsync))
    if (outcome) throw outcomeError(outcome, req)
  })
}

/** Queues a change in the open native batch of its path (same write options), or a new one. */
function joinChanges(req, context) {
  const { key, path, opts } = req
  const { timeoutMs } = opts
  let watch
  try {
    watch = beginWait(opts.signal, path)
  } catch (err) {
    return Promise.reject(err)
  }
  let batch = openBatches.get(key)
  if (batch && timeoutMs === 0) {
    watch.unwatch()
    return rejectCompleted(timedOut(key, path, 'exclusive', 0))
  }
  if (
    batch &&
    (!batch.native || batch.fsync !== req.fsync || batch.indent !== req.indent || batch.calls.length >= MAX_BATCH_CALLS)
  ) {
    batch = undefined
  }
  if (!batch) {
    try {
      batch = openChanges(req, timeoutMs === 0)
    } catch (err) {
      watch.unwatch()
      return rejectCompleted(err)
    }
  }
  const opened = batch
  return new Promise((resolve, reject) => {
    const entry = { req, resolve, reject, settled: false, context, times: lockTimes(context) }
    opened.calls.push(entry)
    const leave = (makeError) => {
      if (opened.started || entry.settled) return
      settle(entry, makeError())
      opened.calls.splice(opened.calls.indexOf(entry), 1)
      if (opened.calls.length === 0) opened.abandon()
    }
    entry.cleanup = armWait(watch, opts, () => timedOut(key, path, 'exclusive', timeoutMs), leave)
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

/** Starts a batch's wait for the lock (taken at once when free). Throws if it cannot even ask. */
function openChanges(req, mustBeFree) {
  const { key, path } = req
  closeBatch(key)
  const free = tryLockKey(key, true)
  if (!free && mustBeFree) throw timedOut(key, path, 'exclusive', 0)
  const batch = { native: true, calls: [], started: false, fsync: req.fsync, indent: req.indent, abandon: () => {} }
  openBatches.set(key, batch)
  const run = (lock) => runChanges(batch, lock, req)
  if (free) {
    // Calls made in the same turn of the event loop still join.
    Promise.resolve().then(() => run(free))
    return batch
  }
  const cancel = queueLock(key, true, run, (error) => {
    if (openBatches.get(key) === batch) openBatches.delete(key)
    for (const entry of batch.calls) settle(entry, error)
  })
  batch.abandon = () => {
    if (openBatches.get(key) === batch) openBatches.delete(key)
    cancel()
  }
  return batch
}

async function runChanges(batch, lock, req) {
  batch.started = true
  if (openBatches.get(req.key) === batch) openBatches.delete(req.key)
  const entries = batch.calls.filter((e) => !e.settled)
  for (const entry of entries) {
    entry.times?.granted()
    if (entry.context) entry.context.batchSize = entries.length
    try {
      entry.cleanup?.()
    } catch {}
    entry.cleanup = null
  }
  let outcomes
  let failure
  try {
    if (entries.length > 0) {
      outcomes = await awaitNative(
        native.applyChangesRelease(
          req.file.io,
          entries.map((e) => e.req.call),
          batch.indent,
          batch.fsync,
          lock,
        ),
      )
    }
  } catch (err) {
    failure = err
  } finally {
    releaseLock(lock)
  }
  entries.forEach((entry, i) => {
    const outcome = failure === undefined ? outcomes[i] : null
    settle(entry, failure ?? (outcome ? outcomeError(outcome, entry.req) : undefined))
  })
}

module.exports = { changeRequest, change, changeSync }
