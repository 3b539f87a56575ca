// In-process lock semantics: FIFO order, readers-writer queueing, reentrancy, timeouts, aborts.
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import {
  AbortError,
  acquire,
  LockTimeoutError,
  readJson,
  tryAcquire,
  updateJson,
  withIndexLock,
  type LockHandle,
} from '../index.js'
import { HOLDERS_KNOWN, tempDir, until } from './helpers'

const native = createRequire(import.meta.url)('../binding.js') as typeof import('../binding.js')

function indexIn(dir: string) {
  return join(dir, 'index.json')
}

describe('withIndexLock', () => {
  it('resolves with the result of fn and releases afterwards', async () => {
    const p = indexIn(tempDir())
    await expect(withIndexLock(p, () => 42)).resolves.toBe(42)
    await expect(withIndexLock(p, async () => 'x')).resolves.toBe('x')
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })

  it('propagates a throw or rejection from fn and still releases', async () => {
    const p = indexIn(tempDir())
    await expect(
      withIndexLock(p, () => {
        throw new Error('sync boom')
      }),
    ).rejects.toThrow('sync boom')
    await expect(withIndexLock(p, async () => Promise.reject(new Error('async boom')))).rejects.toThrow('async boom')
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
    expect(native.activePaths()).toBe(0)
  })

  it('never lets two exclusive holders overlap and keeps JS call order', async () => {
    const p = indexIn(tempDir())
    const order: number[] = []
    let inside = 0
    let maxInside = 0
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        withIndexLock(p, async () => {
          inside++
          maxInside = Math.max(maxInside, inside)
          order.push(i)
          if (i % 3 === 0) await sleep(1)
          await Promise.resolve()
          inside--
        }),
      ),
    )
    expect(maxInside).toBe(1)
    expect(order).toEqual(Array.from({ length: 40 }, (_, i) => i))
  })

  it('keeps call order when callers arrive while the lock is held', async () => {
    const p = indexIn(tempDir())
    const held = await acquire(p)
    const order: string[] = []
    const done = ['a', 'b', 'c', 'd', 'e'].map((tag) => withIndexLock(p, () => void order.push(tag)))
    await sleep(20)
    expect(order).toEqual([])
    await held.release()
    await Promise.all(done)
    expect(order).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('treats every spelling of a path as one lock', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'data'))
    symlinkSync(join(dir, 'data'), join(dir, 'alias'))
    const real = join(dir, 'data', 'index.json')
    writeFileSync(real, '{}')
    symlinkSync('index.json', join(dir, 'data', 'link.json'))
    const h = await acquire(real)
    for (const spelling of [
      join(dir, 'alias', 'index.json'),
      join(dir, 'data', '..', 'data', 'index.json'),
      join(dir, 'data', 'link.json'),
      join(dir, 'alias', 'link.json'),
    ]) {
      expect(tryAcquire(spelling), spelling).toBeNull()
    }
    const cwd = process.cwd()
    process.chdir(join(dir, 'data'))
    try {
      expect(tryAcquire('index.json')).toBeNull()
      expect(tryAcquire(join('..', 'alias', '.', 'link.json'))).toBeNull()
    } finally {
      process.chdir(cwd)
    }
    await h.release()
    expect(existsSync(`${real}.lock`)).toBe(true)
    expect(readdirSync(join(dir, 'data')).sort()).toEqual(['index.json', 'index.json.lock', 'link.json'])
  })
})

describe('readers-writer FIFO', () => {
  it('grants consecutive shared requests together', async () => {
    const p = indexIn(tempDir())
    let inside = 0
    let maxInside = 0
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withIndexLock(
          p,
          async () => {
            inside++
            maxInside = Math.max(maxInside, inside)
            await sleep(20)
            inside--
          },
          { mode: 'shared' },
        ),
      ),
    )
    expect(maxInside).toBe(5)
  })

  it('makes an exclusive request wait for the shared holders ahead of it', async () => {
    const p = indexIn(tempDir())
    const s1 = await acquire(p, { mode: 'shared' })
    const s2 = await acquire(p, { mode: 'shared' })
    let entered = false
    const x = withIndexLock(p, () => {
      entered = true
    })
    await sleep(30)
    expect(entered).toBe(false)
    await s1.release()
    await sleep(30)
    expect(entered).toBe(false)
    await s2.release()
    await x
    expect(entered).toBe(true)
  })

  it('queues shared requests that arrive after a waiting exclusive one behind it', async () => {
    const p = indexIn(tempDir())
    const events: string[] = []
    const s1 = await acquire(p, { mode: 'shared' })
    const x = withIndexLock(p, async () => {
      events.push('x-in')
      await sleep(20)
      events.push('x-out')
    })
    const s2 = withIndexLock(p, () => void events.push('s2'), { mode: 'shared' })
    // A shared request could join s1 right away, but it must not overtake the writer.
    expect(tryAcquire(p, { mode: 'shared' })).toBeNull()
    await sleep(30)
    expect(events).toEqual([])
    await s1.release()
    await Promise.all([x, s2])
    expect(events).toEqual(['x-in', 'x-out', 's2'])
  })

  it('admits a shared tryAcquire beside shared holders when nobody waits', async () => {
    const p = indexIn(tempDir())
    const s = await acquire(p, { mode: 'shared' })
    const t = tryAcquire(p, { mode: 'shared' })
    expect(t).not.toBeNull()
    expect(tryAcquire(p)).toBeNull()
    await s.release()
    expect(tryAcquire(p)).toBeNull()
    await t!.release()
    const x = tryAcquire(p)
    expect(x?.mode).toBe('exclusive')
    await x!.release()
  })
})

describe('reentrancy', () => {
  it('runs nested calls on a held path directly instead of deadlocking', async () => {
    const dir = tempDir()
    const p = indexIn(dir)
    symlinkSync(dir, join(dir, 'again'))
    const result = await withIndexLock(
      p,
      async () => {
        const inner = await withIndexLock(join(dir, 'again', 'index.json'), async () => {
          const shared = await withIndexLock(p, () => 'shared-in-exclusive', { mode: 'shared' })
          return `${shared}+exclusive-in-exclusive`
        })
        const updated = await updateJson(p, (c: { n: number }) => ({ n: c.n + 1 }), {
          default: { n: 0 },
          timeoutMs: 200,
        })
        return `${inner}+${updated.n}`
      },
      { timeoutMs: 200 },
    )
    expect(result).toBe('shared-in-exclusive+exclusive-in-exclusive+1')
  })

  it('runs shared inside shared, and refuses exclusive inside shared at once', async () => {
    const p = indexIn(tempDir())
    await withIndexLock(
      p,
      async () => {
        await expect(withIndexLock(p, () => 'ok', { mode: 'shared', timeoutMs: 100 })).resolves.toBe('ok')
        const started = Date.now()
        await expect(withIndexLock(p, () => 'no')).rejects.toMatchObject({ code: 'ELOCKUPGRADE' })
        await expect(updateJson(p, () => {}, { default: {} })).rejects.toMatchObject({ code: 'ELOCKUPGRADE' })
        expect(Date.now() - started).toBeLessThan(1000)
      },
      { mode: 'shared' },
    )
  })

  it('does not share a hold with concurrent callers outside the chain', async () => {
    const p = indexIn(tempDir())
    let inside = 0
    let overlap = false
    const body = async () => {
      inside++
      if (inside > 1) overlap = true
      await sleep(10)
      inside--
    }
    await Promise.all([withIndexLock(p, body), withIndexLock(p, body), withIndexLock(p, body)])
    expect(overlap).toBe(false)
  })

  it('does not let work that outlives the hold bypass the lock', async () => {
    const p = indexIn(tempDir())
    let late: Promise<string> | undefined
    await withIndexLock(p, () => {
      late = sleep(30).then(() => withIndexLock(p, () => 'late', { timeoutMs: 2000 }))
    })
    const other = await acquire(p)
    const lateResult = late!.then((v) => ({ v, at: Date.now() }))
    await sleep(80)
    const releasedAt = Date.now()
    await other.release()
    const { v, at } = await lateResult
    expect(v).toBe('late')
    expect(at).toBeGreaterThanOrEqual(releasedAt)
  })
})

describe('timeouts and aborts', () => {
  it('timeoutMs 0 tries once', async () => {
    const p = indexIn(tempDir())
    const free = await acquire(p, { timeoutMs: 0 })
    const started = Date.now()
    const err = await acquire(p, { timeoutMs: 0 }).catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(500)
    expect(err).toBeInstanceOf(LockTimeoutError)
    await free.release()
  })

  it('rejects with LockTimeoutError naming the path and the holding pid', async () => {
    const p = indexIn(tempDir())
    const h = await acquire(p)
    const started = Date.now()
    const err = (await withIndexLock(p, () => 'never', { timeoutMs: 100 }).catch((e: unknown) => e)) as LockTimeoutError
    expect(Date.now() - started).toBeGreaterThanOrEqual(95)
    expect(err).toBeInstanceOf(LockTimeoutError)
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('LockTimeoutError')
    expect(err.code).toBe('ELOCKTIMEOUT')
    expect(err.path).toBe(p)
    expect(err.message).toContain(p)
    expect(err.message).toContain(HOLDERS_KNOWN ? `held by this process, pid ${process.pid}` : 'holder unknown')
    expect(err.holders).toEqual(HOLDERS_KNOWN ? [{ pid: process.pid }] : [])
    await h.release()
    // The timed-out request left nothing behind.
    const again = await acquire(p, { timeoutMs: 0 })
    await again.release()
    expect(native.activePaths()).toBe(0)
  })

  it('a timed-out waiter does not block the ones queued behind it', async () => {
    const p = indexIn(tempDir())
    const h = await acquire(p)
    const first = acquire(p, { timeoutMs: 50 }).catch((e: { code: string }) => e.code)
    const second = acquire(p, { timeoutMs: 5000 })
    expect(await first).toBe('ELOCKTIMEOUT')
    await h.release()
    const got = await second
    expect(got.mode).toBe('exclusive')
    await got.release()
  })

  it('waits forever with Infinity', async () => {
    const p = indexIn(tempDir())
    const h = await acquire(p)
    setTimeout(() => void h.release(), 150)
    const got = await acquire(p, { timeoutMs: Infinity })
    await got.release()
  })

  it('aborts a wait promptly with AbortError carrying the reason, and leaks nothing', async () => {
    const p = indexIn(tempDir())
    const h = await acquire(p)
    const ac = new AbortController()
    let userHandlerCalled = false
    ac.signal.onabort = () => {
      userHandlerCalled = true
    }
    const waiting = withIndexLock(p, () => 'never', { signal: ac.signal, timeoutMs: Infinity })
    await sleep(20)
    const reason = new Error('shutting down')
    const started = Date.now()
    ac.abort(reason)
    const err = (await waiting.catch((e: unknown) => e)) as AbortError
    expect(Date.now() - started).toBeLessThan(200)
    expect(err).toBeInstanceOf(AbortError)
    expect(err.name).toBe('AbortError')
    expect(err.code).toBe('ABORT_ERR')
    expect(err.cause).toBe(reason)
    expect(userHandlerCalled).toBe(true)
    await h.release()
    const again = await acquire(p, { timeoutMs: 1000 })
    await again.release()
    expect(native.activePaths()).toBe(0)
  })

  it('rejects at once for an already aborted signal without taking the lock', async () => {
    const p = indexIn(tempDir())
    const reason = new Error('already')
    const err = (await acquire(p, { signal: AbortSignal.abort(reason) }).catch((e: unknown) => e)) as AbortError
    expect(err.code).toBe('ABORT_ERR')
    expect(err.cause).toBe(reason)
    let ran = false
    await expect(withIndexLock(p, () => (ran = true), { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORT_ERR',
    })
    expect(ran).toBe(false)
    const free = tryAcquire(p)
    expect(free).not.toBeNull()
    await free!.release()
  })

  it('an abort after the lock was granted changes nothing', async () => {
    const p = indexIn(tempDir())
    const ac = new AbortController()
    const h = await acquire(p, { signal: ac.signal })
    ac.abort()
    expect(tryAcquire(p)).toBeNull()
    await h.release()
  })
})

describe('handles', () => {
  it('release is idempotent and asyncDispose releases', async () => {
    const p = indexIn(tempDir())
    const h: LockHandle = await acquire(p, { mode: 'shared' })
    expect(h.path).toBe(p)
    expect(h.mode).toBe('shared')
    expect(h.released).toBe(false)
    await h.release()
    await h.release()
    expect(h.released).toBe(true)
    const x = await acquire(p)
    await x[Symbol.asyncDispose]()
    await x.release()
    const y = tryAcquire(p)
    expect(y).not.toBeNull()
    // A double release must not release someone else's hold.
    await x.release()
    expect(tryAcquire(p)).toBeNull()
    await y!.release()
  })

  it('a release from another async context works', async () => {
    const p = indexIn(tempDir())
    const h = await acquire(p)
    await new Promise<void>((resolve) => setImmediate(() => void h.release().then(resolve)))
    const again = tryAcquire(p)
    expect(again).not.toBeNull()
    await again!.release()
  })
})

describe('scale', () => {
  it('thousands of distinct paths do not exhaust file descriptors', async () => {
    const dir = tempDir()
    // Descriptors on this test's files only: other tests' released sidecars may still be kept
    // open for their ~1 s (docs/protocol.md) and close while this test counts.
    const fds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`)
        } catch {
          return false
        }
      }).length
    const before = fds()
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 1500 }, (_, i) => withIndexLock(join(dir, `f${round}-${i}.json`), () => i)),
      )
    }
    await until(() => fds() <= before + 2)
    expect(native.activePaths()).toBe(0)
    const held = await Promise.all(Array.from({ length: 2000 }, (_, i) => acquire(join(dir, `h${i}.json`))))
    expect(fds()).toBeGreaterThanOrEqual(before + 2000)
    await Promise.all(held.map((h) => h.release()))
    await until(() => fds() <= before + 2)
  })

  it('20 concurrent updateJson calls keep all 20 entries', async () => {
    const p = indexIn(tempDir())
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        updateJson<{ entries: Record<string, number> }>(
          p,
          async (idx) => {
            await sleep(Math.random() * 3)
            idx.entries[`e${i}`] = i
          },
          { default: { entries: {} } },
        ),
      ),
    )
    const idx = await readJson<{ entries: Record<string, number> }>(p)
    expect(Object.keys(idx.entries).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`).sort())
  })
})
