// Worker threads of one process share the lock registry: their updates are not lost, a lock one
// thread holds excludes the others, and a terminated worker's lock is freed.
// Fixtures: fixtures/worker-update.cjs, fixtures/worker-hold.cjs.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, LockTimeoutError, readJson, tryAcquire, updateJson, type LockHandle } from '../index.js'
import { expectHolder, FIXTURES, tempDir } from './helpers'

const workers = new Set<Worker>()

afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()))
  workers.clear()
})

interface Started {
  worker: Worker
  /** Resolves with the first message for which `pick` is true; rejects on an error message or exit. */
  next: (pick: (msg: any) => boolean) => Promise<any>
  exited: Promise<number>
}

function start(fixture: string, workerData: unknown): Started {
  const worker = new Worker(join(FIXTURES, fixture), { workerData })
  workers.add(worker)
  const messages: any[] = []
  const waiters: { pick: (m: any) => boolean; resolve: (m: any) => void; reject: (e: Error) => void }[] = []
  let ended: Error | null = null
  const fail = (err: Error) => {
    ended = err
    for (const w of waiters.splice(0)) w.reject(err)
  }
  worker.on('message', (msg) => {
    messages.push(msg)
    if (msg && msg.error) return fail(new Error(`worker failed: ${msg.error}`))
    for (const w of waiters.slice()) {
      if (w.pick(msg)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(msg)
      }
    }
  })
  worker.on('error', fail)
  const exited = new Promise<number>((res) =>
    worker.on('exit', (code) => {
      fail(new Error(`worker exited with code ${code}`))
      res(code)
    }),
  )
  return {
    worker,
    exited,
    next: (pick) =>
      new Promise((resolve, reject) => {
        const seen = messages.find(pick)
        if (seen !== undefined) return resolve(seen)
        if (ended) return reject(ended)
        waiters.push({ pick, resolve, reject })
      }),
  }
}

async function rejection(promise: Promise<LockHandle>): Promise<any> {
  return promise.then(
    async (h) => {
      await h.release()
      throw new Error('expected a rejection, but it resolved')
    },
    (err) => err,
  )
}

describe('worker threads', () => {
  it('4 workers x 25 updateJson plus 25 from the main thread keep all 125 entries', async () => {
    const dir = tempDir('workers')
    const p = join(dir, 'index.json')
    const started = Array.from({ length: 4 }, (_, i) =>
      start('worker-update.cjs', { path: p, count: 25, tag: `w${i}` }),
    )
    await Promise.all(started.map((s) => s.next((m) => m.ready)))
    for (const s of started) s.worker.postMessage('go')
    const main = (async () => {
      for (let i = 0; i < 25; i++) {
        await updateJson(
          p,
          (index: { entries: Record<string, string> }) => {
            index.entries[`main-${i}`] = 'main'
          },
          { default: { entries: {} }, fsync: false, timeoutMs: 30_000 },
        )
      }
    })()
    await Promise.all([main, ...started.map((s) => s.next((m) => m.done))])

    const { entries } = (await readJson(p)) as { entries: Record<string, string> }
    const expected = ['main', 'w0', 'w1', 'w2', 'w3'].flatMap((tag) =>
      Array.from({ length: 25 }, (_, i) => `${tag}-${i}`),
    )
    expect(Object.keys(entries).sort()).toEqual(expected.sort())
    for (const [key, tag] of Object.entries(entries)) expect(key.startsWith(`${tag}-`)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })

  it('a lock held by a worker excludes the main thread until the worker releases it', async () => {
    const p = join(tempDir('wshare'), 'index.json')
    const holder = start('worker-hold.cjs', { path: p })
    await holder.next((m) => m.held)

    expect(tryAcquire(p)).toBeNull()
    expect(tryAcquire(p, { mode: 'shared' })).toBeNull()
    const err = await rejection(acquire(p, { timeoutMs: 100 }))
    expect(err).toBeInstanceOf(LockTimeoutError)
    expect(err.code).toBe('ELOCKTIMEOUT')
    expect(err.path).toBe(p)
    // The flock is this process's own (the worker took it), so /proc/locks names this pid.
    expectHolder(err.holders, process.pid)

    // A waiter queued now gets the lock once the worker lets go.
    let entered = false
    const waiter = acquire(p, { timeoutMs: 10_000 }).then((h) => {
      entered = true
      return h
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(entered).toBe(false)
    holder.worker.postMessage('release')
    const released = await holder.next((m) => m.released)
    expect(released.flag).toBe(true)
    const h = await waiter
    expect(h.mode).toBe('exclusive')
    await h.release()
    const again = tryAcquire(p)
    expect(again).not.toBeNull()
    await again!.release()
  })

  it('a worker terminated while holding the lock frees it', async () => {
    const p = join(tempDir('wterm'), 'index.json')
    const holder = start('worker-hold.cjs', { path: p })
    await holder.next((m) => m.held)
    expect(tryAcquire(p)).toBeNull()

    // One waiter queued before the termination, one request after it.
    const waiter = acquire(p, { timeoutMs: 5000 })
    await holder.worker.terminate()
    await holder.exited
    const h = await waiter
    expect(h.mode).toBe('exclusive')
    await h.release()
    const h2 = await acquire(p, { timeoutMs: 5000 })
    await h2.release()
    const t = tryAcquire(p)
    expect(t).not.toBeNull()
    await t!.release()
  })
})
