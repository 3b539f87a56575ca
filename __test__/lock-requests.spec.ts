// How lock requests report themselves: a set's timeout names the caller's timeoutMs, a set's
// handle keeps the caller's order, and many waits on one AbortSignal share one listener.
import { getEventListeners } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, acquireSync, LockTimeoutError, tryAcquire, updateJson, withIndexLock } from '../index.js'
import { tempDir } from './helpers'

describe('lock requests', () => {
  it("a set's LockTimeoutError reports the caller's timeoutMs and the real wait", async () => {
    const dir = tempDir('req')
    const [a, b] = [join(dir, 'a.json'), join(dir, 'b.json')]
    const blockA = await acquire(a)
    const blockB = await acquire(b)
    setTimeout(() => void blockA.release(), 150)
    const err = (await acquire([a, b], { timeoutMs: 300 }).catch((e: unknown) => e)) as LockTimeoutError
    expect(err).toBeInstanceOf(LockTimeoutError)
    expect(err.path).toBe(b)
    expect(err.timeoutMs).toBe(300)
    const waited = Number(/after (\d+) ms/.exec(err.message)?.[1])
    expect(waited).toBeGreaterThanOrEqual(300)
    await blockB.release()
    expect(tryAcquire(a)).not.toBeNull()
  })

  it("a set's handle keeps the paths in the caller's order", async () => {
    const dir = tempDir('req')
    const [a, b, c] = [join(dir, 'a.json'), join(dir, 'b.json'), join(dir, 'c.json')]
    const h = await acquire([c, a, b, a])
    expect(h.path).toBe(c)
    expect(h.paths).toEqual([c, a, b])
    await h.release()
    const t = tryAcquire([b, a])!
    expect([t.path, ...t.paths]).toEqual([b, b, a])
    await t.release()
    const s = acquireSync([b, c])
    expect(s.paths).toEqual([b, c])
    await s.release()
  })

  it('20 concurrent waits sharing one AbortSignal add one listener and emit no warning', async () => {
    const dir = tempDir('req')
    const [p, q] = [join(dir, 'index.json'), join(dir, 'other.json')]
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const ac = new AbortController()
      const held = await acquire(p)
      const waits = Array.from({ length: 20 }, () =>
        acquire(p, { signal: ac.signal, timeoutMs: 10_000 }).then(
          () => 'acquired',
          (e: { code: string }) => e.code,
        ),
      )
      // Nested calls waiting for their turn in a held section share it too.
      let entered!: () => void
      const inside = new Promise<void>((r) => (entered = r))
      const nested = withIndexLock(q, async () => {
        const sections = Array.from({ length: 20 }, () =>
          withIndexLock(q, () => new Promise((r) => setTimeout(r, 50)), { signal: ac.signal }).then(
            () => 'ran',
            (e: { code: string }) => e.code,
          ),
        )
        entered()
        return Promise.all(sections)
      })
      await inside
      expect(getEventListeners(ac.signal, 'abort').length).toBeLessThanOrEqual(1)
      ac.abort()
      expect(await Promise.all(waits)).toEqual(Array(20).fill('ABORT_ERR'))
      await held.release()
      const ran = await nested
      expect(ran[0]).toBe('ran')
      expect(ran.slice(1)).toEqual(Array(19).fill('ABORT_ERR'))
      // Waits that end without an abort remove their listener.
      const other = new AbortController()
      const h = await acquire(p, { signal: other.signal })
      const more = Array.from({ length: 15 }, () => acquire(p, { signal: other.signal }))
      expect(getEventListeners(other.signal, 'abort')).toHaveLength(1)
      await h.release()
      for (const m of more) await (await m).release()
      expect(getEventListeners(other.signal, 'abort')).toHaveLength(0)
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('20 updateJson calls batched behind a held lock share one listener on their AbortSignal', async () => {
    const dir = tempDir('req')
    const p = join(dir, 'index.json')
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const ac = new AbortController()
      const held = await acquire(p)
      const calls = Array.from({ length: 20 }, (_, i) =>
        updateJson(p, (s: Record<string, number>) => void (s[i] = i), { default: {}, signal: ac.signal }).then(
          () => 'written',
          (e: { code: string }) => e.code,
        ),
      )
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1)
      ac.abort()
      expect(await Promise.all(calls)).toEqual(Array(20).fill('ABORT_ERR'))
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
      await held.release()
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })
})
