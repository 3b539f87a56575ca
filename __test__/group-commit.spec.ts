// Group commit: concurrent updateJson calls on one path coalesce into one read and one write,
// keep call order, give each caller the state after its own mutator, and isolate failures.
import { AsyncLocalStorage } from 'node:async_hooks'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, readJson, tryAcquire, updateJson, withIndexLock, writeJson } from '../index.js'
import { FIXTURES, run, tempDir } from './helpers'

const isRoot = process.getuid?.() === 0
const mounts: string[] = []

afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m])
})

/** Settles with the promise, or rejects if it has not settled within `ms` (a liveness bound). */
function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)
  })
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer))
}

type Outcomes = { outcomes: string[]; runs: number[]; keys: string[]; temps: string[] }

/** Runs __test__/fixtures/batch-outcomes.cjs (optionally under a shell prefix such as ulimit). */
async function outcomes(path: string, mode: 'batched' | 'sequential', sizes: number[], shellPrefix = '', slow = '') {
  const script = join(FIXTURES, 'batch-outcomes.cjs')
  const r = run('bash', [
    '-c',
    `${shellPrefix} exec "${process.execPath}" "${script}" "${path}" ${mode} ${sizes.join(',')} ${slow}`,
  ])
  const { code } = await r.exited
  expect(r.stdout()).not.toContain('UNHANDLED')
  expect(code, r.stderr()).toBe(0)
  return JSON.parse(r.stdout().trim()) as Outcomes
}

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

  it('calls with other write options or a lock section between them never overtake each other', async () => {
    const p = join(tempDir(), 'index.json')
    type V = { v: string; log: string[] }
    const set = (tag: string) => (s: V) => {
      s.v = tag
      s.log.push(tag)
    }
    // Free lock: the middle call's options differ, so it cannot share the first call's write.
    writeFileSync(p, '{"v":"","log":[]}')
    const free = await Promise.all([
      updateJson<V>(p, set('A')),
      updateJson<V>(p, set('B'), { fsync: false }),
      updateJson<V>(p, set('C')),
    ])
    expect(free.map((s) => s.log)).toEqual([['A'], ['A', 'B'], ['A', 'B', 'C']])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ v: 'C', log: ['A', 'B', 'C'] })
    // Queued behind a holder: an update with other options, then a withIndexLock section.
    writeFileSync(p, '{"v":"","log":[]}')
    const held = await acquire(p)
    const calls = [
      updateJson<V>(p, set('A'), { space: 2 }),
      updateJson<V>(p, set('B')),
      updateJson<V>(p, set('C'), { space: 2 }),
      withIndexLock(p, async () => {
        const s = await readJson<V>(p)
        set('W')(s)
        await writeJson(p, s, { space: 2 })
        return s
      }),
      updateJson<V>(p, set('D'), { space: 2 }),
      updateJson<V>(p, set('E'), { space: 2 }),
    ]
    await held.release()
    const states = await Promise.all(calls)
    const order = ['A', 'B', 'C', 'W', 'D', 'E']
    states.forEach((s, i) => expect(s.log).toEqual(order.slice(0, i + 1)))
    expect(JSON.parse(readFileSync(p, 'utf8')).log).toEqual(order)
  })

  it('a mutator that throws a falsy value rejects with exactly that value and fails no one else', async () => {
    const p = join(tempDir(), 'index.json')
    const throwers: [string, unknown, () => unknown][] = [
      [
        'throw null',
        null,
        () => {
          throw null
        },
      ],
      [
        'throw undefined',
        undefined,
        () => {
          throw undefined
        },
      ],
      [
        'throw 0',
        0,
        () => {
          throw 0
        },
      ],
      [
        "throw ''",
        '',
        () => {
          throw ''
        },
      ],
      ['Promise.reject(false)', false, () => Promise.reject(false)],
    ]
    const reason = (promise: Promise<unknown>) =>
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      )
    for (const [label, thrown, thrower] of throwers) {
      writeFileSync(p, '{}')
      expect(await reason(updateJson(p, thrower)), `${label} alone`).toStrictEqual({ error: thrown })
      const batched = await Promise.all([
        reason(updateJson(p, (s: Record<string, number>) => void (s.a = 1))),
        reason(updateJson(p, thrower)),
        reason(updateJson(p, (s: Record<string, number>) => void (s.c = 1))),
      ])
      expect(batched, `${label} batched`).toStrictEqual([
        { value: { a: 1 } },
        { error: thrown },
        { value: { a: 1, c: 1 } },
      ])
      expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ a: 1, c: 1 })
    }
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
    const a = updateJson<Log>(
      p,
      () => {
        throw new Error('first fails')
      },
      { default: { seq: [100] } },
    ).catch((e: Error) => e.message)
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
    const aborted = updateJson<Log>(p, (c) => void c.seq.push(3), { signal: ac.signal }).catch(
      (e: { code: string }) => e.code,
    )
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
        updateJson<{ by: string[] }>(
          p,
          async (c) => {
            await Promise.resolve()
            c.by.push(request.getStore()!)
          },
          { default: { by: [] } },
        ),
      ),
    )
    await held.release()
    expect((await Promise.all(seen)).map((s) => s.by)).toEqual([['a'], ['a', 'b'], ['a', 'b', 'c']])
  })

  it('mutators run inside the lock: a lock request for the path from a mutator is refused at once', async () => {
    const p = join(tempDir(), 'index.json')
    const held = await acquire(p)
    const nested = [1, 2].map((n) =>
      updateJson<Log>(
        p,
        async (c) => {
          c.seq.push(n)
          const code = await withIndexLock(p, () => 'ran', { timeoutMs: 100 }).catch((e: { code: string }) => e.code)
          c.seq.push(code as never)
        },
        { default: { seq: [] } },
      ),
    )
    await held.release()
    expect((await Promise.all(nested)).map((s) => s.seq)).toEqual([
      [1, 'ELOCKNESTED'],
      [1, 'ELOCKNESTED', 2, 'ELOCKNESTED'],
    ])
  })

  it('quick async mutators still share one write', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"seq":[]}')
    const held = await acquire(p)
    const results: Promise<Log>[] = []
    const writes = await countWrites(dir, 'index.json', async () => {
      for (let i = 0; i < 10; i++) {
        results.push(
          updateJson<Log>(p, async (c) => {
            await Promise.resolve()
            c.seq.push(i)
          }),
        )
      }
      await held.release()
      await Promise.all(results)
    })
    expect(writes).toBe(1)
    expect((await readJson<Log>(p)).seq).toEqual(Array.from({ length: 10 }, (_, k) => k))
  })

  it('a slow mutator holds back no caller before it; callers after it keep their timeoutMs and signal', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"seq":[]}')
    const held = await acquire(p)
    const events: string[] = []
    let finishB!: () => void
    const a = updateJson<Log>(p, (c) => void c.seq.push(1), { timeoutMs: 1000 }).then((v) => {
      events.push('a settled')
      return v
    })
    const b = updateJson<Log>(p, async (c) => {
      await new Promise<void>((resolve) => (finishB = resolve))
      c.seq.push(2)
      events.push('b mutated')
    })
    const c = updateJson<Log>(p, (c) => void c.seq.push(3), { timeoutMs: 300 }).catch((e: { code: string }) => e.code)
    const ac = new AbortController()
    const d = updateJson<Log>(p, (c) => void c.seq.push(4), { signal: ac.signal }).catch(
      (e: { code: string }) => e.code,
    )
    const e = updateJson<Log>(p, (c) => void c.seq.push(5))
    await held.release()
    // A is written and settled while B's mutator is still pending, as if A had run alone first.
    expect((await within(a)).seq).toEqual([1])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ seq: [1] })
    // C and D have not started: their own timeout and signal still apply.
    expect(await within(c)).toBe('ELOCKTIMEOUT')
    ac.abort()
    expect(await within(d)).toBe('ABORT_ERR')
    finishB()
    expect((await within(b)).seq).toEqual([1, 2])
    expect((await within(e)).seq).toEqual([1, 2, 5])
    expect(events).toEqual(['a settled', 'b mutated'])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ seq: [1, 2, 5] })
  })

  it('a failed batched write fails only the callers that would have failed alone (EFBIG, RLIMIT_FSIZE)', async () => {
    const dir = tempDir()
    const limit = "trap '' XFSZ; ulimit -f 64;"
    const sizes = [100, 100_000, 100, 200]
    const alone = await outcomes(join(dir, 'sequential.json'), 'sequential', sizes, limit)
    expect(alone.outcomes).toEqual(['ok', 'EFBIG', 'ok', 'ok'])
    const batched = await outcomes(join(dir, 'batched.json'), 'batched', sizes, limit)
    expect(batched.outcomes).toEqual(alone.outcomes)
    expect(batched.keys).toEqual(['k0', 'k2', 'k3'])
    expect(batched.keys).toEqual(alone.keys)
    expect(batched.temps).toEqual([])
    // Calls after the failed one had computed their state on top of it: they ran again on the
    // state actually on disk. No other mutator runs twice.
    expect(batched.runs).toEqual([1, 1, 2, 2])
  })

  it('a write that fails while a slow mutator runs: that mutator runs again on the state on disk', async () => {
    const dir = tempDir()
    const limit = "trap '' XFSZ; ulimit -f 64;"
    const alone = await outcomes(join(dir, 'sequential.json'), 'sequential', [100_000, 100], limit, '1')
    expect(alone.outcomes).toEqual(['EFBIG', 'ok'])
    const batched = await outcomes(join(dir, 'batched.json'), 'batched', [100_000, 100], limit, '1')
    expect(batched.outcomes).toEqual(alone.outcomes)
    expect(batched.keys).toEqual(['k1'])
    expect(batched.runs).toEqual([1, 2])
  })

  it("only a batch's last state is written: a call too big to write alone succeeds when a later call shrinks the state (EFBIG)", async () => {
    // Existing behaviour, inherent to writing a batch once: call 1's state (100 KB) is over the
    // 64 KiB file-size limit, call 2 shrinks it again. Alone, call 1 fails and call 2 starts from
    // call 0's state; batched, call 1 succeeds and call 2 starts from call 1's state.
    const dir = tempDir()
    const script = `
      const fs = require('node:fs')
      const { acquire, updateJson } = require(${JSON.stringify(join(__dirname, '..', 'index.js'))})
      const mutators = [(v) => { v.s = 'small' }, (v) => { v.s = 'x'.repeat(100000) }, (v) => { v.s = v.s.slice(0, 8) + '!' }]
      const end = (p) => p.then((v) => (v.s.length > 20 ? 'long' : v.s), (e) => e.code)
      ;(async () => {
        const out = {}
        for (const mode of ['alone', 'batched']) {
          const file = ${JSON.stringify(dir)} + '/' + mode + '.json'
          fs.writeFileSync(file, '{"s":""}\\n')
          let results = []
          if (mode === 'alone') for (const m of mutators) results.push(await end(updateJson(file, m)))
          else {
            const held = await acquire(file)
            const calls = mutators.map((m) => end(updateJson(file, m)))
            await held.release()
            results = await Promise.all(calls)
          }
          out[mode] = { results, file: fs.readFileSync(file, 'utf8') }
        }
        console.log(JSON.stringify(out))
      })()
    `
    const r = run('bash', ['-c', `trap '' XFSZ; ulimit -f 64; exec "${process.execPath}" -e "$0"`, script])
    const { code } = await r.exited
    expect(code, r.stderr()).toBe(0)
    expect(JSON.parse(r.stdout().trim())).toStrictEqual({
      alone: { results: ['small', 'EFBIG', 'small!'], file: '{"s":"small!"}\n' },
      batched: { results: ['small', 'long', 'xxxxxxxx!'], file: '{"s":"xxxxxxxx!"}\n' },
    })
  })

  it('the last callers of a batch are settled after its lock is released', async () => {
    const p = join(tempDir(), 'index.json')
    const free = async () => {
      const h = tryAcquire(p)
      expect(h, 'lock still held when the call settled').not.toBeNull()
      await h!.release()
    }
    await updateJson(p, () => ({ n: 1 }), { default: {} })
    await free()
    await updateJson(p, () => {
      throw new Error('no')
    }).catch(() => {})
    await free()
    const held = await acquire(p)
    const calls = [
      updateJson<{ n: number }>(p, (c) => void c.n++),
      updateJson(p, () => {
        throw new Error('last fails')
      }).catch(() => {}),
    ]
    await held.release()
    await calls[1]
    await free()
    await calls[0]
    await free()
  })

  it("a batch's last write releases the lock once it is on disk, without waiting for the JS thread", async () => {
    const p = join(tempDir('gc'), 'index.json')
    await writeJson(p, {})
    let got: ReturnType<typeof tryAcquire> = null
    let seen: unknown
    const done = updateJson<{ a?: number }>(p, (s) => {
      s.a = 1
      // Microtasks only from here on: the batch serializes and starts its write, but the write's
      // completion cannot reach this thread while it spins below.
      void (async () => {
        for (let i = 0; i < 100; i++) await null
        const end = Date.now() + 10_000
        while (!got && Date.now() < end) got = tryAcquire(p)
        // Released only after the write: the new content is already in place.
        seen = JSON.parse(readFileSync(p, 'utf8'))
      })()
    })
    await expect(done).resolves.toEqual({ a: 1 })
    expect(got, 'the lock was still held after the write, until this thread took the completion').not.toBeNull()
    expect(seen).toEqual({ a: 1 })
    await got!.release()
  })

  it.skipIf(!isRoot)(
    'a batch on a disk that fills up ends each caller as alone (ENOSPC; needs root to mount tmpfs)',
    async () => {
      // 256 KiB: a save needs room for the old file and the new one at once, so the third call
      // (270 KB) cannot be saved, the fourth alone can, and the whole batch (270 KB) cannot.
      const sizes = [60_000, 60_000, 150_000, 1]
      const results: Outcomes[] = []
      for (const mode of ['sequential', 'batched'] as const) {
        const dir = join(tempDir(), 'mnt')
        mkdirSync(dir)
        const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'tmpfs', dir], { encoding: 'utf8' })
        expect(r.status, r.stderr).toBe(0)
        mounts.push(dir)
        results.push(await outcomes(join(dir, 'index.json'), mode, sizes))
      }
      const [alone, batched] = results
      expect(alone.outcomes).toEqual(['ok', 'ok', 'ENOSPC', 'ok'])
      expect(batched.outcomes).toEqual(alone.outcomes)
      expect(batched.keys).toEqual(['k0', 'k1', 'k3'])
      expect(batched.temps).toEqual([])
      expect(batched.runs).toEqual([1, 1, 1, 2])
    },
  )
})

/**
 * Counts the JSON.parse calls on a text holding `mark` and the JSON.stringify calls on an object
 * with an own key `mark` while `body` runs (other JSON use in this process is not counted).
 */
async function countJson(mark: string, body: () => Promise<unknown>) {
  const { parse, stringify } = JSON
  const counts = { parse: 0, stringify: 0 }
  JSON.parse = (text: string, reviver?: Parameters<typeof parse>[1]) => {
    if (typeof text === 'string' && text.includes(`"${mark}"`)) counts.parse++
    return parse(text, reviver)
  }
  JSON.stringify = ((value: unknown, replacer?: never, space?: string | number) => {
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, mark)) counts.stringify++
    return stringify(value, replacer, space)
  }) as typeof stringify
  try {
    await body()
  } finally {
    JSON.parse = parse
    JSON.stringify = stringify
  }
  return counts
}

/** What a mutator can observe of a value: prototypes, own keys in order, enumerability, -0 and NaN. */
function shape(v: unknown): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v
  if (typeof v !== 'object') return { [typeof v]: String(v) }
  const proto = Object.getPrototypeOf(v)
  return {
    proto:
      proto === Object.prototype ? 'Object' : proto === Array.prototype ? 'Array' : proto === null ? 'null' : 'other',
    own: Reflect.ownKeys(v).map((k) => {
      const d = Object.getOwnPropertyDescriptor(v, k)!
      return [String(k), d.enumerable, 'value' in d ? shape(d.value) : 'accessor']
    }),
  }
}

/** Runs `mutators` on a file holding `start`: one after another, or queued as one batch. */
async function runAll(p: string, start: string, mutators: ((s: any) => unknown)[], batched: boolean) {
  writeFileSync(p, start)
  const settle = (promise: Promise<unknown>) =>
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    )
  if (!batched) {
    const out = []
    for (const m of mutators) out.push(await settle(updateJson(p, m)))
    return out
  }
  const held = await acquire(p)
  const calls = mutators.map((m) => settle(updateJson(p, m)))
  await held.release()
  return Promise.all(calls)
}

describe('group commit: one read and one write per batch, one serialization per call', () => {
  it("a batch reads and writes the file once and serializes each call's state once, however many calls share it", async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    type Index = { 'batch-mark': true; entries: Record<string, { at: number }> }
    const index: Index = { 'batch-mark': true, entries: {} }
    for (let i = 0; i < 1280; i++) index.entries[`0-0-${i}`] = { at: i }
    writeFileSync(p, JSON.stringify(index))
    const held = await acquire(p)
    let results: Index[] = []
    let writes = 0
    const counts = await countJson('batch-mark', async () => {
      writes = await countWrites(dir, 'index.json', async () => {
        // Half change their input in place, half return a new object; undefined members, NaN,
        // -0 and a Date need no JSON text either (JSON writes them as nothing, null, 0, a string).
        const calls = Array.from({ length: 16 }, (_, i) =>
          updateJson<Index>(p, (s) => {
            const entry = { at: i, gone: undefined, nan: Number.NaN, zero: -0, when: new Date(i) }
            if (i % 2) return { ...s, entries: { ...s.entries, [`new-${i}`]: entry } }
            s.entries[`new-${i}`] = entry
          }),
        )
        await held.release()
        results = await Promise.all(calls)
      })
    })
    expect(writes).toBe(1)
    // Each state is serialized when its mutator returns, as alone; the next mutator gets the
    // parse of that text (and the first, the parse of the file).
    expect(counts).toEqual({ parse: 16, stringify: 16 })
    results.forEach((s, i) => {
      expect(Object.keys(s.entries)).toHaveLength(1280 + i + 1)
      expect(s.entries[`new-${i}`].at).toBe(i)
      if (i > 0) {
        const when = new Date(i - 1).toISOString()
        expect(s.entries[`new-${i - 1}`]).toStrictEqual({ at: i - 1, nan: null, zero: 0, when })
      }
    })
    expect(JSON.parse(readFileSync(p, 'utf8'))).toStrictEqual(JSON.parse(JSON.stringify(results[15])))
  })

  it('each batched mutator gets exactly what it would read alone: the JSON round trip of the state before it', async () => {
    const p = join(tempDir(), 'index.json')
    // Each case adds one thing to an otherwise plain state; `plain` has only what a copy of
    // plain data must turn into its JSON form itself, the others what only JSON itself can do.
    const traps: Record<string, number> = {}
    const counted = <T extends object>(target: T) =>
      new Proxy(target, {
        get: (t, k, r) => ((traps.get = (traps.get ?? 0) + 1), Reflect.get(t, k, r)),
        ownKeys: (t) => ((traps.ownKeys = (traps.ownKeys ?? 0) + 1), Reflect.ownKeys(t)),
        getOwnPropertyDescriptor: (t, k) => (
          (traps.describe = (traps.describe ?? 0) + 1), Reflect.getOwnPropertyDescriptor(t, k)
        ),
        getPrototypeOf: (t) => ((traps.proto = (traps.proto ?? 0) + 1), Reflect.getPrototypeOf(t)),
        has: (t, k) => ((traps.has = (traps.has ?? 0) + 1), Reflect.has(t, k)),
      })
    const getter = { calls: 0 }
    const cases: Record<string, (s: any) => void> = {
      plain: (s) => {
        s.numbers = { nan: Number.NaN, negZero: -0, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY }
        s.list = [1, undefined, -0, Number.NaN, { in: 'array' }, [[]]]
        s.gone = undefined
        Object.defineProperty(s, '__proto__', {
          value: { own: 1 },
          enumerable: true,
          writable: true,
          configurable: true,
        })
        s.nullProto = Object.assign(Object.create(null), { b: 1, a: 2 })
        s.order = { z: 1, 10: 'ten', a: 2, 2: 'two' }
        s.hidden = Object.defineProperty({ shown: 1 }, 'hidden', { value: 2, enumerable: false })
        s[Symbol('key')] = 'dropped'
        s.text = 'lone surrogate \ud800, quote " and newline \n'
      },
      date: (s) => void (s.date = new Date(0)),
      'invalid date': (s) => void (s.date = new Date(Number.NaN)),
      'date with its own toISOString': (s) => void (s.date = Object.assign(new Date(0), { toISOString: () => 'own' })),
      toJSON: (s) => void (s.custom = { toJSON: () => ({ via: 'toJSON' }), other: 1 }),
      'non-enumerable toJSON': (s) =>
        void (s.custom = Object.defineProperty({ other: 1 }, 'toJSON', { value: () => 'via toJSON' })),
      'toJSON that is not a function': (s) => void (s.custom = { toJSON: 5 }),
      function: (s) => void (s.fn = () => 1),
      'function in an array': (s) => void (s.list = [1, () => 1]),
      symbol: (s) => void (s.sym = Symbol('dropped')),
      'class instance': (s) =>
        void (s.point = new (class Point {
          x = 1
        })()),
      'boxed string with Object.prototype': (s) =>
        void (s.boxed = Object.setPrototypeOf(new String('ab'), Object.prototype)),
      'sparse array': (s) => {
        s.sparse = [1, 2, 3]
        delete s.sparse[1]
      },
      'getter ahead of a Date': (s) =>
        void (s.getter = {
          get n() {
            return ++getter.calls
          },
          after: new Date(1),
        }),
      'array element getter ahead of a Date': (s) =>
        void (s.list = Object.defineProperty([1, new Date(1)], 0, { get: () => ++getter.calls, enumerable: true })),
      proxy: (s) => void (s.proxy = counted({ a: 1, b: { c: 2 } })),
      'proxy array': (s) => void (s.proxy = counted([1, { c: 2 }])),
    }
    const run = async (add: (s: any) => void, batched: boolean) => {
      for (const k of Object.keys(traps)) delete traps[k]
      getter.calls = 0
      const seen: unknown[] = []
      const mutators = [
        (s: any) => {
          s.before = { kept: true }
          add(s)
          s.after = [1, 2]
        },
        (s: any) => {
          seen.push(shape(s))
          // Changes to its own input: the next mutator sees this state, not the one before.
          s.before.kept = false
          delete s.after
        },
        (s: any) => void seen.push(shape(s)),
      ]
      const results = await runAll(p, '{"seed":1}', mutators, batched)
      expect(results.every((r) => 'value' in r)).toBe(true)
      return { seen, traps: { ...traps }, getterCalls: getter.calls, file: readFileSync(p, 'utf8') }
    }
    for (const [label, add] of Object.entries(cases)) {
      const alone = await run(add, false)
      const batched = await run(add, true)
      expect(batched, label).toStrictEqual(alone)
      // What alone means: mutator 1 reads the JSON text mutator 0's state becomes.
      const state0 = { seed: 1, before: { kept: true } } as any
      getter.calls = 0
      add(state0)
      state0.after = [1, 2]
      expect(batched.seen[0], label).toStrictEqual(shape(JSON.parse(JSON.stringify(state0))))
    }
    // A Date whose prototype's toISOString was replaced after the library loaded.
    const toISOString = Date.prototype.toISOString
    Date.prototype.toISOString = function (this: Date) {
      return `replaced ${toISOString.call(this)}`
    }
    try {
      const alone = await run(cases.date, false)
      const batched = await run(cases.date, true)
      expect(batched).toStrictEqual(alone)
      expect(JSON.stringify(batched.seen[0])).toContain('replaced 1970')
    } finally {
      Date.prototype.toISOString = toISOString
    }
    // Spot checks of the JSON forms themselves.
    const plain = await run(cases.plain, true)
    const input1 = plain.seen[0] as { proto: string; own: [string, boolean, unknown][] }
    expect(input1.own.map(([k]) => k)).toEqual([
      'seed',
      'before',
      'numbers',
      'list',
      '__proto__',
      'nullProto',
      'order',
      'hidden',
      'text',
      'after',
    ])
    expect(input1.proto).toBe('Object')
  })

  it('each caller gets the state after its own mutator, which no later mutator changes', async () => {
    const p = join(tempDir(), 'index.json')
    const mine = { list: [1, 2], nested: { a: 2 } }
    const results = await runAll(
      p,
      '{"list":[1],"nested":{"a":1}}',
      [
        (s) => {
          s.list.push(2)
          s.nested.a = 2
        },
        () => mine,
        (s) => {
          s.list.push(3)
          s.nested.a = 3
          s.nested.deep = { b: 1 }
        },
        (s) => {
          s.list.length = 0
          s.nested.deep.b = 2
          return { replaced: s }
        },
        (s) => {
          s.replaced.nested.deep.b = 3
        },
      ],
      true,
    )
    const values = results.map((r) => (r as { value: any }).value)
    expect(values[1]).toBe(mine)
    expect(values).toStrictEqual([
      { list: [1, 2], nested: { a: 2 } },
      { list: [1, 2], nested: { a: 2 } },
      { list: [1, 2, 3], nested: { a: 3, deep: { b: 1 } } },
      { replaced: { list: [], nested: { a: 3, deep: { b: 2 } } } },
      { replaced: { list: [], nested: { a: 3, deep: { b: 3 } } } },
    ])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toStrictEqual(values[4])
  })

  it('a batched state is written as its mutator left it, whatever later mutators do to objects it holds', async () => {
    // Call 0 stores an object of its caller's; call 1 (slow: call 0 is written while it waits)
    // puts a BigInt into that object. Alone, call 0's state was written before call 1 ran.
    const p = join(tempDir(), 'index.json')
    let runs = 0
    const outcome = async (batched: boolean) => {
      const shared: Record<string, unknown> = { ok: 1 }
      runs = 0
      const results = await runAll(
        p,
        '{"n":0}',
        [
          (s) => void (s.shared = shared),
          async (s) => {
            runs++
            shared.big = 1n
            await sleep(30)
            s.n = 2
          },
        ],
        batched,
      )
      return { results, runs, file: readFileSync(p, 'utf8') }
    }
    const alone = await outcome(false)
    expect(alone.results).toStrictEqual([
      { value: { n: 0, shared: { ok: 1, big: 1n } } },
      { value: { n: 2, shared: { ok: 1 } } },
    ])
    expect(await outcome(true)).toStrictEqual(alone)
    const again = tryAcquire(p)
    expect(again).not.toBeNull()
    await again!.release()
  })

  it('a mutator that changes an object an earlier call saved and then throws leaves that call as written alone', async () => {
    // An in-memory index saved as is (`() => mem`); the next call edits it, then refuses.
    const p = join(tempDir(), 'index.json')
    const outcome = async (batched: boolean) => {
      const mem = { items: ['a'] }
      const results = await runAll(
        p,
        '{"items":[]}',
        [
          () => mem,
          () => {
            mem.items.push('UNVALIDATED')
            throw new Error('validation failed')
          },
        ],
        batched,
      )
      return {
        results: results.map((r) => ('error' in r ? (r.error as Error).message : 'ok')),
        file: readFileSync(p, 'utf8'),
      }
    }
    const alone = await outcome(false)
    expect(alone).toStrictEqual({ results: ['ok', 'validation failed'], file: '{"items":["a"]}\n' })
    expect(await outcome(true)).toStrictEqual(alone)
  })

  it('a mutator that replaces a global toJSON and then throws leaves earlier calls as written alone', async () => {
    const p = join(tempDir(), 'index.json')
    const toJSON = Date.prototype.toJSON
    const outcome = async (batched: boolean) => {
      try {
        const results = await runAll(
          p,
          '{}',
          [
            (s) => void (s.when = new Date(0)),
            () => {
              Date.prototype.toJSON = function (this: Date) {
                return `LOCAL ${this.getTime()}`
              }
              throw new Error('refused')
            },
          ],
          batched,
        )
        return {
          results: results.map((r) => ('error' in r ? (r.error as Error).message : 'ok')),
          file: readFileSync(p, 'utf8'),
        }
      } finally {
        Date.prototype.toJSON = toJSON
      }
    }
    const alone = await outcome(false)
    expect(alone).toStrictEqual({ results: ['ok', 'refused'], file: '{"when":"1970-01-01T00:00:00.000Z"}\n' })
    expect(await outcome(true)).toStrictEqual(alone)
  })

  it('a mutator that leaves what JSON cannot hold fails alone, with the error it gets alone', async () => {
    const p = join(tempDir(), 'index.json')
    const bad: [string, (s: any) => unknown][] = [
      ['BigInt', (s) => void (s.big = 1n)],
      ['a cycle', (s) => void (s.self = s)],
      [
        'too deep',
        (s) => {
          let o: any = (s.deep = {})
          for (let i = 0; i < 10_000; i++) o = o.next = {}
        },
      ],
      [
        'a throwing toJSON',
        (s) =>
          void (s.t = {
            toJSON() {
              throw new Error('toJSON says no')
            },
          }),
      ],
      [
        'a throwing getter',
        (s) =>
          void (s.g = {
            get x() {
              throw new Error('getter says no')
            },
          }),
      ],
      ['a boxed number without a prototype', (s) => void (s.n = Object.setPrototypeOf(new Number(1), null))],
      ['a function', () => () => 1],
    ]
    const describeError = (r: { error?: any }) => ({
      name: r.error?.name,
      code: r.error?.code,
      message: r.error?.message,
      cause: r.error?.cause?.message,
    })
    for (const [label, mutator] of bad) {
      const [alone] = await runAll(p, '{"n":1}', [mutator], false)
      expect(alone, label).toHaveProperty('error')
      const batched = await runAll(p, '{"n":0}', [(s) => void (s.n = 1), mutator, (s) => void (s.n = 2)], true)
      expect(batched[0], label).toStrictEqual({ value: { n: 1 } })
      expect(describeError(batched[1]), label).toStrictEqual(describeError(alone))
      expect(batched[2], label).toStrictEqual({ value: { n: 2 } })
      expect(JSON.parse(readFileSync(p, 'utf8')), label).toStrictEqual({ n: 2 })
    }
  })
})
