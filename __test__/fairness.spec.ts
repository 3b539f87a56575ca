// flock(2) has no queue: a process whose own callers keep the lock busy must still let other
// processes in (it yields the OS lock after a slice when /proc/locks shows a waiter).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect, it } from 'vitest'

import { acquire, updateJson } from '../index.js'
import { FIXTURES, node, run, tempDir, waitingForLock } from './helpers'

const isRoot = process.getuid?.() === 0

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

// A process that holds a lock shared holds new shared requests back for a while when another
// process waits for it exclusively, so that its holders can drain and let the other process in.
// Held back, not stuck: such a request is looked at again on its own, and admitted once nobody
// waits any more or once the holders have not drained within a bound (they may be waiting for it).
it("a shared request held back for another process's exclusive waiter is granted, also after that waiter gives up", async () => {
  const p = join(tempDir(), 'index.json')
  const r1 = await acquire(p, { mode: 'shared' })
  const b = node('wait-exclusive.cjs', [p, '300'])
  await waitingForLock(Number((await b.line('WAITING')).split(' ')[1]), `${p}.lock`)
  // Past this process's fair slice, so it now holds new shared requests back for the waiter.
  await sleep(30)
  const r2 = acquire(p, { mode: 'shared', timeoutMs: 10_000 })
  expect(await b.line('FAILED')).toBe('FAILED ELOCKTIMEOUT')
  const h2 = await r2
  expect(h2.mode).toBe('shared')
  await h2.release()
  await r1.release()
})

it('a reader that takes its next shared handle before releasing the last keeps going while another process waits for exclusive, which then gets the lock', async () => {
  const dir = tempDir()
  const p = join(dir, 'index.json')
  const go = join(dir, 'go')
  const reader = node('shared-hand-over.cjs', [p, go, '20'])
  await reader.line('READY')
  const writer = node('wait-exclusive.cjs', [p, 'Infinity'])
  await waitingForLock(Number((await writer.line('WAITING')).split(' ')[1]), `${p}.lock`)
  // The reader's hand-overs now need shared requests admitted while the writer waits: each
  // holder is released only after its successor is granted.
  writeFileSync(go, '')
  expect(await reader.line('DONE')).toMatch(/^DONE \d+$/)
  await writer.line('GOT')
  expect((await reader.exited).code).toBe(0)
  expect((await writer.exited).code).toBe(0)
})

it('overlapping shared readers of one process, each holding longer than the shortest hold-back, still let another process write', async () => {
  const p = join(tempDir(), 'index.json')
  const stream = node('shared-stream.cjs', [p, '6000', '150'])
  await stream.line('BUSY')
  const h = await acquire(p, { timeoutMs: 4000 })
  expect(stream.stdout()).not.toContain('DONE')
  await h.release()
  expect(await stream.line('DONE')).toMatch(/^DONE \d+$/)
})

// Without /proc/locks (macOS, Windows) a waiter is seen by the mark it leaves on the sidecar's
// modification time. A waiter of another user may touch the time to "now" only where it may
// write the sidecar; where it may only read it (another user's 0644 sidecar) the holder still
// gives the lock up now and then, so nobody waits out a busy process.
it.skipIf(!isRoot).each(['0666', '0644'])(
  'a waiter of another user gets in while a process keeps its own queue busy (sidecar %s; needs root to run a child as nobody)',
  async (mode) => {
    const dir = tempDir()
    chmodSync(dir, 0o755)
    const p = join(dir, 'counter.json')
    writeFileSync(`${p}.lock`, '')
    chmodSync(`${p}.lock`, Number.parseInt(mode, 8))
    const busy = node('busy-holder.cjs', [p, '4000'])
    await busy.line('BUSY')
    const waiter = run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      join(FIXTURES, 'lock-attempts.cjs'),
      p,
      '3',
      '2000',
    ])
    await waiter.line('DONE')
    expect(waiter.stdout().trim().split('\n'), waiter.stderr()).toEqual(['OK', 'OK', 'OK', 'DONE'])
    await busy.line('DONE')
  },
  20_000,
)
