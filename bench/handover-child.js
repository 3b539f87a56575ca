'use strict'
// One of the two processes of bench/run.js's hand-over test. The orchestrator (over IPC) makes
// the two take turns strictly: a process asks for the lock only when told it is its turn, and
// the holder lets go only once the other has asked and had `holdMs` to settle into its wait, so
// every hand-over is "holder releases, parked waiter enters" and nobody barges in.
//
// Timestamps are process.hrtime.bigint(), CLOCK_MONOTONIC on Linux and so comparable across the
// two processes: `releaseNs` is taken as the last thing inside the critical section (what follows
// is the library's own release path, which the hand-over includes), `enteredNs` as the first.
// Messages go out only after a timestamp is taken, so IPC is never inside a measured interval.
//
// argv: <impl> <path> <holdMs>

const [impl, path, holdMs] = process.argv.slice(2)

const PL_OPTIONS = require('./proper-lockfile-options.js')

function makeWithLock() {
  switch (impl) {
    case 'index-lock': {
      const { withIndexLock } = require('..')
      return (fn) => withIndexLock(path, fn, { timeoutMs: Infinity })
    }
    case 'proper-lockfile': {
      const lockfile = require('proper-lockfile')
      return async (fn) => {
        const release = await lockfile.lock(path, PL_OPTIONS)
        try {
          return await fn()
        } finally {
          await release()
        }
      }
    }
    default:
      throw new Error(`unknown implementation ${impl}`)
  }
}

const withLock = makeWithLock()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let peerWaiting = null

async function takeTurn() {
  let releaseNs
  const waitingForPeer = new Promise((resolve) => (peerWaiting = resolve))
  const held = withLock(async () => {
    const enteredNs = process.hrtime.bigint()
    process.send({ type: 'entered', ns: String(enteredNs) })
    await waitingForPeer
    await sleep(Number(holdMs))
    releaseNs = process.hrtime.bigint()
  })
  // The request is queued (index-lock: its flock wait thread started) by the time the call
  // returns; the holder still waits holdMs before letting go.
  process.send({ type: 'waiting' })
  await held
  process.send({ type: 'released', ns: String(releaseNs) })
}

process.on('message', (m) => {
  if (m.type === 'turn') {
    takeTurn().catch((err) => {
      console.error(err)
      process.exit(1)
    })
  } else if (m.type === 'peerWaiting') {
    peerWaiting()
  } else if (m.type === 'done') {
    process.exit(0)
  }
})
// The orchestrator is gone: nobody will ever say 'done'.
process.on('disconnect', () => process.exit(1))
process.send({ type: 'ready' })
