// A lock stays held until release() (or disposal), or until its process or worker thread ends,
// whether or not the program keeps a reference to the handle.
// Fixture: fixtures/drop-handle.cjs.
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import { acquire, tryAcquire } from '../index.js'
import { acquireOutcome, FIXTURES, node, tempDir } from './helpers'

describe('lock lifetime', () => {
  for (const how of ['try', 'sync', 'async', 'set'] as const) {
    it(`a dropped ${how} handle stays held across garbage collection until its process exits`, async () => {
      const dir = tempDir('life')
      const p = join(dir, 'index.json')
      const q = join(dir, 'other.json')
      const child = node('drop-handle.cjs', [p, how, q])
      await child.line('COLLECTED')
      // Another process (this one) still cannot get the lock.
      expect(tryAcquire(p)).toBeNull()
      if (how === 'set') expect(tryAcquire(q)).toBeNull()
      expect(await acquireOutcome(p, 100)).toBe('ELOCKTIMEOUT')
      expect(child.child.exitCode).toBeNull()
      // The process's exit frees it.
      child.child.kill('SIGKILL')
      await child.exited
      const h = await acquire(p, { timeoutMs: 5000 })
      await h.release()
    })
  }

  it('a worker thread that dropped its handle keeps the lock until it is terminated', async () => {
    const p = join(tempDir('life-w'), 'index.json')
    const worker = new Worker(join(FIXTURES, 'drop-handle.cjs'), { workerData: { path: p, how: 'async' } })
    try {
      const failed = new Promise<never>((_, reject) => {
        worker.on('error', reject)
        worker.on('exit', (code) => reject(new Error(`worker exited with code ${code}`)))
      })
      await Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed])
      expect(tryAcquire(p)).toBeNull()
      // Queued before the termination: granted by the worker's teardown.
      const waiter = acquire(p, { timeoutMs: 10_000 })
      await worker.terminate()
      const h = await waiter
      expect(h.mode).toBe('exclusive')
      await h.release()
      const again = tryAcquire(p)
      expect(again).not.toBeNull()
      await again!.release()
    } finally {
      await worker.terminate()
    }
  })
})
