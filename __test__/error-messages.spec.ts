// What the errors say, beyond their codes: each names what is wrong and what to do about it, in
// terms of the caller's own paths (a newcomer's report, issue item 8).
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  acquireSync,
  atomicWrite,
  inspect,
  readJson,
  readJsonSync,
  sweep,
  tryAcquire,
  updateJson,
  updateJsonSync,
  withIndexLock,
  withIndexLockSync,
  writeJson,
} from '../index.js'
import { tempDir } from './helpers'

type Failure = Error & { code?: string; errno?: number; syscall?: string; path?: string }

async function thrown(f: () => unknown): Promise<Failure> {
  try {
    await f()
  } catch (err) {
    return err as Failure
  }
  throw new Error('expected a throw or rejection')
}

describe('a path in a directory that does not exist', () => {
  /** Every call that creates a file beside `p` (a lock file, a temp file) or scans its directory. */
  const creating = (p: string): Record<string, () => unknown> => ({
    withIndexLock: () => withIndexLock(p, () => 1),
    withIndexLockSync: () => withIndexLockSync(p, () => 1),
    acquire: () => acquire(p),
    acquireSync: () => acquireSync(p),
    tryAcquire: () => tryAcquire(p),
    updateJson: () => updateJson(p, () => ({}), { default: {} }),
    updateJsonSync: () => updateJsonSync(p, () => ({}), { default: {} }),
    writeJson: () => writeJson(p, {}),
    atomicWrite: () => atomicWrite(p, 'x'),
    sweep: () => sweep(p),
  })

  it('fails with ENOENT naming the first directory that does not exist', async () => {
    const dir = tempDir()
    const p = join(dir, 'data', 'sub', 'index.json')
    for (const [name, call] of Object.entries(creating(p))) {
      const err = await thrown(call)
      expect(err, name).toBeInstanceOf(Error)
      expect(err, name).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: p })
      expect(err.message, name).toMatch(/^ENOENT: no such file or directory, open /)
      expect(err.message, name).toContain(p)
      expect(err.message, name).toContain(`the directory '${join(dir, 'data')}' does not exist`)
    }
    expect(readdirSync(dir)).toEqual([])
  })

  it('a relative path: the error keeps its spelling and names the directory where it was looked for', async () => {
    const dir = tempDir()
    const before = process.cwd()
    process.chdir(dir)
    try {
      const err = await thrown(() => withIndexLock(join('data', 'index.json'), () => 1))
      expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: join('data', 'index.json') })
      expect(err.message).toContain(`open '${join('data', 'index.json')}'`)
      expect(err.message).toContain(`the directory '${join(dir, 'data')}' does not exist`)
    } finally {
      process.chdir(before)
    }
  })

  it('a dangling directory symlink is named as one', async () => {
    const dir = tempDir()
    symlinkSync(join(dir, 'gone'), join(dir, 'data'))
    const err = await thrown(() => withIndexLock(join(dir, 'data', 'index.json'), () => 1))
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open' })
    expect(err.message).toContain(`the directory '${join(dir, 'data')}' does not exist`)
    expect(err.message).toContain('symlink')
  })

  it('readJson agrees: a missing file (its directory too) is the default, or ENOENT open without one', async () => {
    const dir = tempDir()
    const p = join(dir, 'data', 'index.json')
    await expect(readJson(p, { default: { entries: {} } })).resolves.toEqual({ entries: {} })
    expect(readJsonSync(p, { default: [] })).toEqual([])
    const err = await thrown(() => readJson(p))
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: p })
    // The lock needs the directory: it creates the lock file there.
    mkdirSync(join(dir, 'data'))
    await expect(updateJson(p, (c: { n?: number }) => ({ n: (c.n ?? 0) + 1 }), { default: {} })).resolves.toEqual({
      n: 1,
    })
  })

  it('inspect (index-lock status) reports the same error', () => {
    const dir = tempDir()
    const report = inspect(join(dir, 'nope', 'index.json'))
    expect(report.error?.code).toBe('ENOENT')
    expect(report.error?.message).toContain(`the directory '${join(dir, 'nope')}' does not exist`)
  })
})
