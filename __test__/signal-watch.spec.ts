// A call's abort signal is watched before the call queues anywhere: a signal-like object whose
// addEventListener throws rejects the call and leaves nothing behind (no queued lock request, no
// batched mutator, no timer); one whose removeEventListener throws never keeps a call from settling.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, tryAcquire, updateJson, withIndexLock } from '../index.js'
import { tempDir } from './helpers'

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

function unwatchable() {
  return {
    aborted: false,
    addEventListener() {
      throw new Error('addEventListener failed')
    },
    removeEventListener() {},
  } as unknown as AbortSignal
}

/** The calls that can wait with a signal; each records whether its own code ran. */
function waits(p: string, ran: string[]) {
  return {
    withIndexLock: (signal: AbortSignal) => withIndexLock(p, () => void ran.push('withIndexLock'), { signal }),
    acquire: (signal: AbortSignal) => acquire(p, { signal }).then((h) => (ran.push('acquire'), h.release())),
    updateJson: (signal: AbortSignal) =>
      updateJson(p, (s: Record<string, unknown>) => void (s.updateJson = ran.push('updateJson')), { signal }),
    'nested updateJson': (signal: AbortSignal) =>
      withIndexLock(p, async () => {
        const first = updateJson(p, (s: Record<string, unknown>) => void (s.first = 1))
        // Waits for its turn behind `first`.
        const second = updateJson(p, (s: Record<string, unknown>) => void (s.nested = ran.push('nested')), { signal })
        await Promise.allSettled([first, second])
        return second
      }),
  }
}

describe('a signal whose addEventListener throws', () => {
  it('rejects the call with that error and leaves no lock request, mutator or timer behind', async () => {
    const p = join(tempDir('sig'), 'index.json')
    writeFileSync(p, '{}')
    const ran: string[] = []
    for (const [name, call] of Object.entries(waits(p, ran))) {
      const before = timers()
      const held = name === 'nested updateJson' ? null : await acquire(p)
      const signal = unwatchable()
      // Twice with the same signal: the failed watch is not half-registered.
      for (const attempt of [1, 2]) {
        await expect(call(signal), `${name} #${attempt}`).rejects.toThrow('addEventListener failed')
      }
      await held?.release()
      const free = tryAcquire(p)
      expect(free, `${name}: a withdrawn request still holds the lock`).not.toBeNull()
      await free!.release()
      expect(timers(), `${name}: timer left`).toBeLessThanOrEqual(before)
    }
    expect(ran).toEqual([])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ first: 1 })
  })

  it('rejects whether or not the lock is free, so the outcome does not depend on contention', async () => {
    const p = join(tempDir('sig'), 'index.json')
    writeFileSync(p, '{}')
    const ran: string[] = []
    for (const [name, call] of Object.entries(waits(p, ran))) {
      if (name === 'nested updateJson') continue
      await expect(call(unwatchable()), name).rejects.toThrow('addEventListener failed')
    }
    expect(ran).toEqual([])
    expect(readFileSync(p, 'utf8')).toBe('{}')
  })
})

describe('a signal whose removeEventListener throws', () => {
  it('never keeps a call from settling or its lock from being released', async () => {
    const p = join(tempDir('sig'), 'index.json')
    writeFileSync(p, '{}')
    const signal = new AbortController().signal
    signal.removeEventListener = () => {
      throw new Error('removeEventListener failed')
    }
    const ran: string[] = []
    const calls = waits(p, ran)
    const held = await acquire(p)
    const pending = [calls.withIndexLock(signal), calls.acquire(signal), calls.updateJson(signal)]
    await held.release()
    await Promise.all(pending)
    await calls['nested updateJson'](signal)
    expect(ran.sort()).toEqual(['acquire', 'nested', 'updateJson', 'withIndexLock'])
    const free = tryAcquire(p)
    expect(free).not.toBeNull()
    await free!.release()
  })
})
