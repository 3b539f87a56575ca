'use strict'
// One process of bench/run.js's read-modify-write test: C async callers x U updates of a shared
// JSON index through one strategy. Each update loads the index, adds one entry under a key no
// other update uses, and saves it, so every key missing at the end is a lost update.
//
// Protocol (the same as bench/native): argv[2] is a JSON config; the child warms up on a private
// file, prints `ready`, waits for a line on stdin (the common start signal), runs, and prints one
// JSON line: { latenciesUs, finishNs, errors, pid }. finishNs is process.hrtime.bigint() at the
// end, which on Linux is CLOCK_MONOTONIC and so comparable across processes.

const fsp = require('node:fs/promises')
const { dirname } = require('node:path')

const config = JSON.parse(process.argv[2])
const { strategy, path, warmPath, callers, updates, warmUpdates, fsync, procIndex } = config

const EMPTY = () => ({ entries: {} })

const PL_OPTIONS = require('./proper-lockfile-options.js')

async function readIndex(p) {
  let text
  try {
    text = await fsp.readFile(p, 'utf8')
  } catch (err) {
    if (err.code === 'ENOENT') return EMPTY()
    throw err
  }
  return text.trim() === '' ? EMPTY() : JSON.parse(text)
}

/** fsync of the directory, so a rename survives a crash of the machine (what every row pays). */
async function fsyncDir(p) {
  const dir = await fsp.open(dirname(p), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

const entry = () => ({ at: Date.now() })

/** Each strategy: (path, key) => Promise of one update. */
function makeStrategy(name) {
  switch (name) {
    case 'naive': {
      // What code without a lock does: one fixed temp name, so writers also trample each
      // other's temp file (a torn temp renamed into place shows up as an error afterwards).
      return async (p, key) => {
        const index = await readIndex(p)
        index.entries[key] = entry()
        const tmp = `${p}.tmp`
        const fh = await fsp.open(tmp, 'w')
        try {
          await fh.writeFile(`${JSON.stringify(index)}\n`)
          if (fsync) await fh.sync()
        } finally {
          await fh.close()
        }
        await fsp.rename(tmp, p)
        if (fsync) await fsyncDir(p)
      }
    }
    case 'proper-lockfile':
    case 'queue+proper-lockfile': {
      const lockfile = require('proper-lockfile')
      const writeFileAtomic = require('write-file-atomic')
      const locked = async (p, key) => {
        const release = await lockfile.lock(p, PL_OPTIONS)
        try {
          const index = await readIndex(p)
          index.entries[key] = entry()
          await writeFileAtomic(p, `${JSON.stringify(index)}\n`, { fsync })
          // write-file-atomic fsyncs the file but not the directory; add that here so this row
          // gives (and pays for) the same crash guarantee as index-lock and the native bound.
          if (fsync) await fsyncDir(p)
        } finally {
          await release()
        }
      }
      if (name === 'proper-lockfile') return locked
      // The usual fix for proper-lockfile's in-process polling: one promise chain per path, so
      // only one caller per process competes for the lock directory.
      const tails = new Map()
      return (p, key) => {
        const run = (tails.get(p) ?? Promise.resolve()).then(() => locked(p, key))
        const tail = run.catch(() => {})
        tails.set(p, tail)
        tail.then(() => {
          if (tails.get(p) === tail) tails.delete(p)
        })
        return run
      }
    }
    case 'withIndexLock': {
      const { withIndexLock, readJson, writeJson } = require('..')
      return (p, key) =>
        withIndexLock(
          p,
          async () => {
            const index = await readJson(p, { default: EMPTY() })
            index.entries[key] = entry()
            await writeJson(p, index, { fsync })
          },
          { timeoutMs: Infinity },
        )
    }
    case 'withIndexLock+sync-io': {
      // Diagnostic (run.js --diagnose): the same critical section with the library's synchronous
      // file calls, i.e. without its two thread-pool round trips per update.
      const { withIndexLock, readJsonSync, writeJsonSync } = require('..')
      return (p, key) =>
        withIndexLock(
          p,
          () => {
            const index = readJsonSync(p, { default: EMPTY() })
            index.entries[key] = entry()
            writeJsonSync(p, index, { fsync })
          },
          { timeoutMs: Infinity },
        )
    }
    case 'updateJson': {
      const { updateJson } = require('..')
      return (p, key) =>
        updateJson(
          p,
          (index) => {
            index.entries[key] = entry()
          },
          { default: EMPTY(), fsync, timeoutMs: Infinity },
        )
    }
    case 'patchJson': {
      // The same update as one JSON Patch op, applied natively (bench/run.js section 6).
      const { patchJson } = require('..')
      return (p, key) =>
        patchJson(p, [{ op: 'add', path: `/entries/${key}`, value: entry() }], {
          default: EMPTY(),
          fsync,
          timeoutMs: Infinity,
        })
    }
    default:
      throw new Error(`unknown strategy ${name}`)
  }
}

/** C callers x n updates on `p`; per-update latency from the call to its settling. */
async function run(update, p, n) {
  const latenciesUs = []
  let errors = 0
  let firstError = null
  const caller = async (c) => {
    for (let i = 0; i < n; i++) {
      const started = process.hrtime.bigint()
      try {
        await update(p, `${procIndex}-${c}-${i}`)
        latenciesUs.push(Number(process.hrtime.bigint() - started) / 1e3)
      } catch (err) {
        // The naive row fails now and then (a temp file renamed away by another writer, a torn
        // index); count it and go on, as a careless app would.
        errors++
        firstError ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)))
  return { latenciesUs, errors, firstError }
}

async function main() {
  const update = makeStrategy(strategy)
  // Warm the JIT, the addon's threads and the page cache on a file nobody else touches.
  await run(update, warmPath, Math.max(1, Math.ceil(warmUpdates / callers)))
  process.stdout.write('ready\n')
  await new Promise((resolve) => {
    process.stdin.once('data', resolve)
    // The orchestrator is gone (its end of the pipe closed): there is nobody to run for.
    process.stdin.once('end', () => process.exit(1))
  })
  process.stdin.pause()
  const { latenciesUs, errors, firstError } = await run(update, path, updates)
  const finishNs = process.hrtime.bigint()
  if (firstError && strategy !== 'naive') console.error(`${strategy}: ${errors} errors, first:`, firstError)
  process.stdout.write(`${JSON.stringify({ latenciesUs, finishNs: String(finishNs), errors, pid: process.pid })}\n`)
}

main().then(
  // proper-lockfile keeps unref'd timers; exit explicitly so no stray handle keeps us alive.
  // Exit once the result line is out: a pipe write can still be queued, and exit drops it.
  () => process.stdout.write('', () => process.exit(0)),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
