#!/usr/bin/env node
'use strict'
// What the diagnostics_channel tracing costs an uncontended withIndexLock round trip, measured in
// one process, interleaved in rounds so that drift hits all three alike:
//   (a) the same steps as withIndexLock without the tracing layer (argument checks, targets,
//       lib/holds.js runLocked),
//   (b) the public withIndexLock with nobody subscribed (the case that must cost nothing),
//   (c) the public withIndexLock with a subscriber on index-lock:withIndexLock.
// Prints the median per round trip of each and the ratios b/a and c/a.
// usage: node bench/diagnostics.js [round trips per round, default 20000] [rounds, default 7]

const dc = require('node:diagnostics_channel')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { withIndexLock } = require('..')
const { runLocked } = require('../lib/holds')
const { checkFunction, checkPaths, lockOptions } = require('../lib/options')
const { targetsOf } = require('../lib/targets')

const N = Number(process.argv[2] ?? 20_000)
const ROUNDS = Number(process.argv[3] ?? 7)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function time(fn) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) await fn()
  return Number(process.hrtime.bigint() - start) / 1000 / N // us per round trip
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'index-lock-dc-bench-'))
  const p = path.join(dir, 'index.json')
  const noop = () => {}
  const bare = () => {
    checkPaths(p)
    checkFunction(noop, 'fn')
    const opts = lockOptions(undefined)
    return runLocked(targetsOf(p, opts.networkFs, false), opts, noop)
  }
  const publicCall = () => withIndexLock(p, noop)
  const channel = dc.tracingChannel('index-lock:withIndexLock')
  const subscriber = { start() {}, end() {}, asyncStart() {}, asyncEnd() {}, error() {} }
  const results = { bare: [], unsubscribed: [], subscribed: [] }
  try {
    // Warm-up: JIT, the kept sidecar descriptor, the key cache.
    await time(bare)
    await time(publicCall)
    for (let r = 0; r < ROUNDS; r++) {
      results.bare.push(await time(bare))
      results.unsubscribed.push(await time(publicCall))
      channel.subscribe(subscriber)
      results.subscribed.push(await time(publicCall))
      channel.unsubscribe(subscriber)
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const a = median(results.bare)
  const b = median(results.unsubscribed)
  const c = median(results.subscribed)
  console.log(`uncontended withIndexLock round trip, median of ${ROUNDS} rounds x ${N}:`)
  console.log(`  (a) without the tracing layer      ${a.toFixed(2)} us`)
  console.log(`  (b) public call, no subscriber      ${b.toFixed(2)} us   b/a x${(b / a).toFixed(3)}`)
  console.log(`  (c) public call, one subscriber     ${c.toFixed(2)} us   c/a x${(c / a).toFixed(3)}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
