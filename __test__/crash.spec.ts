// Crash safety: writers SIGKILLed at random moments and at each step of a save. After every kill
// the index parses, keeps every update whose promise resolved, and the next writer goes on at once.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import { acquire, sweep, tryAcquire, updateJson } from '../index.js'
import { node, run, tempDir, type Run, until } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

const counter = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { n: number }).n

function lastAck(run: Run): number {
  const acks = [...run.stdout().matchAll(/^ACK (\d+)$/gm)].map((m) => Number(m[1]))
  return acks.length ? acks[acks.length - 1]! : -1
}

async function killed(run: Run) {
  run.child.kill('SIGKILL')
  await run.exited
}

/** Starts a writer in the fault-injection build that stops at `step` and waits to be killed. */
async function pausedWriter(p: string, step: string) {
  const run = node('crash-writer.cjs', [p, '1'], { NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD, INDEX_LOCK_PAUSE: step })
  const end = Date.now() + 20_000
  while (!run.stderr().includes(`INDEX_LOCK_PAUSED ${step}`)) {
    if (Date.now() > end || run.child.exitCode !== null) throw new Error(`writer never paused: ${run.stderr()}`)
    await sleep(5)
  }
  const tmp = run.stderr().match(/INDEX_LOCK_PAUSED \S+ (\S+)/)![1]!
  return { run, tmp }
}

describe('crash safety', () => {
  it('the normal build has no pause points', async () => {
    const native = (await import('../binding.js')).default as { faultInjection(): boolean }
    expect(native.faultInjection()).toBe(false)
  })

  it("an exclusive holder's automatic sweep runs beside it, never holding up the calling thread", async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const resume = join(dir, 'resume')
    const child = node('sweep-pause.cjs', [p], {
      NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD,
      INDEX_LOCK_PAUSE: 'sweep-scan',
      INDEX_LOCK_RESUME: resume,
    })
    // The scan of the directory (which may hold thousands of files) is stopped; the sections go on.
    await child.line('SECTIONS DONE')
    await until(() => child.stderr().includes('INDEX_LOCK_PAUSED sweep-scan'), 5000, 'the scan paused')
    writeFileSync(resume, '')
    expect((await child.exited).code).toBe(0)
  })

  it('a writer killed between temp write and rename loses nothing resolved; the orphan is swept', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"n":5}')
    const { run, tmp } = await pausedWriter(p, 'before-rename')
    expect(existsSync(tmp)).toBe(true)
    expect(tryAcquire(p)).toBeNull()
    await killed(run)
    expect(counter(p)).toBe(5)
    // The kernel freed the dead writer's lock: the next writer goes on at once, and as the next
    // exclusive holder it removes the orphaned temp file.
    const h = await acquire(p, { timeoutMs: 0 })
    await h.release()
    await updateJson<{ n: number }>(p, (c) => ({ n: c.n + 1 }))
    expect(counter(p)).toBe(6)
    // The sweep runs on a thread of its own, alongside the holder.
    await until(() => !existsSync(tmp), 5000, 'the orphan swept')
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })

  it('a writer killed between rename and directory fsync leaves the new content in place', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"n":5}')
    const { run } = await pausedWriter(p, 'before-dir-fsync')
    await killed(run)
    expect(counter(p)).toBe(6)
    await updateJson<{ n: number }>(p, (c) => ({ n: c.n + 1 }), { timeoutMs: 500 })
    expect(counter(p)).toBe(7)
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })

  it('100 SIGKILLs at random moments never lose a resolved update or block the next writer', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    let acked = 0
    let kills = 0
    // Two writers at a time, so kills land while holding, while waiting and mid-save.
    while (kills < 100) {
      const pair = [
        node('crash-writer.cjs', [p], { CRASH_FSYNC: kills % 2 ? '0' : '1' }),
        node('crash-writer.cjs', [p]),
      ]
      await Promise.all(pair.map((r) => r.line('ACK')))
      await sleep(Math.random() * 15)
      for (const r of pair) {
        await killed(r)
        kills++
        acked = Math.max(acked, lastAck(r))
      }
      // Parses, and holds at least every acknowledged update.
      expect(counter(p)).toBeGreaterThanOrEqual(acked)
    }
    const before = counter(p)
    const h = await acquire(p, { timeoutMs: 0 })
    await h.release()
    await updateJson<{ n: number }>(p, (c) => ({ n: c.n + 1 }))
    expect(counter(p)).toBe(before + 1)
    // Temp files of killed writers were swept by later exclusive holders.
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  }, 120_000)

  it('sweep() removes only the temp files no writer holds', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{}')
    const dead = `.index.json.${process.pid}.7.1.0badcafe.tmp` // a running pid, but nobody holds it
    const live = '.index.json.4194305.7.1.0badcafe.tmp' // no such pid here, but its lock is held
    const otherFile = '.other.json.4194305.7.1.0badcafe.tmp'
    for (const f of [dead, live, otherFile]) writeFileSync(join(dir, f), 'partial')
    const writer = run('flock', [join(dir, live), '-c', 'echo LOCKED; sleep 60'], {}, { group: true })
    await writer.line('LOCKED')
    expect(await sweep(p)).toEqual([dead])
    expect(readdirSync(dir).sort()).toEqual([live, otherFile, 'index.json'].sort())
  })
})
