'use strict'
// updateJson and updateJsonSync: an update is one `mutateOnce` under the path's exclusive lock.
// A lone async update goes to group commit (lib/group-commit.js); one nested in a section that
// holds the path takes its turn there; a sync one runs in a sync section.

const { invalidArgValue } = require('./errors')
const { checkFunction, checkOptions, checkPath, lockOptions, writeOptions } = require('./options')
const { targetsOf } = require('./targets')
const { readDefault, fileState, mutateOnce } = require('./json')
const { ioTarget, readTarget, readTargetSync, writeTarget, writeTargetSync } = require('./files')
const { holds, asMutator, checkSyncResult, endTurn, heldByChain, runLocked, runLockedSync } = require('./holds')
const { joinUpdate } = require('./group-commit')
const { lockTimes } = require('./diagnostics')

/**
 * The checked request of an update: `{ path, key, targets, opts, read, space, file }`, where
 * `opts` are its lock options, `read` its default, and `file` where its IO goes (lib/files.js).
 */
function updateRequest(path, mutator, options, sync) {
  checkPath(path)
  checkFunction(mutator, 'mutator')
  const o = checkOptions(options)
  const opts = lockOptions(o, sync ? 'sync' : 'async')
  if (opts.mode !== 'exclusive') {
    throw invalidArgValue('options.mode', o.mode, "must be 'exclusive' for an update (it needs the exclusive lock)")
  }
  const targets = targetsOf(path, opts.networkFs, sync)
  // A fresh copy of the default each time, so a mutator editing it in place cannot change it
  // for later calls.
  const read = readDefault(o)
  const { fsync, space } = writeOptions(o, { json: true })
  return { path, key: targets[0].key, targets, opts, read, space, file: ioTarget(path, targets[0].io, fsync) }
}

/** `context`: the tracing context (lib/diagnostics.js) to measure into, or null. */
function update(req, mutator, context = null) {
  // Inside a section that holds the path: take a turn among its nested calls (no group commit),
  // or be refused (inside a mutator of the path, or in a shared hold).
  if (heldByChain(req.key)) {
    if (context) context.batchSize = 1
    return runLocked(req.targets, req.opts, () => updateNested(req, mutator), lockTimes(context))
  }
  return joinUpdate(req, mutator, context)
}

/**
 * One read-mutate-write, for a caller that already holds the lock (run as a nested section).
 * The update occupies its own hold until it is written: a call made from the mutator's context
 * after the mutator returned (a microtask, a timer) finds that hold and takes its turn after
 * the write, never alongside it.
 */
async function updateNested(req, mutator) {
  const own = holds.getStore().get(req.key)
  own.busy = true
  try {
    const state = fileState(req.path, await readTarget(req.file))
    const next = await mutateOnce(req.path, state, req.read, req.space, (input) =>
      asMutator(req.key, () => mutator(input)),
    )
    await writeTarget(req.file, next.text)
    return next.value
  } finally {
    endTurn(own)
  }
}

function updateSync(req, mutator) {
  return runLockedSync(req.targets, req.opts, () => {
    const state = fileState(req.path, readTargetSync(req.file))
    const run = (input) =>
      checkSyncResult(
        asMutator(req.key, () => mutator(input)),
        'mutator',
      )
    const next = mutateOnce(req.path, state, req.read, req.space, run, true)
    writeTargetSync(req.file, next.text)
    return next.value
  })
}

module.exports = { updateRequest, update, updateSync }
