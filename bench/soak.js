#!/usr/bin/env node
'use strict'
// `npm run soak`: P processes x C async callers x N increments of one JSON counter through
// updateJson, with and without fsync; the final value must be exactly P*C*N. Then a leak check in
// this process: many acquire/release cycles and atomic writes must leave the open fd count and
// RSS flat. Prints one report and exits non-zero on any lost update or leak.
//
// Options: --processes 4 --callers 4 --increments 250 --cycles 100000 --writes 10000
//          --minutes 10 (an upper bound: no new phase starts after it)

const { fork } = require('node:child_process')
const { mkdtempSync, readdirSync, rmSync, readFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const lib = require('..')

function option(name, fallback) {
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return Number(argv[i + 1])
    if (argv[i].startsWith(`--${name}=`)) return Number(argv[i].slice(name.length + 3))
  }
  return fallback
}

function child([path, callers, increments, fsync]) {
  const one = async () => {
    for (let i = 0; i < Number(increments); i++) {
      await lib.updateJson(path, (c) => ({ n: c.n + 1 }), {
        default: { n: 0 },
        fsync: fsync === '1',
        timeoutMs: Infinity,
      })
    }
  }
  Promise.all(Array.from({ length: Number(callers) }, one)).then(
    () => process.exit(0),
    (err) => {
      console.error(err)
      process.exit(1)
    },
  )
}

const P = option('processes', 4)
const C = option('callers', 4)
const N = option('increments', 250)
const CYCLES = option('cycles', 100_000)
const WRITES = option('writes', 10_000)
const deadline = Date.now() + option('minutes', 10) * 60_000

const fdCount = () => readdirSync('/proc/self/fd').length
const rssMiB = () => process.memoryUsage().rss / 2 ** 20
// Node runs the finalizers of collected native handles in a later event-loop turn, so a loop
// that only awaits resolved promises would pile them up: yield now and then, as real apps do.
const turn = () => new Promise((resolve) => setImmediate(resolve))

async function settle() {
  for (let i = 0; i < 3; i++) {
    global.gc?.()
    await turn()
  }
}

async function counterRun(dir, fsync) {
  const path = join(dir, `counter-${fsync ? 'durable' : 'fast'}.json`)
  const started = process.hrtime.bigint()
  const children = Array.from({ length: P }, () =>
    fork(__filename, ['--child', path, String(C), String(N), fsync ? '1' : '0'], { stdio: 'inherit' }),
  )
  const codes = await Promise.all(children.map((c) => new Promise((resolve) => c.on('exit', resolve))))
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const final = JSON.parse(readFileSync(path, 'utf8')).n
  const expected = P * C * N
  return { fsync, ms, final, expected, lost: expected - final, failed: codes.filter((c) => c !== 0).length }
}

async function leakRun(dir) {
  const path = join(dir, 'leak.json')
  // Warm up so lazily created state (runtime threads, caches) is not counted as a leak.
  for (let i = 0; i < 1000; i++) await (await lib.acquire(path)).release()
  for (let i = 0; i < 100; i++) await lib.atomicWrite(path, '{}', { fsync: false })
  await settle()
  const before = { fds: fdCount(), rss: rssMiB() }
  let cycles = 0
  for (; cycles < CYCLES && Date.now() < deadline; cycles++) {
    const h = await lib.acquire(path, { mode: cycles % 3 ? 'exclusive' : 'shared' })
    await h.release()
    if (cycles % 1000 === 0) await turn()
  }
  let writes = 0
  for (; writes < WRITES && Date.now() < deadline; writes++) {
    await lib.atomicWrite(path, `{"i":${writes}}`, { fsync: writes % 10 === 0 })
  }
  await settle()
  const after = { fds: fdCount(), rss: rssMiB() }
  return { cycles, writes, before, after }
}

function row(cells, widths) {
  return cells.map((c, i) => String(c).padStart(widths[i])).join(' | ')
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'index-lock-soak-'))
  try {
    const runs = []
    for (const fsync of [true, false]) {
      if (Date.now() < deadline) runs.push(await counterRun(dir, fsync))
    }
    const leak = await leakRun(dir)
    const leftovers = readdirSync(dir).filter((n) => n.endsWith('.tmp'))

    const widths = [6, 10, 11, 4, 6, 9, 9]
    console.log(`index-lock soak: ${P} processes x ${C} callers x ${N} increments of one JSON counter`)
    console.log('')
    console.log(row(['fsync', 'operations', 'final value', 'lost', 'failed', 'time (ms)', 'updates/s'], widths))
    for (const r of runs) {
      console.log(
        row(
          [r.fsync, r.expected, r.final, r.lost, r.failed, r.ms.toFixed(0), Math.round((r.expected / r.ms) * 1000)],
          widths,
        ),
      )
    }
    const rssGrowth = leak.after.rss - leak.before.rss
    console.log('')
    console.log(`leak check: ${leak.cycles} acquire/release cycles, ${leak.writes} atomic writes`)
    console.log(`  open fds: ${leak.before.fds} before, ${leak.after.fds} after`)
    console.log(
      `  RSS: ${leak.before.rss.toFixed(1)} MiB before, ${leak.after.rss.toFixed(1)} MiB after ` +
        `(${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MiB)`,
    )
    console.log(`  temp files left: ${leftovers.length}`)

    const lost = runs.reduce((a, r) => a + r.lost, 0)
    const failed = runs.reduce((a, r) => a + r.failed, 0)
    // A leak of one small object per cycle over 100,000 cycles shows as tens of MiB; allocator
    // and V8 heap settling stay well under this.
    const leaked = leak.after.fds !== leak.before.fds || rssGrowth > 16 || leftovers.length > 0
    console.log('')
    console.log(`lost updates: ${lost}; failed processes: ${failed}; leaks: ${leaked ? 'YES' : 'none'}`)
    process.exitCode = lost || failed || leaked ? 1 : 0
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--child') child(process.argv.slice(3))
else main()
