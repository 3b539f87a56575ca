// A property-based model check of the lock: random schedules of acquire / release / timeout /
// abort across shared and exclusive modes from many async callers never let an exclusive holder
// overlap any other holder, and never lose a waiter (every request settles; nothing stays held).
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRequire } from 'node:module'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { acquire, tryAcquire, withIndexLock, type LockMode } from '../index.js'
import { tempDir } from './helpers'

const native = createRequire(import.meta.url)('../binding.js') as typeof import('../binding.js')

type Step = {
  mode: LockMode
  /** How the request is made. */
  via: 'acquire' | 'with' | 'try'
  /** Wait limit: 0 (try once), a few ms, or none. */
  timeout: 'zero' | 'short' | 'none'
  /** Abort the wait after this many ms (if still waiting). */
  abortAfter: number | null
  /** Time the holder keeps the lock. */
  holdMs: number
  /** Delay before the request is made. */
  startMs: number
}

const step: fc.Arbitrary<Step> = fc.record({
  mode: fc.constantFrom<LockMode>('exclusive', 'shared'),
  via: fc.constantFrom('acquire', 'with', 'try'),
  timeout: fc.constantFrom('zero', 'short', 'none'),
  abortAfter: fc.option(fc.integer({ min: 0, max: 8 }), { nil: null }),
  holdMs: fc.integer({ min: 0, max: 4 }),
  startMs: fc.integer({ min: 0, max: 6 }),
})

async function runSchedule(path: string, callers: Step[][]) {
  let exclusive = 0
  let shared = 0
  const violations: string[] = []
  const enter = (mode: LockMode) => {
    if (mode === 'exclusive') {
      if (exclusive || shared) violations.push(`exclusive entered beside ${exclusive}x/${shared}s`)
      exclusive++
    } else {
      if (exclusive) violations.push('shared entered beside an exclusive holder')
      shared++
    }
  }
  const leave = (mode: LockMode) => (mode === 'exclusive' ? exclusive-- : shared--)
  const hold = async (mode: LockMode, ms: number) => {
    enter(mode)
    await sleep(ms)
    leave(mode)
  }

  let settled = 0
  let requests = 0
  const caller = async (steps: Step[]) => {
    for (const s of steps) {
      await sleep(s.startMs)
      requests++
      const ac = new AbortController()
      const timer = s.abortAfter === null ? null : setTimeout(() => ac.abort(), s.abortAfter)
      const timeoutMs = s.timeout === 'zero' ? 0 : s.timeout === 'short' ? 3 : Infinity
      const opts = { mode: s.mode, timeoutMs, signal: ac.signal }
      try {
        if (s.via === 'try') {
          const h = tryAcquire(path, { mode: s.mode })
          if (h) {
            await hold(s.mode, s.holdMs)
            await h.release()
          }
        } else if (s.via === 'with') {
          await withIndexLock(path, () => hold(s.mode, s.holdMs), opts)
        } else {
          const h = await acquire(path, opts)
          await hold(s.mode, s.holdMs)
          await h.release()
        }
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== 'ELOCKTIMEOUT' && code !== 'ABORT_ERR') throw err
      } finally {
        if (timer) clearTimeout(timer)
        settled++
      }
    }
  }
  await Promise.all(callers.map(caller))
  return { violations, settled, requests }
}

describe('model check', () => {
  it('random schedules keep exclusion and lose no waiter', async () => {
    const dir = tempDir()
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(step, { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 6 }),
        async (callers) => {
          const path = join(dir, `index-${run++}.json`)
          const { violations, settled, requests } = await runSchedule(path, callers)
          expect(violations).toEqual([])
          expect(settled).toBe(requests)
          // Nothing leaked: the path is idle and free.
          expect(native.activePaths()).toBe(0)
          const h = tryAcquire(path)
          expect(h).not.toBeNull()
          await h!.release()
        },
      ),
      { numRuns: 60 },
    )
  }, 120_000)
})
