'use strict'
// bench/run.js's big-index rows (section 6): one mode per process, so that the process's peak
// RSS belongs to that mode alone.
//
//   patchJson   `calls` concurrent patchJson(path, [add /entries/<key>]) calls
//   updateJson  `calls` concurrent updateJson(path, (ix) => { ix.entries[key] = value }) calls
//   js-rewrite  one readFileSync + JSON.parse + add one entry + JSON.stringify + writeFileSync
//   pointer     readJson(path, { pointer }) of one entry vs JSON.parse(readFileSync(path)) of the
//               whole file, `iterations` each after `warmUp`, alternating order; every call timed
//
// Each mode first warms up on a small private file (the JIT, the addon's threads), then measures.
// The write modes print one JSON line { wallMs, lagMaxMs, rssGrowthBytes, baselineRssBytes,
// missing, entries }: wall from the first call to the last settling; lagMaxMs the largest delay of a 1 ms
// setInterval from before the first call until a tick after the last one settled (a gap of
// 1 ms + x is x ms of lag); rssGrowthBytes the peak RSS of the process (getrusage ru_maxrss, the
// kernel's own high-water mark, so a peak between two samples is not missed) after the calls,
// minus the same figure before them (after the warm-up, with no byte of the big file loaded);
// missing the added entries that are not in the file afterwards (each a lost update), entries
// how many the file holds. The pointer mode prints { samplesUs: { pointer, parse } }.
//
// argv: one JSON config { mode, path, warmPath, calls, fsync, iterations, warmUp, pointer }

const fs = require('node:fs')
const { patchJson, updateJson, readJson } = require('..')

const config = JSON.parse(process.argv[2])
const { mode, path, warmPath, calls, fsync } = config

const value = (i) => ({ title: `added by the bench, call ${i}`, n: i, tags: ['bench', 'patch'] })
const keyOf = (i) => `bench-${process.pid}-${i}`

/** The calls of one write mode on `p`, all started at once; resolves when every one settled. */
function writes(p, n, tag) {
  const keys = Array.from({ length: n }, (_, i) => `${tag}${keyOf(i)}`)
  switch (mode) {
    case 'patchJson':
      return {
        keys,
        done: Promise.all(
          keys.map((k, i) =>
            patchJson(p, [{ op: 'add', path: `/entries/${k}`, value: value(i) }], { fsync, timeoutMs: Infinity }),
          ),
        ),
      }
    case 'updateJson':
      return {
        keys,
        done: Promise.all(
          keys.map((k, i) =>
            updateJson(
              p,
              (ix) => {
                ix.entries[k] = value(i)
              },
              { fsync, timeoutMs: Infinity },
            ),
          ),
        ),
      }
    case 'js-rewrite': {
      // What code without the library does: the whole file through V8, once, synchronously.
      const index = JSON.parse(fs.readFileSync(p, 'utf8'))
      index.entries[keys[0]] = value(0)
      fs.writeFileSync(p, `${JSON.stringify(index)}\n`)
      return { keys: keys.slice(0, 1), done: Promise.resolve() }
    }
    default:
      throw new Error(`unknown mode ${mode}`)
  }
}

const maxRss = () => process.resourceUsage().maxRSS * 1024
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The largest delay of a 1 ms interval timer while `fn` runs, in ms. */
async function withLagMonitor(fn) {
  let last = process.hrtime.bigint()
  let worstNs = 0n
  const timer = setInterval(() => {
    const now = process.hrtime.bigint()
    if (now - last > worstNs) worstNs = now - last
    last = now
  }, 1)
  await sleep(20) // the timer is running and the loop idle before the first call
  worstNs = 0n
  const result = await fn()
  // A few more ticks: a block at the very end (the last promise's callbacks) counts too.
  await sleep(5)
  clearInterval(timer)
  return { result, lagMaxMs: Math.max(0, Number(worstNs) / 1e6 - 1) }
}

async function writeMode() {
  fs.writeFileSync(warmPath, `${JSON.stringify({ entries: { a: value(0) } })}\n`)
  for (let round = 0; round < 3; round++) await writes(warmPath, calls, `warm${round}-`).done
  const baselineRssBytes = maxRss()
  let keys
  let wallMs
  const { lagMaxMs } = await withLagMonitor(async () => {
    const t0 = process.hrtime.bigint()
    const w = writes(path, calls, '')
    await w.done
    wallMs = Number(process.hrtime.bigint() - t0) / 1e6
    keys = w.keys
  })
  const rssGrowthBytes = maxRss() - baselineRssBytes
  // After the measurement: the file parses, and holds every entry it had and every one added.
  const after = JSON.parse(fs.readFileSync(path, 'utf8')).entries
  const missing = keys.filter((k) => !Object.hasOwn(after, k)).length
  return { wallMs, lagMaxMs, rssGrowthBytes, baselineRssBytes, missing, entries: Object.keys(after).length }
}

async function pointerMode() {
  const { iterations, warmUp, pointer } = config
  const impls = {
    pointer: () => readJson(path, { pointer }),
    parse: () => JSON.parse(fs.readFileSync(path, 'utf8')).entries[pointer.split('/').pop()],
  }
  // Both must find the same entry, or the timing compares different work.
  const a = JSON.stringify(await impls.pointer())
  const b = JSON.stringify(impls.parse())
  if (a !== b || a === undefined) throw new Error(`pointer read ${a}, JSON.parse ${b}`)
  const samplesUs = { pointer: [], parse: [] }
  for (let i = 0; i < warmUp + iterations; i++) {
    for (const name of i % 2 ? ['parse', 'pointer'] : ['pointer', 'parse']) {
      const t0 = process.hrtime.bigint()
      await impls[name]()
      if (i >= warmUp) samplesUs[name].push(Number(process.hrtime.bigint() - t0) / 1e3)
    }
  }
  return { samplesUs }
}

;(mode === 'pointer' ? pointerMode() : writeMode()).then(
  // Exit once the result line is out: a pipe write can still be queued, and exit drops it.
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0)),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
