// Injected filesystem faults: full disk, read-only filesystem, no write permission, hostile and
// over-long paths. Each keeps the old content, leaves no temp file and leaves the lock free.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, atomicWrite, readJson, tryAcquire, updateJson, withIndexLock, writeJson } from '../index.js'
import { expectHolder, FIXTURES, run, tempDir } from './helpers'

const isRoot = process.getuid?.() === 0
const mounts: string[] = []

afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m])
})

function mountTmpfs(dir: string, size: string) {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`)
  mounts.push(dir)
}

async function expectFreeLock(p: string) {
  const h = tryAcquire(p)
  expect(h, 'lock left held').not.toBeNull()
  await h!.release()
}

describe('faults', () => {
  it.skipIf(!isRoot)(
    'full disk: ENOSPC, old content intact, no temp, lock free, recovers (needs root for tmpfs)',
    async () => {
      const dir = join(tempDir(), 'mnt')
      mkdirSync(dir)
      mountTmpfs(dir, '256k')
      const p = join(dir, 'index.json')
      await writeJson(p, { keep: true })
      const filler = join(dir, 'filler')
      try {
        writeFileSync(filler, Buffer.alloc(1 << 20))
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
      }
      const err = (await updateJson(p, (c: object) => ({ ...c, big: 'x'.repeat(64 * 1024) })).catch(
        (e: unknown) => e,
      )) as NodeJS.ErrnoException
      expect(err.code).toBe('ENOSPC')
      expect(err.path).toBe(p)
      expect(err.message).toContain(p)
      expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ keep: true })
      expect(readdirSync(dir).sort()).toEqual(['filler', 'index.json', 'index.json.lock'])
      await expectFreeLock(p)
      unlinkSync(filler)
      await updateJson(p, (c: object) => ({ ...c, big: 'x'.repeat(64 * 1024) }))
      expect((await readJson<{ big: string }>(p)).big).toHaveLength(64 * 1024)
      expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
    },
  )

  it.skipIf(!isRoot)(
    'read-only filesystem: EROFS naming the path, locking still works (needs root to mount)',
    async () => {
      const dir = join(tempDir(), 'mnt')
      mkdirSync(dir)
      mountTmpfs(dir, '1m')
      const p = join(dir, 'index.json')
      await updateJson(p, () => ({ keep: 1 }), { default: {} })
      const r = spawnSync('mount', ['-o', 'remount,ro', dir], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      // The sidecar cannot be opened for writing, so it is opened read-only: both modes still lock.
      const s = await acquire(p, { mode: 'shared', timeoutMs: 1000 })
      await s.release()
      const err = (await updateJson(p, () => ({ keep: 2 }), { timeoutMs: 1000 }).catch(
        (e: unknown) => e,
      )) as NodeJS.ErrnoException
      expect(err.code).toBe('EROFS')
      expect(err.path).toBe(p)
      expect(err.message).toContain(p)
      await expect(readJson(p)).resolves.toEqual({ keep: 1 })
      await expect(atomicWrite(join(dir, 'new.json'), 'x')).rejects.toMatchObject({ code: 'EROFS' })
      await expectFreeLock(p)
      expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
    },
  )

  it.skipIf(!isRoot)(
    'a directory the process may not write: EACCES, nothing lost (needs root to run a child as nobody)',
    async () => {
      const dir = tempDir()
      chmodSync(dir, 0o755)
      const p = join(dir, 'index.json')
      await writeJson(p, { keep: 1 })
      await withIndexLock(p, () => {}) // creates the sidecar, root-owned 0644: read-only for nobody
      const child = spawnSync(process.execPath, [join(FIXTURES, 'as-user.cjs'), p], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect(child.status, child.stderr).toBe(0)
      const out = JSON.parse(child.stdout) as Record<string, string>
      expect(out.shared).toBe('ok')
      expect(out.exclusive).toBe('ok')
      expect(out.update).toBe(`EACCES open ${p}`)
      expect(out.read).toBe('ok')
      expect(await readJson(p)).toEqual({ keep: 1 })
      expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
    },
  )

  it('a symlink planted at the sidecar is refused, and nothing is created where it points', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const victim = join(dir, 'victim.txt')
    symlinkSync(victim, `${p}.lock`)
    const err = (await withIndexLock(p, () => 1).catch((e: unknown) => e)) as NodeJS.ErrnoException
    expect(err.code).toBe('ELOOP')
    expect(err.path).toBe(`${p}.lock`)
    expect(existsSync(victim)).toBe(false)
    const other = join(dir, 'other.txt')
    writeFileSync(other, 'precious')
    unlinkSync(`${p}.lock`)
    symlinkSync(other, `${p}.lock`)
    await expect(updateJson(p, () => ({}), { default: {} })).rejects.toMatchObject({ code: 'ELOOP' })
    expect(readFileSync(other, 'utf8')).toBe('precious')
  })

  it('over-long names give ENAMETOOLONG, not a crash', async () => {
    const dir = tempDir()
    const tooLong = join(dir, `${'n'.repeat(300)}.json`)
    for (const call of [
      () => withIndexLock(tooLong, () => 1),
      () => atomicWrite(tooLong, 'x'),
      () => readJson(tooLong, { default: {} }),
      () => updateJson(tooLong, () => ({}), { default: {} }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'ENAMETOOLONG' })
    }
  })

  it('legal names too long for "<name>.lock" lock through a truncated, hashed sidecar name', async () => {
    const dir = tempDir()
    for (const length of [251, 255]) {
      const name = `${'e'.repeat(length - 5)}.json`
      const edge = join(dir, name)
      await atomicWrite(edge, '{"n":0}')
      await withIndexLock(edge, () => 1)
      await updateJson<{ n: number }>(edge, (c) => ({ n: c.n + 1 }))
      expect(JSON.parse(readFileSync(edge, 'utf8'))).toEqual({ n: 1 })
      // The documented derivation: first 200 bytes, '.', 16 hex digits of the name's SHA-256.
      const digest = createHash('sha256').update(name).digest('hex').slice(0, 16)
      const sidecar = `${name.slice(0, 200)}.${digest}.lock`
      expect(readdirSync(dir)).toContain(sidecar)
      // It is the lock: a holder of that file excludes the library.
      const holder = run('flock', [join(dir, sidecar), '-c', 'echo LOCKED; sleep 60'], {}, { group: true })
      await holder.line('LOCKED')
      expect(tryAcquire(edge)).toBeNull()
      process.kill(-holder.child.pid!, 'SIGKILL') // flock(1), its shell and sleep
      await holder.exited
    }
    // A name that fits keeps the plain sidecar.
    const fits = join(dir, `${'f'.repeat(245)}.json`)
    await withIndexLock(fits, () => 1)
    expect(readdirSync(dir)).toContain(`${'f'.repeat(245)}.json.lock`)
  })

  it('a holder that never releases: waiters time out naming its pid', async () => {
    const p = join(tempDir(), 'index.json')
    const holder = run(process.execPath, [join(FIXTURES, 'twin-hold.cjs'), p])
    await holder.line('HELD')
    const errs = await Promise.all(
      [0, 50, 100].map((t) =>
        acquire(p, { timeoutMs: t }).catch((e: { code: string; holders: { pid: number }[] }) => e),
      ),
    )
    for (const e of errs) {
      expect(e.code).toBe('ELOCKTIMEOUT')
      expectHolder(e.holders, holder.child.pid)
    }
    // The native threads that waited in flock for the timed-out requests are called off (they
    // would otherwise take the lock for a moment when the holder lets go, making a tryAcquire
    // by anyone fail for no reason).
    const waitThreads = () =>
      readdirSync('/proc/self/task').filter((t) => {
        try {
          return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'index-lock-wait'
        } catch {
          return false
        }
      }).length
    const end = Date.now() + 5000
    while (waitThreads() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
    expect(waitThreads()).toBe(0)
    expect(holder.child.exitCode).toBeNull()
  })
})
