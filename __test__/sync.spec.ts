// The synchronous twins: same protocol as the async API, refusals instead of hangs.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  acquireSync,
  atomicWriteSync,
  CorruptFileError,
  LockTimeoutError,
  readJson,
  readJsonSync,
  tryAcquire,
  updateJsonSync,
  withIndexLock,
  withIndexLockSync,
  writeJsonSync,
} from '../index.js'
import { expectHolder, node, ROOT, tempDir, thrownSync } from './helpers'

describe('withIndexLockSync', () => {
  it('returns the result of fn, releases, and rethrows', () => {
    const p = join(tempDir(), 'index.json')
    expect(withIndexLockSync(p, () => 7)).toBe(7)
    expect(
      thrownSync(() =>
        withIndexLockSync(p, () => {
          throw new Error('boom')
        }),
      ).message,
    ).toBe('boom')
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    void h!.release()
  })

  it('is reentrant in its call chain, also inside an async withIndexLock', async () => {
    const p = join(tempDir(), 'index.json')
    const nested = withIndexLockSync(p, () =>
      withIndexLockSync(p, () => withIndexLockSync(p, () => 'deep', { mode: 'shared' })),
    )
    expect(nested).toBe('deep')
    const mixed = await withIndexLock(p, async () => {
      await Promise.resolve()
      return withIndexLockSync(p, () => 'sync-in-async')
    })
    expect(mixed).toBe('sync-in-async')
    const err = thrownSync(() => withIndexLockSync(p, () => withIndexLockSync(p, () => 1), { mode: 'shared' }))
    expect(err.code).toBe('ELOCKUPGRADE')
  })

  it('refuses at once a wait on a path this thread holds outside the chain', async () => {
    const p = join(tempDir(), 'index.json')
    const h = await acquire(p)
    const started = Date.now()
    const err = thrownSync(() => acquireSync(p, { timeoutMs: 10_000 }))
    expect(err.code).toBe('ELOCKDEADLOCK')
    expect(err.message).toContain('index.json')
    expect(thrownSync(() => withIndexLockSync(p, () => 1)).code).toBe('ELOCKDEADLOCK')
    expect(Date.now() - started).toBeLessThan(1000)
    await h.release()
    const s = await acquire(p, { mode: 'shared' })
    expect(thrownSync(() => acquireSync(p)).code).toBe('ELOCKUPGRADE')
    await s.release()
    acquireSync(p).release()
  })

  it('refuses a wait behind a request this thread has queued', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const child = node('twin-hold.cjs', [p])
    await child.line('HELD')
    const queued = acquire(p, { timeoutMs: 10_000 })
    expect(thrownSync(() => acquireSync(p, { timeoutMs: 10_000 })).code).toBe('ELOCKDEADLOCK')
    child.child.kill('SIGKILL')
    const h = await queued
    await h.release()
  })

  it('times out with LockTimeoutError naming the other process', async () => {
    const p = join(tempDir(), 'index.json')
    const child = node('twin-hold.cjs', [p])
    await child.line('HELD')
    const started = Date.now()
    const err = thrownSync(() => acquireSync(p, { timeoutMs: 150 })) as LockTimeoutError
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect(err).toBeInstanceOf(LockTimeoutError)
    expectHolder(err.holders, child.child.pid)
    expect(thrownSync(() => acquireSync(p, { timeoutMs: 0 }))).toBeInstanceOf(LockTimeoutError)
    child.child.kill('SIGKILL')
    await child.exited
    const h = acquireSync(p, { timeoutMs: 5000 })
    expect(h.mode).toBe('exclusive')
    await h.release()
  })

  it('waits for a worker thread of the same process to release', async () => {
    const p = join(tempDir(), 'index.json')
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads')
       const { acquire } = require(workerData.lib)
       acquire(workerData.p).then((h) => {
         parentPort.postMessage('held')
         setTimeout(() => h.release().then(() => parentPort.postMessage('released')), 200)
       })`,
      { eval: true, workerData: { lib: join(ROOT, 'index.js'), p } },
    )
    await new Promise((resolve) => w.once('message', resolve))
    const started = Date.now()
    const h = acquireSync(p, { timeoutMs: 5000 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(100)
    await h.release()
    await w.terminate()
  })

  it('refuses a signal and a promise-returning fn', async () => {
    const p = join(tempDir(), 'index.json')
    const bad = thrownSync(() => withIndexLockSync(p, () => 1, { signal: AbortSignal.abort() } as never))
    expect(bad).toBeInstanceOf(TypeError)
    expect(bad.code).toBe('ERR_INVALID_ARG_VALUE')
    const asyncFn = thrownSync(() => withIndexLockSync(p, async () => 1))
    expect(asyncFn).toBeInstanceOf(TypeError)
    expect(asyncFn.code).toBe('ERR_INVALID_RETURN_VALUE')
    expect(tryAcquire(p)).not.toBeNull()
  })
})

describe('sync file twins', () => {
  it('atomicWriteSync, writeJsonSync and readJsonSync behave like their async twins', () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    expect(readJsonSync(p, { default: { a: 0 } })).toEqual({ a: 0 })
    expect(thrownSync(() => readJsonSync(p)).code).toBe('ENOENT')
    writeJsonSync(p, { a: 1 }, { space: 2 })
    expect(readFileSync(p, 'utf8')).toBe('{\n  "a": 1\n}\n')
    expect(readJsonSync(p)).toEqual({ a: 1 })
    atomicWriteSync(p, '{"a":', { fsync: false })
    const corrupt = thrownSync(() => readJsonSync(p, { default: {} }))
    expect(corrupt).toBeInstanceOf(CorruptFileError)
    expect(corrupt.message).toContain(p)
    const missing = thrownSync(() => atomicWriteSync(join(dir, 'no', 'x.json'), 'x'))
    expect(missing).toMatchObject({ code: 'ENOENT', errno: -2, path: join(dir, 'no', 'x.json') })
    expect(readdirSync(dir)).toEqual(['index.json'])
  })

  it('updateJsonSync reads, mutates, writes; a failing mutator writes nothing', async () => {
    const p = join(tempDir(), 'index.json')
    const v = updateJsonSync<{ n: number }>(p, (c) => void (c.n += 1), { default: { n: 0 } })
    expect(v).toEqual({ n: 1 })
    expect(await readJson(p)).toEqual({ n: 1 })
    expect(
      thrownSync(() =>
        updateJsonSync<{ n: number }>(p, (c) => {
          c.n = 99
          throw new Error('no')
        }),
      ).message,
    ).toBe('no')
    const promised = thrownSync(() =>
      updateJsonSync<{ n: number }>(p, (async (c: { n: number }) => ({ n: c.n + 5 })) as never),
    )
    expect(promised.code).toBe('ERR_INVALID_RETURN_VALUE')
    expect(await readJson(p)).toEqual({ n: 1 })
    expect(thrownSync(() => updateJsonSync(p, () => ({}), { mode: 'shared' })).code).toBe('ERR_INVALID_ARG_VALUE')
    expect(tryAcquire(p)).not.toBeNull()
  })

  it('sync and async writers in different processes exclude each other', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"entries":{}}')
    const runs = [
      node('twin-update-loop.cjs', [p, '40', 'sync-a', 'sync']),
      node('twin-update-loop.cjs', [p, '40', 'sync-b', 'sync']),
      node('twin-update-loop.cjs', [p, '40', 'async-a', 'async']),
      node('twin-update-loop.cjs', [p, '40', 'async-b', 'async']),
    ]
    for (const r of runs) expect((await r.exited).code, r.stderr()).toBe(0)
    const idx = JSON.parse(readFileSync(p, 'utf8')) as { entries: Record<string, number> }
    expect(Object.keys(idx.entries)).toHaveLength(160)
  })
})
