// The uncontended hot path keeps the sidecar's descriptor open between holds and reuses a path's
// resolved lock key for a short while (see docs/protocol.md). Neither may ever make two
// holders of one file: a sidecar deleted or replaced between holds is noticed by the next
// acquisition, a key is resolved again once its trust time is over, and kept descriptors are
// closed soon after the path goes idle.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, tryAcquire, updateJson, withIndexLock } from '../index.js'
import { acquireOutcome, BACKEND, node, run, tempDir, until } from './helpers'

/** The descriptors this process has open on `file` (Linux: /proc/self/fd). */
function openOn(file: string): number {
  let n = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)) n++
    } catch {}
  }
  return n
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('hot path', () => {
  for (const how of ['deleted', 'replaced by a rename over it'] as const) {
    it(`a sidecar ${how} between two holds is noticed: the next acquisition locks the new file`, async () => {
      const p = join(tempDir('hot'), 'index.json')
      await withIndexLock(p, () => {})
      // The sidecar this process knows loses its name; another process locks the new one.
      if (how === 'deleted') unlinkSync(`${p}.lock`)
      else {
        writeFileSync(`${p}.lock.new`, '')
        renameSync(`${p}.lock.new`, `${p}.lock`)
      }
      const holder = node('proc-hold.cjs', [p])
      await holder.line('HELD')
      // Relocking the old inode would succeed: only the new file's lock counts.
      expect(tryAcquire(p)).toBeNull()
      expect(await acquireOutcome(p, 100)).toBe('ELOCKTIMEOUT')
      holder.child.kill('SIGTERM')
      await holder.line('RELEASED')
      const h = tryAcquire(p)
      expect(h).not.toBeNull()
      await h?.release()
    })
  }

  it('a released lock is free for other processes at once, though its descriptor stays open a moment', async () => {
    const p = join(tempDir('hot'), 'index.json')
    await withIndexLock(p, () => {})
    const other = node('proc-hold.cjs', [p])
    await other.line('HELD')
    other.child.kill('SIGTERM')
    await other.line('RELEASED')
  })

  // /proc/self/fd lists open descriptors on Linux only.
  it.skipIf(process.platform !== 'linux')(
    'a kept sidecar descriptor is closed within about a second of the last hold',
    async () => {
      const p = join(tempDir('hot'), 'index.json')
      await withIndexLock(p, () => {})
      // Kept on Linux (a read-only descriptor); the other backends close at release.
      expect(openOn(`${p}.lock`)).toBe(BACKEND === 'linux' ? 1 : 0)
      await sleep(2500)
      expect(openOn(`${p}.lock`)).toBe(0)
    },
  )

  // /proc/self/fd lists open descriptors on Linux only.
  it.skipIf(process.platform !== 'linux')('at most 64 released sidecar descriptors are kept open at once', async () => {
    const dir = tempDir('hot')
    for (let i = 0; i < 100; i++) await withIndexLock(join(dir, `f${i}.json`), () => {})
    const kept = openOn(`${dir}/`)
    expect(kept).toBe(BACKEND === 'linux' ? 64 : 0)
  })

  // /proc/self/fd counts descriptors on Linux only; prlimit(1) sets another process's limit.
  it.skipIf(process.platform !== 'linux')(
    'kept descriptors never cost a lock or a file of its own to a process near its open-files limit',
    async () => {
      const dir = tempDir('hot')
      const child = node('fd-limit-loop.cjs', [dir])
      const baseline = Number((await child.line('BASELINE')).split(' ')[1])
      // 30 descriptors to spare: fewer than the 64 kept at most by default.
      const limit = baseline + 30
      const set = run('prlimit', [`--nofile=${limit}:${limit}`, `--pid=${child.child.pid}`])
      expect((await set.exited).code, set.stderr()).toBe(0)
      const result = JSON.parse((await child.line('RESULT')).slice('RESULT '.length))
      // Every hold, by every kind of call, while holding nothing else (it failed with EMFILE at
      // the 31st path while released descriptors lingered).
      expect(result.errors).toEqual([])
      expect(result.done).toBe(100)
      // The descriptors kept are a small part of the limit, so the process's own opens still
      // find most of its 30 spare ones.
      expect(result.spare).toBeGreaterThanOrEqual(20)
      // With every descriptor taken by the program itself, a lock still gets one where some are
      // kept (the Linux backend; the others keep none): they are closed for it.
      if (BACKEND === 'linux') expect(result.atLimit).toBe('acquired')
    },
  )

  // /proc/locks names each flock's holder pid and inode on Linux only.
  it.skipIf(process.platform !== 'linux')(
    'a data directory replaced while another process keeps its path busy: that process moves to the new sidecar',
    async () => {
      const dir = tempDir('hot')
      mkdirSync(join(dir, 'data'))
      const p = join(dir, 'data', 'index.json')
      const busy = node('busy-callers.cjs', [p])
      const pid = Number((await busy.line('BUSY')).split(' ')[1])
      await sleep(100)
      // A deploy or restore swaps the directory while the path never goes idle there.
      renameSync(join(dir, 'data'), join(dir, 'data.old'))
      mkdirSync(join(dir, 'data'))
      writeFileSync(`${p}.lock`, '')
      const inode = String(statSync(`${p}.lock`).ino)
      const holdsNew = () =>
        readFileSync('/proc/locks', 'utf8')
          .split('\n')
          .some((l) => {
            const f = l.trim().split(/\s+/)
            const at = f.indexOf('FLOCK')
            return at >= 0 && f[at + 3] === String(pid) && f[at + 4]?.split(':')[2] === inode
          })
      await until(holdsNew, 5000, 'the busy process locking the new sidecar')
      busy.child.kill('SIGKILL')
      await busy.exited
    },
  )

  it('an update waiting for the lock reads and writes the file it locked, whatever a symlink in its path names by then', async () => {
    const dir = tempDir('hot')
    for (const v of ['v1', 'v2']) {
      mkdirSync(join(dir, v))
      writeFileSync(join(dir, v, 'index.json'), JSON.stringify({ dir: v }))
    }
    symlinkSync(join(dir, 'v1'), join(dir, 'cur'))
    const held = await acquire(join(dir, 'v1', 'index.json'))
    // Both join one batch (one key); one names the file through the symlink, one directly.
    const viaLink = updateJson<Record<string, unknown>>(join(dir, 'cur', 'index.json'), (s) => void (s.a = 1))
    const direct = updateJson<Record<string, unknown>>(join(dir, 'v1', 'index.json'), (s) => void (s.b = 1))
    rmSync(join(dir, 'cur'))
    symlinkSync(join(dir, 'v2'), join(dir, 'cur'))
    await held.release()
    await Promise.all([viaLink, direct])
    const read = (v: string) => JSON.parse(readFileSync(join(dir, v, 'index.json'), 'utf8'))
    expect(read('v1')).toEqual({ dir: 'v1', a: 1, b: 1 })
    expect(read('v2')).toEqual({ dir: 'v2' })
  })

  it('a directory symlink re-pointed is followed by calls made after the key trust time (100 ms)', async () => {
    const dir = tempDir('hot')
    mkdirSync(join(dir, 'a'))
    mkdirSync(join(dir, 'b'))
    symlinkSync(join(dir, 'a'), join(dir, 'data'))
    const p = join(dir, 'data', 'index.json')
    await withIndexLock(p, () => {})
    rmSync(join(dir, 'data'))
    symlinkSync(join(dir, 'b'), join(dir, 'data'))
    await sleep(150)
    // Another process holds the lock of the file the path names now: b/index.json.
    const holder = node('proc-hold.cjs', [join(dir, 'b', 'index.json')])
    await holder.line('HELD')
    expect(tryAcquire(p)).toBeNull()
    holder.child.kill('SIGTERM')
    await holder.line('RELEASED')
  })
})
