// A blocking synchronous wait never waits on a lock this very thread holds asynchronously: it
// would stop the event loop that has to release it. Refused at once with ELOCKDEADLOCK.
// Fixture: fixtures/hold-then-wait.cjs (the other process of the cycle).
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  acquireSync,
  LockTimeoutError,
  tryAcquire,
  updateJsonSync,
  withIndexLock,
  withIndexLockSync,
} from '../index.js'
import { node, tempDir, thrownSync } from './helpers'

/** Starts the other process: holds `b`, then waits for `c`. */
async function otherHoldsBWaitsForC(b: string, c: string) {
  const child = node('hold-then-wait.cjs', [b, c])
  await child.line('WAITING')
  // Give its wait for c time to reach flock.
  await sleep(100)
  return child
}

describe('synchronous waits while this thread holds locks asynchronously', () => {
  it('a sync wait inside an async section holding another path is refused, not hung', async () => {
    const dir = tempDir('dl')
    const [b, c] = [join(dir, 'b.json'), join(dir, 'c.json')]
    let child: Awaited<ReturnType<typeof otherHoldsBWaitsForC>> | undefined
    const err = await withIndexLock(c, async () => {
      child = await otherHoldsBWaitsForC(b, c)
      return thrownSync(() => withIndexLockSync(b, () => 'never', { timeoutMs: 5000 }))
    })
    expect(err.code).toBe('ELOCKDEADLOCK')
    expect(err.path).toBe(b)
    expect(err.message).toContain(b)
    // Once this thread's section ends, the cycle is gone.
    expect((await child!.exited).code).toBe(0)
    expect(child!.stdout()).toContain('GOT')
  })

  it('locks held by handles count, whichever call made them', async () => {
    const dir = tempDir('dl')
    const [b, c] = [join(dir, 'b.json'), join(dir, 'c.json')]
    for (const take of [() => acquire(c), async () => tryAcquire(c)!, async () => acquireSync(c)]) {
      const h = await take()
      const child = await otherHoldsBWaitsForC(b, c)
      expect(thrownSync(() => acquireSync(b, { timeoutMs: 5000 })).code).toBe('ELOCKDEADLOCK')
      expect(thrownSync(() => updateJsonSync(b, () => {}, { default: {}, timeoutMs: Infinity })).code).toBe(
        'ELOCKDEADLOCK',
      )
      // Not waiting at all stays allowed.
      expect(thrownSync(() => acquireSync(b, { timeoutMs: 0 }))).toBeInstanceOf(LockTimeoutError)
      await h.release()
      expect((await child.exited).code).toBe(0)
    }
  })

  it('a sync shared request is granted at once while this thread holds the path shared', async () => {
    const dir = tempDir('dl')
    const p = join(dir, 'p.json')
    const h = tryAcquire(p, { mode: 'shared' })!
    for (const timeoutMs of [0, 5000]) {
      const again = acquireSync(p, { mode: 'shared', timeoutMs })
      expect(again.mode).toBe('shared')
      await again.release()
      expect(withIndexLockSync(p, () => 'ran', { mode: 'shared', timeoutMs })).toBe('ran')
    }
    // What only this thread's release could grant is still refused at once.
    expect(thrownSync(() => acquireSync(p, { timeoutMs: 5000 })).code).toBe('ELOCKUPGRADE')
    expect(thrownSync(() => acquireSync(p, { timeoutMs: 0 })).code).toBe('ELOCKUPGRADE')
    // A shared request behind an exclusive one queued for the path waits for this thread: refused.
    const queued = acquire(p, { timeoutMs: 10_000 })
    expect(thrownSync(() => acquireSync(p, { mode: 'shared', timeoutMs: 5000 })).code).toBe('ELOCKDEADLOCK')
    await h.release()
    await (await queued).release()
    const free = tryAcquire(p)
    expect(free).not.toBeNull()
    await free!.release()
  })

  it('a sync call that needs no wait is allowed, and so is any wait once nothing is held', async () => {
    const dir = tempDir('dl')
    const [b, c] = [join(dir, 'b.json'), join(dir, 'c.json')]
    const h = await acquire(c)
    expect(withIndexLockSync(b, () => 'free')).toBe('free')
    await h.release()
    const child = node('hold-then-wait.cjs', [b, c, '150'])
    await child.line('HELD')
    // This thread holds nothing now: the wait is an ordinary one and succeeds once the child is done.
    expect(withIndexLockSync(b, () => 'waited', { timeoutMs: 10_000 })).toBe('waited')
    expect((await child.exited).code).toBe(0)
  })
})
