'use strict'
// The platform suite: the cross-process and worker guarantees, run by a target platform's own
// Node on that platform's own binary (linux-arm64 under qemu-user, win32-x64 under wine; see
// __test__/platforms.spec.ts). Plain Node, no test runner, since the runner itself would have to
// run emulated. Results go to a JSON file (argv[2]) because wine breaks a Node child's stdout
// pipe. argv[3]: a scratch directory the caller made and removes.
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Worker } = require('node:worker_threads')
const il = require('../../index.js')

const [resultFile, scratch] = process.argv.slice(2)
const CHILD = path.join(__dirname, 'child.cjs')
const checks = []
const children = new Set()

// Under qemu-user, process.execPath is the emulated binary, which the host kernel cannot start
// on its own: PLATFORM_NODE (a JSON array) names the command that runs this platform's Node.
const NODE = process.env.PLATFORM_NODE ? JSON.parse(process.env.PLATFORM_NODE) : [process.execPath]

function child(...args) {
  const c = spawn(NODE[0], [...NODE.slice(1), CHILD, ...args], { stdio: 'ignore' })
  children.add(c)
  c.exited = new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal })))
  return c
}

async function until(cond, ms, what) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

// Windows volumes ignore case, and lock keys (so the sidecar paths errors name) are folded to
// lower case there.
const samePath = process.platform === 'win32' ? (x, y) => x?.toLowerCase() === y.toLowerCase() : (x, y) => x === y

let n = 0
function dir() {
  const d = path.join(scratch, `c${n++}`)
  fs.mkdirSync(d)
  return d
}

async function check(name, fn) {
  const started = Date.now()
  try {
    const detail = await fn()
    checks.push({ name, ok: true, detail, ms: Date.now() - started })
  } catch (err) {
    checks.push({ name, ok: false, detail: String(err && err.stack), ms: Date.now() - started })
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill()
    await Promise.all([...children].map((c) => c.exited))
    children.clear()
  }
}

async function holder(file, mode) {
  const ready = `${file}.ready.${n++}`
  const c = child('hold', file, mode, ready)
  await until(() => fs.existsSync(ready) || c.exitCode !== null, 60_000, `${mode} holder ready`)
  if (!fs.existsSync(ready)) throw new Error(`holder exited ${c.exitCode}`)
  return c
}

async function main() {
  await check('4 processes x 25 updateJson: none lost', async () => {
    const file = path.join(dir(), 'index.json')
    const done = [0, 1, 2, 3].map((i) => `${file}.done${i}`)
    const kids = done.map((d) => child('update', file, '25', d))
    await Promise.all(kids.map((k) => k.exited))
    const failures = done.map((d) => JSON.parse(fs.readFileSync(d, 'utf8')).failures)
    const count = JSON.parse(fs.readFileSync(file, 'utf8')).count
    if (count !== 100 || failures.some(Boolean)) throw new Error(`count ${count}, failures ${failures}`)
    return { count }
  })

  for (const [held, asked, excludes] of [
    ['exclusive', 'exclusive', true],
    ['shared', 'exclusive', true],
    ['exclusive', 'shared', true],
    ['shared', 'shared', false],
  ]) {
    await check(
      `lock matrix across processes: ${held} held, ${asked} ${excludes ? 'excluded' : 'shared'}`,
      async () => {
        const file = path.join(dir(), 'index.json')
        await holder(file, held)
        const got = il.tryAcquire(file, { mode: asked })
        if (got) await got.release()
        if (Boolean(got) === excludes) throw new Error(`tryAcquire(${asked}) ${got ? 'succeeded' : 'failed'}`)
        return { excluded: !got }
      },
    )
  }

  await check('a killed holder frees the lock; its waiter enters', async () => {
    const file = path.join(dir(), 'index.json')
    const c = await holder(file, 'exclusive')
    const waiting = il.acquire(file, { timeoutMs: 60_000 })
    await new Promise((r) => setTimeout(r, 200))
    const killedAt = Date.now()
    c.kill('SIGKILL')
    const handle = await waiting
    const afterKill = Date.now() - killedAt
    await handle.release()
    return { enteredAfterKillMs: afterKill }
  })

  await check('a timed-out and an aborted wait end, and never take the lock for nobody', async () => {
    const file = path.join(dir(), 'index.json')
    const c = await holder(file, 'exclusive')
    const t0 = Date.now()
    const timedOut = await il.acquire(file, { timeoutMs: 300 }).then(
      () => null,
      (e) => e,
    )
    const waited = Date.now() - t0
    if (timedOut?.code !== 'ELOCKTIMEOUT') throw new Error(`expected ELOCKTIMEOUT, got ${timedOut}`)
    const ac = new AbortController()
    const aborted = il.acquire(file, { signal: ac.signal }).then(
      () => null,
      (e) => e,
    )
    setTimeout(() => ac.abort(), 100)
    if ((await aborted)?.code !== 'ABORT_ERR') throw new Error('abort did not end the wait')
    c.kill('SIGKILL')
    await c.exited
    // The abandoned waits must not hold the lock now that it is free: another process gets it.
    const ready = `${file}.second`
    const second = child('hold', file, 'exclusive', ready)
    await until(() => fs.existsSync(ready) || second.exitCode !== null, 30_000, 'second holder')
    if (!fs.existsSync(ready)) throw new Error('another process could not take the freed lock')
    return { timeoutAfterMs: waited }
  })

  await check('writes land while another process keeps reading the file', async () => {
    const file = path.join(dir(), 'index.json')
    await il.writeJson(file, { count: 0 })
    const stop = `${file}.stop`
    const count = `${file}.reads`
    const reader = child('read', file, stop, count)
    await until(() => fs.existsSync(`${count}.started`) || reader.exitCode !== null, 60_000, 'reader started')
    const errors = []
    for (let i = 0; i < 60; i++) {
      try {
        await il.updateJson(file, (s) => {
          s.count += 1
        })
      } catch (err) {
        errors.push(err.code)
      }
    }
    fs.writeFileSync(stop, '')
    await reader.exited
    const final = JSON.parse(fs.readFileSync(file, 'utf8')).count
    const reads = Number(fs.readFileSync(count, 'utf8'))
    if (errors.length || final !== 60) throw new Error(`final ${final}, errors ${errors.join(',')}`)
    if (reads === 0) throw new Error('the reader never read')
    const temps = fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))
    if (temps.length) throw new Error(`temp files left: ${temps}`)
    return { final, reads }
  })

  await check('writes land while another process keeps the file open for a while on each read', async () => {
    // On Windows a rename over a file another process has open without FILE_SHARE_DELETE fails
    // (always under wine): each write must wait that out within its retry bound, so no EPERM or
    // EBUSY reaches the caller here, where every hold is short.
    const file = path.join(dir(), 'index.json')
    await il.writeJson(file, { count: 0 })
    const stop = `${file}.stop`
    const count = `${file}.reads`
    const reader = child('read-slowly', file, stop, count)
    await until(() => fs.existsSync(`${count}.started`) || reader.exitCode !== null, 60_000, 'reader started')
    const errors = []
    for (let i = 0; i < 20; i++) {
      try {
        await il.updateJson(file, (s) => {
          s.count += 1
        })
      } catch (err) {
        errors.push(`${err.code}: ${err.message}`)
      }
    }
    fs.writeFileSync(stop, '')
    await reader.exited
    const final = JSON.parse(fs.readFileSync(file, 'utf8')).count
    const reads = Number(fs.readFileSync(count, 'utf8'))
    if (errors.length || final !== 20) throw new Error(`final ${final}, errors ${errors.join('; ')}`)
    if (reads < 2) throw new Error(`the reader read ${reads} times`)
    const temps = fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))
    if (temps.length) throw new Error(`temp files left: ${temps}`)
    return { final, reads }
  })

  await check(
    'a file held open past the retry bound: the write lands or fails with EBUSY naming it, never EPERM',
    async () => {
      const file = path.join(dir(), 'index.json')
      await il.writeJson(file, { v: 'old' })
      const ready = `${file}.open`
      const c = child('keep-open', file, ready)
      await until(() => fs.existsSync(ready) || c.exitCode !== null, 60_000, 'holder ready')
      let outcome
      try {
        await il.writeJson(file, { v: 'new' })
        outcome = 'landed'
      } catch (err) {
        if (
          err.code !== 'EBUSY' ||
          err.syscall !== 'rename' ||
          err.path !== file ||
          !err.message.includes(file) ||
          !/another process/.test(err.message)
        ) {
          throw new Error(
            `expected a landed write or EBUSY naming the file, got ${err.code} ${err.syscall} ${err.path}: ${err.message}`,
          )
        }
        outcome = 'EBUSY'
      }
      const now = JSON.parse(fs.readFileSync(file, 'utf8')).v
      if (now !== (outcome === 'landed' ? 'new' : 'old')) throw new Error(`${outcome} but the file says ${now}`)
      const temps = fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))
      if (temps.length) throw new Error(`temp files left: ${temps}`)
      return { outcome }
    },
  )

  await check('a directory at the sidecar (a leftover proper-lockfile lock): EISDIR naming it', async () => {
    const file = path.join(dir(), 'index.json')
    fs.mkdirSync(`${file}.lock`)
    const got = []
    for (const take of [
      () => il.withIndexLock(file, () => 1),
      async () => il.tryAcquire(file),
      () => il.updateJson(file, () => {}, { default: {} }),
    ]) {
      const err = await take().then(
        () => null,
        (e) => e,
      )
      if (err?.code !== 'EISDIR' || err.syscall !== 'open' || !samePath(err.path, `${file}.lock`)) {
        throw new Error(
          `expected EISDIR open '${file}.lock', got ${err && `${err.code} ${err.syscall} ${err.path}: ${err.message}`}`,
        )
      }
      got.push(err.code)
    }
    return { got }
  })

  await check('a failed save of a read-only file leaves no temp; a sweep removes a read-only orphan', async () => {
    const d = dir()
    const file = path.join(d, 'index.json')
    await il.writeJson(file, { v: 'old' })
    fs.chmodSync(file, 0o444)
    // Held open past the rename's retry bound, the save fails on Windows (EBUSY) after its temp
    // got the read-only attribute; elsewhere it lands.
    const ready = `${file}.open`
    const c = child('keep-open', file, ready)
    await until(() => fs.existsSync(ready) || c.exitCode !== null, 60_000, 'holder ready')
    const outcome = await il.writeJson(file, { v: 'new' }).then(
      () => 'landed',
      (e) => e.code,
    )
    c.kill()
    await c.exited
    const temps = () => fs.readdirSync(d).filter((f) => f.endsWith('.tmp'))
    if (temps().length) throw new Error(`${outcome}: temp files left: ${temps()}`)
    if (fs.statSync(file).mode & 0o222) throw new Error(`${outcome}: the file lost its read-only mode`)
    const orphan = path.join(d, '.index.json.999999.1.1.deadbeef.tmp')
    fs.writeFileSync(orphan, 'x')
    fs.chmodSync(orphan, 0o444)
    const removed = await il.sweep(file)
    if (removed.length !== 1 || fs.existsSync(orphan))
      throw new Error(`sweep removed ${removed}; orphan left: ${fs.existsSync(orphan)}`)
    return { outcome, removed }
  })

  await check(
    'one file in two case spellings is one lock for sets, nesting and tryAcquire where the volume ignores case',
    async () => {
      const d = dir()
      const [A, a, B, b] = ['A.json', 'a.json', 'B.json', 'b.json'].map((n) => path.join(d, n))
      fs.writeFileSync(A, '{"n":0}')
      fs.writeFileSync(B, '{"n":0}')
      if (!fs.existsSync(a)) {
        // A case-sensitive volume: two spellings are two files, each its own lock.
        const held = il.tryAcquire(A)
        const other = il.tryAcquire(a)
        const independent = other !== null
        if (other) await other.release()
        await held.release()
        if (!independent) throw new Error('A.json held: a.json, another file here, was refused')
        return { caseSensitive: true }
      }
      // Two processes take one pair of files as a set, spelled and ordered differently: one lock
      // order, so both finish (two orders would deadlock until the timeout).
      const done = [`${d}/set1.done`, `${d}/set2.done`]
      const kids = [child('set-rounds', done[0], '10', B, a), child('set-rounds', done[1], '10', A, b)]
      await Promise.all(kids.map((k) => k.exited))
      const failures = done.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')).failures)
      if (failures.some((f) => f.length)) throw new Error(`set rounds failed: ${JSON.stringify(failures)}`)
      // One file listed twice in a set is one lock, not a wait on itself.
      await il.withIndexLock([a, A], () => {}, { timeoutMs: 5000 })
      // A nested call in another spelling is nested, not a wait behind its own section.
      const nested = await il.withIndexLock(a, () => il.updateJson(A, (s) => ({ n: s.n + 1 }), { timeoutMs: 5000 }), {
        timeoutMs: 5000,
      })
      if (nested.n !== 1) throw new Error(`nested update gave ${JSON.stringify(nested)}`)
      // A lock request for the file from inside its own mutator, in another spelling: refused.
      let code = null
      await il.updateJson(a, (s) => {
        try {
          const l = il.tryAcquire(A)
          code = l ? 'GRANTED' : 'null'
          if (l) l.release()
        } catch (err) {
          code = err.code
        }
        return s
      })
      if (code !== 'ELOCKNESTED') throw new Error(`tryAcquire in another spelling inside a mutator: ${code}`)
      return { failures, nested: nested.n, code }
    },
  )

  await check(
    'the automatic sweep and sweep() remove orphans of a mixed-case name, whatever the spelling',
    async () => {
      const d = dir()
      const file = path.join(d, 'Sweep.json')
      fs.writeFileSync(file, '{}')
      const orphan = (n) => path.join(d, `.Sweep.json.999999.1.${n}.deadbeef.tmp`)
      fs.writeFileSync(orphan(1), 'x')
      // The first exclusive lock of a directory sweeps it (on a thread beside the holder).
      await il.withIndexLock(file, () => {})
      await until(() => !fs.existsSync(orphan(1)), 10_000, 'the automatic sweep removing the orphan')
      fs.writeFileSync(orphan(2), 'x')
      const other = fs.existsSync(file.toUpperCase()) ? file.toUpperCase() : file
      const removed = await il.sweep(other)
      if (removed.length !== 1 || fs.existsSync(orphan(2))) throw new Error(`sweep(${other}) removed ${removed}`)
      return { spelling: other === file ? 'same (case-sensitive volume)' : 'upper case', removed }
    },
  )

  await check('2 worker threads + the main thread x 25 updates: none lost', async () => {
    const file = path.join(dir(), 'index.json')
    const body = `const { workerData, parentPort } = require('node:worker_threads')
      const il = require(workerData.lib)
      ;(async () => { for (let i = 0; i < 25; i++) await il.updateJson(workerData.file, (s) => { s.count += 1 }, { default: { count: 0 } }); parentPort.postMessage('done') })()`
    const lib = path.join(__dirname, '..', '..', 'index.js')
    const workers = [0, 1].map(() => new Worker(body, { eval: true, workerData: { file, lib } }))
    const mine = (async () => {
      for (let i = 0; i < 25; i++)
        await il.updateJson(
          file,
          (s) => {
            s.count += 1
          },
          { default: { count: 0 } },
        )
    })()
    await Promise.all([
      mine,
      ...workers.map(
        (w) =>
          new Promise((res, rej) => {
            w.on('message', res)
            w.on('error', rej)
          }),
      ),
    ])
    await Promise.all(workers.map((w) => w.terminate()))
    const count = JSON.parse(fs.readFileSync(file, 'utf8')).count
    if (count !== 75) throw new Error(`count ${count}`)
    return { count }
  })

  fs.writeFileSync(resultFile, JSON.stringify({ platform: process.platform, arch: process.arch, checks }, null, 2))
}

main().catch((err) => {
  fs.writeFileSync(resultFile, JSON.stringify({ fatal: String(err && err.stack), checks }))
  process.exit(1)
})
