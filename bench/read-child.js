'use strict'
// bench/run.js's small-file read: `await readJson(p)` next to `JSON.parse(fs.readFileSync(p))`
// (the floor: no thread hop at all) and `JSON.parse(await fs.promises.readFile(p))` (Node's own
// async read), all in this one process, in short blocks that rotate order, so that a noisy
// neighbour's burst lands on all three alike and the ratio stays meaningful when absolute times
// drift. Every call is timed. Prints one JSON line: { samplesUs: { <impl>: [...] } }.
//
// argv: <path> <iterations per implementation> <warm-up iterations per implementation>

const fs = require('node:fs')
const { readJson } = require('..')

const [path, iterations, warmUp] = process.argv.slice(2)
const BLOCK = 200

// The sync floor is called without `await`: awaiting it would add a microtask turn the real
// code never pays.
const IMPLS = {
  readJson: { sync: false, call: () => readJson(path) },
  readFileSync: { sync: true, call: () => JSON.parse(fs.readFileSync(path, 'utf8')) },
  'fs.promises.readFile': { sync: false, call: async () => JSON.parse(await fs.promises.readFile(path, 'utf8')) },
}
const names = Object.keys(IMPLS)

async function block(name, n, out) {
  const { sync, call } = IMPLS[name]
  let sink = 0
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint()
    const value = sync ? call() : await call()
    const us = Number(process.hrtime.bigint() - started) / 1e3
    sink += value === null ? 0 : 1 // keep the parse result alive, so it cannot be optimized away
    out?.push(us)
  }
  return sink
}

async function main() {
  const expected = JSON.stringify(JSON.parse(fs.readFileSync(path, 'utf8')))
  for (const name of names) {
    // Each reads the same value; a wrong reader would make its timing meaningless.
    const got = JSON.stringify(IMPLS[name].sync ? IMPLS[name].call() : await IMPLS[name].call())
    if (got !== expected) throw new Error(`${name} read ${got}, not ${expected}`)
    await block(name, Number(warmUp))
  }
  const samplesUs = Object.fromEntries(names.map((n) => [n, []]))
  const total = Number(iterations)
  for (let done = 0, round = 0; done < total; done += BLOCK, round++) {
    const n = Math.min(BLOCK, total - done)
    const order = names.map((_, i) => names[(i + round) % names.length])
    for (const name of order) await block(name, n, samplesUs[name])
  }
  process.stdout.write(`${JSON.stringify({ samplesUs })}\n`)
}

main().then(
  // Exit once the result line is out: a pipe write can still be queued, and exit drops it.
  () => process.stdout.write('', () => process.exit(0)),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
