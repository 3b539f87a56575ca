// Several paths, one operation: lock sets in one global order, released in reverse.
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import { acquire, acquireSync, LockTimeoutError, tryAcquire, withIndexLock, withIndexLockSync } from '../index.js'
import { node, tempDir } from './helpers'

function files(dir: string, ...names: string[]) {
  return names.map((n) => join(dir, n))
}

describe('lock sets', () => {
  it('holds every path of the set while fn runs and releases them all', async () => {
    const [a, b, c] = files(tempDir(), 'a.json', 'b.json', 'c.json')
    const seen = await withIndexLock([c!, a!, b!], () => [a, b, c].map((p) => tryAcquire(p!)))
    expect(seen).toEqual([null, null, null])
    for (const p of [a, b, c]) {
      const h = tryAcquire(p!)
      expect(h).not.toBeNull()
      await h!.release()
    }
  })

  it('acquire returns one handle for the set; the same file spelled twice is one lock', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'real'))
    symlinkSync(join(dir, 'real'), join(dir, 'alias'))
    const [a, b] = files(join(dir, 'real'), 'a.json', 'b.json')
    const h = await acquire([b!, a!, join(dir, 'alias', 'b.json')], { timeoutMs: 1000 })
    // In the order given, one spelling per file (the locking order stays canonical inside).
    expect(h.paths).toEqual([b, a])
    expect(h.path).toBe(b)
    expect(tryAcquire(a!)).toBeNull()
    expect(tryAcquire(b!)).toBeNull()
    await h.release()
    expect(h.released).toBe(true)
    const again = tryAcquire([a!, b!])
    expect(again).not.toBeNull()
    await again!.release()
  })

  it('a timeout while taking the set releases what was taken', async () => {
    const [a, b] = files(tempDir(), 'a.json', 'b.json')
    const blocker = await acquire(b!)
    const err = await acquire([a!, b!], { timeoutMs: 100 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LockTimeoutError)
    expect((err as LockTimeoutError).path).toBe(b)
    const free = tryAcquire(a!)
    expect(free).not.toBeNull()
    await free!.release()
    // tryAcquire of a set is all or nothing, too.
    expect(tryAcquire([a!, b!])).toBeNull()
    const alone = tryAcquire(a!)
    expect(alone).not.toBeNull()
    await alone!.release()
    await blocker.release()
  })

  it('an abort while taking the set releases what was taken', async () => {
    const [a, b] = files(tempDir(), 'a.json', 'b.json')
    const blocker = await acquire(b!)
    const ac = new AbortController()
    const waiting = withIndexLock([a!, b!], () => 'never', { signal: ac.signal })
    await sleep(30)
    expect(tryAcquire(a!)).toBeNull()
    ac.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'ABORT_ERR' })
    const free = tryAcquire(a!)
    expect(free).not.toBeNull()
    await free!.release()
    await blocker.release()
  })

  it('the sync twin takes sets too and releases them on timeout', async () => {
    const [a, b] = files(tempDir(), 'a.json', 'b.json')
    expect(withIndexLockSync([b!, a!], () => tryAcquire(a!))).toBeNull()
    const child = node('twin-hold.cjs', [b!])
    await child.line('HELD')
    expect(() => acquireSync([a!, b!], { timeoutMs: 100 })).toThrow(LockTimeoutError)
    const free = tryAcquire(a!)
    expect(free).not.toBeNull()
    await free!.release()
  })

  it('rejects an empty set and non-string members', async () => {
    const p = join(tempDir(), 'a.json')
    await expect(withIndexLock([], () => 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(acquire([p, 3 as never])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
  })

  it('two processes taking overlapping sets in opposite orders neither deadlock nor lose updates', async () => {
    const [x, y, z] = files(tempDir(), 'x.json', 'y.json', 'z.json')
    const rounds = 2000
    const runs = [
      node('twin-set-rounds.cjs', [String(rounds), x!, y!]),
      node('twin-set-rounds.cjs', [String(rounds), y!, x!, z!]),
      node('twin-set-rounds.cjs', [String(rounds), z!, y!], { SET_SYNC: '1' }),
    ]
    for (const r of runs) {
      const { code } = await r.exited
      expect(code, r.stderr()).toBe(0)
      expect(r.stdout()).toContain(`DONE ${rounds}`)
    }
    const n = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { n: number }).n
    expect(n(x!)).toBe(2 * rounds)
    expect(n(y!)).toBe(3 * rounds)
    expect(n(z!)).toBe(2 * rounds)
  })
})
