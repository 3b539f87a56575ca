// flock(2) has no queue: a process whose own callers keep the lock busy must still let other
// processes in (it yields the OS lock after a slice when /proc/locks shows a waiter).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'

import { updateJson } from '../index.js'
import { FIXTURES, node, run, tempDir } from './helpers'

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
    const waiter = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(FIXTURES, 'lock-attempts.cjs'), p, '3', '2000'])
    await waiter.line('DONE')
    expect(waiter.stdout().trim().split('\n'), waiter.stderr()).toEqual(['OK', 'OK', 'OK', 'DONE'])
    await busy.line('DONE')
  },
  20_000,
)
