// Nested calls on a path the current async call chain holds: serialized among themselves in call
// order, finished before the section lets go of the lock, and refused inside a mutator.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  acquireSync,
  readJson,
  tryAcquire,
  updateJson,
  updateJsonSync,
  withIndexLock,
  withIndexLockSync,
  writeJson,
} from '../index.js'
import { node, tempDir, thrownSync } from './helpers'

type Entries = { entries: Record<string, number> }
const empty = () => ({ default: { entries: {} } as Entries })

describe('nested calls in a held section are serialized', () => {
  it('concurrent nested updateJson calls keep every update', async () => {
    const p = join(tempDir('nest'), 'index.json')
    const ids = Array.from({ length: 10 }, (_, i) => `id${i}`)
    const results = await withIndexLock(p, () =>
      Promise.all(
        ids.map((id) =>
          updateJson<Entries>(
            p,
            async (index) => {
              await sleep(2)
              index.entries[id] = Object.keys(index.entries).length
            },
            empty(),
          ),
        ),
      ),
    )
    const { entries } = (await readJson(p)) as Entries
    expect(Object.keys(entries)).toEqual(ids)
    // Call order: each saw the ones called before it.
    expect(ids.map((id) => entries[id])).toEqual(ids.map((_, i) => i))
    expect(results.map((r) => Object.keys(r.entries).length)).toEqual(ids.map((_, i) => i + 1))
  })

  it('nested withIndexLock siblings never overlap and run in call order', async () => {
    const p = join(tempDir('nest'), 'index.json')
    writeFileSync(p, '{"entries":{}}')
    const order: number[] = []
    let inside = 0
    let overlap = false
    await withIndexLock(p, () =>
      Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          withIndexLock(p, async () => {
            inside++
            if (inside > 1) overlap = true
            order.push(i)
            const index = (await readJson(p)) as Entries
            await sleep(3)
            index.entries[`s${i}`] = i
            await writeJson(p, index)
            inside--
          }),
        ),
      ),
    )
    expect(overlap).toBe(false)
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(Object.keys(((await readJson(p)) as Entries).entries)).toHaveLength(8)
  })

  it("a nested section's own nested calls queue inside it, before the next sibling", async () => {
    const p = join(tempDir('nest'), 'index.json')
    const log: string[] = []
    await withIndexLock(p, () =>
      Promise.all([
        withIndexLock(p, async () => {
          log.push('a')
          await Promise.all([
            withIndexLock(p, async () => {
              await sleep(5)
              log.push('a1')
            }),
            withIndexLock(p, () => void log.push('a2')),
          ])
          log.push('a-end')
        }),
        withIndexLock(p, () => void log.push('b'), { mode: 'shared' }),
      ]),
    )
    expect(log).toEqual(['a', 'a1', 'a2', 'a-end', 'b'])
  })

  it('a nested call waiting for its turn honours its timeout and signal', async () => {
    const p = join(tempDir('nest'), 'index.json')
    await withIndexLock(p, async () => {
      let release!: () => void
      const busy = withIndexLock(p, () => new Promise<void>((r) => (release = r)))
      const timedOut = withIndexLock(p, () => 'never', { timeoutMs: 30 }).catch((e: { code: string }) => e.code)
      const ac = new AbortController()
      const aborted = withIndexLock(p, () => 'never', { signal: ac.signal }).catch((e: { code: string }) => e.code)
      const after = withIndexLock(p, () => 'after')
      expect(await timedOut).toBe('ELOCKTIMEOUT')
      ac.abort()
      expect(await aborted).toBe('ABORT_ERR')
      release()
      await busy
      expect(await after).toBe('after')
    })
  })

  it('a nested set takes its turn on the held path and locks the other one', async () => {
    const dir = tempDir('nest')
    const [p, q] = [join(dir, 'a.json'), join(dir, 'b.json')]
    const log: string[] = []
    await withIndexLock(p, () =>
      Promise.all([
        withIndexLock(p, async () => {
          await sleep(20)
          log.push('p')
        }),
        withIndexLock([q, p], () => {
          log.push('q+p')
          expect(tryAcquire(q)).toBeNull()
        }),
      ]),
    )
    expect(log).toEqual(['p', 'q+p'])
    const h = tryAcquire([p, q])
    expect(h).not.toBeNull()
    await h!.release()
  })

  it('a synchronous nested call while a sibling runs on the path throws ELOCKDEADLOCK instead of overlapping it', async () => {
    const p = join(tempDir('nest'), 'index.json')
    await withIndexLock(p, async () => {
      const sibling = withIndexLock(p, () => sleep(20))
      expect(thrownSync(() => withIndexLockSync(p, () => 'overlap')).code).toBe('ELOCKDEADLOCK')
      await sibling
      // Once nothing else runs on the path, it is reentrant as before.
      expect(withIndexLockSync(p, () => 'after')).toBe('after')
    })
  })
})

describe('nested work that outlives its section', () => {
  it('the section waits for nested calls already made before it releases the lock', async () => {
    const p = join(tempDir('outlive'), 'index.json')
    let nested: Promise<Entries> | undefined
    const section = withIndexLock(p, () => {
      nested = updateJson<Entries>(
        p,
        async (index) => {
          await sleep(50)
          index.entries.nested = 1
        },
        empty(),
      )
    })
    // An ordinary caller queued behind the section.
    const other = updateJson<Entries>(p, (index) => void (index.entries.other = 1), empty())
    await Promise.all([section, other, nested])
    expect(((await readJson(p)) as Entries).entries).toEqual({ nested: 1, other: 1 })
  })

  it('another process gets the lock only after the nested update is written', async () => {
    const dir = tempDir('outlive')
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"entries":{}}')
    let child: ReturnType<typeof node> | undefined
    await withIndexLock(p, async () => {
      // The child queues for the lock now and adds its own entry once it gets it.
      child = node('proc-update.cjs', [p, '1', '1', 'child', '0'])
      await sleep(100)
      void updateJson<Entries>(p, async (index) => {
        await sleep(100)
        index.entries.nested = 1
      })
    })
    expect((await child!.exited).code, child!.stderr()).toBe(0)
    expect(Object.keys((JSON.parse(readFileSync(p, 'utf8')) as Entries).entries).sort()).toEqual([
      'child-0-0',
      'nested',
    ])
  })

  it('a call made after a nested section ended still runs under the lock of its enclosing section', async () => {
    const p = join(tempDir('outlive'), 'index.json')
    let late: Promise<string> | undefined
    let lateRan = false
    const outer = withIndexLock(
      p,
      async () => {
        await withIndexLock(p, () => {
          late = sleep(30).then(() =>
            withIndexLock(p, () => {
              lateRan = true
              return 'late'
            }),
          )
        })
        // The enclosing section is still running: the late call joins it instead of deadlocking
        // behind it.
        expect(await late).toBe('late')
      },
      { timeoutMs: 2000 },
    )
    await outer
    expect(lateRan).toBe(true)
  })

  it('an async call started inside a synchronous section starts after it, ahead of calls made after it', async () => {
    const p = join(tempDir('outlive'), 'index.json')
    writeFileSync(p, '{"log":[]}')
    const log = (tag: string) => (s: { log: string[] }) => void s.log.push(tag)
    let nested: Promise<unknown> | undefined
    let ranInside = false
    withIndexLockSync(p, () => {
      nested = updateJson(p, (s: { log: string[] }) => {
        ranInside = true
        log('nested')(s)
      })
    })
    expect(ranInside).toBe(false)
    // Called after the section returned, so it queues behind the call made inside it.
    const later = updateJson(p, log('later'))
    expect(tryAcquire(p)).toBeNull()
    await Promise.all([nested, later])
    expect(((await readJson(p)) as { log: string[] }).log).toEqual(['nested', 'later'])
  })

  it('async calls made inside a synchronous nested section keep call order with the calls after it', async () => {
    const p = join(tempDir('outlive'), 'index.json')
    const d = { default: { log: [] as string[] } }
    const push = (tag: string) => (s: { log: string[] }) => void s.log.push(tag)
    const calls: Promise<unknown>[] = []
    await withIndexLock(p, async () => {
      withIndexLockSync(p, () => {
        // Nothing else runs on the path once the section ends: a call that may not wait is fine.
        calls.push(updateJson(p, push('A'), { ...d, timeoutMs: 0 }))
        withIndexLockSync(p, () => void calls.push(withIndexLock(p, () => updateJson(p, push('B'), d))))
        calls.push(updateJson(p, push('C'), d))
      })
      calls.push(updateJson(p, push('D'), d))
      // A synchronous call now would overlap the calls queued by the section: refused.
      expect(thrownSync(() => withIndexLockSync(p, () => 1)).code).toBe('ELOCKDEADLOCK')
    })
    await Promise.all(calls)
    expect(((await readJson(p)) as { log: string[] }).log).toEqual(['A', 'B', 'C', 'D'])
  })

  for (const [how, schedule] of [
    ['a microtask', (f: () => void) => queueMicrotask(f)],
    ['setImmediate', (f: () => void) => void setImmediate(f)],
    ['setTimeout', (f: () => void) => void setTimeout(f, 0)],
  ] as const) {
    it(`a call scheduled (${how}) by a nested update's mutator runs after that update is written`, async () => {
      const p = join(tempDir('outlive'), 'index.json')
      type Counted = { n: number; by: string[] }
      const d = { default: { n: 0, by: [] } as Counted }
      let inner: Promise<Counted> | undefined
      let outer: Counted | undefined
      await withIndexLock(p, async () => {
        outer = await updateJson<Counted>(
          p,
          (s) => {
            schedule(() => {
              inner = updateJson<Counted>(
                p,
                (t) => {
                  t.n++
                  t.by.push('inner')
                },
                d,
              )
            })
            s.n++
            s.by.push('outer')
          },
          d,
        )
        await sleep(20)
      })
      expect(inner).toBeDefined()
      expect(outer).toEqual({ n: 1, by: ['outer'] })
      expect(await inner).toEqual({ n: 2, by: ['outer', 'inner'] })
      expect(await readJson(p)).toEqual({ n: 2, by: ['outer', 'inner'] })
    })
  }
})

describe('a handle requested inside a section of the same path', () => {
  it('is refused at once when only this chain releasing could grant it', async () => {
    const p = join(tempDir('handle'), 'index.json')
    const code = (f: () => Promise<unknown>) =>
      f().then(
        () => 'ok',
        (e: { code: string }) => e.code,
      )
    const shared = { mode: 'shared' } as const
    expect(await withIndexLock(p, () => code(() => acquire(p, { timeoutMs: 5000 })), shared)).toBe('ELOCKUPGRADE')
    expect(await withIndexLock(p, () => code(() => acquire(p, { timeoutMs: 5000 })))).toBe('ELOCKDEADLOCK')
    expect(await withIndexLock(p, () => code(() => acquire(p, { mode: 'shared', timeoutMs: 5000 })))).toBe(
      'ELOCKDEADLOCK',
    )
    // Also from a nested section, and for a set including the path.
    const q = join(tempDir('handle'), 'q.json')
    expect(await withIndexLock(p, () => withIndexLock(p, () => code(() => acquire([q, p], { timeoutMs: 5000 }))))).toBe(
      'ELOCKDEADLOCK',
    )
    // Shared joins shared.
    expect(
      await withIndexLock(
        p,
        () => code(async () => (await acquire(p, { mode: 'shared', timeoutMs: 1000 })).release()),
        shared,
      ),
    ).toBe('ok')
    // A synchronous section ends by itself: a handle asked for inside one is granted after it.
    let handle: Promise<{ release(): Promise<void> }> | undefined
    withIndexLockSync(p, () => void (handle = acquire(p, { timeoutMs: 1000 })))
    await (await handle!).release()
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })
})

describe('lock requests inside a mutator', () => {
  it('updateJson on the same path inside a mutator rejects at once with ELOCKNESTED', async () => {
    const p = join(tempDir('mut'), 'index.json')
    let inner: unknown
    const outer = await updateJson<Entries>(
      p,
      async (index) => {
        index.entries.outer = 1
        inner = await updateJson<Entries>(p, (i) => void (i.entries.inner = 1)).catch((e: unknown) => e)
      },
      empty(),
    )
    expect(inner).toMatchObject({ code: 'ELOCKNESTED' })
    expect((inner as Error).message).toMatch(/change the object it was given/)
    expect(outer.entries).toEqual({ outer: 1 })
    expect(((await readJson(p)) as Entries).entries).toEqual({ outer: 1 })
  })

  it('a call made from a batched mutator after that mutator settled is an ordinary caller, queued behind the batch', async () => {
    const p = join(tempDir('mut'), 'index.json')
    writeFileSync(p, '{"entries":{}}')
    let followUp!: Promise<Entries>
    let made!: () => void
    const madeFollowUp = new Promise<void>((resolve) => (made = resolve))
    const held = await acquire(p)
    // A sets a timer that updates the file later; it fires while B, batched with A, still runs.
    const a = updateJson<Entries>(p, (index) => {
      index.entries.a = 1
      setImmediate(() => {
        followUp = updateJson<Entries>(p, (i) => void (i.entries.followUp = 1))
        made()
      })
    })
    const b = updateJson<Entries>(p, async (index) => {
      await madeFollowUp
      index.entries.b = 1
    })
    await held.release()
    await Promise.all([a, b])
    expect((await followUp).entries).toEqual({ a: 1, b: 1, followUp: 1 })
    expect(JSON.parse(readFileSync(p, 'utf8')).entries).toEqual({ a: 1, b: 1, followUp: 1 })
  })

  it('every kind of lock request for the path is refused inside a mutator, nested or not', async () => {
    const dir = tempDir('mut')
    const p = join(dir, 'index.json')
    const q = join(dir, 'other.json')
    const codes: string[] = []
    const code = (f: () => unknown) =>
      Promise.resolve()
        .then(f)
        .then(
          () => codes.push('ok'),
          (e: { code: string }) => codes.push(e.code),
        )
    const probe = async () => {
      await code(() => withIndexLock(p, () => 1))
      await code(() => withIndexLock([q, p], () => 1))
      await code(() => acquire(p, { timeoutMs: 100 }))
      await code(() => tryAcquire(p))
      await code(() => updateJsonSync(p, () => {}, empty()))
      await code(() => withIndexLockSync(p, () => 1))
      await code(() => acquireSync(p))
      // Another path is fine.
      await code(() => updateJson(q, () => {}, empty()))
    }
    const expected = [...Array(7).fill('ELOCKNESTED'), 'ok']
    await updateJson(p, probe, empty())
    expect(codes.splice(0)).toEqual(expected)
    // The same inside a nested updateJson of a held section.
    await withIndexLock(p, () => updateJson(p, probe, empty()))
    expect(codes.splice(0)).toEqual(expected)
    // And inside a synchronous mutator.
    updateJsonSync(
      p,
      () => {
        codes.push(thrownSync(() => updateJsonSync(p, () => {}, empty())).code!)
        codes.push(thrownSync(() => withIndexLockSync(p, () => 1)).code!)
      },
      empty(),
    )
    expect(codes).toEqual(['ELOCKNESTED', 'ELOCKNESTED'])
    // Nothing is left held.
    const h = tryAcquire([p, q])
    expect(h).not.toBeNull()
    await h!.release()
  })
})
