'use strict'
// `npm run demo`: the lost-update problem index-lock exists to fix, run for real.
//
// The relay fan-out this project exists for: several worker processes (demo/worker.js), each with
// several async agents, register trajectories through the example trajectory store
// (examples/trajectories) into ONE shared data directory, whose index.json every save updates by
// load -> add entry -> save. This runs that twice, each time in a fresh temp dir: once with the
// store's hand-rolled internals ("naive") and once with its index-lock internals. Then it counts
// which entries the index kept. Exit code: 0 if index-lock kept every entry with no errors (the
// naive run losing entries is the expected outcome), 1 otherwise, 2 for bad flags.

const { fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const WORKER = path.join(__dirname, 'worker.js')
const EXAMPLE = path.join(__dirname, '..', 'examples', 'trajectories', 'dist')
const DEFAULTS = { processes: 4, agents: 4, saves: 10 }
const USAGE = `Usage: npm run demo -- [--processes N] [--agents N] [--saves N]
       node demo/relay.js [--processes=N] [--agents=N] [--saves=N]

Runs N worker processes x M async agents x K trajectory saves each into one shared data
directory through the example FileStorage, first with its naive index internals
(readFile/JSON.parse -> add -> writeFile index.json.tmp -> rename), then with its index-lock
internals, and reports how many index entries each strategy kept.

  --processes N   worker processes          (default ${DEFAULTS.processes})
  --agents N      async agents per process  (default ${DEFAULTS.agents})
  --saves N       entries saved per agent   (default ${DEFAULTS.saves})
  --help          print this and exit

Exit code 0 when index-lock kept every entry without errors, 1 otherwise, 2 for bad flags.`

class UsageError extends Error {}

/** Accepts `--name value` and `--name=value`; every value is a positive integer. */
function parseArgs(argv) {
  const opts = { ...DEFAULTS }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') return null
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(arg)
    if (!m || !(m[1] in DEFAULTS)) throw new UsageError(`unknown argument '${arg}'`)
    const name = m[1]
    let value = m[2]
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`)
      value = argv[++i]
    }
    if (!/^[1-9][0-9]*$/.test(value)) {
      throw new UsageError(`--${name} must be a positive integer, got '${value}'`)
    }
    opts[name] = Number(value)
  }
  return opts
}

// Everything that must go if we stop early (Ctrl-C, a crash): live workers and temp dirs.
const liveChildren = new Set()
const tempDirs = new Set()

function cleanup() {
  for (const child of liveChildren) child.kill('SIGKILL')
  // Retries: a just-killed worker may still finish a write while the dir is being removed.
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  tempDirs.clear()
}
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(128 + os.constants.signals[signal]))
}

/** Forks one worker; resolves once it reports ready. `done` settles with its error counts. */
function startWorker(config) {
  const child = fork(WORKER, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  liveChildren.add(child)
  let onReady
  const ready = new Promise((resolve) => (onReady = resolve))
  const done = new Promise((resolve, reject) => {
    let result = null
    child.on('message', (msg) => {
      if (msg.type === 'ready') onReady()
      else if (msg.type === 'done') result = msg.errors
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      liveChildren.delete(child)
      if (result && code === 0) resolve(result)
      else reject(new Error(`worker ${config.proc} exited with ${signal ?? `code ${code}`} before finishing`))
    })
  })
  // A worker that dies before it is ready would otherwise leave `ready` pending forever.
  done.catch(() => {})
  return { child, ready: Promise.race([ready, done.then(() => {})]), done }
}

function stop(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGKILL')
  })
}

/** Runs one strategy in a fresh temp dir and counts which of the expected entries survived. */
async function runStrategy(strategy, { processes, agents, saves }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `index-lock-demo-${strategy}-`))
  tempDirs.add(dir)
  const workers = []
  try {
    // The data dir is set up once, before the race, as an app's install step would.
    const { FileStorage } = require(EXAMPLE)
    await new FileStorage(dir).initialize()
    const indexPath = path.join(dir, '.trajectories', 'index.json')
    for (let proc = 0; proc < processes; proc++) {
      workers.push(startWorker({ strategy, baseDir: dir, proc, agents, saves }))
    }
    // Start everybody at the same moment: the more the writers overlap, the more the race shows.
    await Promise.all(workers.map((w) => w.ready))
    const started = performance.now()
    for (const w of workers) w.child.send('go')
    const results = await Promise.all(workers.map((w) => w.done))
    const ms = performance.now() - started

    const errors = {}
    for (const r of results) for (const [code, n] of Object.entries(r)) errors[code] = (errors[code] || 0) + n

    let entries = {}
    let note = ''
    try {
      entries = JSON.parse(fs.readFileSync(indexPath, 'utf8')).trajectories ?? {}
    } catch (err) {
      note = err.code === 'ENOENT' ? 'index.json missing at the end' : 'index.json unreadable at the end'
    }
    let kept = 0
    for (let p = 0; p < processes; p++) {
      for (let a = 0; a < agents; a++) {
        for (let s = 0; s < saves; s++) if (Object.hasOwn(entries, `p${p}-a${a}-s${s}`)) kept++
      }
    }
    return { strategy, kept, errors, ms, note }
  } finally {
    // After a failure the other workers may still be waiting or writing: stop them, and wait until
    // they are gone so nothing writes into the dir while it is removed.
    await Promise.all(workers.filter((w) => liveChildren.has(w.child)).map((w) => stop(w.child)))
    fs.rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
}

function printTable(rows, expected) {
  const table = [
    ['strategy', 'entries kept / expected', 'lost', 'errors', 'time (ms)'],
    ...rows.map((r) => [
      r.strategy,
      `${r.kept} / ${expected}`,
      String(expected - r.kept),
      String(sum(r.errors)),
      r.ms.toFixed(0),
    ]),
  ]
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
  // Text columns left-aligned, numbers right-aligned.
  const line = (row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')
  console.log(line(table[0]))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const row of table.slice(1)) console.log(line(row))
  for (const r of rows) {
    const codes = Object.entries(r.errors).map(([code, n]) => `${code} x${n}`)
    if (codes.length || r.note) console.log(`  ${r.strategy}: ${[...codes, r.note].filter(Boolean).join(', ')}`)
  }
}

const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0)

async function main() {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`demo: ${err.message}\n\n${USAGE}`)
    return 2
  }
  if (!opts) {
    console.log(USAGE)
    return 0
  }
  const { processes, agents, saves } = opts
  const expected = processes * agents * saves

  console.log(
    `${processes} relay workers x ${agents} agents x ${saves} trajectories each = ${expected} saves ` +
      'into ONE shared data dir.',
  )
  console.log('Each FileStorage.save() writes the trajectory file, then: load index.json -> add entry -> save.')
  console.log('The same FileStorage class runs twice, with two versions of its private index internals:')
  console.log('  naive       readFile + JSON.parse -> add -> writeFile index.json.tmp -> rename')
  console.log('  index-lock  withIndexLock(index.json, load -> add -> atomic save) (fsync on)')
  console.log()

  const rows = []
  for (const strategy of ['naive', 'index-lock']) rows.push(await runStrategy(strategy, opts))
  printTable(rows, expected)

  const [naive, locked] = rows
  const ok = locked.kept === expected && sum(locked.errors) === 0 && !locked.note
  console.log()
  if (naive.kept < expected) {
    console.log(
      `naive lost ${expected - naive.kept} index entries (their trajectory files exist, the index forgot ` +
        'them): writers load the same old index, and each save overwrites the entries the others just added.',
    )
    if (naive.errors.ENOENT) {
      console.log('The shared index.json.tmp also gets renamed away under other writers: the ENOENT errors.')
    }
  } else {
    console.log(
      processes * agents === 1
        ? 'naive lost nothing: with a single writer there is nobody to race. Try more --processes or --agents.'
        : 'naive happened to lose nothing this time (little overlap); the race is still there. Try more --agents.',
    )
  }
  if (ok) {
    console.log('index-lock kept all entries: each load -> add -> save runs alone, across every process.')
    console.log('It takes longer because saves take turns and each one is fsynced to disk.')
  } else {
    console.log(`FAIL: index-lock kept ${locked.kept} of ${expected} entries with ${sum(locked.errors)} errors.`)
  }
  return ok ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(err)
    process.exitCode = 1
  },
)
