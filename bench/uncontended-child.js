'use strict'
// bench/run.js's uncontended round trip, one implementation per process (so one library's
// timers, JIT state and garbage do not tax the next): take and release a free lock, again and
// again, timing every round trip. Prints one JSON line: { samplesUs }.
//
// With `count` as the fifth argument nothing is timed or collected and the line is { done }:
// run.js runs that mode under `strace -c`, where only the round trips' own syscalls may scale
// with the iteration count.
//
// argv: <impl> <path> <iterations> <warm-up iterations> [count]

const [impl, path, iterations, warmUp, mode] = process.argv.slice(2)

function makeRoundTrip() {
  switch (impl) {
    case 'index-lock': {
      const { withIndexLock } = require('..')
      const noop = () => {}
      return () => withIndexLock(path, noop)
    }
    case 'proper-lockfile': {
      const lockfile = require('proper-lockfile')
      return async () => {
        const release = await lockfile.lock(path, { realpath: false })
        await release()
      }
    }
    case 'promise': {
      // The JS part of the floor of an index-lock round trip: one call that returns a promise,
      // resolved, and its await; what withIndexLock's caller pays however fast the lock is.
      const noop = async () => {}
      return () => noop()
    }
    case 'async-mutex': {
      const { Mutex } = require('async-mutex')
      const mutex = new Mutex()
      const noop = () => {}
      return () => mutex.runExclusive(noop)
    }
    default:
      throw new Error(`unknown implementation ${impl}`)
  }
}

async function main() {
  const roundTrip = makeRoundTrip()
  for (let i = 0; i < Number(warmUp); i++) await roundTrip()
  if (mode === 'count') {
    for (let i = 0; i < Number(iterations); i++) await roundTrip()
    process.stdout.write(`${JSON.stringify({ done: Number(iterations) })}\n`)
    return
  }
  const samplesUs = new Float64Array(Number(iterations))
  for (let i = 0; i < samplesUs.length; i++) {
    const started = process.hrtime.bigint()
    await roundTrip()
    samplesUs[i] = Number(process.hrtime.bigint() - started) / 1e3
  }
  process.stdout.write(`${JSON.stringify({ samplesUs: Array.from(samplesUs) })}\n`)
}

main().then(
  // Exit once the result line is out: a pipe write can still be queued, and exit drops it.
  () => process.stdout.write('', () => process.exit(0)),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
