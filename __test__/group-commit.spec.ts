// Group commit: concurrent updateJson calls on one path coalesce into one read and one write,
// keep call order, give each caller the state after its own mutator, and isolate failures.
import { AsyncLocalStorage } from 'node:async_hooks'
import { watch, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import { acquire, readJson, updateJson, withIndexLock } from '../index.js'
import { tempDir } from './helpers'

type Log = { seq: number[] }

/** Counts the renames onto `name` in `dir` (one per atomic write) while `body` runs. */
async function countWrites(dir: string, name: string, body: () => Promise<unknown>) {
  let writes = 0
  const watcher = watch(dir, (_event, file) => {
    if (file === name) writes++
  })
  try {
    await body()
    await sleep(50)
  } finally {
    watcher.close()
  }
  return writes
}

describe('group commit', () => {
  it('applies queued mutators in call order with one write, each caller seeing its own state', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"seq":[]}')
    const held = await acquire(p)
    const results: Promise<Log>[] = []
    const writes = await countWrites(dir, 'index.json', async () => {
      for (let i = 0; i < 30; i++) results.push(updateJson<Log>(p, (c) => void c.seq.push(i)))
      await sleep(20)
      await held.release()
      await Promise.all(results)
    })
    expect(writes).toBe(1)
    const states = await Promise.all(results)
    states.forEach((state, i) => expect(state.seq).toEqual(Array.from({ length: i + 1 }, (_, k) => k)))
    expect((await readJson<Log>(p)).seq).toEqual(Array.from({ length: 30 }, (_, k) => k))
  })

  it('a throwing mutator rejects only its own call and its change is not written', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const calls = Array.from({ length: 8 }, (_, i) =>
      updateJson<Log>(
        p,
        async (c) => {
          c.seq.push(i)
          if (i === 0 || i === 5) throw new Error(`mutator ${i} failed`)
          if (i === 6) return { seq: [...c.seq], bad: 1n } as unknown as Log // not JSON: fails too
        },
        { default: { seq: [] } },
      ).then(
        (v) => v.seq,
        (e: Error) => e.message,
      ),
    )
    await held.release()
    const out = await Promise.all(calls)
    expect(out[0]).toBe('mutator 0 failed')
    expect(out[5]).toBe('mutator 5 failed')
    expect(out[6]).toMatch(/BigInt/)
    expect(out[1]).toEqual([1])
    expect(out[4]).toEqual([1, 2, 3, 4])
    expect(out[7]).toEqual([1, 2, 3, 4, 7])
    expect((await readJson<Log>(p)).seq).toEqual([1, 2, 3, 4, 7])
  })

  it('a missing file gives each call its own default until one of them succeeds', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const a = updateJson<Log>(p, () => {
      throw new Error('first fails')
    }, { default: { seq: [100] } }).catch((e: Error) => e.message)
    const b = updateJson<Log>(p, (c) => void c.seq.push(1), { default: { seq: [200] } })
    const c = updateJson<Log>(p, (c) => void c.seq.push(2)).catch((e: { code: string }) => e.code)
    await held.release()
    expect(await a).toBe('first fails')
    expect((await b).seq).toEqual([200, 1])
    expect(((await c) as Log).seq).toEqual([200, 1, 2])
  })

  it('a call that times out or is aborted while its batch waits leaves the others alone', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const ac = new AbortController()
    const keep1 = updateJson<Log>(p, (c) => void c.seq.push(1), { default: { seq: [] } })
    const late = updateJson<Log>(p, (c) => void c.seq.push(2), { timeoutMs: 30 }).catch((e: { code: string }) => e.code)
    const aborted = updateJson<Log>(p, (c) => void c.seq.push(3), { signal: ac.signal }).catch((e: { code: string }) => e.code)
    const busy = updateJson<Log>(p, (c) => void c.seq.push(4), { timeoutMs: 0 }).catch((e: { code: string }) => e.code)
    const keep2 = updateJson<Log>(p, (c) => void c.seq.push(5))
    ac.abort()
    expect(await late).toBe('ELOCKTIMEOUT')
    expect(await aborted).toBe('ABORT_ERR')
    expect(await busy).toBe('ELOCKTIMEOUT')
    await held.release()
    expect((await keep1).seq).toEqual([1])
    expect((await keep2).seq).toEqual([1, 5])
  })

  it('when every call of a waiting batch leaves, nothing stays queued', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const gone = updateJson(p, () => ({ x: 1 }), { default: {}, timeoutMs: 20 }).catch((e: { code: string }) => e.code)
    expect(await gone).toBe('ELOCKTIMEOUT')
    await held.release()
    const again = await acquire(p, { timeoutMs: 0 })
    await again.release()
  })

  it('batches are bounded: 100 queued calls take more than one write', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"seq":[]}')
    const held = await acquire(p)
    const writes = await countWrites(dir, 'index.json', async () => {
      const all = Array.from({ length: 100 }, (_, i) => updateJson<Log>(p, (c) => void c.seq.push(i)))
      await held.release()
      await Promise.all(all)
    })
    expect(writes).toBe(2)
    expect((await readJson<Log>(p)).seq).toHaveLength(100)
  })

  it("each batched mutator runs in its own caller's async context", async () => {
    const p = join(tempDir(), 'index.json')
    const request = new AsyncLocalStorage<string>()
    const held = await acquire(p)
    const seen = ['a', 'b', 'c'].map((id) =>
      request.run(id, () =>
        updateJson<{ by: string[] }>(p, async (c) => {
          await Promise.resolve()
          c.by.push(request.getStore()!)
        }, { default: { by: [] } }),
      ),
    )
    await held.release()
    expect((await Promise.all(seen)).map((s) => s.by)).toEqual([['a'], ['a', 'b'], ['a', 'b', 'c']])
  })

  it('mutators run inside the lock: a lock request for the path from a mutator is refused at once', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const nested = [1, 2].map((n) =>
      updateJson<Log>(p, async (c) => {
        c.seq.push(n)
        const code = await withIndexLock(p, () => 'ran', { timeoutMs: 100 }).catch((e: { code: string }) => e.code)
        c.seq.push(code as never)
      }, { default: { seq: [] } }),
    )
    await held.release()
    expect((await Promise.all(nested)).map((s) => s.seq)).toEqual([[1, 'ELOCKNESTED'], [1, 'ELOCKNESTED', 2, 'ELOCKNESTED']])
  })
})
