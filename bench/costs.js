#!/usr/bin/env node
'use strict'
// `node bench/costs.js`: where one update's time goes, in one process with no contention. Not part
// of `npm run bench`; it backs the diagnosis in bench/RESULTS.md. Each async call is timed next
// to its synchronous twin (same syscalls, no thread hand-off), so the difference is what the
// hand-off to a worker thread and back costs; fs.promises.stat vs fs.statSync gives the same
// figure for Node's own libuv pool as a reference. Variants run interleaved, in many short rounds,
// so that a noisy neighbour's burst spreads over all of them.
//
// Then group commit: C concurrent updateJson callers in this one process, each adding its own
// entries to an index that starts with --entries entries; updates/s and the CPU time spent,
// which tells whether a batch waits on the disk or on JSON work on the event loop.
//
// Options: --entries 300 (size of the index the calls work on), --rounds 40

const fs = require('node:fs')
const fsp = require('node:fs/promises')
const os = require('node:os')
const { join } = require('node:path')

const lib = require('..')

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

const ENTRIES = option('entries', 300)
const ROUNDS = option('rounds', 40)
const PER_ROUND = 10

const dir = fs.mkdtempSync(join(os.tmpdir(), 'index-lock-costs-'))
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
const path = join(dir, 'index.json')
const index = { entries: {} }
for (let i = 0; i < ENTRIES; i++) index.entries[`0-0-${i}`] = { at: Date.now() }
const text = `${JSON.stringify(index)}\n`
fs.writeFileSync(path, text)

const add = (x) => {
  x.entries.extra = { at: Date.now() }
}
const noop = () => {}

// Rows: [call, fn, twin, twinFn]: the call's median next to its twin's and the difference. A null
// fn reuses a call timed in an earlier row; a row without a twin stands alone.
const variants = [
  ['fs.promises.stat (libuv pool)', () => fsp.stat(path), 'fs.statSync', () => fs.statSync(path)],
  ['readJson', () => lib.readJson(path), 'readJsonSync', () => lib.readJsonSync(path)],
  [
    'writeJson fsync:false',
    () => lib.writeJson(path, index, { fsync: false }),
    'writeJsonSync fsync:false',
    () => lib.writeJsonSync(path, index, { fsync: false }),
  ],
  [
    'writeJson fsync:true',
    () => lib.writeJson(path, index, { fsync: true }),
    'writeJsonSync fsync:true',
    () => lib.writeJsonSync(path, index, { fsync: true }),
  ],
  [
    'withIndexLock(path, noop)',
    () => lib.withIndexLock(path, noop),
    'withIndexLockSync(path, noop)',
    () => lib.withIndexLockSync(path, noop),
  ],
  [
    'updateJson fsync:false',
    () => lib.updateJson(path, add, { fsync: false }),
    'updateJsonSync fsync:false',
    () => lib.updateJsonSync(path, add, { fsync: false }),
  ],
  [
    'updateJson fsync:false',
    null, // timed above; here it is compared with the same steps spelled out by hand
    'withIndexLock+readJson+writeJson fsync:false',
    () =>
      lib.withIndexLock(path, async () => {
        const x = await lib.readJson(path)
        add(x)
        await lib.writeJson(path, x, { fsync: false })
      }),
  ],
  ['JSON.parse+JSON.stringify of the index', () => JSON.stringify(JSON.parse(text))],
  [
    'updateJson fsync:true',
    () => lib.updateJson(path, add, { fsync: true }),
    'updateJsonSync fsync:true',
    () => lib.updateJsonSync(path, add, { fsync: true }),
  ],
]

async function main() {
  const fns = variants.flatMap(([a, fa, b, fb]) => [fa && [a, fa], fb && [b, fb]].filter(Boolean))
  const samples = new Map(fns.map(([name]) => [name, []]))
  for (const [, fn] of fns) for (let i = 0; i < 30; i++) await fn() // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of fns) {
      for (let i = 0; i < PER_ROUND; i++) {
        const t = process.hrtime.bigint()
        await fn()
        samples.get(name).push(Number(process.hrtime.bigint() - t) / 1e3)
      }
    }
  }
  const median = (name) => {
    const s = Float64Array.from(samples.get(name)).sort()
    return s[Math.floor(s.length / 2)]
  }
  console.log(
    `one process, no contention, index of ${ENTRIES} entries (${text.length} B), ${ROUNDS * PER_ROUND} calls each`,
  )
  console.log(
    `${'call'.padEnd(46)} ${'median'.padStart(10)}   ${'twin'.padEnd(44)} ${'median'.padStart(10)}   difference`,
  )
  for (const [a, , b] of variants) {
    const ma = median(a)
    const left = `${a.padEnd(46)} ${`${ma.toFixed(1)} us`.padStart(10)}`
    if (!b) {
      console.log(left)
      continue
    }
    const mb = median(b)
    console.log(`${left}   ${b.padEnd(44)} ${`${mb.toFixed(1)} us`.padStart(10)}   ${(ma - mb).toFixed(1)} us`)
  }
}

/** C callers x U durable updateJson calls on a fresh copy of the index; updates/s and CPU use. */
async function groupCommit(callers, updates) {
  const file = join(dir, `group-${callers}.json`)
  fs.writeFileSync(file, text)
  const cpu = process.cpuUsage()
  const t = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; i < updates; i++) {
        await lib.updateJson(file, (x) => {
          x.entries[`g-${c}-${i}`] = { at: Date.now() }
        })
      }
    }),
  )
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6
  const used = process.cpuUsage(cpu)
  const cpuMs = (used.user + used.system) / 1e3
  const size = fs.statSync(file).size
  console.log(
    `updateJson fsync:true, ${String(callers).padStart(2)} callers x ${updates}: ` +
      `${((callers * updates) / (wallMs / 1e3)).toFixed(0).padStart(5)} updates/s, ` +
      `CPU ${cpuMs.toFixed(0)} ms of ${wallMs.toFixed(0)} ms wall, index ${text.length} -> ${size} B`,
  )
}

async function groups() {
  console.log('')
  console.log('group commit, one process:')
  const total = 960
  for (const callers of [1, 16, 64]) await groupCommit(callers, Math.round(total / callers))
}

main()
  .then(groups)
  .catch((err) => {
    console.error(err)
    process.exit(1)
  })
