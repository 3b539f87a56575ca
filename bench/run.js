#!/usr/bin/env node
'use strict'
// `npm run bench`: index-lock side by side with the alternatives, in one invocation, as one table,
// judged against the project's performance targets, each a ratio of two figures of the same run.
//
//   1. Uncontended round trip: withIndexLock(path, () => {}) vs proper-lockfile lock()+release()
//      vs async-mutex runExclusive(() => {}); beside them the floor of the same run (information,
//      issue 18): a native loop of the hot path's three syscalls on a kept sidecar descriptor
//      (bench/native floor-lock: flock(LOCK_EX|LOCK_NB) + fstat + flock(LOCK_UN)) plus one
//      promise resolution in Node (await of a no-op async call, timed as the round trips are).
//   2. Read-modify-write of one shared JSON index: P processes x C async callers x U updates, each
//      adding one entry under a unique key: naive (no lock), proper-lockfile + write-file-atomic,
//      the same behind an in-process queue, withIndexLock + readJson/writeJson, updateJson, and a
//      native lower bound (bench/native, Rust: flock + serde_json, no JS), with and without fsync.
//   3. Cross-process hand-over: the holder releases, the parked waiter in another process enters.
//      Beside it the floor of the same run (information, issue 18): the kernel's hand-over (bench/
//      native floor-handover: two native processes, each blocked in flock(LOCK_EX) while the
//      other releases, timed as index-lock's) plus one wake-up of an idle event loop by another
//      thread (bench/wakeup-child.js: a worker_thread's postMessage to an idle main thread).
//   4. Small read: await readJson(p) vs JSON.parse(fs.readFileSync(p)) vs
//      JSON.parse(await fs.promises.readFile(p)) of a ~100-byte file, interleaved in one process.
//   5. Syscalls of the uncontended round trip: section 1's index-lock child under `strace -f -c`,
//      twice with different round-trip counts; the difference divided by the difference of the
//      counts is what one round trip costs (start-up, warm-up and exit cancel out exactly).
//   6. patchJson (JSON Patch applied natively under the lock): the durable read-modify-write of
//      section 2 at 4x1 and 4x16 as one `add /entries/<key>` op per update, beside updateJson and
//      the native bound in the same rows' rotation; then a big index (~16 MB, 90k entries; 4 MB
//      with --quick): 10 concurrent patchJson calls (and updateJson calls) in one process, wall
//      time, the event loop's largest lag and the peak RSS growth, beside one plain JS
//      readFileSync + JSON.parse + JSON.stringify + writeFileSync of the same file; and
//      readJson(p, { pointer }) of one entry beside JSON.parse(readFileSync(p)) of the whole file.
//
// Options:
//   --quick        short smoke run (~30 s; used by a test): few iterations, tiny U
//   --runs <n>     repeat the whole bench n times (default 1): every run's table and targets, then
//                  each target's status per run and the spread (min..max) of its figures
//   --json <file>  also write the results, machine-readable
//   --only <list>  comma-separated subset of: uncontended,read,rmw,handover,syscalls,patch (for
//                  working on one part)
//   --rmw <list>   section 2's configurations to run instead of the standard ones, all rows each, as
//                  PxCxU, comma-separated (e.g. 1x1x600 for the cost of an update without any
//                  contention)
//   --diagnose     add a diagnostic RMW row: withIndexLock with the library's *synchronous* file
//                  calls inside (shows what its async thread-pool round trips cost)
//
// Everything runs in child processes (one implementation per process) under one temp dir in
// os.tmpdir(), which is removed at the end; every child is killed if the bench stops early.
// Progress goes to stderr; the report (and only the report) to stdout. The exit code is 1 when a
// row failed or a locked row lost an update or saw an error; a missed target does not change it.

const { spawn, fork, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const { join } = require('node:path')

const ROOT = join(__dirname, '..')
const NATIVE_MANIFEST = join(__dirname, 'native', 'Cargo.toml')
const NATIVE_BIN = join(__dirname, 'native', 'target', 'release', 'index-lock-bench-native')

// ---------------------------------------------------------------------------------------------
// Options and settings

const SECTIONS = ['uncontended', 'read', 'rmw', 'handover', 'syscalls', 'patch']

function parseArgs(argv) {
  const args = { quick: false, json: null, only: null, diagnose: false, rmw: null, runs: 1 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') args.quick = true
    else if (a === '--diagnose') args.diagnose = true
    else if (a === '--rmw' || a.startsWith('--rmw=')) {
      const list = a === '--rmw' ? argv[++i] : a.slice(6)
      args.rmw = (list ?? '').split(',').map((c) => {
        const m = /^(\d+)x(\d+)x(\d+)$/.exec(c)
        if (!m) throw new Error(`--rmw takes PxCxU[,PxCxU...], not ${c}`)
        return { P: Number(m[1]), C: Number(m[2]), U: Number(m[3]), all: true }
      })
    } else if (a === '--runs' || a.startsWith('--runs=')) {
      const n = a === '--runs' ? argv[++i] : a.slice(7)
      if (!/^[1-9]\d*$/.test(n ?? '')) throw new Error(`--runs takes a positive whole number, not ${n}`)
      args.runs = Number(n)
    } else if (a === '--json') args.json = argv[++i]
    else if (a.startsWith('--json=')) args.json = a.slice(7)
    else if (a === '--only') args.only = argv[++i].split(',')
    else if (a.startsWith('--only=')) args.only = a.slice(7).split(',')
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node bench/run.js [--quick] [--runs <n>] [--json <file>] [--only uncontended,read,rmw,handover,syscalls,patch] [--rmw PxCxU,...] [--diagnose]\n',
      )
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  if (args.json === undefined || args.json === '') throw new Error('--json needs a file name')
  const unknown = (args.only ?? []).filter((x) => !SECTIONS.includes(x))
  if (unknown.length) throw new Error(`--only takes ${SECTIONS.join(', ')}; not ${unknown.join(', ')}`)
  return args
}

let args
try {
  args = parseArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`bench/run.js: ${err.message}\n`)
  process.exit(2)
}

// U per configuration is the same for every row of that configuration, so each row does the
// same work on an index that grows the same way (the file ends at P*C*U entries, ~30 bytes each).
// Each RMW row runs `reps` times, the rows of a configuration in alternating order (forward,
// backward, ...), so that a burst from a noisy neighbour does not land on one row only.
const SETTINGS = args.quick
  ? {
      uncontended: {
        'index-lock': 5000,
        'async-mutex': 5000,
        'proper-lockfile': 500,
        promise: 5000,
        'native-floor': 5000,
        rounds: 1,
      },
      read: { iterations: 2000, warmUp: 200 },
      syscalls: { fewer: 200, more: 2200, warmUp: 200, timeoutMs: 120_000 },
      rmw: [
        { P: 4, C: 1, U: 30, all: true },
        { P: 4, C: 4, U: 8, all: true },
        { P: 4, C: 16, U: 3, all: false },
      ],
      reps: 1,
      warmUpdates: 8,
      handover: { rounds: 50, holdMs: 2 },
      patch: {
        rmw: [
          { P: 4, C: 1, U: 30 },
          { P: 4, C: 16, U: 3 },
        ],
        big: { entries: 22_500, nominal: '4 MB', calls: 10, reps: 1, pointerIterations: 4, pointerWarmUp: 1 },
      },
      runTimeoutMs: 20_000,
    }
  : {
      uncontended: {
        'index-lock': 20_000,
        'async-mutex': 20_000,
        'proper-lockfile': 2000,
        promise: 20_000,
        'native-floor': 20_000,
        rounds: 2,
      },
      read: { iterations: 20_000, warmUp: 2000 },
      syscalls: { fewer: 2000, more: 22_000, warmUp: 1000, timeoutMs: 300_000 },
      rmw: [
        { P: 4, C: 1, U: 200, all: true },
        { P: 4, C: 4, U: 50, all: true },
        { P: 4, C: 16, U: 20, all: false },
      ],
      reps: 4,
      warmUpdates: 40,
      handover: { rounds: 200, holdMs: 2 },
      patch: {
        rmw: [
          { P: 4, C: 1, U: 200 },
          { P: 4, C: 16, U: 20 },
        ],
        big: { entries: 90_000, nominal: '16 MB', calls: 10, reps: 3, pointerIterations: 15, pointerWarmUp: 2 },
      },
      runTimeoutMs: 90_000,
    }

if (args.rmw) SETTINGS.rmw = args.rmw

const RMW_IMPLS = [
  { key: 'naive', label: '(a) naive: readFile/writeFile tmp+rename, no lock' },
  { key: 'proper-lockfile', label: '(b) proper-lockfile + write-file-atomic' },
  { key: 'queue+proper-lockfile', label: '(c) in-process queue + (b)' },
  { key: 'withIndexLock', label: '(d) index-lock withIndexLock+readJson+writeJson' },
  { key: 'withIndexLock+sync-io', label: "(d') diagnostic: (d) with readJsonSync/writeJsonSync", diagnostic: true },
  { key: 'updateJson', label: '(e) index-lock updateJson' },
  { key: 'native', label: '(f) native bound (Rust: flock+serde_json)' },
  { key: 'patchJson', label: '(g) index-lock patchJson (one add op)', patchOnly: true },
]
// Rows run for the configurations without `all` (4x16).
const RMW_ALWAYS = new Set(['updateJson', 'native'])

const wants = (section) => !args.only || args.only.includes(section)

// ---------------------------------------------------------------------------------------------
// Children: tracked so that none outlives the bench, whatever way it ends

const children = new Set()

function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function killChildren() {
  for (const child of children) {
    try {
      if (child.ownGroup) process.kill(-child.pid, 'SIGKILL')
      else child.kill('SIGKILL')
    } catch {}
  }
}

let tmpRoot = null
let runCounter = 0

function cleanUp() {
  killChildren()
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true })
  tmpRoot = null
}

process.on('exit', cleanUp)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanUp()
    process.exit(130)
  })
}

/** Resolves with `promise`, or rejects after `ms` (the caller then kills what it started). */
function within(ms, what, promise) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Lines a child writes to stdout, as an async queue: `next()` resolves with the next line. */
function lineReader(stream, child) {
  const lines = []
  const waiters = []
  let buffered = ''
  let ended = false
  const flush = () => {
    while (waiters.length && (lines.length || ended)) {
      const w = waiters.shift()
      if (lines.length) w.resolve(lines.shift())
      else w.reject(new Error(`child ${child.pid} ended (exit ${child.exitCode}, signal ${child.signalCode})`))
    }
  }
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl))
      buffered = buffered.slice(nl + 1)
    }
    flush()
  })
  // 'close', not 'exit': a child that exits right after writing its last line (the native
  // bound, in microseconds) may exit before that line has been read from the pipe.
  child.once('close', () => {
    ended = true
    flush()
  })
  return { next: () => new Promise((resolve, reject) => (waiters.push({ resolve, reject }), flush())) }
}

const exited = (child) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)))

// ---------------------------------------------------------------------------------------------
// Statistics

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

function summary(samples) {
  const sorted = Float64Array.from(samples).sort()
  return { n: sorted.length, median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
}

// ---------------------------------------------------------------------------------------------
// The machine

function sh(cmd, argv) {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

/** Median fsync of a rewritten 4 KiB file, in microseconds (the first 5 are not counted). */
function fsyncProbe(dir, n) {
  const file = join(dir, 'fsync-probe')
  const block = Buffer.alloc(4096, 0x61)
  const fsyncUs = []
  const fd = fs.openSync(file, 'w')
  for (let i = 0; i < n + 5; i++) {
    fs.writeSync(fd, block, 0, block.length, 0)
    const t = process.hrtime.bigint()
    fs.fsyncSync(fd)
    if (i >= 5) fsyncUs.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  fs.closeSync(fd)
  fs.rmSync(file)
  return summary(fsyncUs).median
}

// The disk of a shared VM is the noisiest part of the bench: its fsync cost can change tenfold
// within a minute. It is probed before every durable group of RMW rows, and these probes are
// printed, so a reader can tell a slow row from a slow disk.
let diskProbes = []

function probeDisk(when) {
  const fsyncUs = fsyncProbe(tmpRoot, 20)
  diskProbes.push({ when, fsyncUs })
  return fsyncUs
}

/** Median cost of the two durable steps of a save, measured in the bench's own temp dir. */
function measureDisk(dir) {
  const file = join(dir, 'fsync-probe')
  const block = Buffer.alloc(4096, 0x61)
  const renameUs = []
  const fsync4kUs = fsyncProbe(dir, 50)
  for (let i = 0; i < 55; i++) {
    const tmp = `${file}.tmp`
    const tfd = fs.openSync(tmp, 'w')
    fs.writeSync(tfd, block)
    fs.fsyncSync(tfd) // untimed: the data is on disk, as in a real save, before the rename
    fs.closeSync(tfd)
    const t = process.hrtime.bigint()
    fs.renameSync(tmp, file)
    const dfd = fs.openSync(dir, 'r')
    fs.fsyncSync(dfd)
    fs.closeSync(dfd)
    if (i >= 5) renameUs.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  fs.rmSync(file)
  return { fsync4kUs, renameDirFsyncUs: summary(renameUs).median }
}

function machineInfo(dir) {
  const model = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'index.js', 'Cargo.toml'])
  const addon = fs.readdirSync(ROOT).find((f) => f.endsWith('.node'))
  return {
    nproc: Number(sh('nproc', [])) || os.availableParallelism(),
    model,
    kernel: os.release(),
    node: process.version,
    tmpdir: os.tmpdir(),
    tmpfs: sh('df', ['--output=fstype', dir])?.split('\n').pop() ?? 'unknown filesystem',
    library: `${commit ?? 'unknown commit'}${dirty ? ' + uncommitted changes to src/ or index.js' : ''}`,
    addonBuilt: addon ? fs.statSync(join(ROOT, addon)).mtime.toISOString() : null,
    ...measureDisk(dir),
  }
}

function buildNative() {
  process.stderr.write('building the native bound (cargo build --release)...\n')
  try {
    execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', NATIVE_MANIFEST], {
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    return null
  } catch (err) {
    return `cargo build failed: ${err.message.split('\n')[0]}`
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Uncontended round trip

async function uncontendedOnce(impl, iterations, dir) {
  // A directory of its own: one library's lock files must not touch the other's directory.
  const own = join(dir, `uncontended-${impl}-${++runCounter}`)
  fs.mkdirSync(own)
  const path = join(own, 'index.json')
  fs.writeFileSync(path, '{}\n')
  const warmUp = Math.max(50, Math.round(iterations / 10))
  const argv =
    impl === 'native-floor'
      ? [NATIVE_BIN, ['floor-lock', path, String(iterations), String(warmUp)]]
      : [process.execPath, [join(__dirname, 'uncontended-child.js'), impl, path, String(iterations), String(warmUp)]]
  const child = track(spawn(...argv, { stdio: ['ignore', 'pipe', 'inherit'] }))
  try {
    const line = await within(SETTINGS.runTimeoutMs, `uncontended ${impl}`, lineReader(child.stdout, child).next())
    await exited(child)
    return JSON.parse(line).samplesUs
  } finally {
    child.kill('SIGKILL')
  }
}

const UNCONTENDED_LABELS = {
  'index-lock': 'index-lock withIndexLock(path, () => {})',
  'proper-lockfile': 'proper-lockfile lock()+release()',
  'async-mutex': 'async-mutex runExclusive(() => {}) (in-process only)',
  promise: 'floor, JS: one promise resolution (await of a no-op async call)',
  'native-floor': 'floor, native: flock(LOCK_EX|LOCK_NB) + fstat + flock(LOCK_UN)',
  floor: 'floor = native 3 syscalls + one promise resolution',
}

async function uncontended(dir, nativeError) {
  // The floors run in the same rotation as the contenders, so that they see the same machine.
  const impls = ['index-lock', 'proper-lockfile', 'async-mutex', 'promise', 'native-floor']
  const samples = Object.fromEntries(impls.map((i) => [i, []]))
  const failed = new Map()
  if (nativeError) failed.set('native-floor', nativeError)
  // Several rounds, implementations interleaved (order reversed every other round), so that a
  // noisy neighbour's burst spreads over all of them.
  for (let r = 0; r < SETTINGS.uncontended.rounds; r++) {
    for (const impl of r % 2 ? [...impls].reverse() : impls) {
      if (failed.has(impl)) continue
      process.stderr.write(`uncontended: ${impl} round ${r + 1}/${SETTINGS.uncontended.rounds}\n`)
      const n = Math.round(SETTINGS.uncontended[impl] / SETTINGS.uncontended.rounds)
      try {
        samples[impl] = samples[impl].concat(await uncontendedOnce(impl, n, dir))
      } catch (err) {
        // Only a floor may fail on its own; a contender's failure stops the bench as before.
        if (impl !== 'native-floor') throw err
        process.stderr.write(`uncontended ${impl} FAILED: ${err.message}\n`)
        failed.set(impl, err.message)
      }
    }
  }
  const rows = impls.map((impl) => ({
    test: 'uncontended',
    impl,
    label: UNCONTENDED_LABELS[impl],
    ...(failed.has(impl) ? { failed: failed.get(impl) } : summary(samples[impl])),
  }))
  // The floor is a sum of two medians measured apart (a p99 of a sum is not the sum of the p99s).
  const [promise, native] = [rows[3], rows[4]]
  rows.push({
    test: 'uncontended',
    impl: 'floor',
    label: UNCONTENDED_LABELS.floor,
    ...(native.failed ? { failed: native.failed } : { n: native.n, median: native.median + promise.median, p99: NaN }),
  })
  return rows
}

// ---------------------------------------------------------------------------------------------
// 2. Read-modify-write of a shared JSON index

function spawnRmwChild(impl, { path, warmPath, C, U, fsync, procIndex }) {
  const stdio = ['pipe', 'pipe', 'inherit']
  if (impl === 'native') {
    const argv = [path, C, U, fsync ? 1 : 0, procIndex, warmPath, SETTINGS.warmUpdates].map(String)
    return track(spawn(NATIVE_BIN, argv, { stdio }))
  }
  const config = {
    strategy: impl,
    path,
    warmPath,
    callers: C,
    updates: U,
    warmUpdates: SETTINGS.warmUpdates,
    fsync,
    procIndex,
  }
  return track(spawn(process.execPath, [join(__dirname, 'rmw-child.js'), JSON.stringify(config)], { stdio }))
}

/** One run of one row: P processes started, warmed up, released together; returns raw results. */
async function rmwRun(impl, { P, C, U }, fsync) {
  const id = `${++runCounter}-${impl.replace(/\W/g, '_')}-${P}x${C}-${fsync ? 'durable' : 'fast'}`
  // A fresh directory per run: the data file's directory is what index-lock's temp sweep scans.
  const dir = join(tmpRoot, `rmw-${id}`)
  const warmDir = join(tmpRoot, `warm-${id}`)
  fs.mkdirSync(dir)
  fs.mkdirSync(warmDir)
  const path = join(dir, 'index.json')
  const procs = Array.from({ length: P }, (_, procIndex) => {
    const child = spawnRmwChild(impl, {
      path,
      warmPath: join(warmDir, `warm-${procIndex}.json`),
      C,
      U,
      fsync,
      procIndex,
    })
    child.stdin.on('error', () => {}) // a child that died is reported below, not as EPIPE here
    return { child, lines: lineReader(child.stdout, child) }
  })
  try {
    return await within(
      SETTINGS.runTimeoutMs,
      `rmw ${id}`,
      (async () => {
        for (const p of procs) {
          const line = await p.lines.next()
          if (line !== 'ready') throw new Error(`child said ${JSON.stringify(line)} instead of ready`)
        }
        // Every process has started and warmed up; the clock starts with the common signal.
        const t0 = process.hrtime.bigint()
        for (const p of procs) p.child.stdin.write('go\n')
        const results = await Promise.all(procs.map(async (p) => JSON.parse(await p.lines.next())))
        await Promise.all(procs.map((p) => exited(p.child)))
        let present = 0
        let corrupt = false
        try {
          present = Object.keys(JSON.parse(fs.readFileSync(path, 'utf8')).entries).length
        } catch {
          corrupt = true // a torn index (naive row): every entry is gone
        }
        const finishMs = results.map((r) => Number(BigInt(r.finishNs) - t0) / 1e6)
        return {
          expected: P * C * U,
          present,
          corrupt,
          errors: results.reduce((s, r) => s + r.errors, 0),
          latenciesUs: results.flatMap((r) => r.latenciesUs),
          wallMs: Math.max(...finishMs),
          fairness: Math.max(...finishMs) / Math.min(...finishMs),
        }
      })(),
    )
  } finally {
    for (const p of procs) p.child.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(warmDir, { recursive: true, force: true })
  }
}

/** One table row from the repetitions of one RMW row. */
function rmwRow(impl, { P, C, U }, fsync, runs) {
  const sum = (key) => runs.reduce((s, r) => s + r[key], 0)
  const expected = sum('expected')
  const present = sum('present')
  const errors = sum('errors')
  return {
    test: 'rmw',
    impl,
    label: RMW_IMPLS.find((i) => i.key === impl).label,
    P,
    C,
    U,
    fsync,
    reps: runs.length,
    ...summary(runs.flatMap((r) => r.latenciesUs)),
    // Updates that completed without an error, per second of wall time (start signal to the
    // last process done), pooled over the repetitions.
    updatesPerSec: (expected - errors) / (sum('wallMs') / 1e3),
    expected,
    present,
    // Entries missing from the final index, whether their update threw or claimed success.
    lost: expected - present,
    errors,
    corrupt: runs.some((r) => r.corrupt),
    // The worst repetition: a lock that starves a process now and then should show it.
    fairness: Math.max(...runs.map((r) => r.fairness)),
    fairnessPerRep: runs.map((r) => r.fairness),
    wallMsPerRep: runs.map((r) => r.wallMs),
  }
}

/**
 * The rows `impls` of one configuration, each run SETTINGS.reps times in alternating order.
 * `section` ('rmw' for section 2, 'patch' for section 6) keeps each section's rows apart, so a
 * ratio is always of two rows of the same rotation.
 */
async function rmwGroup(section, config, fsync, impls, nativeError) {
  const rows = []
  const runs = new Map(impls.map(({ key }) => [key, []]))
  const where = `${section === 'patch' ? 'patch ' : ''}${config.P}x${config.C}`
  const diskFsyncUs = fsync ? probeDisk(`before ${where} durable`) : undefined
  const failed = new Map()
  for (let rep = 0; rep < SETTINGS.reps; rep++) {
    for (const { key } of rep % 2 ? [...impls].reverse() : impls) {
      if (failed.has(key)) continue
      if (key === 'native' && nativeError) {
        failed.set(key, nativeError)
        continue
      }
      const tag = `${section} ${config.P}x${config.C}x${config.U} ${fsync ? 'durable' : 'no fsync'} ${key} (rep ${rep + 1}/${SETTINGS.reps})`
      process.stderr.write(`${tag}\n`)
      try {
        runs.get(key).push(await rmwRun(key, config, fsync))
      } catch (err) {
        process.stderr.write(`${tag} FAILED: ${err.message}\n`)
        failed.set(key, err.message)
      }
    }
  }
  for (const { key, label } of impls) {
    const { P, C, U } = config
    rows.push(
      failed.has(key)
        ? { test: 'rmw', section, impl: key, label, P, C, U, fsync, failed: failed.get(key) }
        : { ...rmwRow(key, config, fsync, runs.get(key)), section, diskFsyncUs },
    )
  }
  return rows
}

async function rmw(nativeError) {
  const rows = []
  for (const config of SETTINGS.rmw) {
    for (const fsync of [true, false]) {
      const impls = RMW_IMPLS.filter(
        ({ key, diagnostic, patchOnly }) =>
          (config.all || RMW_ALWAYS.has(key)) && (!diagnostic || args.diagnose) && !patchOnly,
      )
      rows.push(...(await rmwGroup('rmw', config, fsync, impls, nativeError)))
    }
  }
  return rows
}

// ---------------------------------------------------------------------------------------------
// 3. Cross-process hand-over

async function handoverRun(impl, dir) {
  const { rounds, holdMs } = SETTINGS.handover
  const path = join(dir, `handover-${impl}.json`)
  fs.writeFileSync(path, '{}\n')
  const procs = [0, 1].map(() =>
    track(
      fork(join(__dirname, 'handover-child.js'), [impl, path, String(holdMs)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    ),
  )
  // Holds in order; hold k+1 always belongs to the other process (see handover-child.js).
  const holds = []
  const releases = []
  try {
    await within(
      SETTINGS.runTimeoutMs,
      `hand-over ${impl}`,
      new Promise((resolve, reject) => {
        let ready = 0
        let releasedCount = 0
        procs.forEach((child, me) => {
          const other = procs[1 - me]
          child.once('exit', (code) => {
            if (releasedCount <= rounds) reject(new Error(`hand-over child exited early (${code})`))
          })
          child.on('message', (m) => {
            if (m.type === 'ready' && ++ready === 2) procs[0].send({ type: 'turn' })
            else if (m.type === 'entered') {
              holds.push({ proc: me, enteredNs: BigInt(m.ns) })
              // The last hold has no one to hand over to: let it go at once.
              if (holds.length === rounds + 1) child.send({ type: 'peerWaiting' })
              else other.send({ type: 'turn' })
            } else if (m.type === 'waiting') {
              // The first request finds the lock free; later ones wait for the current holder.
              if (holds.length > 0) other.send({ type: 'peerWaiting' })
            } else if (m.type === 'released') {
              releases.push(BigInt(m.ns))
              if (++releasedCount === rounds + 1) resolve()
            }
          })
        })
      }),
    )
    return { holds, releases }
  } finally {
    for (const child of procs) {
      if (child.connected) child.send({ type: 'done' })
    }
    await within(5000, 'hand-over children exit', Promise.all(procs.map(exited))).catch(() => {})
    for (const child of procs) child.kill('SIGKILL')
  }
}

/** A floor's child: runs to the end on its own and prints one JSON line { latenciesUs }. */
async function floorChild(what, cmd, argv) {
  const child = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] }))
  try {
    const line = await within(SETTINGS.runTimeoutMs, what, lineReader(child.stdout, child).next())
    await exited(child)
    return JSON.parse(line).latenciesUs
  } finally {
    child.kill('SIGKILL')
  }
}

const HANDOVER_LABELS = {
  'index-lock': 'index-lock (2 processes, ping-pong)',
  'proper-lockfile': 'proper-lockfile (2 processes, ping-pong)',
  'native-floor': 'floor, kernel: 2 native processes, flock(LOCK_EX) ping-pong',
  'event-loop': "floor, event loop: idle main thread woken by a worker's postMessage",
  floor: 'floor = kernel hand-over + event-loop wake-up',
}

async function handover(dir, nativeError) {
  const { rounds, holdMs } = SETTINGS.handover
  const latencies = {
    'index-lock': async () => {
      const { holds, releases } = await handoverRun('index-lock', dir)
      return holds.slice(1).map((h, k) => Number(h.enteredNs - releases[k]) / 1e3)
    },
    'proper-lockfile': async () => {
      const { holds, releases } = await handoverRun('proper-lockfile', dir)
      return holds.slice(1).map((h, k) => Number(h.enteredNs - releases[k]) / 1e3)
    },
    // The same number of hand-overs and the same hold as the JS rows, on a path of its own.
    'native-floor': () => {
      if (nativeError) throw new Error(nativeError)
      const path = join(dir, `handover-native-${++runCounter}.json`)
      fs.writeFileSync(path, '{}\n')
      return floorChild('hand-over floor (native)', NATIVE_BIN, [
        'floor-handover',
        path,
        String(rounds),
        String(holdMs * 1000),
      ])
    },
    'event-loop': () =>
      floorChild('hand-over floor (event loop)', process.execPath, [
        join(__dirname, 'wakeup-child.js'),
        String(rounds),
        String(holdMs),
      ]),
  }
  const rows = []
  for (const [impl, measure] of Object.entries(latencies)) {
    process.stderr.write(`hand-over: ${impl}\n`)
    try {
      rows.push({ test: 'handover', impl, label: HANDOVER_LABELS[impl], ...summary(await measure()) })
    } catch (err) {
      process.stderr.write(`hand-over ${impl} FAILED: ${err.message}\n`)
      rows.push({ test: 'handover', impl, label: HANDOVER_LABELS[impl], failed: err.message })
    }
  }
  // The two wake-ups index-lock's waiter cannot avoid (a thread blocked in flock, then the idle
  // event loop: the loop itself must never block in flock); a sum of medians measured apart.
  const [kernel, loop] = [rows[2], rows[3]]
  const broken = kernel.failed ?? loop.failed
  rows.push({
    test: 'handover',
    impl: 'floor',
    label: HANDOVER_LABELS.floor,
    ...(broken ? { failed: broken } : { n: kernel.n, median: kernel.median + loop.median, p99: NaN }),
  })
  return rows
}

// ---------------------------------------------------------------------------------------------
// 4. Small read

// ~100 bytes: small enough that the read is all per-call overhead (thread hops, buffers), which
// is what the readJson target is about.
const SMALL_JSON = `${JSON.stringify({ version: 1, entries: { 'a-0-0': { at: 1764430000000 }, 'b-0-1': { at: 1764430000001 } }, by: 'bench' })}\n`

const READ_LABELS = {
  readJson: 'index-lock await readJson(p)',
  readFileSync: 'JSON.parse(fs.readFileSync(p))',
  'fs.promises.readFile': 'JSON.parse(await fs.promises.readFile(p))',
}

async function smallRead(dir) {
  const own = join(dir, `read-${++runCounter}`)
  fs.mkdirSync(own)
  const path = join(own, 'small.json')
  fs.writeFileSync(path, SMALL_JSON)
  const { iterations, warmUp } = SETTINGS.read
  process.stderr.write(`read: readJson vs readFileSync vs fs.promises.readFile, ${SMALL_JSON.length}-byte file\n`)
  const child = track(
    spawn(process.execPath, [join(__dirname, 'read-child.js'), path, String(iterations), String(warmUp)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  )
  const row = (impl) => ({ test: 'read', impl, label: READ_LABELS[impl], bytes: SMALL_JSON.length })
  try {
    const line = await within(SETTINGS.runTimeoutMs, 'small read', lineReader(child.stdout, child).next())
    const code = await exited(child)
    if (code !== 0) throw new Error(`read child exited with ${code}`)
    const { samplesUs } = JSON.parse(line)
    return Object.keys(READ_LABELS).map((impl) => ({ ...row(impl), ...summary(samplesUs[impl]) }))
  } catch (err) {
    process.stderr.write(`small read FAILED: ${err.message}\n`)
    return Object.keys(READ_LABELS).map((impl) => ({ ...row(impl), failed: err.message }))
  } finally {
    child.kill('SIGKILL')
    fs.rmSync(own, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Syscalls of the uncontended round trip

/** Why strace cannot count syscalls here, or null when it can. Checked once per bench. */
function straceProblem() {
  try {
    execFileSync('strace', ['-qq', '-o', '/dev/null', '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'] })
    return null
  } catch (err) {
    if (err.code === 'ENOENT') return 'strace not installed'
    const why = String(err.stderr || err.message)
      .trim()
      .split('\n')[0]
    return `strace cannot trace here: ${why}`
  }
}

/** `strace -c`'s summary as { syscall: calls }. */
function parseStraceSummary(text) {
  const calls = {}
  for (const line of text.split('\n')) {
    // % time, seconds, usecs/call, calls, [errors,] syscall
    const cells = line.trim().split(/\s+/)
    if (cells.length < 5 || !/^\d/.test(cells[0])) continue
    const name = cells[cells.length - 1]
    if (name !== 'total') calls[name] = Number(cells[3])
  }
  return calls
}

/** Syscalls of every thread of one uncontended child making `n` round trips after the warm-up. */
async function straceRun(path, n) {
  const { warmUp, timeoutMs } = SETTINGS.syscalls
  const out = join(tmpRoot, `strace-${++runCounter}.txt`)
  const argv = [join(__dirname, 'uncontended-child.js'), 'index-lock', path, String(n), String(warmUp), 'count']
  // strace only detaches from its child when it is killed (strace 6.1 has no --kill-on-exit), so
  // both get a process group of their own, which is what gets killed.
  const child = spawn('strace', ['-f', '-qq', '-c', '-o', out, '--', process.execPath, ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  })
  child.ownGroup = true
  track(child)
  try {
    const line = await within(timeoutMs, `strace of ${n} round trips`, lineReader(child.stdout, child).next())
    const code = await exited(child)
    if (code !== 0 || JSON.parse(line).done !== n) throw new Error(`traced child said ${line}, exit ${code}`)
    return parseStraceSummary(fs.readFileSync(out, 'utf8'))
  } finally {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {} // ESRCH: both are gone already
    fs.rmSync(out, { force: true })
  }
}

// Calls that look at the locked descriptor (glibc's fstat is statx or newfstatat on x86-64).
const STAT_CALLS = ['fstat', 'newfstatat', 'statx', 'fstat64', 'fstatat64']
// What a hop to another thread and back costs in syscalls, shown whatever their count.
const HOP_CALLS = ['futex', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll']

async function syscalls(dir, problem) {
  if (problem) return { unavailable: problem }
  const own = join(dir, `syscalls-${++runCounter}`)
  fs.mkdirSync(own)
  const path = join(own, 'index.json')
  fs.writeFileSync(path, '{}\n')
  const { fewer, more } = SETTINGS.syscalls
  try {
    process.stderr.write(`syscalls: strace -f -c of ${fewer} uncontended round trips\n`)
    const a = await straceRun(path, fewer)
    process.stderr.write(`syscalls: strace -f -c of ${more} uncontended round trips\n`)
    const b = await straceRun(path, more)
    const perRoundTrip = {}
    for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
      perRoundTrip[name] = ((b[name] ?? 0) - (a[name] ?? 0)) / (more - fewer)
    }
    return { fewer, more, perRoundTrip }
  } catch (err) {
    process.stderr.write(`syscalls FAILED: ${err.message}\n`)
    return { failed: err.message }
  } finally {
    fs.rmSync(own, { recursive: true, force: true })
  }
}

/** Most frequent first; equal ones by name, so that runs list them alike. */
const byRate = ([n1, r1], [n2, r2]) => r2 - r1 || (n1 < n2 ? -1 : n1 > n2 ? 1 : 0)

/** The verdict on section 5: flock twice (lock, unlock), one fstat-class call, nothing else. */
function judgeSyscalls(sc) {
  const rates = Object.entries(sc.perRoundTrip)
  const rate = (names) => rates.filter(([n]) => names.includes(n)).reduce((s, [, r]) => s + r, 0)
  const flock = rate(['flock'])
  const stat = rate(STAT_CALLS)
  const frequent = rates.filter(([, r]) => r >= 0.5).sort(byRate)
  const others = frequent.filter(([n]) => n !== 'flock' && !STAT_CALLS.includes(n))
  const ok = Math.abs(flock - 2) <= 0.1 && Math.abs(stat - 1) <= 0.1 && others.length === 0
  const total = rates.reduce((s, [, r]) => s + r, 0)
  const hops = HOP_CALLS.filter((n) => n in sc.perRoundTrip).map((n) => `${n} ${sc.perRoundTrip[n].toFixed(2)}`)
  const listed = frequent.map(([n, r]) => `${n} ${r.toFixed(2)}`).join(', ') || 'none'
  return {
    ok,
    total,
    listed,
    shown:
      `${listed} per round trip` +
      (others.length ? ` (beyond flock+fstat: ${others.map(([n]) => n).join(', ')})` : '') +
      `; thread hops: ${hops.join(', ') || 'none'}; all syscalls ${total.toFixed(2)}`,
  }
}

// ---------------------------------------------------------------------------------------------
// 6. patchJson

/** Section 6's durable RMW rows: patchJson beside updateJson and the native bound, same rotation. */
async function patchRmw(nativeError) {
  const rows = []
  const impls = ['patchJson', 'updateJson', 'native'].map((key) => RMW_IMPLS.find((i) => i.key === key))
  for (const config of SETTINGS.patch.rmw) rows.push(...(await rmwGroup('patch', config, true, impls, nativeError)))
  return rows
}

const BIG_TAGS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta']

/** The big index, { entries: { k<i>: { title, n, tags } } }, compact as writeJson writes it. */
function writeBigIndex(path, entries) {
  const index = { entries: {} }
  for (let i = 0; i < entries; i++) {
    index.entries[`k${i}`] = {
      title: `Entry ${i}: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore`,
      n: i,
      tags: BIG_TAGS.slice(0, 2 + (i % 5)),
    }
  }
  const text = `${JSON.stringify(index)}\n`
  fs.writeFileSync(path, text)
  return Buffer.byteLength(text)
}

// The write modes of bench/big-child.js, one process each. patchJson runs with fsync off (like
// for like with the plain JS rewrite, which does not fsync) and on (its default).
const BIG_MODES = [
  {
    key: 'patchJson',
    mode: 'patchJson',
    fsync: false,
    label: (n) => `index-lock: ${n} concurrent patchJson, fsync off`,
  },
  {
    key: 'patchJson+fsync',
    mode: 'patchJson',
    fsync: true,
    label: (n) => `index-lock: ${n} concurrent patchJson, fsync on (default)`,
  },
  {
    key: 'updateJson',
    mode: 'updateJson',
    fsync: false,
    label: (n) => `index-lock: ${n} concurrent updateJson, fsync off`,
  },
  {
    key: 'js-rewrite',
    mode: 'js-rewrite',
    fsync: false,
    label: () => 'JS: readFileSync + JSON.parse + JSON.stringify + writeFileSync (1 entry)',
  },
]

const BIG_POINTER = '/entries/k123'

async function bigChild(config) {
  const child = track(
    spawn(process.execPath, [join(__dirname, 'big-child.js'), JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  )
  try {
    const line = await within(SETTINGS.runTimeoutMs, `big index ${config.mode}`, lineReader(child.stdout, child).next())
    const code = await exited(child)
    if (code !== 0) throw new Error(`big-index child (${config.mode}) exited with ${code}`)
    return JSON.parse(line)
  } finally {
    child.kill('SIGKILL')
  }
}

/** Section 6's big-index rows: the write modes, `reps` times each in alternating order; the pointer read. */
async function bigIndex(dir) {
  const { entries, calls, reps, pointerIterations, pointerWarmUp } = SETTINGS.patch.big
  const own = join(dir, `big-${++runCounter}`)
  fs.mkdirSync(own)
  const source = join(own, 'source.json')
  process.stderr.write(`patch: writing the big index (${entries} entries)\n`)
  const bytes = writeBigIndex(source, entries)
  const results = new Map(BIG_MODES.map((m) => [m.key, []]))
  const failed = new Map()
  const rows = []
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const m of rep % 2 ? [...BIG_MODES].reverse() : BIG_MODES) {
        if (failed.has(m.key)) continue
        const tag = `patch: big index (${fmtBytes(bytes)}) ${m.key} (rep ${rep + 1}/${reps})`
        process.stderr.write(`${tag}\n`)
        // Each child writes a fresh copy (in a directory of its own) of the same bytes.
        const runDir = join(own, `${m.key.replace(/\W/g, '_')}-${rep}`)
        fs.mkdirSync(runDir)
        const path = join(runDir, 'index.json')
        fs.copyFileSync(source, path)
        try {
          const r = await bigChild({ mode: m.mode, path, warmPath: join(runDir, 'warm.json'), calls, fsync: m.fsync })
          results.get(m.key).push(r)
        } catch (err) {
          process.stderr.write(`${tag} FAILED: ${err.message}\n`)
          failed.set(m.key, err.message)
        } finally {
          fs.rmSync(runDir, { recursive: true, force: true })
        }
      }
    }
    for (const m of BIG_MODES) {
      const added = m.mode === 'js-rewrite' ? 1 : calls
      const base = { test: 'big', impl: m.key, label: m.label(calls), bytes, entries, calls: added, fsync: m.fsync }
      if (failed.has(m.key)) {
        rows.push({ ...base, failed: failed.get(m.key) })
        continue
      }
      const rs = results.get(m.key)
      const walls = rs.map((r) => r.wallMs)
      rows.push({
        ...base,
        reps: rs.length,
        wallMs: quantile(Float64Array.from(walls).sort(), 0.5),
        wallMsPerRep: walls,
        lagMaxMs: Math.max(...rs.map((r) => r.lagMaxMs)),
        lagMaxMsPerRep: rs.map((r) => r.lagMaxMs),
        rssGrowthBytes: Math.max(...rs.map((r) => r.rssGrowthBytes)),
        rssGrowthBytesPerRep: rs.map((r) => r.rssGrowthBytes),
        // Every original entry and every added one must be in the file afterwards.
        lost: rs.reduce((s, r) => s + (entries + added - r.entries) + r.missing, 0),
      })
    }
    process.stderr.write(`patch: readJson(p, { pointer }) vs JSON.parse(readFileSync(p)) of ${fmtBytes(bytes)}\n`)
    const row = (impl, label) => ({ test: 'pointer', impl, label, bytes })
    const labels = {
      pointer: `index-lock await readJson(p, { pointer: '${BIG_POINTER}' })`,
      parse: 'JSON.parse(fs.readFileSync(p)) (the whole file)',
    }
    try {
      const { samplesUs } = await bigChild({
        mode: 'pointer',
        path: source,
        iterations: pointerIterations,
        warmUp: pointerWarmUp,
        pointer: BIG_POINTER,
      })
      for (const impl of ['pointer', 'parse']) rows.push({ ...row(impl, labels[impl]), ...summary(samplesUs[impl]) })
    } catch (err) {
      process.stderr.write(`pointer read FAILED: ${err.message}\n`)
      for (const impl of ['pointer', 'parse']) rows.push({ ...row(impl, labels[impl]), failed: err.message })
    }
  } finally {
    fs.rmSync(own, { recursive: true, force: true })
  }
  return rows
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtTime = (us) => {
  if (!Number.isFinite(us)) return '-'
  if (us < 1000) return `${us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0)} us`
  if (us < 1e6) return `${(us / 1e3).toFixed(us < 1e4 ? 2 : 1)} ms`
  return `${(us / 1e6).toFixed(2)} s`
}
const fmtRatio = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '-')
const fmtBytes = (b) => (Number.isFinite(b) ? `${(b / 1e6).toFixed(1)} MB` : '-')
const fmtMs = (ms) => fmtTime(ms * 1e3)

function find(rows, test, impl, extra = {}) {
  return rows.find(
    (r) => r.test === test && r.impl === impl && !r.failed && Object.entries(extra).every(([k, v]) => r[k] === v),
  )
}

/** Locked rows must keep every update: anything else is a bug, reported and failing the exit code. */
function correctness(rows) {
  const bad = rows.filter(
    (r) =>
      ((r.test === 'rmw' && r.impl !== 'naive' && (r.lost > 0 || r.errors > 0)) || (r.test === 'big' && r.lost > 0)) &&
      !r.failed,
  )
  if (bad.length === 0) return 'Correctness: every locked row kept every update (lost 0, errors 0).'
  const name = (r) =>
    r.test === 'big'
      ? `big index ${r.impl}: lost ${r.lost}`
      : `${r.section === 'patch' ? 'patch ' : ''}${r.impl} ${r.P}x${r.C} ${r.fsync ? 'durable' : 'no fsync'}: lost ${r.lost}, errors ${r.errors}`
  return `CORRECTNESS FAILURE: ${bad.map(name).join('; ')}`
}

/** The "vs" column: how this row compares with the alternatives measured in the same run. */
function ratios(row, rows) {
  if (row.failed) return ''
  if (row.test === 'uncontended' || row.test === 'handover' || row.test === 'read') {
    const mine = { uncontended: 'index-lock', handover: 'index-lock', read: 'readJson' }[row.test]
    if (row.impl !== mine) return ''
    const others = {
      uncontended: ['proper-lockfile', 'async-mutex'],
      handover: ['proper-lockfile'],
      read: ['readFileSync', 'fs.promises.readFile'],
    }[row.test]
    const floor = row.test !== 'read' && find(rows, row.test, 'floor')
    return others
      .map((o) => find(rows, row.test, o))
      .filter(Boolean)
      .map((o) => `x${fmtRatio(o.median / row.median)} vs ${o.impl}`)
      .concat(floor ? [`${fmtRatio(row.median / floor.median)}x the floor`] : [])
      .join(', ')
  }
  if (row.test === 'pointer') {
    const parse = find(rows, 'pointer', 'parse')
    return row.impl === 'pointer' && parse ? `x${fmtRatio(parse.median / row.median)} vs JSON.parse (whole file)` : ''
  }
  if (row.impl === 'native') return ''
  const same = { P: row.P, C: row.C, fsync: row.fsync, section: row.section }
  const parts = []
  const native = find(rows, 'rmw', 'native', same)
  if (native) parts.push(`x${fmtRatio(row.updatesPerSec / native.updatesPerSec)} native`)
  const updateJson = row.impl === 'patchJson' && find(rows, 'rmw', 'updateJson', same)
  if (updateJson) parts.push(`x${fmtRatio(row.updatesPerSec / updateJson.updatesPerSec)} updateJson`)
  const pl = find(rows, 'rmw', 'proper-lockfile', same)
  const queued = find(rows, 'rmw', 'queue+proper-lockfile', same)
  if (pl && !['naive', 'proper-lockfile'].includes(row.impl)) {
    parts.push(`x${fmtRatio(row.updatesPerSec / pl.updatesPerSec)} (b)`)
  }
  if (row.impl === 'queue+proper-lockfile') {
    if (pl) parts.push(`p99 ${fmtRatio(row.p99 / pl.p99)} of (b)`)
  } else if (queued && !['naive', 'proper-lockfile'].includes(row.impl)) {
    // (c) is the strongest proper-lockfile set-up, so index-lock's rows are measured against it.
    parts.push(
      `x${fmtRatio(row.updatesPerSec / queued.updatesPerSec)} (c)`,
      `p99 ${fmtRatio(row.p99 / queued.p99)} of (c)`,
    )
  }
  return parts.join(', ')
}

function table(rows) {
  const header = [
    'test',
    'implementation',
    'P x C x U',
    'fsync',
    'median',
    'p99',
    'updates/s',
    'lost',
    'errors',
    'fairness',
    'vs (same run)',
  ]
  const body = rows.map((r) => {
    const rmwRow = r.test === 'rmw'
    const test = {
      uncontended: '1 uncontended',
      rmw: r.section === 'patch' ? '6 patch, RMW' : '2 read-modify-write',
      handover: '3 hand-over',
      read: `4 read ${r.bytes} B`,
      pointer: `6 patch, read ${fmtBytes(r.bytes)}`,
    }[r.test]
    const config = rmwRow
      ? `${r.P} x ${r.C} x ${r.U}`
      : r.test === 'handover' && r.impl !== 'event-loop'
        ? '2 x 1'
        : '1 x 1'
    const fsync = rmwRow ? (r.fsync ? 'yes' : 'no') : '-'
    if (r.failed) return [test, r.label, config, fsync, 'FAILED', r.failed.slice(0, 60), '', '', '', '', '']
    return [
      test,
      r.label,
      config,
      fsync,
      fmtTime(r.median),
      fmtTime(r.p99),
      rmwRow ? r.updatesPerSec.toFixed(0) : '-',
      rmwRow ? `${r.lost}${r.corrupt ? ' (corrupt)' : ''}` : '-',
      rmwRow ? String(r.errors) : '-',
      rmwRow ? r.fairness.toFixed(2) : '-',
      ratios(r, rows),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n')
}

/** Section 6's big-index write rows: their own columns (wall time, event-loop lag, memory). */
function bigTable(rows) {
  const big = rows.filter((r) => r.test === 'big')
  if (big.length === 0) return null
  const js = find(rows, 'big', 'js-rewrite')
  const header = [
    'test',
    'implementation',
    'index',
    'entries added',
    'wall (median)',
    'wall (each run)',
    'event-loop lag, max',
    'peak RSS growth',
    'lost',
    'vs (same run)',
  ]
  const body = big.map((r) => {
    const cells = ['6 patch, big index', r.label, `${fmtBytes(r.bytes)}, ${r.entries} entries`, String(r.calls)]
    if (r.failed) return [...cells, 'FAILED', r.failed.slice(0, 60), '', '', '', '']
    const vs = []
    if (js && r !== js) vs.push(`wall ${fmtRatio(r.wallMs / js.wallMs)}x the JS rewrite's`)
    vs.push(`RSS growth ${fmtRatio(r.rssGrowthBytes / r.bytes)}x the file`)
    return [
      ...cells,
      fmtMs(r.wallMs),
      r.wallMsPerRep.map(fmtMs).join(', '),
      fmtMs(r.lagMaxMs),
      fmtBytes(r.rssGrowthBytes),
      String(r.lost),
      vs.join(', '),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n')
}

const times = (x) => `x${fmtRatio(x)}`
const perSec = (r) => `${r.updatesPerSec.toFixed(0)}/s`

/**
 * The project's performance targets (issue 13), each judged on a ratio of two figures of the same
 * run, because absolute times drift between runs of the same commit on a shared machine. A
 * target with several conditions is MET when all hold, MISS when none does, PART otherwise.
 * Each returns its figures as numbers too, for the spread over runs (--runs).
 */
function evaluateTargets(rows, sc) {
  const out = []
  /** checks: [{ value, ok }]; figures: [{ label, value, fmt }] for the spread over runs. */
  /** extra: more fields of the target's record (the floor beside it, for --json). */
  const target = (key, name, checks, detail, figures, extra = {}) => {
    const measured = checks.filter((c) => Number.isFinite(c.value))
    const passed = measured.filter((c) => c.ok).length
    const status =
      measured.length < checks.length ? 'n/a' : passed === measured.length ? 'MET' : passed === 0 ? 'MISS' : 'PART'
    out.push({ key, name, status, detail: status === 'n/a' && !detail ? 'not measured' : detail, figures, ...extra })
  }
  const rmw = (impl, P, C, section = 'rmw') => find(rows, 'rmw', impl, { P, C, fsync: true, section })

  const il = find(rows, 'uncontended', 'index-lock')
  const pl = find(rows, 'uncontended', 'proper-lockfile')
  const speedUp = il && pl ? pl.median / il.median : NaN
  // Issue 18: the round trip stated against the physical floor of the same run (information;
  // the target stays the ratio to proper-lockfile).
  const floor1 = find(rows, 'uncontended', 'floor')
  const syscalls1 = find(rows, 'uncontended', 'native-floor')
  const promise1 = find(rows, 'uncontended', 'promise')
  const overFloor1 = il && floor1 ? il.median / floor1.median : NaN
  const floorText = (floor) => (floor ? `${fmtRatio(floor)}x the floor` : '-')
  target(
    'uncontended',
    'uncontended round trip vs proper-lockfile >= 50x',
    [{ value: speedUp, ok: speedUp >= 50 }],
    il && pl
      ? `${times(speedUp)} (medians: index-lock ${fmtTime(il.median)}, proper-lockfile ${fmtTime(pl.median)})` +
          (floor1
            ? `; floor ${fmtTime(floor1.median)} (native flock+fstat+flock(LOCK_UN) ${fmtTime(syscalls1.median)}` +
              ` + one promise resolution ${fmtTime(promise1.median)}): index-lock ${floorText(overFloor1)}` +
              `, proper-lockfile ${floorText(pl.median / floor1.median)} (information)`
            : '')
      : '',
    [
      { label: '', value: speedUp, fmt: times },
      { label: 'floor (information)', value: floor1?.median ?? NaN, fmt: fmtTime },
      { label: 'index-lock / floor', value: overFloor1, fmt: (x) => `${fmtRatio(x)}x` },
    ],
    {
      floor: floor1
        ? {
            medianUs: floor1.median,
            syscallsUs: syscalls1.median,
            promiseUs: promise1.median,
            indexLockUs: il?.median ?? null,
            indexLockOverFloor: Number.isFinite(overFloor1) ? overFloor1 : null,
          }
        : null,
    },
  )

  const SYSCALLS = 'uncontended round trip syscalls: flock + fstat + flock(LOCK_UN), nothing else'
  if (!sc || sc.unavailable || sc.failed) {
    const why = !sc ? 'not measured' : sc.unavailable ? `n/a (${sc.unavailable})` : `FAILED: ${sc.failed}`
    out.push({ key: 'syscalls', name: SYSCALLS, status: 'n/a', detail: why, figures: [] })
  } else {
    const v = judgeSyscalls(sc)
    out.push({
      key: 'syscalls',
      name: SYSCALLS,
      status: v.ok ? 'MET' : 'MISS',
      detail: v.shown,
      figures: [{ label: 'all syscalls per round trip', value: v.total, fmt: (x) => x.toFixed(2) }],
      text: v.listed,
    })
  }

  const rj = find(rows, 'read', 'readJson')
  const rs = find(rows, 'read', 'readFileSync')
  const rp = find(rows, 'read', 'fs.promises.readFile')
  const readCost = rj && rs ? rj.median / rs.median : NaN
  const promisesCost = rp && rs ? rp.median / rs.median : NaN
  target(
    'readJson',
    'readJson of a small file vs readFileSync + JSON.parse <= 2x the time',
    [{ value: readCost, ok: readCost <= 2 }],
    rj && rs
      ? `${times(readCost)} the time (medians: readJson ${fmtTime(rj.median)}, readFileSync+parse ${fmtTime(rs.median)})` +
          (rp ? `; fs.promises.readFile+parse ${times(promisesCost)} (information)` : '')
      : '',
    [
      { label: 'readJson', value: readCost, fmt: times },
      { label: 'fs.promises.readFile (information)', value: promisesCost, fmt: times },
    ],
  )

  const native41 = rmw('native', 4, 1)
  const up41 = rmw('updateJson', 4, 1)
  const wil41 = rmw('withIndexLock', 4, 1)
  const up41Ratio = up41 && native41 ? up41.updatesPerSec / native41.updatesPerSec : NaN
  const wil41Ratio = wil41 && native41 ? wil41.updatesPerSec / native41.updatesPerSec : NaN
  target(
    'rmw-4x1',
    'durable RMW 4x1 updateJson vs native loop >= 0.8x',
    [{ value: up41Ratio, ok: up41Ratio >= 0.8 }],
    up41 && native41
      ? `updateJson ${times(up41Ratio)}` +
          (wil41 ? `; withIndexLock+readJson+writeJson ${times(wil41Ratio)} (information)` : '')
      : '',
    [
      { label: 'updateJson', value: up41Ratio, fmt: times },
      { label: 'withIndexLock (information)', value: wil41Ratio, fmt: times },
    ],
  )

  const queued44 = rmw('queue+proper-lockfile', 4, 4)
  const wil44 = rmw('withIndexLock', 4, 4)
  const up44 = rmw('updateJson', 4, 4)
  const vsQueued = (r) =>
    r && queued44 ? [r.updatesPerSec / queued44.updatesPerSec, r.p99 / queued44.p99] : [NaN, NaN]
  const [thr44, p9944] = vsQueued(wil44)
  const [upThr44, upP9944] = vsQueued(up44)
  target(
    'rmw-4x4',
    'durable RMW 4x4 withIndexLock+readJson+writeJson vs (c) proper-lockfile+queue+write-file-atomic >= 2.5x, p99 <= 1/5',
    [
      { value: thr44, ok: thr44 >= 2.5 },
      { value: p9944, ok: p9944 <= 0.2 },
    ],
    wil44 && queued44
      ? `${times(thr44)}${thr44 >= 2.5 ? ' ok' : ' MISS'}, p99 ${fmtRatio(p9944)} of theirs${p9944 <= 0.2 ? ' ok' : ' MISS'}` +
          (up44 ? `; updateJson ${times(upThr44)}, p99 ${fmtRatio(upP9944)} of theirs (information)` : '')
      : '',
    [
      { label: 'updates/s', value: thr44, fmt: times },
      { label: 'p99', value: p9944, fmt: (x) => `${fmtRatio(x)} of theirs` },
    ],
  )

  const gc = rmw('updateJson', 4, 16)
  const native416 = rmw('native', 4, 16)
  const gcRatio = gc && native41 ? gc.updatesPerSec / native41.updatesPerSec : NaN
  target(
    'group-commit',
    'group commit: updateJson 4x16 durable vs native 4x1 durable per-update rate >= 3x',
    [{ value: gcRatio, ok: gcRatio >= 3 }],
    gc && native41
      ? `${times(gcRatio)} (updateJson 4x16 ${perSec(gc)}, native 4x1 ${perSec(native41)})` +
          (native416 ? `; native 4x16 ${perSec(native416)} (information)` : '')
      : '',
    [{ label: '', value: gcRatio, fmt: times }],
  )

  const ho = find(rows, 'handover', 'index-lock')
  const hoPl = find(rows, 'handover', 'proper-lockfile')
  // Issue 18: if the two wake-ups make 100 us impossible on this machine, the floor of the same
  // run and the distance to it show it (information; the target stays the absolute median).
  const floor3 = find(rows, 'handover', 'floor')
  const kernel3 = find(rows, 'handover', 'native-floor')
  const loop3 = find(rows, 'handover', 'event-loop')
  const overFloor3 = ho && floor3 ? ho.median - floor3.median : NaN
  const floorRatio3 = ho && floor3 ? ho.median / floor3.median : NaN
  target(
    'handover',
    'hand-over between processes median <= 100 us',
    [{ value: ho?.median, ok: ho?.median <= 100 }],
    ho
      ? `${fmtTime(ho.median)}${hoPl ? ` (proper-lockfile ${fmtTime(hoPl.median)}, information)` : ''}` +
          (floor3
            ? `; floor ${fmtTime(floor3.median)} (kernel hand-over ${fmtTime(kernel3.median)} + event-loop wake-up ` +
              `${fmtTime(loop3.median)})${floor3.median > 100 ? ', itself over 100 us' : ''}: index-lock ` +
              `${fmtTime(overFloor3)} over it, ${floorText(floorRatio3)} (information)`
            : '')
      : '',
    [
      { label: '', value: ho?.median ?? NaN, fmt: fmtTime },
      { label: 'floor (information)', value: floor3?.median ?? NaN, fmt: fmtTime },
      { label: 'index-lock - floor', value: overFloor3, fmt: fmtTime },
      { label: 'index-lock / floor', value: floorRatio3, fmt: (x) => `${fmtRatio(x)}x` },
    ],
    {
      floor: floor3
        ? {
            medianUs: floor3.median,
            kernelUs: kernel3.median,
            eventLoopUs: loop3.median,
            indexLockUs: ho?.median ?? null,
            indexLockMinusFloorUs: Number.isFinite(overFloor3) ? overFloor3 : null,
            indexLockOverFloor: Number.isFinite(floorRatio3) ? floorRatio3 : null,
          }
        : null,
    },
  )

  // Section 6 (issue 18): patchJson, each ratio of rows of section 6's own rotation.
  const pNative41 = rmw('native', 4, 1, 'patch')
  const patch41 = rmw('patchJson', 4, 1, 'patch')
  const pUp41 = rmw('updateJson', 4, 1, 'patch')
  const patch41Ratio = patch41 && pNative41 ? patch41.updatesPerSec / pNative41.updatesPerSec : NaN
  const pUp41Ratio = pUp41 && pNative41 ? pUp41.updatesPerSec / pNative41.updatesPerSec : NaN
  target(
    'patch-4x1',
    'durable RMW 4x1 patchJson vs native loop >= 0.9x',
    [{ value: patch41Ratio, ok: patch41Ratio >= 0.9 }],
    patch41 && pNative41
      ? `patchJson ${times(patch41Ratio)} (${perSec(patch41)} vs ${perSec(pNative41)})` +
          (pUp41 ? `; updateJson ${times(pUp41Ratio)} in the same rotation (information)` : '')
      : '',
    [
      { label: 'patchJson', value: patch41Ratio, fmt: times },
      { label: 'updateJson (information)', value: pUp41Ratio, fmt: times },
    ],
  )

  const patch416 = rmw('patchJson', 4, 16, 'patch')
  const pNative416 = rmw('native', 4, 16, 'patch')
  const pGcRatio = patch416 && pNative41 ? patch416.updatesPerSec / pNative41.updatesPerSec : NaN
  target(
    'patch-group-commit',
    'group commit: patchJson 4x16 durable vs native 4x1 durable per-update rate >= 4x',
    [{ value: pGcRatio, ok: pGcRatio >= 4 }],
    patch416 && pNative41
      ? `${times(pGcRatio)} (patchJson 4x16 ${perSec(patch416)}, native 4x1 ${perSec(pNative41)})` +
          (pNative416 ? `; native 4x16 ${perSec(pNative416)} (information)` : '')
      : '',
    [{ label: '', value: pGcRatio, fmt: times }],
  )

  const { calls, nominal } = SETTINGS.patch.big
  const bigPatch = find(rows, 'big', 'patchJson')
  const bigPatchDurable = find(rows, 'big', 'patchJson+fsync')
  const bigUpdate = find(rows, 'big', 'updateJson')
  const bigJs = find(rows, 'big', 'js-rewrite')
  // Wall like for like (fsync off, as the JS rewrite); lag and memory the worst of both patchJson rows.
  const patchRows = [bigPatch, bigPatchDurable].filter(Boolean)
  const wallRatio = bigPatch && bigJs ? bigPatch.wallMs / bigJs.wallMs : NaN
  const lagMax = bigPatch ? Math.max(...patchRows.map((r) => r.lagMaxMs)) : NaN
  const rssRatio = bigPatch ? Math.max(...patchRows.map((r) => r.rssGrowthBytes / r.bytes)) : NaN
  target(
    'patch-big',
    `${nominal} index, ${calls} concurrent patchJson: wall <= one JS read+parse+stringify+write, event-loop lag max <= 10 ms, peak RSS growth <= 3x the file`,
    [
      { value: wallRatio, ok: wallRatio <= 1 },
      { value: lagMax, ok: lagMax <= 10 },
      { value: rssRatio, ok: rssRatio <= 3 },
    ],
    bigPatch && bigJs
      ? `wall ${fmtRatio(wallRatio)}x the JS rewrite's (${fmtMs(bigPatch.wallMs)} vs ${fmtMs(bigJs.wallMs)}, fsync off both)${wallRatio <= 1 ? ' ok' : ' MISS'}` +
          `, lag max ${fmtMs(lagMax)}${lagMax <= 10 ? ' ok' : ' MISS'}` +
          `, RSS growth ${fmtRatio(rssRatio)}x the ${fmtBytes(bigPatch.bytes)} file${rssRatio <= 3 ? ' ok' : ' MISS'}` +
          (bigPatchDurable ? `; fsync on: wall ${fmtMs(bigPatchDurable.wallMs)}` : '') +
          (bigUpdate
            ? `; updateJson: wall ${fmtMs(bigUpdate.wallMs)}, lag max ${fmtMs(bigUpdate.lagMaxMs)}, RSS ${fmtRatio(bigUpdate.rssGrowthBytes / bigUpdate.bytes)}x (information)`
            : '')
      : '',
    [
      { label: 'wall', value: wallRatio, fmt: (x) => `${fmtRatio(x)}x` },
      { label: 'lag max', value: lagMax, fmt: fmtMs },
      { label: 'RSS growth', value: rssRatio, fmt: (x) => `${fmtRatio(x)}x` },
    ],
  )

  const ptr = find(rows, 'pointer', 'pointer')
  const whole = find(rows, 'pointer', 'parse')
  const ptrRatio = ptr && whole ? ptr.median / whole.median : NaN
  target(
    'pointer-read',
    `readJson(p, { pointer }) of one entry of the ${nominal} index vs JSON.parse(readFileSync(p)) <= 0.5x the time`,
    [{ value: ptrRatio, ok: ptrRatio <= 0.5 }],
    ptr && whole
      ? `${fmtRatio(ptrRatio)}x the time (medians: readJson pointer ${fmtTime(ptr.median)}, JSON.parse ${fmtTime(whole.median)})`
      : '',
    [{ label: '', value: ptrRatio, fmt: (x) => `${fmtRatio(x)}x` }],
  )
  return out
}

/** Fairness of index-lock's RMW rows: information, not a target. */
function fairnessLine(rows) {
  const INDEX_LOCK = ['updateJson', 'withIndexLock', 'patchJson']
  const fair = rows.filter((r) => r.test === 'rmw' && !r.failed && INDEX_LOCK.includes(r.impl))
  if (fair.length === 0) return null
  const unfair = fair.filter((r) => r.fairness > 2).sort((a, b) => b.fairness - a.fairness)
  const name = (r) => `${r.section === 'patch' ? 'patch ' : ''}${r.impl} ${r.P}x${r.C}${r.fsync ? '' : ' no-fsync'}`
  const worst = fair.reduce((w, r) => (!w || r.fairness > w.fairness ? r : w), null)
  return (
    `  [info] fairness (slowest process / fastest) within 2x: ${fair.length - unfair.length} of ${fair.length} index-lock rows` +
    (unfair.length
      ? `; over 2x: ${unfair.map((r) => `${name(r)} ${r.fairness.toFixed(2)}`).join(', ')}`
      : `; worst ${name(worst)} ${worst.fairness.toFixed(2)}`)
  )
}

const statusTag = (status) => `[${status.padEnd(4)}]`

function targetLines(run) {
  const lines = run.targets.map((t) => `  ${statusTag(t.status)} ${t.name}: ${t.detail}`)
  const fairness = fairnessLine(run.rows)
  return fairness ? [...lines, fairness] : lines
}

function syscallLines(sc) {
  if (!sc) return []
  if (sc.unavailable) return [`Syscalls per uncontended round trip: n/a (${sc.unavailable})`]
  if (sc.failed) return [`Syscalls per uncontended round trip: FAILED: ${sc.failed}`]
  const all = Object.entries(sc.perRoundTrip)
    .filter(([, r]) => Math.abs(r) >= 0.005)
    .sort(byRate)
    .map(([n, r]) => `${n} ${r.toFixed(2)}`)
  return [
    `Syscalls per uncontended round trip (strace -f -c, all threads; (${sc.more} - ${sc.fewer} round trips) / ${sc.more - sc.fewer}): ` +
      `${all.join(', ') || 'none'}`,
  ]
}

/** Each target's status in every run and the spread of its figures, for --runs. */
function acrossRuns(runs) {
  const lines = [`Targets over ${runs.length} runs (status in each run; min..max of each figure):`]
  for (const [i, first] of runs[0].targets.entries()) {
    const each = runs.map((r) => r.targets[i])
    const statuses = each.map((t) => t.status).join(' ')
    const spreads = first.figures
      .map((f, j) => {
        const values = each.map((t) => t.figures[j]?.value).filter(Number.isFinite)
        if (values.length === 0) return null
        const lo = Math.min(...values)
        const hi = Math.max(...values)
        return `${f.label ? `${f.label} ` : ''}${f.fmt(lo)}..${f.fmt(hi)}`
      })
      .filter(Boolean)
    // The syscall target's figure is a set of names: show each run's.
    const texts = each.map((t) => t.text).filter(Boolean)
    if (texts.length) spreads.push(`per run: ${texts.join(' | ')}`)
    lines.push(`  ${first.name}: ${statuses}${spreads.length ? `; ${spreads.join(', ')}` : ''}`)
  }
  return lines
}

function header(machine, startedAt) {
  return [
    `index-lock benchmark — ${startedAt.toISOString()}`,
    `command: node bench/run.js${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    `machine: ${machine.nproc} cores (nproc), ${machine.model}, Linux ${machine.kernel}, Node ${machine.node}`,
    `disk: ${machine.tmpdir} (${machine.tmpfs}): fsync of a 4 KiB file ${fmtTime(machine.fsync4kUs)} median, ` +
      `rename + directory fsync ${fmtTime(machine.renameDirFsyncUs)} median (50 each, at the start)`,
    `library: ${machine.library}; addon built ${machine.addonBuilt}`,
    '',
  ]
}

function runBlock(run, k, n) {
  return [
    ...(n > 1 ? [`Run ${k} of ${n} (${(run.elapsedMs / 1e3).toFixed(1)} s)`, ''] : []),
    ...(run.diskProbes.length
      ? [
          `disk during the run (median fsync of 20): ${run.diskProbes.map((p) => `${fmtTime(p.fsyncUs)} ${p.when}`).join(', ')}`,
          '',
        ]
      : []),
    table(run.rows.filter((r) => r.test !== 'big')),
    '',
    ...(run.rows.some((r) => r.test === 'big') ? [bigTable(run.rows), ''] : []),
    ...(run.syscalls ? [...syscallLines(run.syscalls), ''] : []),
    ...(run.rows.some((r) => r.test === 'rmw' || r.test === 'big') ? [correctness(run.rows), ''] : []),
    'Targets (ratios within this run; the hand-over is an absolute median, the syscalls a count):',
    ...targetLines(run),
    '',
  ]
}

function howToRead() {
  const s = SETTINGS
  const sc = s.syscalls
  return [
    'How to read it:',
    `- 1: one process takes and releases a free lock ${s.uncontended['index-lock']} times (proper-lockfile ` +
      `${s.uncontended['proper-lockfile']}); every round trip is timed. async-mutex is in-process only (no file, ` +
      'no other process): the floor of an await-based lock. The floor rows (information): a native Rust loop of the ' +
      "three syscalls of index-lock's hot path on one kept descriptor of <path>.lock, and one promise resolution " +
      '(await of a no-op async call, timed like the round trips); floor = the sum of their medians.',
    '- 2: P processes x C async callers x U updates of one JSON index; each update reads it, adds one entry under ' +
      `a unique key and saves it atomically. Each row is pooled over ${s.reps} run(s) (row order alternating). ` +
      'median/p99: one update, from the call to its settling (queue and lock wait included). updates/s: updates ' +
      'that did not throw / time from the common start signal to the last process finishing. lost: entries ' +
      'missing from the final index (of P*C*U per run; "corrupt": it no longer parses). errors: updates that threw. ' +
      'fsync yes: file and directory fsynced on every save (write-file-atomic skips the directory, so rows b/c ' +
      'add it). (f) runs C threads per process, each with its own descriptor of <path>.lock, flock around ' +
      'the same read/parse/insert/write/rename loop.',
    "- fairness: slowest process's finish time / fastest's, both from the common start signal (1.00 = even); " +
      'the worst run of the row.',
    `- 3: two processes take turns (${s.handover.rounds} hand-overs): the holder waits until the other has asked and ` +
      `${s.handover.holdMs} ms more, then releases; hand-over = waiter enters - holder's last instruction inside the ` +
      'lock (process.hrtime.bigint, CLOCK_MONOTONIC, comparable across processes). The floor rows (information): ' +
      'the same ping-pong by two native processes, each blocked in flock(LOCK_EX) while the other releases, timed ' +
      `the same way; and an idle main thread woken by a worker_thread's postMessage every ${s.handover.holdMs} ms ` +
      '(post to handler); floor = the sum of their medians.',
    `- 4: one process reads the same ${SMALL_JSON.length}-byte JSON file ${s.read.iterations} times with each reader, ` +
      'in blocks of 200 that rotate order; every call is timed (the sync one without an await).',
    `- syscalls: section 1's index-lock child under \`strace -f -c\` (every thread), once with ${sc.fewer} and once ` +
      `with ${sc.more} round trips after ${sc.warmUp} warm-up ones; each syscall's count ` +
      'difference / the round-trip difference (start-up, warm-up and exit cancel out). Listed when >= 0.005 per ' +
      'round trip; the target wants flock 2 (lock, unlock), one fstat-class call (fstat, newfstatat, statx) and ' +
      'nothing else >= 0.5.',
    `- 6: patchJson. RMW: section 2's durable update as one \`add /entries/<key>\` op (row g), with updateJson and ` +
      `the native bound in the same rotation (${s.patch.rmw.map((c) => `${c.P}x${c.C}x${c.U}`).join(', ')}). Big index: ` +
      `${s.patch.big.entries} entries { title, n, tags } (~${s.patch.big.nominal}), copied fresh for each child process; ` +
      `${s.patch.big.calls} calls started at once, each adding one entry; ${s.patch.big.reps} run(s) per row, order ` +
      'alternating. wall: first call to last settled; lag: the largest delay of a 1 ms setInterval over that time; ' +
      'peak RSS growth: getrusage maxRSS after the calls - before them (after a warm-up on a small file). Pointer ' +
      `read: ${s.patch.big.pointerIterations} calls of each, alternating, every call timed.`,
    "- vs: xN = this row's speed over the named row of the same run (their median / ours for 1, 3, 4 and the " +
      'pointer read; our updates/s / theirs for 2 and 6); "p99 R of (c)" = our p99 / the p99 of row (c) of the ' +
      'same configuration.',
    '',
  ]
}

// ---------------------------------------------------------------------------------------------

async function oneRun(nativeError, stracing) {
  diskProbes = []
  const t0 = process.hrtime.bigint()
  const rows = []
  if (wants('uncontended')) rows.push(...(await uncontended(tmpRoot, nativeError)))
  if (wants('rmw')) rows.push(...(await rmw(nativeError)))
  if (wants('handover')) rows.push(...(await handover(tmpRoot, nativeError)))
  if (wants('read')) rows.push(...(await smallRead(tmpRoot)))
  if (wants('patch')) rows.push(...(await patchRmw(nativeError)), ...(await bigIndex(tmpRoot)))
  if (wants('rmw') || wants('patch')) probeDisk('at the end')
  const sc = wants('syscalls') ? await syscalls(tmpRoot, stracing) : null
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6
  return { rows, syscalls: sc, diskProbes, elapsedMs, targets: evaluateTargets(rows, sc) }
}

/** What makes the exit code 1: a row or measurement that failed, or a locked row that lost. */
function brokenParts(run) {
  const parts = run.rows.filter((r) => r.failed).map((r) => `${r.test} ${r.impl} failed: ${r.failed}`)
  const c = correctness(run.rows)
  if (c.startsWith('CORRECTNESS FAILURE')) parts.push(c)
  if (run.syscalls?.failed) parts.push(`syscall count failed: ${run.syscalls.failed}`)
  return parts
}

async function main() {
  const startedAt = new Date()
  const t0 = process.hrtime.bigint()
  tmpRoot = fs.mkdtempSync(join(os.tmpdir(), 'index-lock-bench-'))
  const machine = machineInfo(tmpRoot)
  // The native binary is also the floor of sections 1 and 3.
  const nativeError = ['rmw', 'patch', 'uncontended', 'handover'].some(wants) ? buildNative() : null
  if (nativeError) process.stderr.write(`native bound unavailable: ${nativeError}\n`)
  const stracing = wants('syscalls') ? straceProblem() : null
  if (stracing) process.stderr.write(`syscall count unavailable: ${stracing}\n`)
  process.stdout.write(`${header(machine, startedAt).join('\n')}\n`)
  const runs = []
  for (let k = 1; k <= args.runs; k++) {
    if (args.runs > 1) process.stderr.write(`=== run ${k} of ${args.runs} ===\n`)
    const run = await oneRun(nativeError, stracing)
    runs.push(run)
    // Each run's block as soon as it is done: a long --runs bench shows its progress on stdout.
    process.stdout.write(`${runBlock(run, k, args.runs).join('\n')}\n`)
  }
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6
  process.stdout.write(
    `${[
      ...howToRead(),
      ...(args.runs > 1 ? [...acrossRuns(runs), ''] : []),
      `bench took ${(elapsedMs / 1e3).toFixed(1)} s${args.quick ? ' (--quick: small samples, smoke test only)' : ''}`,
    ].join('\n')}\n`,
  )
  if (args.json) {
    const out = {
      date: startedAt.toISOString(),
      argv: process.argv.slice(2),
      quick: args.quick,
      settings: SETTINGS,
      machine,
      runs: runs.map((r) => ({
        ...r,
        targets: r.targets.map(({ figures, ...t }) => ({
          ...t,
          figures: figures.map(({ label, value }) => ({ label, value })),
        })),
      })),
      elapsedMs,
    }
    fs.writeFileSync(args.json, `${JSON.stringify(out, null, 2)}\n`)
  }
  cleanUp()
  // A failed row or a lost update is in the report; say it again on stderr and in the exit code,
  // so that neither a reader skimming the targets nor a test can miss it.
  const broken = runs.flatMap((run, i) => brokenParts(run).map((p) => (args.runs > 1 ? `run ${i + 1}: ${p}` : p)))
  for (const p of broken) process.stderr.write(`bench/run.js: ${p}\n`)
  return broken.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    cleanUp()
    process.exit(1)
  },
)
