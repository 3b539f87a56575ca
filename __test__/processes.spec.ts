// Cross-process behaviour with real child processes: lost-update freedom under contention, a
// SIGKILLed holder, interop with flock(1), shared/exclusive exclusion, racing atomic writes,
// waits that stay off libuv's threadpool, holder pids in timeouts, canonical paths, and a sidecar
// that is never deleted or truncated. Fixtures: fixtures/proc-*.cjs.
import { createRequire } from 'node:module'
import {
  existsSync,
  mkdirSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  LockTimeoutError,
  readJson,
  tryAcquire,
  updateJson,
  withIndexLock,
  type LockHandle,
} from '../index.js'
import { expectHolder, expectHolderPid, FIXTURES, HOLDERS_KNOWN, node, run, tempDir, until, type Run } from './helpers'

const req = createRequire(import.meta.url)
const native = req('../binding.js') as typeof import('../binding.js')
const { expectedWrite } = req(join(FIXTURES, 'proc-write-race.cjs')) as {
  expectedWrite: (tag: string, i: number, pad: number) => { writer: string; i: number; pad: string }
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    (value) => {
      // Do not keep a lock we were not supposed to get.
      if (value && typeof (value as LockHandle).release === 'function') void (value as LockHandle).release()
      throw new Error('expected a rejection, but it resolved')
    },
    (err) => err,
  )
}

/** Checks a LockTimeoutError for `path`; returns the holder pids it names. */
function checkTimeout(err: any, path: string, mode: 'exclusive' | 'shared', timeoutMs: number): number[] {
  expect(err).toBeInstanceOf(LockTimeoutError)
  expect(err.code).toBe('ELOCKTIMEOUT')
  expect(err.path).toBe(path)
  expect(err.mode).toBe(mode)
  expect(err.timeoutMs).toBe(timeoutMs)
  expect(err.message).toContain(path)
  expect(Array.isArray(err.holders)).toBe(true)
  return err.holders.map((h: { pid: number }) => h.pid)
}

/** Waits for a child to exit successfully, with its output in the failure message. */
async function succeeded(r: Run) {
  const { code, signal } = await r.exited
  expect({ code, signal, stderr: r.stderr() }, `stdout: ${r.stdout()}`).toEqual({ code: 0, signal: null, stderr: '' })
}

async function killAndWait(r: Run) {
  r.child.kill('SIGKILL')
  await r.exited
}

/** `pid` and every process descended from it (read from /proc/<pid>/stat). */
function family(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parent.set(Number(name), ppid)
    } catch {}
  }
  const out = [pid]
  for (let grew = true; grew; ) {
    grew = false
    for (const [p, pp] of parent) {
      if (out.includes(pp) && !out.includes(p)) {
        out.push(p)
        grew = true
      }
    }
  }
  return out
}

/** Starts `count` copies of a fixture behind a start barrier and lets them all go at once. */
async function startTogether(count: number, start: (i: number, go: string) => Run): Promise<Run[]> {
  const go = join(tempDir('go'), 'go')
  const runs = Array.from({ length: count }, (_, i) => start(i, go))
  await Promise.all(runs.map((r) => r.line('READY')))
  writeFileSync(go, '')
  return runs
}

describe('lost updates across processes', () => {
  async function hammer(procs: number, callers: number, count: number, fsync: boolean) {
    const dir = tempDir('procs')
    const p = join(dir, 'index.json')
    const runs = await startTogether(procs, (i, go) =>
      node('proc-update.cjs', [p, String(callers), String(count), `p${i}`, fsync ? '1' : '0', go]),
    )
    for (const r of runs) await succeeded(r)
    const index = (await readJson(p)) as { entries: Record<string, number> }
    const expected: string[] = []
    for (let i = 0; i < procs; i++) {
      for (let c = 0; c < callers; c++) for (let n = 0; n < count; n++) expected.push(`p${i}-${c}-${n}`)
    }
    expect(Object.keys(index.entries).sort()).toEqual(expected.sort())
    // Every key was written by the process it names.
    runs.forEach((r, i) => {
      const mine = Object.entries(index.entries).filter(([k]) => k.startsWith(`p${i}-`))
      expect(mine.every(([, pid]) => pid === r.child.pid)).toBe(true)
    })
    // No temp file left behind: only the data file and its lock file.
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  }

  it('4 processes x 4 async callers x 25 updateJson keep all 400 keys (fsync off)', async () => {
    await hammer(4, 4, 25, false)
  })

  it('2 processes x 2 async callers x 10 durable updateJson keep all 40 keys (fsync on)', async () => {
    await hammer(2, 2, 10, true)
  })
})

describe('a holder that dies', () => {
  it('a waiter already queued enters within 500 ms of the holder being SIGKILLed', async () => {
    const p = join(tempDir('kill'), 'index.json')
    const holder = node('proc-hold.cjs', [p])
    await holder.line('HELD')
    let enteredAt: number | undefined
    const waiter = acquire(p, { timeoutMs: 20_000 }).then((h) => {
      enteredAt = performance.now()
      return h
    })
    // The waiter is really waiting: the holder keeps it out.
    await sleep(150)
    expect(enteredAt).toBeUndefined()
    expect(tryAcquire(p)).toBeNull()
    const killedAt = performance.now()
    holder.child.kill('SIGKILL')
    const handle = await waiter
    expect(enteredAt! - killedAt).toBeLessThan(500)
    expect((await holder.exited).signal).toBe('SIGKILL')
    expect(handle.mode).toBe('exclusive')
    expect(handle.released).toBe(false)
    await handle.release()
    expect(handle.released).toBe(true)
  })
})

describe('interop with flock(1) on the sidecar', () => {
  /** Runs flock(1) on `lockFile` until the file `go` appears; resolves once it holds the lock. */
  async function flockHolder(lockFile: string, shared: boolean) {
    const go = join(tempDir('flock-go'), 'go')
    const args = [...(shared ? ['-s'] : []), lockFile, '-c', `echo HELD; while [ ! -e '${go}' ]; do sleep 0.02; done`]
    const r = run('flock', args, {}, { group: true })
    await r.line('HELD')
    return { r, end: () => writeFileSync(go, '') }
  }

  it('an exclusive flock(1) holder blocks the library, is named in the timeout, and its end lets it in', async () => {
    const p = join(tempDir('flock-x'), 'index.json')
    const { r, end } = await flockHolder(`${p}.lock`, false)
    expect(tryAcquire(p)).toBeNull()
    expect(tryAcquire(p, { mode: 'shared' })).toBeNull()
    const err = await rejection(acquire(p, { timeoutMs: 200 }))
    const pids = checkTimeout(err, p, 'exclusive', 200)
    // /proc/locks names the process that called flock(2): flock(1) itself (its command shares
    // the descriptor, so accept any process of that family).
    const fam = family(r.child.pid!)
    expect(HOLDERS_KNOWN ? pids.some((pid) => fam.includes(pid)) : pids.length === 0).toBe(true)
    expect(pids).not.toContain(process.pid)
    end()
    expect(await r.exited).toEqual({ code: 0, signal: null })
    const h = await acquire(p, { timeoutMs: 5000 })
    expect(h.mode).toBe('exclusive')
    await h.release()
  })

  it('a shared flock(1) holder lets a library shared lock in but not an exclusive one', async () => {
    const p = join(tempDir('flock-s'), 'index.json')
    const { r, end } = await flockHolder(`${p}.lock`, true)
    const s = tryAcquire(p, { mode: 'shared' })
    expect(s).not.toBeNull()
    await s!.release()
    const s2 = await acquire(p, { mode: 'shared', timeoutMs: 2000 })
    await s2.release()
    // With no shared holder of our own in the way, the exclusive request meets flock(1)'s lock.
    expect(tryAcquire(p)).toBeNull()
    const err = await rejection(acquire(p, { timeoutMs: 200 }))
    const pids = checkTimeout(err, p, 'exclusive', 200)
    const fam = family(r.child.pid!)
    expect(HOLDERS_KNOWN ? pids.some((pid) => fam.includes(pid)) : pids.length === 0).toBe(true)
    end()
    expect(await r.exited).toEqual({ code: 0, signal: null })
    const x = await acquire(p, { timeoutMs: 5000 })
    await x.release()
  })
})

describe('shared and exclusive locks across processes', () => {
  it('a child holding exclusive keeps out both modes of the parent', async () => {
    const p = join(tempDir('xmodes'), 'index.json')
    const child = node('proc-hold.cjs', [p, 'exclusive'])
    await child.line('HELD')
    expect(tryAcquire(p, { mode: 'shared' })).toBeNull()
    expect(tryAcquire(p)).toBeNull()
    const shared = await rejection(acquire(p, { mode: 'shared', timeoutMs: 0 }))
    expectHolderPid(checkTimeout(shared, p, 'shared', 0), child.child.pid)
    const exclusive = await rejection(acquire(p, { timeoutMs: 0 }))
    expectHolderPid(checkTimeout(exclusive, p, 'exclusive', 0), child.child.pid)
    await killAndWait(child)
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })

  it('a child holding shared admits a parent shared lock and keeps out an exclusive one', async () => {
    const p = join(tempDir('smodes'), 'index.json')
    const child = node('proc-hold.cjs', [p, 'shared'])
    await child.line('HELD')
    const s = tryAcquire(p, { mode: 'shared' })
    expect(s).not.toBeNull()
    expect(s!.mode).toBe('shared')
    await s!.release()
    const s2 = await acquire(p, { mode: 'shared', timeoutMs: 0 })
    await s2.release()
    expect(tryAcquire(p)).toBeNull()
    const err = await rejection(acquire(p, { timeoutMs: 0 }))
    expectHolderPid(checkTimeout(err, p, 'exclusive', 0), child.child.pid)
    await killAndWait(child)
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })
})

describe('atomic writes racing across processes', () => {
  it('3 processes x 100 unlocked atomicWrite/writeJson: no failure, no torn file, no temp left', async () => {
    const dir = tempDir('race')
    const p = join(dir, 'index.json')
    const PAD = 64 * 1024
    const COUNT = 100
    const tags = ['a', 'b', 'c']
    const runs = await startTogether(tags.length, (i, go) =>
      node('proc-write-race.cjs', [p, String(COUNT), tags[i], String(PAD), go]),
    )
    let running = true
    const exits = Promise.all(runs.map((r) => r.exited)).finally(() => (running = false))
    // Meanwhile: every read sees one complete write, and every stray name is a temp file name.
    const tempNames = new Set<string>()
    const badNames = new Set<string>()
    let reads = 0
    const torn: string[] = []
    while (running) {
      for (const name of await fsp.readdir(dir)) {
        if (name === 'index.json') continue
        if (name.startsWith('.index.json.') && name.endsWith('.tmp') && !name.endsWith('.json')) tempNames.add(name)
        else badNames.add(name)
      }
      let text: string
      try {
        text = await fsp.readFile(p, 'utf8')
      } catch (err: any) {
        if (err.code === 'ENOENT' && reads === 0) continue // not written yet
        throw err
      }
      reads++
      try {
        const v = JSON.parse(text)
        expect(v).toEqual(expectedWrite(v.writer, v.i, PAD))
        expect(tags).toContain(v.writer)
      } catch {
        torn.push(text.slice(0, 80))
      }
    }
    await exits
    for (const r of runs) {
      await succeeded(r)
      expect(r.stdout()).toContain(`DONE ${COUNT} 0`)
      expect(r.stdout()).not.toContain('FAIL')
    }
    expect(torn).toEqual([])
    expect([...badNames]).toEqual([])
    expect(reads).toBeGreaterThan(0)
    // The last rename is some writer's last write, complete.
    const final = JSON.parse(readFileSync(p, 'utf8'))
    expect(tags).toContain(final.writer)
    expect(final).toEqual(expectedWrite(final.writer, COUNT - 1, PAD))
    expect(readdirSync(dir)).toEqual(['index.json'])
    // Diagnostic only: how many temp names the reader happened to see.
    console.log(`atomic race: ${reads} reads, ${tempNames.size} temp names observed`)
  })
})

describe('waiting stays off the event loop and the threadpool', () => {
  it('16 pending waits leave fs work and timers running, then all get the lock in turn', async () => {
    const dir = tempDir('pool')
    const p = join(dir, 'index.json')
    const other = join(dir, 'other.txt')
    writeFileSync(other, 'hello')
    const holder = node('proc-hold.cjs', [p])
    await holder.line('HELD')

    let ticks = 0
    const interval = setInterval(() => ticks++, 10)
    try {
      const order: number[] = []
      let inside = 0
      let maxInside = 0
      const section = async (i: number) => {
        inside++
        maxInside = Math.max(maxInside, inside)
        order.push(i)
        await sleep(1)
        inside--
      }
      let settled = 0
      const pending = Array.from({ length: 16 }, (_, i) => {
        const pr =
          i % 2 === 0
            ? acquire(p, { timeoutMs: 30_000 }).then(async (h) => {
                await section(i)
                await h.release()
              })
            : withIndexLock(p, () => section(i), { timeoutMs: 30_000 })
        pr.then(
          () => settled++,
          () => settled++,
        )
        return pr
      })

      // More parallel fs requests than libuv has threads (4 by default): if any thread were
      // blocked in a lock wait, these would stall.
      const reads = Promise.all(Array.from({ length: 8 }, () => fsp.readFile(other, 'utf8')))
      const giveUp = new AbortController()
      const outcome = await Promise.race([
        reads,
        sleep(2000, 'stalled' as const, { signal: giveUp.signal }).catch(() => 'stalled' as const),
      ])
      giveUp.abort()
      expect(outcome).toEqual(Array(8).fill('hello'))

      const before = ticks
      await sleep(300)
      expect(ticks - before).toBeGreaterThanOrEqual(5)
      expect(settled).toBe(0)
      expect(order).toEqual([])

      holder.child.kill('SIGTERM')
      await holder.line('RELEASED')
      await succeeded(holder)
      await Promise.all(pending)
      expect(order).toEqual(Array.from({ length: 16 }, (_, i) => i))
      expect(maxInside).toBe(1)
    } finally {
      clearInterval(interval)
    }
  })
})

describe('timeouts across processes', () => {
  it('names the holding process, and nothing is left behind after it exits', async () => {
    const p = join(tempDir('holders'), 'index.json')
    const child = node('proc-hold.cjs', [p])
    await child.line('HELD')
    const err = await rejection(acquire(p, { timeoutMs: 150 }))
    checkTimeout(err, p, 'exclusive', 150)
    expectHolder(err.holders, child.child.pid)
    expect(err.holders).not.toContainEqual({ pid: process.pid })
    await killAndWait(child)
    const h = await acquire(p, { timeoutMs: 5000 })
    expect(h.mode).toBe('exclusive')
    await h.release()
    // The abandoned wait does not keep the lock or the path's state.
    const again = tryAcquire(p)
    expect(again).not.toBeNull()
    await again!.release()
    await until(() => native.activePaths() === 0, 5000, 'no active paths')
  })
})

describe('canonical paths across processes', () => {
  it('a child locking through a symlinked directory or a symlink to the file excludes the real path', async () => {
    const dir = tempDir('canon')
    mkdirSync(join(dir, 'real'))
    const real = join(dir, 'real', 'index.json')
    writeFileSync(real, '{}\n')
    symlinkSync(join(dir, 'real'), join(dir, 'linkdir'))
    symlinkSync(real, join(dir, 'alias.json'))

    for (const spelling of [join(dir, 'linkdir', 'index.json'), join(dir, 'alias.json')]) {
      const child = node('proc-hold.cjs', [spelling])
      await child.line('HELD')
      expect(tryAcquire(real)).toBeNull()
      const err = await rejection(acquire(real, { timeoutMs: 0 }))
      expectHolderPid(checkTimeout(err, real, 'exclusive', 0), child.child.pid)
      await killAndWait(child)
      const h = tryAcquire(real)
      expect(h).not.toBeNull()
      await h!.release()
    }

    expect(existsSync(`${real}.lock`)).toBe(true)
    expect(existsSync(join(dir, 'alias.json.lock'))).toBe(false)
    expect(readdirSync(dir).sort()).toEqual(['alias.json', 'linkdir', 'real'])
    expect(readdirSync(join(dir, 'real')).sort()).toEqual(['index.json', 'index.json.lock'])
  })
})

describe('the sidecar lock file', () => {
  it('is never deleted, replaced or truncated by locking from this and other processes', async () => {
    const dir = tempDir('sidecar')
    const p = join(dir, 'index.json')
    const side = `${p}.lock`
    const content = 'keep these bytes: the lock file is not ours to change\n'
    writeFileSync(side, content)
    const ino = statSync(side).ino

    const loop = node('proc-lock-loop.cjs', [p, '50'])
    for (let i = 0; i < 25; i++) {
      await (await acquire(p, { timeoutMs: 20_000 })).release()
      await (await acquire(p, { mode: 'shared', timeoutMs: 20_000 })).release()
      await withIndexLock(p, () => i, { timeoutMs: 20_000 })
      await updateJson(p, (v: { n: number }) => ({ n: v.n + 1 }), {
        default: { n: 0 },
        fsync: false,
        timeoutMs: 20_000,
      })
      const t = tryAcquire(p)
      if (t) await t.release()
    }
    await succeeded(loop)
    expect(loop.stdout()).toContain('DONE 50')

    // A holder that dies with the lock does not take the file with it either.
    const holder = node('proc-hold.cjs', [p])
    await holder.line('HELD')
    await killAndWait(holder)
    await (await acquire(p, { timeoutMs: 5000 })).release()

    // 25 updates here, 10 in the child.
    expect(((await readJson(p)) as { n: number }).n).toBe(35)
    expect(readFileSync(side, 'utf8')).toBe(content)
    expect(statSync(side).ino).toBe(ino)
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })
})
