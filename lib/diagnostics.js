'use strict'
// Observability in Node's own conventions. A diagnostics_channel tracing channel per async
// operation (`index-lock:withIndexLock`, `index-lock:updateJson`, ...; start, end, asyncStart,
// asyncEnd and error, as undici and fastify publish theirs), whose context object carries the
// path(s), the mode, the time waited for the lock and held, the batch size and the bytes
// written; and NODE_DEBUG=index-lock lines for lock waits longer than a threshold, naming who
// holds the lock. While nobody subscribes (and NODE_DEBUG does not name index-lock) nothing is
// measured, allocated or scheduled.

const dc = require('node:diagnostics_channel')
const { debuglog } = require('node:util')

const OPERATIONS = [
  'withIndexLock',
  'acquire',
  'updateJson',
  'patchJson',
  'mergeJson',
  'writeJson',
  'atomicWrite',
  'readJson',
]
const channels = Object.fromEntries(OPERATIONS.map((name) => [name, dc.tracingChannel(`index-lock:${name}`)]))

const debug = debuglog('index-lock')
/** A wait logged under NODE_DEBUG=index-lock once it has lasted this long (ms). */
const DEBUG_WAIT_MS = (() => {
  const ms = Number(process.env.INDEX_LOCK_DEBUG_WAIT_MS)
  return Number.isFinite(ms) && ms >= 0 ? ms : 1000
})()

/**
 * Runs `run(context)` as operation `name`: traced with the context `makeContext()` builds when
 * the channel has subscribers, else `run(null)` as it is. `run` returns a promise and fills in
 * the context's measurements (see `lockTimes`).
 */
function traced(name, makeContext, run) {
  const channel = channels[name]
  if (!channel.hasSubscribers) return run(null)
  const context = makeContext()
  return channel.tracePromise(() => run(context), context)
}

const now = () => performance.now()

/**
 * Measures a lock's wait and hold into `context` (null: nothing to do): `granted()` when the lock
 * is held, `released()` when it is given up. `waitedMs` counts from this call.
 */
function lockTimes(context) {
  if (context === null) return null
  const asked = now()
  let grantedAt
  return {
    granted() {
      grantedAt = now()
      context.waitedMs = grantedAt - asked
    },
    released() {
      if (grantedAt !== undefined) context.heldMs = now() - grantedAt
    },
  }
}

/**
 * Under NODE_DEBUG=index-lock: logs a wait still going after DEBUG_WAIT_MS, naming the lock's
 * holders as `describe()` resolves them (a LockTimeoutError-like `{ path, mode, holders }`).
 * Returns the function that ends the watch (a no-op while debugging is off).
 */
function watchWait(describe) {
  if (!debug.enabled) return () => {}
  const timer = setTimeout(() => {
    describe().then(
      ({ path, mode, holders }) => {
        const pids = [...new Set(holders.map((h) => h.pid))]
        const who = pids.length
          ? `held by ${pids.map((p) => (p === process.pid ? `this process (pid ${p})` : `pid ${p}`)).join(', ')}`
          : 'holder unknown'
        debug(`waiting over ${DEBUG_WAIT_MS} ms for the ${mode} lock on '%s' (%s)`, path, who)
      },
      () => {},
    )
  }, DEBUG_WAIT_MS)
  timer.unref?.()
  return () => clearTimeout(timer)
}

/** Bytes `data` (a string or bytes) takes on disk. */
function byteLength(data) {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
}

module.exports = { traced, lockTimes, watchWait, byteLength, OPERATIONS }
