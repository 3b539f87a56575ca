#!/usr/bin/env node
'use strict'
// index-lock across two "hosts" on a real distributed filesystem.
//
// One GlusterFS volume (one brick on this machine, glusterd started by hand) is mounted twice by
// the GlusterFS FUSE client, each client daemon running in a network namespace of its own joined
// to this one by a veth pair, so the two mounts are two separate clients talking TCP to the brick.
// Node processes lock and write through mount A and mount B at the same time. A pair of sshfs
// mounts of one local directory is the negative control (each sshfs mount keeps flocks to itself).
//
// Needs root and /dev/fuse (otherwise prints SKIP and exits 0); installs glusterfs-server,
// glusterfs-client, sshfs and openssh-server with apt-get if missing (SKIP, exit 0, if that fails).
// Exits 1 if GlusterFS lost an update or failed a check, or if the control was not flagged.
// Everything it makes (mounts, volume, daemons, namespaces, veths, temp dirs) is removed on every
// exit path, and the removal is verified and printed.
//
//   node multihost/run.js [--n=200] [--seconds=8] [--kills=5] [--killall=3] [--deadline=900]
//                         [--default-caching]
//   MULTIHOST_STRICT=1: a failed setup (not an apt failure) exits 1 instead of SKIP.

const cp = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const { join } = require('node:path')
const crypto = require('node:crypto')

const ROOT = join(__dirname, '..')
const CHILD = join(__dirname, 'child.js')
const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a ? Number(a.split('=')[1]) : def
}
const flag = (name) => process.argv.includes(`--${name}`)
const N = arg('n', 200) // updates per writer process (2 processes per mount)
const SECONDS = arg('seconds', 8) // rename-visibility run length
const KILLS = arg('kills', 5) // SIGKILL hand-over rounds
const KILLALL = arg('killall', 3) // rounds of SIGKILLing every writer mid-run
const DEFAULT_CACHING = flag('default-caching') // leave GlusterFS caching on (shows why it must be off)
const STRICT = process.env.MULTIHOST_STRICT === '1'
const DEADLINE_MS = arg('deadline', 15 * 60) * 1000

const started = Date.now()
const log = (...a) => console.log(`[multihost +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a)

// ------------------------------------------------------------------------------------------------
// Everything we make, so cleanup can remove exactly that (by pid, by name), and nothing else.

const suffix = crypto.randomBytes(3).toString('hex')
const own = {
  suffix, // names of our netns, veths, volume and temp dir carry it
  tmp: null, // our temp dir (brick, mount points, glusterd state, keys, logs)
  netns: [], // names
  veths: [], // host-side names
  glusterdPid: null,
  glusterdChild: null,
  volume: `mhv${suffix}`,
  volumeCreated: false,
  mounts: [], // mount points
  pids: new Set(), // daemons: gluster clients and bricks, sshfs, sshd
  childPids: new Set(), // test children (node multihost/child.js)
  children: new Set(), // ChildProcess objects of test children
  guardianPid: null,
  brickFiles: [], // brick log / socket outside our temp dir (glusterd puts them in /var)
  runSshdMade: false,
  fusectlMade: false, // we mounted /sys/fs/fuse/connections (to see and abort hung FUSE requests)
}
const G_SOCK = () => join(own.tmp, 'run', 'glusterd.socket')
// What we own is also kept in a state file, read by a guardian process: if this process dies in a
// way no handler sees (SIGKILL, a native abort), the guardian cleans up from the file.
let statePath = join(os.tmpdir(), `index-lock-multihost-${suffix}.state.json`)
function saveState() {
  const { children, glusterdChild, pids, childPids, ...rest } = own
  fs.writeFileSync(statePath, JSON.stringify({ ...rest, pids: [...pids], childPids: [...childPids] }))
}

function sh(cmd, args, opts = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 60000, ...opts })
  return {
    ok: r.status === 0,
    status: r.status,
    out: (r.stdout || '').trim(),
    err: (r.stderr || '').trim() || (r.error ? String(r.error) : ''),
  }
}
function must(cmd, args, opts) {
  const r = sh(cmd, args, opts)
  if (!r.ok) throw new SetupError(`${cmd} ${args.join(' ')} -> ${r.status}: ${r.err || r.out}`)
  return r.out
}
class SetupError extends Error {}
const gluster = (...args) =>
  sh('gluster', [
    `--glusterd-sock=${G_SOCK()}`,
    '--mode=script',
    `--log-file=${join(own.tmp, 'log', 'cli.log')}`,
    ...args,
  ])
const alive = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(stat)
  } catch {
    return false
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}
/** True when `pid` runs a command line naming our temp dir (so a recycled pid is never killed). */
function ours(pid) {
  try {
    return own.tmp !== null && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(own.tmp)
  } catch {
    return false
  }
}
function killWait(pid, label, graceMs = 3000, sig = 'SIGTERM') {
  if (!pid || !alive(pid) || !ours(pid)) return
  try {
    process.kill(pid, sig)
  } catch {}
  const end = Date.now() + graceMs
  while (alive(pid) && Date.now() < end) sleepSync(50)
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
    const end2 = Date.now() + 2000
    while (alive(pid) && Date.now() < end2) sleepSync(50)
  }
  if (alive(pid)) log(`cleanup: ${label} pid ${pid} still alive`)
}
const readPid = (file) => {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || null
  } catch {
    return null
  }
}
const mountsOf = (prefix) =>
  fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.replace(/\\040/g, ' ').startsWith(prefix))
/** Pids whose command line mentions `text` (our temp dir or volume name), not us. */
function pidsMentioning(text) {
  const found = []
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text) && alive(Number(d))) found.push(Number(d))
    } catch {}
  }
  return found
}

const FUSECTL = '/sys/fs/fuse/connections'
/** The FUSE connection number of a mount (its device minor), from mountinfo: no syscall into FUSE. */
function fuseConn(mountPoint) {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ')
    if (f[4] === mountPoint && f[2]?.startsWith('0:')) return f[2].split(':')[1]
  }
  return null
}
/** Requests the kernel still waits on for this mount's FUSE daemon (null if unknown). */
function fuseWaiting(mountPoint) {
  const c = fuseConn(mountPoint)
  try {
    return c === null ? null : Number(fs.readFileSync(join(FUSECTL, c, 'waiting'), 'utf8'))
  } catch {
    return null
  }
}
function ensureFusectl() {
  if (
    fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === FUSECTL)
  )
    return
  if (sh('mount', ['-t', 'fusectl', 'none', FUSECTL]).ok) own.fusectlMade = true
}

// ------------------------------------------------------------------------------------------------
// Cleanup: synchronous, idempotent, runs from finally, signal handlers and 'exit'.

let cleaned = false
function cleanup() {
  if (cleaned) return null
  cleaned = true
  const steps = []
  const step = (name, fn) => {
    try {
      fn()
    } catch (err) {
      steps.push(`${name}: ${err.message}`)
    }
  }
  for (const c of own.children) step('child', () => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'))
  if (own.tmp) {
    step('children', () => {
      const kids = new Set([...own.childPids, ...pidsMentioning(CHILD)])
      for (const pid of kids) killWait(pid, 'test child', 2000, 'SIGKILL')
    })
    // Unmount first (a client daemon exits when its mount goes), then kill what is left by pid.
    // A FUSE request left pending (e.g. a SIGKILLed process's lock request) makes umount wait
    // for the daemon forever, in D state: abort such a connection first (the mount is ours and
    // is going anyway).
    step('fusectl', ensureFusectl)
    for (const m of own.mounts.slice().reverse()) {
      step(`umount ${m}`, () => {
        if (mountsOf(m).length === 0) return
        let waiting = fuseWaiting(m)
        for (let i = 0; i < 30 && waiting; i++) {
          sleepSync(100)
          waiting = fuseWaiting(m)
        }
        if (waiting) {
          steps.push(`aborted the FUSE connection of ${m} (${waiting} requests pending)`)
          fs.writeFileSync(join(FUSECTL, fuseConn(m), 'abort'), '1')
        }
        if (!sh('umount', [m], { timeout: 15000 }).ok && !sh('fusermount', ['-u', m], { timeout: 15000 }).ok)
          sh('umount', ['-l', m], { timeout: 15000 })
      })
    }
    for (const f of ['clientA.pid', 'clientB.pid']) step(f, () => own.pids.add(readPid(join(own.tmp, f))))
    for (const pid of own.pids) step(`kill ${pid}`, () => killWait(pid, 'daemon'))
    if (own.volumeCreated && own.glusterdPid && alive(own.glusterdPid)) {
      step('volume stop', () => gluster('volume', 'stop', own.volume, 'force'))
      step('volume delete', () => gluster('volume', 'delete', own.volume))
    }
    // Brick daemons (glusterfsd) daemonize away from glusterd: find them by pid file and by name.
    step('bricks', () => {
      const dir = join(own.tmp, 'run', 'vols', own.volume)
      const pids = new Set(pidsMentioning(own.volume))
      if (fs.existsSync(dir))
        for (const f of fs.readdirSync(dir)) if (f.endsWith('.pid')) pids.add(readPid(join(dir, f)))
      for (const pid of pids) if (pid !== own.glusterdPid) killWait(pid, 'glusterfsd')
    })
    step('glusterd', () => killWait(own.glusterdPid, 'glusterd', 5000))
    step('leftovers', () => {
      for (const pid of pidsMentioning(own.tmp)) killWait(pid, 'leftover')
    })
  }
  for (const v of own.veths) step(`veth ${v}`, () => sh('ip', ['link', 'show', v]).ok && must('ip', ['link', 'del', v]))
  for (const n of own.netns)
    step(
      `netns ${n}`,
      () =>
        sh('ip', ['netns', 'list'])
          .out.split('\n')
          .some((l) => l.split(' ')[0] === n) && must('ip', ['netns', 'del', n]),
    )
  for (const f of own.brickFiles) step(`rm ${f}`, () => fs.rmSync(f, { force: true }))
  if (own.runSshdMade) step('rm /run/sshd', () => fs.existsSync('/run/sshd') && fs.rmdirSync('/run/sshd'))
  if (own.fusectlMade) step('umount fusectl', () => must('umount', [FUSECTL]))
  step('rm state', () => fs.rmSync(statePath, { force: true }))
  if (own.tmp) {
    step('rm tmp', () => {
      if (mountsOf(own.tmp).length) throw new Error(`still mounted: ${mountsOf(own.tmp).join('; ')}`)
      must('rm', ['-rf', '--one-file-system', own.tmp])
    })
  }
  // Verify.
  const left = []
  if (own.tmp) {
    const m = mountsOf(own.tmp)
    if (m.length) left.push(`mounts: ${m.join('; ')}`)
    const p = pidsMentioning(own.tmp).concat(pidsMentioning(own.volume))
    if (p.length) left.push(`processes: ${[...new Set(p)].join(' ')}`)
    if (fs.existsSync(own.tmp)) left.push(`dir: ${own.tmp}`)
  }
  for (const pid of own.pids) if (alive(pid) && ours(pid)) left.push(`pid ${pid}`)
  if (own.glusterdPid && alive(own.glusterdPid) && ours(own.glusterdPid)) left.push(`glusterd ${own.glusterdPid}`)
  if (fs.existsSync(statePath)) left.push(`file: ${statePath}`)
  if (own.guardianPid && !GUARD) {
    try {
      process.kill(own.guardianPid, 'SIGTERM') // our guardian: its job is done
    } catch {}
  }
  const ns = sh('ip', ['netns', 'list']).out
  const mine = ns.split('\n').filter((l) => l.includes(own.suffix))
  if (mine.length) left.push(`netns: ${mine.join(' ')}`)
  const links = sh('ip', ['-o', 'link'])
    .out.split('\n')
    .filter((l) => l.includes(own.suffix))
  if (links.length) left.push(`links: ${links.length}`)
  for (const f of own.brickFiles) if (fs.existsSync(f)) left.push(`file: ${f}`)
  const verdict = left.length === 0
  console.log(
    `cleanup check: ${verdict ? 'OK, nothing left' : `LEFT OVER: ${left.join(' | ')}`} ` +
      `(mounts under ${own.tmp ?? '-'}: ${own.tmp ? mountsOf(own.tmp).length : 0}; netns *${own.suffix}*: ${mine.length}; veths: ${links.length}; ` +
      `processes of ours: ${left.filter((l) => /pid|process|glusterd/.test(l)).length})` +
      (steps.length ? `; step errors: ${steps.join('; ')}` : ''),
  )
  return verdict
}

let cleanOk = null
const GUARD = process.argv[2] === '--guard'
if (GUARD) {
  // Guardian: wait for the test process to end; if it left its state file, clean up from it.
  statePath = process.argv[3]
  const parent = Number(process.argv[4])
  for (const sig of ['SIGINT', 'SIGHUP']) process.on(sig, () => {})
  const timer = setInterval(() => {
    if (alive(parent)) return
    clearInterval(timer)
    if (!fs.existsSync(statePath)) process.exit(0)
    const st = JSON.parse(fs.readFileSync(statePath, 'utf8'))
    Object.assign(own, st, { pids: new Set(st.pids), childPids: new Set(st.childPids), children: new Set() })
    console.log(`\nmultihost guardian: test process ${parent} died without cleaning up; cleaning up`)
    process.exit(cleanup() ? 0 : 1)
  }, 300)
} else
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.log(`\n${sig}: cleaning up`)
      cleanup()
      process.exit(128 + os.constants.signals[sig])
    })
  }
if (!GUARD) process.on('exit', () => cleanup())

// ------------------------------------------------------------------------------------------------
// Child processes.

/** What each thread of `pid` waits on in the kernel (e.g. `request_wait_answer` in a FUSE call). */
function kernelWaits(pid) {
  const out = []
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const state = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').replace(/^.*\) /, '')[0]
      let stack = ''
      try {
        stack = fs
          .readFileSync(`/proc/${pid}/task/${t}/stack`, 'utf8')
          .split('\n')
          .map((l) => l.replace(/^.*\] /, '').replace(/\+.*/, ''))
          .filter(Boolean)
          .slice(0, 4)
          .join('<')
      } catch {}
      if (state === 'D') out.push(`thread ${t} D in ${stack}`)
    }
  } catch {}
  return out
}

// A child that outlives this (a wedged mount) is SIGKILLed and its result rejects; a child that
// cannot even die (a thread in an unanswered FUSE request) makes `exited` resolve with 'STUCK'.
function spawnChild(args, { stdin = 'ignore', timeoutMs = 180000 } = {}) {
  const child = cp.spawn(process.execPath, [CHILD, ...args], { stdio: [stdin, 'pipe', 'pipe'] })
  own.children.add(child)
  own.childPids.add(child.pid)
  saveState()
  child.on('exit', () => {
    own.childPids.delete(child.pid)
  })
  let out = ''
  let err = ''
  const waiters = []
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d
    for (const w of waiters.slice()) {
      const l = out.split('\n').find((x) => x.startsWith(w.text))
      if (l !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(l)
      }
    }
  })
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d))
  const exited = new Promise((res) => {
    child.on('close', (code, signal) => res({ code, signal }))
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      setTimeout(() => res({ code: null, signal: 'STUCK', waits: kernelWaits(child.pid) }), 5000).unref()
    }, timeoutMs)
    t.unref()
    child.on('close', () => clearTimeout(t))
  })
  const result = exited.then((e) => {
    if (e.signal === 'STUCK')
      throw new Error(`child ${args.join(' ')} did not finish in ${timeoutMs} ms and cannot die: ${e.waits.join('; ')}`)
    const l = out.split('\n').find((x) => x.startsWith('RESULT '))
    if (!l) throw new Error(`child ${args.join(' ')} printed no result: ${out} ${err}`)
    const r = JSON.parse(l.slice(7))
    if (r.fatal) throw new Error(`child ${args.join(' ')}: ${r.fatal}`)
    return r
  })
  result.catch(() => {})
  const line = (text, ms = 30000) =>
    new Promise((res, rej) => {
      const l = out.split('\n').find((x) => x.startsWith(text))
      if (l !== undefined) return res(l)
      const t = setTimeout(() => rej(new Error(`no '${text}' from ${args.join(' ')} in ${ms} ms: ${out} ${err}`)), ms)
      waiters.push({ text, resolve: (l) => (clearTimeout(t), res(l)) })
      exited.then(() => {
        clearTimeout(t)
        rej(new Error(`${args.join(' ')} exited before '${text}': ${out} ${err}`))
      })
    })
  return { child, exited, result, line, stderr: () => err }
}

// ------------------------------------------------------------------------------------------------
// Checks.

const rows = [] // { fs, check, expect, got, ok, gate }
// gate false: reported, but not part of the exit status (a known defect outside locking itself).
function row(fsName, check, expect, got, ok, gate = true) {
  rows.push({ fs: fsName, check, expect: String(expect), got: String(got), ok, gate })
  log(`${ok ? 'ok  ' : gate ? 'FAIL' : 'BUG '} ${fsName}: ${check}: expect ${expect}, got ${got}`)
}
const gRow = (...a) => row('glusterfs', ...a)
const notes = []

async function writers(pathA, pathB, networkFs) {
  const kids = []
  for (const [tag, p] of [
    ['a1', pathA],
    ['a2', pathA],
    ['b1', pathB],
    ['b2', pathB],
  ])
    kids.push(spawnChild(['writer', p, tag, String(N), networkFs]))
  const t0 = Date.now()
  const res = await Promise.all(kids.map((k) => k.result))
  const ms = Date.now() - t0
  const done = res.reduce((s, r) => s + r.done, 0)
  const errors = {}
  for (const r of res) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] || 0) + v
  // Read the result through both mounts, in children: this process never touches the mounts.
  let finalA = null
  let finalB = null
  try {
    finalA = await spawnChild(['final', pathA]).result
    finalB = await spawnChild(['final', pathB]).result
  } catch (err) {
    notes.push(`final read failed: ${err.message.split('\n')[0]}`)
  }
  const count = finalA ? finalA.count : NaN
  const entries = finalA ? finalA.entries : NaN
  const same = !!(finalA && finalB && finalA.text === finalB.text)
  return { total: 4 * N, done, errors, count, entries, same, ms }
}

const statusRows = []
function cliStatus(p) {
  return new Promise((res) => {
    const c = cp.execFile(
      process.execPath,
      [join(ROOT, 'bin', 'index-lock.js'), 'status', p, '--json'],
      { timeout: 20000 },
      (err, stdout) => {
        let lock = '?'
        try {
          const j = JSON.parse(stdout)
          lock = j.lock
            ? j.lock.held
              ? `held (${j.lock.mode}, holders ${j.lock.holders.map((h) => h.pid).join(',') || '-'})`
              : 'free'
            : `error ${j.error?.code}`
        } catch {}
        res({ code: err ? err.code : 0, lock })
      },
    )
    own.childPids.add(c.pid)
  })
}
const label0 = (held, asked, dir) =>
  `${held === 'exclusive' ? 'EX' : 'SH'}/${asked === 'exclusive' ? 'EX' : 'SH'} ${dir}`
async function matrix(fsName, pathA, pathB, expectExclusion) {
  const cases = [
    ['exclusive', 'exclusive', false],
    ['shared', 'exclusive', false],
    ['exclusive', 'shared', false],
    ['shared', 'shared', true],
  ]
  let bad = 0
  const got = []
  for (const [held, asked, shares] of cases) {
    for (const [hp, wp, dir] of [
      [pathA, pathB, 'A->B'],
      [pathB, pathA, 'B->A'],
    ]) {
      const holder = spawnChild(['hold', hp, held], { stdin: 'pipe' })
      await holder.line('HELD')
      if (label0(held, asked, dir) === 'EX/EX A->B') {
        const inProcLocks = fs
          .readFileSync('/proc/locks', 'utf8')
          .split('\n')
          .filter((l) => l.split(/\s+/)[4] === String(holder.child.pid))
        notes.push(
          `${fsName}: the holder's flock in /proc/locks: ${inProcLocks.length ? inProcLocks.join(' / ') : 'absent'}`,
        )
        if (expectExclusion) {
          // `index-lock status` while a process of this host holds the lock (through mount A).
          const st = []
          for (const [via, p] of [
            ['A', hp],
            ['B', wp],
          ]) {
            const r = await cliStatus(p)
            st.push(`via ${via}: exit ${r.code}, lock ${r.lock}`)
          }
          statusRows.push(st)
        }
      }
      const tr = await spawnChild(['try', wp, asked]).result
      let blocked = null
      if (!shares) {
        // The blocking path too: a waiting acquire must time out while the other mount holds.
        blocked = await spawnChild(['wait', wp, asked, '400']).result
      }
      holder.child.stdin.end()
      await holder.result
      const after = await spawnChild(['try', wp, asked]).result // free again once released
      const want = expectExclusion ? shares : true
      const ok =
        tr.got === want && after.got && (blocked === null || !expectExclusion || blocked.code === 'ELOCKTIMEOUT')
      if (!ok) bad++
      const label = label0(held, asked, dir)
      got.push(
        `${label}: ${tr.got ? 'got' : 'refused'}${blocked ? `, wait->${blocked.code ?? 'acquired'}` : ''}${after.got ? '' : ', NOT FREE AFTER RELEASE'}`,
      )
      if (blocked?.holders && fsName === 'glusterfs' && label.startsWith('EX/EX A->B'))
        notes.push(
          `LockTimeoutError.holders when the holder is on the other mount (gluster): ${JSON.stringify(blocked.holders)}`,
        )
    }
  }
  if (expectExclusion) notes.push(`${fsName} matrix: ${got.join('; ')}`)
  return { bad, got }
}

async function killHandover(pathA, pathB) {
  const lat = []
  const problems = []
  for (let i = 0; i < KILLS; i++) {
    const holder = spawnChild(['hold', pathA, 'exclusive'], { stdin: 'pipe' })
    await holder.line('HELD')
    const waiter = spawnChild(['wait', pathB, 'exclusive', '20000'])
    await waiter.line('WAITING')
    await sleep(400) // let it block in flock on mount B
    if (waiter.child.exitCode !== null) problems.push(`round ${i}: waiter finished while the holder held`)
    const t0 = performance.timeOrigin + performance.now()
    holder.child.kill('SIGKILL')
    const r = await waiter.result
    if (r.acquiredAt === undefined) problems.push(`round ${i}: waiter got ${r.code}`)
    else lat.push(r.acquiredAt - t0)
    await holder.exited
  }
  lat.sort((a, b) => a - b)
  return { lat, problems }
}

/** A waiter SIGKILLed while it waits: once the holder releases, is the lock free for others? */
async function killWaiter(pathA, pathB, mountB) {
  const out = []
  let ok = true
  for (let i = 0; i < 3; i++) {
    const holder = spawnChild(['hold', pathA, 'exclusive'], { stdin: 'pipe' })
    await holder.line('HELD')
    const waiter = spawnChild(['wait', pathB, 'exclusive', '20000'])
    await waiter.line('WAITING')
    await sleep(400)
    waiter.child.kill('SIGKILL')
    await waiter.exited
    const pendingB = fuseWaiting(mountB)
    holder.child.stdin.end()
    await holder.result
    await sleep(200)
    const a = await spawnChild(['wait', pathA, 'exclusive', '5000']).result
    const b = await spawnChild(['wait', pathB, 'exclusive', '5000']).result
    const got = (r) => (r.acquiredAt !== undefined ? 'acquired' : r.code)
    out.push(
      `round ${i}: FUSE requests pending on B after the kill ${pendingB ?? '?'}; then via A ${got(a)}, via B ${got(b)}`,
    )
    if (a.acquiredAt === undefined || b.acquiredAt === undefined) ok = false
  }
  return { ok, out }
}

/** Every writer on both mounts SIGKILLed mid-run (a crash of both "hosts"' processes). */
async function killAll(pathA, pathB, A, B) {
  const out = []
  let ok = true
  for (let i = 0; i < KILLALL; i++) {
    const kids = [pathA, pathA, pathB, pathB].map((p, k) => spawnChild(['writer', p, `k${i}${k}`, '100000', 'allow']))
    await sleep(1500 + i * 300)
    for (const k of kids) k.child.kill('SIGKILL')
    const gone = await Promise.race([
      Promise.all(kids.map((k) => k.exited)).then(() => true),
      sleep(15000).then(() => false),
    ])
    if (!gone) {
      const stuck = kids.filter((k) => k.child.exitCode === null && k.child.signalCode === null)
      const waits = stuck.map(
        (k) =>
          `pid ${k.child.pid} (${k.child.spawnargs[3].startsWith(A) ? 'via A' : 'via B'}): ${kernelWaits(k.child.pid).join(', ') || 'running'}`,
      )
      const logTail = (m) => {
        try {
          return (
            fs
              .readFileSync(join(own.tmp, 'log', `client${m}.log`), 'utf8')
              .split('\n')
              .filter((l) => / [CE] \[/.test(l))
              .slice(-1)[0]
              ?.slice(0, 200) ?? ''
          )
        } catch {
          return ''
        }
      }
      out.push(
        `round ${i}: ${stuck.length} SIGKILLed writer(s) cannot exit after 15 s: ${waits.join('; ')}; FUSE requests pending A ${fuseWaiting(A)}, B ${fuseWaiting(B)}; client A log: ${logTail('A')}`,
      )
      return { ok: false, out, stuck: true }
    }
    await sleep(300)
    const pending = [fuseWaiting(A), fuseWaiting(B)]
    const got = (r) => (r.acquiredAt !== undefined ? 'acquired' : r.code)
    const a = await spawnChild(['wait', pathA, 'exclusive', '5000']).result
    const b = await spawnChild(['wait', pathB, 'exclusive', '5000']).result
    let data = 'ok'
    try {
      await spawnChild(['final', pathB]).result
    } catch (err) {
      data = err.message.split('\n')[0].slice(0, 80)
    }
    out.push(
      `round ${i}: pending FUSE requests A ${pending[0]}, B ${pending[1]}; lock via A ${got(a)}, via B ${got(b)}; data ${data}`,
    )
    if (a.acquiredAt === undefined || b.acquiredAt === undefined || data !== 'ok') ok = false
  }
  return { ok, out }
}

async function renames(pathA, pathB) {
  const items = 4000
  // Seed the file through A, then race a writer on A against a reader on B.
  await spawnChild(['atomic', pathA, '1', String(items)]).result
  const w = spawnChild(['atomic', pathA, String(SECONDS * 1000), String(items)])
  const r = spawnChild(['reader', pathB, String(SECONDS * 1000)])
  return { w: await w.result, r: await r.result }
}

async function policies(fsName, path) {
  const warn = await spawnChild(['policy', path, 'warn']).result
  const error = await spawnChild(['policy', path, 'error']).result
  return { warn, error }
}

// ------------------------------------------------------------------------------------------------
// Setup.

function skip(reason) {
  if (own.tmp === null) cleaned = true // nothing made yet: nothing to remove or check
  console.log(`SKIP multihost: ${reason}`)
  process.exit(0)
}

function prerequisites() {
  if (process.platform !== 'linux') skip('Linux only')
  if (process.getuid() !== 0) skip('needs root (network namespaces, FUSE mounts, glusterd)')
  if (!fs.existsSync('/dev/fuse')) skip('no /dev/fuse')
  const need = {
    glusterd: 'glusterfs-server',
    glusterfs: 'glusterfs-client',
    sshfs: 'sshfs',
    '/usr/sbin/sshd': 'openssh-server',
    'ssh-keygen': 'openssh-client',
    ip: 'iproute2',
    nsenter: 'util-linux',
  }
  const missing = [
    ...new Set(
      Object.entries(need)
        .filter(([bin]) => !sh('sh', ['-c', `command -v ${bin}`]).ok)
        .map(([, p]) => p),
    ),
  ]
  if (missing.length) {
    if (!sh('sh', ['-c', 'command -v apt-get']).ok) skip(`missing ${missing.join(' ')} and no apt-get`)
    log(`installing ${missing.join(' ')} with apt-get`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    // Keep daemons from being started by the packages' scripts: we start our own, by hand.
    const policy = '/usr/sbin/policy-rc.d'
    const madePolicy = !fs.existsSync(policy)
    if (madePolicy) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 })
    try {
      const up = sh('apt-get', ['update', '-qq'], { env, timeout: 300000 })
      const inst =
        up.ok &&
        sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeout: 600000 })
      if (!up.ok || !inst.ok)
        skip(
          `apt-get could not install ${missing.join(' ')}: ${((up.ok ? inst : up).err || '').split('\n').slice(-2).join(' ')}`,
        )
    } finally {
      if (madePolicy) fs.rmSync(policy, { force: true })
    }
    const still = Object.keys(need).filter((bin) => !sh('sh', ['-c', `command -v ${bin}`]).ok)
    if (still.length) skip(`still missing after apt-get: ${still.join(' ')}`)
  }
}

async function portFree(port, host = '0.0.0.0') {
  return new Promise((res) => {
    const s = net.createServer()
    s.once('error', () => res(false))
    s.listen(port, host, () => s.close(() => res(true)))
  })
}

async function freePort() {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + crypto.randomInt(20000)
    if (await portFree(p, '127.0.0.1')) return p
  }
  throw new SetupError('no free port')
}

function waitFor(what, fn, ms = 20000) {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new SetupError(`timed out waiting for ${what}`)
    sleepSync(100)
  }
}

function pickSubnet() {
  const used = sh('ip', ['-4', '-o', 'addr']).out + sh('ip', ['-4', 'route']).out
  for (let i = 0; i < 100; i++) {
    const x = crypto.randomInt(256)
    if (!used.includes(`10.213.${x}.`)) return `10.213.${x}`
  }
  throw new SetupError('no free 10.213.x.0/29')
}

async function setupGluster() {
  if (!(await portFree(24007))) throw new SetupError('port 24007 is taken (a glusterd already runs here?)')
  const T = own.tmp
  ensureFusectl()
  saveState()
  for (const d of ['wd', 'run', 'log', 'brick', 'A', 'B']) fs.mkdirSync(join(T, d), { recursive: true })
  // glusterd with its state, run dir and CLI socket in our temp dir (not /var/lib/glusterd).
  fs.writeFileSync(
    join(T, 'glusterd.vol'),
    [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${join(T, 'wd')}`,
      `    option run-directory ${join(T, 'run')}`,
      `    option glusterd-sockfile ${G_SOCK()}`,
      '    option transport-type socket',
      '    option transport.socket.listen-port 24007',
      '    option ping-timeout 0',
      '    option event-threads 1',
      'end-volume',
      '',
    ].join('\n'),
  )
  const gd = cp.spawn(
    'glusterd',
    ['-N', '-f', join(T, 'glusterd.vol'), '-l', join(T, 'log', 'glusterd.log'), '-p', join(T, 'glusterd.pid')],
    {
      stdio: 'ignore',
      detached: true, // not in our process group: a ^C reaches us, and we stop the volume first
    },
  )
  own.glusterdPid = gd.pid
  own.glusterdChild = gd
  gd.unref()
  saveState()
  waitFor('glusterd', () => gluster('volume', 'list').ok)

  // Two "hosts": network namespaces, each joined to this namespace by a veth pair on its own /30.
  const net24 = pickSubnet()
  const server = `${net24}.1`
  for (const [i, name] of ['a', 'b'].entries()) {
    const ns = `mh${suffix}${name}`
    const host = `mh${suffix}h${name}`
    const peer = `mh${suffix}n${name}`
    own.netns.push(ns)
    own.veths.push(host)
    saveState()
    must('ip', ['netns', 'add', ns])
    must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer])
    must('ip', ['link', 'set', peer, 'netns', ns])
    must('ip', ['addr', 'add', `${net24}.${i * 4 + 1}/30`, 'dev', host])
    must('ip', ['link', 'set', host, 'up'])
    must('ip', ['-n', ns, 'addr', 'add', `${net24}.${i * 4 + 2}/30`, 'dev', peer])
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    must('ip', ['-n', ns, 'link', 'set', peer, 'up'])
    must('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${net24}.${i * 4 + 1}`])
  }

  const brick = join(T, 'brick', 'b')
  const vol = own.volume
  const g = (...a) => {
    const r = gluster(...a)
    if (!r.ok) throw new SetupError(`gluster ${a.join(' ')}: ${r.err || r.out}`)
    return r.out
  }
  own.volumeCreated = true
  saveState()
  g('volume', 'create', vol, `${server}:${brick}`, 'force')
  const settings = DEFAULT_CACHING
    ? []
    : [
        ['performance.quick-read', 'off'],
        ['performance.io-cache', 'off'],
        ['performance.read-ahead', 'off'],
        ['performance.stat-prefetch', 'off'],
        ['performance.write-behind', 'off'],
        ['performance.open-behind', 'off'],
        ['performance.readdir-ahead', 'off'],
        ['performance.md-cache-timeout', '0'],
      ]
  for (const [k, v] of settings) g('volume', 'set', vol, k, v)
  g('volume', 'start', vol)
  // glusterd keeps a brick's log and socket in /var: note them (from the brick's command line).
  for (const pid of pidsMentioning(vol)) {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    own.pids.add(pid)
    for (const o of ['-l', '-S']) {
      const v = argv[argv.indexOf(o) + 1]
      if (argv.includes(o) && v && /^\/(var\/|run\/)/.test(v) && /(bricks\/.*\.log|\.socket)$/.test(v))
        own.brickFiles.push(v)
    }
  }
  saveState()

  const clientArgs = DEFAULT_CACHING ? [] : ['--entry-timeout=0', '--attribute-timeout=0', '--negative-timeout=0']
  for (const [name, mnt] of [
    ['a', 'A'],
    ['b', 'B'],
  ]) {
    const dir = join(T, mnt)
    own.mounts.push(dir)
    saveState()
    must('nsenter', [
      `--net=/var/run/netns/mh${suffix}${name}`,
      'glusterfs',
      `--volfile-server=${server}`,
      `--volfile-id=${vol}`,
      ...clientArgs,
      '-l',
      join(T, 'log', `client${mnt}.log`),
      '-p',
      join(T, `client${mnt}.pid`),
      dir,
    ])
    waitFor(`mount ${dir}`, () => mountsOf(dir).some((l) => l.includes('fuse.glusterfs')))
    own.pids.add(waitFor(`client pid ${mnt}`, () => readPid(join(T, `client${mnt}.pid`))))
    saveState()
  }
  // Each client talks to the brick from its own namespace address.
  const peers = sh('ss', ['-tn']).out
  const from = ['2', '6'].filter((h) => peers.includes(`${net24}.${h}:`))
  return { server, settings, clientArgs, from: from.map((h) => `${net24}.${h}`) }
}

async function setupSshfs() {
  const T = own.tmp
  const S = join(T, 'ssh')
  for (const d of ['ssh', 'share', 'SA', 'SB']) fs.mkdirSync(join(T, d), { recursive: true, mode: 0o700 })
  must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(S, 'host')])
  must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(S, 'client')])
  fs.copyFileSync(join(S, 'client.pub'), join(S, 'authorized_keys'))
  if (!fs.existsSync('/run/sshd')) {
    fs.mkdirSync('/run/sshd', { mode: 0o755 })
    own.runSshdMade = true
    saveState()
  }
  const port = await freePort()
  const sshd = cp.spawn(
    '/usr/sbin/sshd',
    [
      '-D',
      '-e',
      '-f',
      '/dev/null',
      '-p',
      String(port),
      '-h',
      join(S, 'host'),
      '-o',
      'ListenAddress=127.0.0.1',
      '-o',
      `AuthorizedKeysFile=${join(S, 'authorized_keys')}`,
      '-o',
      'PermitRootLogin=prohibit-password',
      '-o',
      'PasswordAuthentication=no',
      '-o',
      'StrictModes=no',
      '-o',
      'Subsystem=sftp internal-sftp',
      '-o',
      'PidFile=none',
      '-o',
      'UsePAM=no',
    ],
    { stdio: ['ignore', 'ignore', fs.openSync(join(T, 'log', 'sshd.log'), 'a')], detached: true },
  )
  own.pids.add(sshd.pid)
  sshd.unref()
  saveState()
  waitFor('sshd', () => sh('ss', ['-ltn', `sport = :${port}`]).out.includes(`127.0.0.1:${port}`), 10000)
  for (const m of ['SA', 'SB']) {
    const dir = join(T, m)
    own.mounts.push(dir)
    saveState()
    const c = cp.spawn(
      'sshfs',
      [
        '-f',
        '-o',
        `IdentityFile=${join(S, 'client')},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,port=${port}`,
        // No client caching either, so what remains is the locking.
        '-o',
        'dir_cache=no,entry_timeout=0,attr_timeout=0,negative_timeout=0',
        `root@127.0.0.1:${join(T, 'share')}`,
        dir,
      ],
      { stdio: ['ignore', 'ignore', fs.openSync(join(T, 'log', `sshfs${m}.log`), 'a')], detached: true },
    )
    own.pids.add(c.pid)
    c.unref()
    saveState()
    waitFor(`sshfs ${dir}`, () => mountsOf(dir).some((l) => l.includes('fuse.sshfs')), 15000)
  }
  return { port }
}

// ------------------------------------------------------------------------------------------------

async function main() {
  prerequisites()
  const deadline = setTimeout(() => {
    console.log(`deadline of ${DEADLINE_MS / 1000}s passed: cleaning up`)
    cleanup()
    process.exit(1)
  }, DEADLINE_MS)
  deadline.unref()

  own.tmp = fs.realpathSync(fs.mkdtempSync(join(os.tmpdir(), `index-lock-multihost-${suffix}-`)))
  saveState()
  const guardian = cp.spawn(process.execPath, [__filename, '--guard', statePath, String(process.pid)], {
    stdio: 'inherit',
    detached: true,
  })
  own.guardianPid = guardian.pid
  guardian.unref()
  saveState()
  let g
  let s
  try {
    g = await setupGluster()
    log(
      `GlusterFS volume ${own.volume} on ${g.server} (glusterd pid ${own.glusterdPid}), mounted at ${own.mounts.join(' and ')}; client connections from ${g.from.join(', ') || '?'}`,
    )
    s = await setupSshfs()
    log(`sshd on 127.0.0.1:${s.port}, sshfs mounts ${own.mounts.slice(2).join(' and ')}`)
  } catch (err) {
    if (!(err instanceof SetupError)) throw err
    const logs = ['glusterd.log', 'clientA.log', 'clientB.log', 'sshd.log']
      .map((f) => join(own.tmp, 'log', f))
      .filter((f) => fs.existsSync(f))
      .map((f) => `--- ${f} (tail)\n${fs.readFileSync(f, 'utf8').split('\n').slice(-8).join('\n')}`)
    console.log(logs.join('\n'))
    cleanOk = cleanup()
    if (STRICT) {
      console.log(`FAIL multihost: setup failed: ${err.message}`)
      process.exit(1)
    }
    skip(`setup failed (set MULTIHOST_STRICT=1 to fail instead): ${err.message}`)
  }
  const binding = require(join(ROOT, 'binding.js'))
  const A = join(own.tmp, 'A')
  const B = join(own.tmp, 'B')

  // (e) classification
  for (const [m, dir] of [
    ['A', A],
    ['B', B],
  ]) {
    const info = binding.filesystemInfo(dir)
    gRow(
      `filesystemInfo(mount ${m})`,
      'fuse.glusterfs / distributed',
      `${info.fstype} / ${info.coherence}`,
      info.fstype === 'fuse.glusterfs' && info.coherence === 'distributed',
    )
  }
  const gp = await policies('glusterfs', join(A, 'policy.json'))
  gRow(
    "withIndexLock, networkFs 'warn'/'error'",
    'no warning, no error',
    `warnings [${gp.warn.warnings}], error ${gp.error.error}`,
    gp.warn.warnings.length === 0 && gp.error.error === null && gp.warn.error === null,
  )

  // (a) lost updates
  const w = await writers(join(A, 'index.json'), join(B, 'index.json'), 'warn')
  gRow(
    `updateJson 2 procs x ${N} via A + 2 via B`,
    `count ${w.total}, ${w.total} entries, 0 lost`,
    `count ${w.count}, ${w.entries} entries, lost ${w.total - w.count}, errors ${JSON.stringify(w.errors)}, A==B ${w.same} (${(w.ms / 1000).toFixed(1)}s, ${Math.round((w.done * 1000) / w.ms)}/s)`,
    w.count === w.total && w.entries === w.total && w.done === w.total && w.same,
  )

  // (b) lock matrix
  const m = await matrix('glusterfs', join(A, 'matrix.json'), join(B, 'matrix.json'), true)
  gRow(
    'lock matrix across mounts (tryAcquire + timed acquire, both directions)',
    'EX/EX, SH/EX, EX/SH exclude; SH/SH share',
    m.bad === 0 ? `as expected (${m.got.length} cases)` : m.got.join('; '),
    m.bad === 0,
  )
  for (const st of statusRows) {
    const ok = st.every((x) => x.startsWith('via') && x.includes('exit 1, lock held'))
    row(
      'glusterfs (CLI)',
      '`index-lock status` while a local process holds EX via A',
      'exit 1, held',
      st.join('; '),
      ok,
    )
  }

  // (c) SIGKILL hand-over
  const k = await killHandover(join(A, 'kill.json'), join(B, 'kill.json'))
  const fmt = (x) => `${x.toFixed(1)}ms`
  gRow(
    `SIGKILL holder on A, waiter on B (${KILLS} rounds)`,
    'waiter enters, < 1000 ms',
    k.lat.length
      ? `min ${fmt(k.lat[0])} / median ${fmt(k.lat[Math.floor(k.lat.length / 2)])} / max ${fmt(k.lat[k.lat.length - 1])}${k.problems.length ? `; ${k.problems.join('; ')}` : ''}`
      : k.problems.join('; '),
    k.problems.length === 0 && k.lat.length === KILLS && k.lat[k.lat.length - 1] < 1000,
  )

  // (c2) a SIGKILLed waiter must not leave the lock taken
  const kw = await killWaiter(join(A, 'killwaiter.json'), join(B, 'killwaiter.json'), B)
  gRow(
    'SIGKILL a waiter on B, holder on A releases (3 rounds)',
    'lock free again via A and via B (5 s timeout)',
    kw.ok && kw.out.every((x) => x.includes('after the kill 0;'))
      ? '3/3 rounds: acquired via A and via B; 0 FUSE requests left pending'
      : kw.out.join('; '),
    kw.ok,
  )

  // (d) rename visibility
  const rv = await renames(join(A, 'big.json'), join(B, 'big.json'))
  gRow(
    `atomicWrite on A (${Math.round(rv.w.bytes / 1024)} KiB) vs readJson on B, ${SECONDS}s`,
    '0 torn, 0 corrupt',
    `${rv.w.writes} writes, ${rv.r.reads} reads: ${rv.r.ok} ok, ${rv.r.torn} torn, ${rv.r.corrupt} corrupt, ${rv.r.estale} ESTALE, ${rv.r.enoent} ENOENT, other ${JSON.stringify(rv.r.other)}, ${rv.r.versions} versions seen, ${rv.r.backwards} went backwards, write errors ${JSON.stringify(rv.w.errors)}`,
    rv.r.torn === 0 && rv.r.corrupt === 0 && rv.r.ok > 0 && Object.keys(rv.w.errors).length === 0,
  )
  if (rv.r.estale || rv.r.enoent || rv.r.backwards || Object.keys(rv.r.other).length)
    notes.push('readJson on B surfaced ESTALE/ENOENT/other errors or stale versions: see the row above')

  // Last of the GlusterFS checks: a wedged client (see the README) can only spoil this one.
  const ka = await killAll(join(A, 'killall.json'), join(B, 'killall.json'), A, B)
  row(
    ka.stuck ? 'glusterfs (server)' : 'glusterfs',
    `SIGKILL all 4 writers (2 per mount) mid-run (${KILLALL} rounds)`,
    'lock free via A and B, data parses',
    ka.ok && ka.out.every((x) => x.includes('A 0, B 0;'))
      ? `${KILLALL}/${KILLALL} rounds: acquired via A and via B; file parses; 0 FUSE requests left pending`
      : ka.out.join('; '),
    ka.ok,
    !ka.stuck, // a GlusterFS defect (an interrupted lock request never answered), not index-lock's
  )

  // Negative control: sshfs
  const SA = join(own.tmp, 'SA')
  const SB = join(own.tmp, 'SB')
  const cRow = (...a) => row('sshfs (control)', ...a)
  let controlFlagged = true
  for (const [mm, dir] of [
    ['A', SA],
    ['B', SB],
  ]) {
    const info = binding.filesystemInfo(dir)
    const ok = info.fstype === 'fuse.sshfs' && info.coherence === 'unsafe'
    controlFlagged &&= ok
    cRow(`filesystemInfo(mount ${mm})`, 'fuse.sshfs / unsafe', `${info.fstype} / ${info.coherence}`, ok)
  }
  const sp = await policies('sshfs', join(SA, 'policy.json'))
  const warned = sp.warn.warnings.includes('INDEX_LOCK_NETWORK_FS') && sp.warn.error === null
  controlFlagged &&= warned
  cRow(
    "withIndexLock, networkFs 'warn'",
    'INDEX_LOCK_NETWORK_FS warning',
    `warnings [${sp.warn.warnings}], error ${sp.warn.error}`,
    warned,
  )
  const refused = sp.error.error === 'INDEX_LOCK_NETWORK_FS'
  controlFlagged &&= refused
  cRow("withIndexLock, networkFs 'error'", 'refused: INDEX_LOCK_NETWORK_FS', `error ${sp.error.error}`, refused)
  const sm = await matrix('sshfs', join(SA, 'matrix.json'), join(SB, 'matrix.json'), false)
  const exEx = sm.got.filter((x) => x.startsWith('EX/EX'))
  cRow('EX held via one mount, tryAcquire EX via the other', 'not excluded (why it is flagged)', exEx.join('; '), true)
  const sw = await writers(join(SA, 'index.json'), join(SB, 'index.json'), 'allow')
  const lost = sw.total - (Number.isFinite(sw.count) ? sw.count : 0)
  cRow(
    `updateJson 2 procs x ${N} via A + 2 via B, networkFs 'allow'`,
    'updates lost (why it is flagged)',
    `count ${sw.count}, lost ${lost} of ${sw.total}, errors ${JSON.stringify(sw.errors)} (${(sw.ms / 1000).toFixed(1)}s)`,
    true,
  )
  if (lost === 0)
    notes.push(
      'sshfs control lost no update this run (the race is not guaranteed to hit): the flag rests on the matrix row',
    )

  clearTimeout(deadline)
  return { g, controlFlagged }
}

function table() {
  const cols = ['fs', 'check', 'expect', 'got', 'ok']
  const cells = rows.map((r) => [
    r.fs,
    r.check,
    r.expect,
    r.got,
    r.ok ? 'ok' : r.gate ? 'FAIL' : r.fs === 'glusterfs (server)' ? 'GLUSTER BUG (not gated)' : 'BUG (not gated)',
  ])
  const width = cols.map((c, i) => Math.min(90, Math.max(c.length, ...cells.map((x) => x[i].length))))
  const line = (xs) => `| ${xs.map((x, i) => x.padEnd(width[i])).join(' | ')} |`
  console.log(`\n${line(cols)}\n|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const c of cells) console.log(line(c))
  for (const n of notes) console.log(`note: ${n}`)
}

if (!GUARD)
  main()
    .then(({ g, controlFlagged }) => {
      table()
      console.log(
        `\nGlusterFS settings: ${g.settings.length ? g.settings.map(([k, v]) => `${k}=${v}`).join(' ') : '(defaults: caching on)'}; client ${g.clientArgs.join(' ') || '(default timeouts)'}`,
      )
      cleanOk = cleanup()
      const glusterOk = rows.filter((r) => r.fs === 'glusterfs' && r.gate).every((r) => r.ok)
      const secs = ((Date.now() - started) / 1000).toFixed(0)
      const fail = [
        !glusterOk && 'GlusterFS check failed',
        !controlFlagged && 'sshfs control not flagged',
        !cleanOk && 'cleanup left something',
      ].filter(Boolean)
      console.log(fail.length ? `\nFAIL multihost (${secs}s): ${fail.join('; ')}` : `\nPASS multihost (${secs}s)`)
      process.exit(fail.length ? 1 : 0)
    })
    .catch((err) => {
      console.log(`\nERROR multihost: ${err.stack || err}`)
      if (rows.length) table()
      cleanup()
      process.exit(1)
    })
