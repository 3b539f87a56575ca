'use strict'
// Reentrancy: what the current async call chain holds (AsyncLocalStorage), so that a nested call
// on a held path takes a turn inside the section instead of waiting for itself; the sections of
// withIndexLock/updateJson (async and sync); and the refusals that keep a chain from deadlocking
// itself or losing an update (ELOCKNESTED, ELOCKUPGRADE, ELOCKDEADLOCK).

const { AsyncLocalStorage } = require('node:async_hooks')
const {
  busyTurnError,
  heldByChainError,
  nestedError,
  setOrderError,
  syncPromiseError,
  upgradeError,
} = require('./errors')
const { lockSet, lockSetSync, releaseAll, tryLockFree } = require('./locks')
const { QUEUE, asCallersTimeout, timedOut, untilDeadline, waitFor } = require('./wait')

// What the current call chain holds: canonical path -> its hold. A hold is one section:
//   { active, sync, mutator, busy, queue, idle, deferred, of: Map<key, { mode, parent }> }
// Nested calls on a held path take turns on the hold (`busy`, FIFO `queue`) and run with a child
// hold of their own, so their own nested calls queue on the child. A section ends only once its
// nested calls are done (`idle`); a call that finds its hold ended looks up the hold it was
// nested in (`parent`), and with none it is an ordinary caller. Sync calls see the same store, so
// sync and async sections nest in each other; an async call made in a sync section waits in its
// `deferred` list until it ends.
const holds = new AsyncLocalStorage()

function newHold(of, { sync = false, mutator = false } = {}) {
  return { active: true, sync, mutator, busy: false, writes: 0, queue: [], idle: [], deferred: [], of: new Map(of) }
}

/** The active hold of `key` in `store`, if any. */
function holdOf(store, key) {
  let hold = store?.get(key)
  while (hold && !hold.active) hold = hold.of?.get(key)?.parent
  return hold
}

/** The active hold of `key` in the current call chain, if any. */
function heldByChain(key) {
  return holdOf(holds.getStore(), key)
}

function childStore(store, targets, hold) {
  const inner = new Map(store)
  for (const { key } of targets) inner.set(key, hold)
  return inner
}

/**
 * The hold of one run of an updateJson mutator of `key`, in the chain `store` it was called
 * from, and the store the mutator runs with: a lock request for `key` from inside the mutator is
 * refused (ELOCKNESTED) while the hold is active, since the update's write would replace what it
 * did.
 */
function mutatorScope(store, key) {
  const hold = newHold([[key, { mode: 'exclusive', parent: holdOf(store, key) }]], { mutator: true })
  return { hold, store: childStore(store, [{ key }], hold) }
}

/**
 * How to run a request of this chain for `targets`: the holds it must take a turn on (with one of
 * their targets each) and the targets it must lock, plus the child hold's `of`. Refuses at once a
 * request inside a mutator of one of the paths (ELOCKNESTED), an exclusive one inside a shared
 * hold (ELOCKUPGRADE), and a set that would lock a path ordered before one the chain holds
 * (ELOCKDEADLOCK).
 */
function planFor(store, targets, mode) {
  const turns = []
  const need = []
  const of = []
  for (const target of targets) {
    const hold = holdOf(store, target.key)
    if (!hold) {
      need.push(target)
      of.push([target.key, { mode, parent: undefined }])
      continue
    }
    if (hold.mutator) throw nestedError(target.path)
    const held = hold.of.get(target.key).mode
    if (held === 'shared' && mode === 'exclusive') throw upgradeError(target.path)
    if (!turns.some((t) => t.hold === hold)) turns.push({ hold, target })
    // The child covers what the chain already holds (exclusive covers shared).
    of.push([target.key, { mode: held, parent: hold }])
  }
  // Every set is taken in one global order (targets are sorted): locking a path after holding
  // one ordered later reverses it, and a caller taking the same set from the start could hold
  // the first path and wait for ours while we wait for it.
  const first = need[0]
  const later = first && turns.length > 0 && targets.find((t) => t.key > first.key && !need.includes(t))
  if (later) throw setOrderError(first.path, later.path)
  return { turns, need, of }
}

/** Throws ELOCKNESTED for a handle requested inside a mutator of one of its paths. */
function refuseInMutator(targets) {
  const store = holds.getStore()
  for (const target of targets) {
    if (holdOf(store, target.key)?.mutator) throw nestedError(target.path)
  }
}

/**
 * Refuses at once a handle that only this chain's own release could grant: the path is held by
 * a section of the chain that lasts across event-loop turns (a synchronous section ends by
 * itself, so a handle asked for inside one is granted after it), and the request is exclusive,
 * or shared while the chain holds it exclusive.
 */
function refuseHeldByChain(targets, mode) {
  const store = holds.getStore()
  for (const { key, path } of targets) {
    let hold = holdOf(store, key)
    while (hold?.sync) {
      hold = hold.of.get(key)?.parent
      while (hold && !hold.active) hold = hold.of?.get(key)?.parent
    }
    if (!hold) continue
    const held = hold.of?.get(key)?.mode ?? 'exclusive'
    if (held === 'shared' && mode === 'shared') continue
    throw held === 'shared' ? upgradeError(path) : heldByChainError(path)
  }
}

/** A request for a turn among the nested calls of `hold` (call order), as `waitFor` runs it. */
class TurnRequest {
  constructor(hold, { key, path }, mode, timeoutMs) {
    this.hold = hold
    this.key = key
    this.path = path
    this.mode = mode
    this.timeoutMs = timeoutMs
  }

  now() {
    if (this.hold.busy) return QUEUE
    this.hold.busy = true
  }

  timedOut() {
    return timedOut(this.key, this.path, this.mode, this.timeoutMs)
  }

  queue(granted, failed) {
    const { queue } = this.hold
    const turn = { go: () => granted() }
    queue.push(turn)
    return (makeError) => {
      const i = queue.indexOf(turn)
      if (i < 0) return
      queue.splice(i, 1)
      failed(makeError())
    }
  }
}

/** Resolves when it is this call's turn among the nested calls of `hold`. */
function takeTurn(hold, target, mode, opts) {
  return waitFor(opts, new TurnRequest(hold, target, mode, opts.timeoutMs))
}

function endTurn(hold) {
  const next = hold.queue.shift()
  if (next) return next.go()
  hold.busy = false
  if (hold.writes === 0) for (const done of hold.idle.splice(0)) done()
}

/** Resolves once no nested call runs or waits on `hold`, and no write started in it runs. */
function idle(hold) {
  return new Promise((resolve) => hold.idle.push(resolve))
}

/**
 * Runs `fn` under the locks of `targets`. Reentrant for the same async chain: nested calls on a
 * held path run one at a time, in call order, and the section releases once they are done.
 */
async function runLocked(targets, opts, fn, times = null) {
  const store = holds.getStore()
  const { plan, taken, locks } =
    enterNow(store, targets, opts) ?? (await enterSection(store, targets, opts, Date.now()))
  times?.granted()
  const mine = newHold(plan.of)
  try {
    return await holds.run(childStore(store, targets, mine), fn)
  } finally {
    // Nested calls and writes made during the section finish under the lock; later ones find it
    // ended.
    while (mine.busy || mine.writes > 0) await idle(mine)
    mine.active = false
    releaseAll(locks)
    times?.released()
    for (const hold of taken) endTurn(hold)
  }
}

/**
 * `enterSection` for the common case, without its promises: one path the chain does not hold, no signal,
 * free now. Null when that is not the case (nothing was taken; `enterSection` then runs in full).
 */
function enterNow(store, targets, opts) {
  // A signal goes the full way: watching it may throw even when the lock is free.
  if (targets.length !== 1 || opts.signal) return null
  const plan = planFor(store, targets, opts.mode)
  if (plan.need.length !== 1) return null
  const lock = tryLockFree(targets[0].key, opts.mode)
  return lock && { plan, taken: [], locks: [lock] }
}

/**
 * Takes a section's turns and locks, joining each queue synchronously so that call order is
 * queue order. A synchronous section cannot wait for async work: a call made inside one that
 * holds the path joins its queues the moment that section ends (under whatever then holds the
 * path), in call order with the other calls made inside it and ahead of any call made after it.
 */
function enterSection(store, targets, opts, started) {
  const plan = planFor(store, targets, opts.mode)
  const sync = plan.turns.find((t) => t.hold.sync)
  if (!sync) return takeSection(plan, opts, started)
  return new Promise((resolve, reject) => {
    sync.hold.deferred.push(() => {
      try {
        resolve(enterSection(store, targets, opts, started))
      } catch (err) {
        reject(err)
      }
    })
  })
}

async function takeSection(plan, opts, started) {
  const deadline = started + opts.timeoutMs
  const taken = []
  let locks = []
  try {
    for (const { hold, target } of plan.turns) {
      await takeTurn(hold, target, opts.mode, untilDeadline(opts, deadline))
      taken.push(hold)
    }
    if (plan.need.length > 0) locks = await lockSet(plan.need, untilDeadline(opts, deadline))
  } catch (err) {
    for (const hold of taken) endTurn(hold)
    throw asCallersTimeout(err, opts.timeoutMs, started)
  }
  return { plan, taken, locks }
}

/**
 * Runs a write of `path` (lock key `key`) started in a section of this chain that holds the path
 * so that it ends under that section's lock, even when `fn` does not await it (a floating
 * `writeJson` would otherwise rename after the release: an unlocked write). `write()` (async)
 * is counted on the section's hold, whose release waits for it; it takes no turn, so it waits
 * for nothing and cannot deadlock with the nested call it runs in. In a synchronous section,
 * which cannot wait, `writeSync()` runs at once, under the lock (a write deferred to after the
 * section would carry a state read under a lock given up since). In an updateJson mutator of
 * the path it is refused (ELOCKNESTED): the update's write would replace it. Elsewhere `write()`
 * runs as it is, taking no lock.
 */
function runAsNestedWrite(key, path, write, writeSync) {
  const hold = heldByChain(key)
  if (!hold) return write()
  if (hold.mutator) return Promise.reject(nestedError(path))
  if (hold.sync) {
    try {
      writeSync()
    } catch (err) {
      return Promise.reject(err)
    }
    return Promise.resolve()
  }
  hold.writes++
  const done = () => {
    hold.writes--
    if (!hold.busy && hold.writes === 0) for (const resolve of hold.idle.splice(0)) resolve()
  }
  const written = write()
  written.then(done, done)
  return written
}

/** Runs an updateJson mutator of `key` (see `mutatorScope`); its hold ends when it settles. */
function asMutator(key, fn) {
  const { hold, store } = mutatorScope(holds.getStore(), key)
  const end = () => (hold.active = false)
  let result
  try {
    result = holds.run(store, fn)
  } catch (err) {
    end()
    throw err
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    return Promise.resolve(result).finally(end)
  }
  end()
  return result
}

/** `value`, unless a synchronous call's `name` (fn, mutator) returned a promise. */
function checkSyncResult(value, name) {
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
    throw syncPromiseError(name)
  }
  return value
}

function runLockedSync(targets, opts, fn) {
  const store = holds.getStore()
  const plan = planFor(store, targets, opts.mode)
  for (const { hold, target } of plan.turns) if (hold.busy) throw busyTurnError(target.path)
  for (const { hold } of plan.turns) hold.busy = true
  let locks = []
  try {
    if (plan.need.length > 0) locks = lockSetSync(plan.need, opts)
  } catch (err) {
    for (const { hold } of plan.turns) endTurn(hold)
    throw err
  }
  const mine = newHold(plan.of, { sync: true })
  try {
    return checkSyncResult(holds.run(childStore(store, targets, mine), fn), 'fn')
  } finally {
    mine.active = false
    releaseAll(locks)
    for (const { hold } of plan.turns) endTurn(hold)
    // Async calls made inside queue now, before this section returns: behind whatever already
    // waited on the path, ahead of anything called after it.
    for (const start of mine.deferred.splice(0)) start()
  }
}

module.exports = {
  holds,
  heldByChain,
  mutatorScope,
  refuseInMutator,
  refuseHeldByChain,
  endTurn,
  runLocked,
  runLockedSync,
  runAsNestedWrite,
  asMutator,
  checkSyncResult,
}
