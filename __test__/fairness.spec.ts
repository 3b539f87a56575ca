// flock(2) has no queue: a process whose own callers keep the lock busy must still let other
// processes in (it yields the OS lock after a slice when /proc/locks shows a waiter).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'

import { updateJson } from '../index.js'
import { node, tempDir } from './helpers'

it('a process that keeps its own queue busy does not lock other processes out', async () => {
  const p = join(tempDir(), 'counter.json')
  const busy = node('busy-updater.cjs', [p, '3000'])
  await busy.line('BUSY')
  // Each of these would time out if the busy process kept the lock for its whole run.
  let mine = 0
  while (busy.child.exitCode === null && !busy.stdout().includes('DONE')) {
    await updateJson<{ n: number }>(p, (c) => ({ n: c.n + 1 }), { timeoutMs: 1500, fsync: false })
    mine++
  }
  const done = Number((await busy.line('DONE')).split(' ')[1])
  expect(mine).toBeGreaterThanOrEqual(5)
  expect((JSON.parse(readFileSync(p, 'utf8')) as { n: number }).n).toBe(done + mine)
})
