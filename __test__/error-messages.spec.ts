// What the errors say, beyond their codes: each names what is wrong and what to do about it, in
// terms of the caller's own paths (a newcomer's report, issue item 8).
import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

import {
  LockDeadlockError,
  LockNestedError,
  LockTimeoutError,
  LockUpgradeError,
  acquire,
  acquireSync,
  atomicWrite,
  inspect,
  mergeJson,
  patchJson,
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
import { HOLDERS_KNOWN, node, tempDir, thrownSync } from './helpers'

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

describe('every lock error names its path, as given', () => {
  /** A spelling of `dir/index.json` that is not its lock key (which has no `..`). */
  const spelled = (dir: string) => {
    mkdirSync(join(dir, 'sub'))
    return [dir, 'sub', '..', 'index.json'].join(sep)
  }
  const shared = { mode: 'shared' } as const

  it('AbortError: an aborted wait for a lock, a turn, a batched update or patch, a set; a signal aborted already', async () => {
    const dir = tempDir()
    const p = spelled(dir)
    const q = join(dir, 'q.json')
    const h = await acquire(p)
    const waits: Record<string, (signal: AbortSignal) => Promise<unknown>> = {
      acquire: (signal) => acquire(p, { signal }),
      withIndexLock: (signal) => withIndexLock(p, () => 1, { signal }),
      updateJson: (signal) => updateJson(p, () => ({}), { default: {}, signal }),
      patchJson: (signal) => patchJson(p, [{ op: 'add', path: '/a', value: 1 }], { default: {}, signal }),
      mergeJson: (signal) => mergeJson(p, { a: 1 }, { default: {}, signal }),
      'a set': (signal) => acquire([q, p], { signal }),
    }
    for (const [name, wait] of Object.entries(waits)) {
      const controller = new AbortController()
      const pending = thrown(() => wait(controller.signal))
      controller.abort()
      const err = await pending
      expect(err.name, name).toBe('AbortError')
      expect(err.path, name).toBe(p)
      const before = await thrown(() => wait(AbortSignal.abort()))
      expect(before.name, name).toBe('AbortError')
      // A set names the path it was to wait for first: index.json comes before q.json.
      expect(before.path, name).toBe(p)
    }
    await h.release()
    // A nested call waiting for its turn behind a sibling in a held section.
    const turn = await withIndexLock(p, async () => {
      const sibling = withIndexLock(p, () => new Promise((resolve) => setTimeout(resolve, 50)))
      const controller = new AbortController()
      const pending = thrown(() => withIndexLock(p, () => 1, { signal: controller.signal }))
      controller.abort()
      await sibling
      return pending
    })
    expect(turn.name).toBe('AbortError')
    expect(turn.path).toBe(p)
  })

  it('ELOCKUPGRADE: an exclusive request in a shared section, async or sync', async () => {
    const p = spelled(tempDir())
    const nested = await withIndexLock(p, () => thrown(() => withIndexLock(p, () => 1)), shared)
    expect(nested).toMatchObject({ code: 'ELOCKUPGRADE', path: p })
    const handle = await withIndexLock(p, () => thrown(() => acquire(p)), shared)
    expect(handle).toMatchObject({ code: 'ELOCKUPGRADE', path: p })
    const sync = withIndexLockSync(p, () => thrownSync(() => withIndexLockSync(p, () => 1)), shared)
    expect(sync).toMatchObject({ code: 'ELOCKUPGRADE', path: p })
    // Refused by the native registry: this thread holds the path shared through a handle.
    const h = await acquire(p, shared)
    const native = thrownSync(() => acquireSync(p))
    expect(native).toMatchObject({ code: 'ELOCKUPGRADE', path: p })
    expect(native.message).toContain(p)
    await h.release()
  })

  it('ELOCKDEADLOCK and ELOCKNESTED name the path', async () => {
    const p = spelled(tempDir())
    const h = await acquire(p)
    const native = thrownSync(() => acquireSync(p, { timeoutMs: 10_000 }))
    expect(native).toMatchObject({ code: 'ELOCKDEADLOCK', path: p })
    expect(native.message).toContain(p)
    await h.release()
    const handle = await withIndexLock(p, () => thrown(() => acquire(p)))
    expect(handle).toMatchObject({ code: 'ELOCKDEADLOCK', path: p })
    let nested: Failure | undefined
    await updateJson(
      p,
      async () => {
        nested = await thrown(() => withIndexLock(p, () => 1))
      },
      { default: {} },
    )
    expect(nested).toMatchObject({ code: 'ELOCKNESTED', path: p })
  })
})

describe('LockTimeoutError', () => {
  // Where the OS names holders (Linux): elsewhere the message says 'holder unknown'.
  it.skipIf(!HOLDERS_KNOWN)('a lock this very process holds says so, not its pid alone', async () => {
    const p = join(tempDir(), 'index.json')
    const h = await acquire(p)
    const errors = [
      await thrown(() => acquire(p, { timeoutMs: 50 })),
      await thrown(() => updateJson(p, () => ({}), { default: {}, timeoutMs: 0 })),
    ]
    await h.release()
    // A nested call waiting for its turn behind a sibling of its own section.
    errors.push(
      await withIndexLock(p, async () => {
        const sibling = withIndexLock(p, () => new Promise((resolve) => setTimeout(resolve, 200)))
        const err = await thrown(() => withIndexLock(p, () => 1, { timeoutMs: 50 }))
        await sibling
        return err
      }),
    )
    for (const err of errors) {
      expect(err).toBeInstanceOf(LockTimeoutError)
      expect(err.message).toContain(`held by this process, pid ${process.pid}`)
      expect(err.message).toMatch(/release\(\)/)
      expect((err as LockTimeoutError).holders).toEqual([{ pid: process.pid }])
    }
  })

  it.skipIf(!HOLDERS_KNOWN)('another process is named by its pid alone', async () => {
    const p = join(tempDir(), 'index.json')
    const child = node('twin-hold.cjs', [p])
    await child.line('HELD')
    const err = (await thrown(() => acquire(p, { timeoutMs: 50 }))) as LockTimeoutError
    expect(err.message).toContain(`held by pid ${child.child.pid})`)
    expect(err.message).not.toContain('this process')
    expect(err.holders).toEqual([{ pid: child.child.pid }])
  })
})

describe('a directory or symlink where the lock file should be', () => {
  /** Every lock call, on `p`. */
  const locking = (p: string): Record<string, () => unknown> => ({
    withIndexLock: () => withIndexLock(p, () => 1),
    withIndexLockSync: () => withIndexLockSync(p, () => 1),
    acquire: () => acquire(p),
    acquireSync: () => acquireSync(p),
    tryAcquire: () => tryAcquire(p),
    updateJson: () => updateJson(p, () => ({}), { default: {} }),
    updateJsonSync: () => updateJsonSync(p, () => ({}), { default: {} }),
    'a set': () => acquire([p, `${p}.other`]),
  })

  /** `dir/index.json` with `plant` at its lock file, spelled otherwise than its lock key. */
  function planted(plant: (sidecar: string) => void) {
    const dir = tempDir()
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'index.json'), '{}')
    const sidecar = join(dir, 'index.json.lock')
    plant(sidecar)
    return { p: [dir, 'sub', '..', 'index.json'].join(sep), sidecar }
  }

  it('a directory (a leftover proper-lockfile lock): EISDIR that says so and what to do', async () => {
    const { p, sidecar } = planted((s) => mkdirSync(s))
    for (const [name, call] of Object.entries(locking(p))) {
      const err = await thrown(call)
      expect(err, name).toMatchObject({ code: 'EISDIR', syscall: 'open', path: sidecar })
      expect(err.message, name).toContain(`EISDIR: illegal operation on a directory, open '${sidecar}': `)
      expect(err.message, name).toContain('proper-lockfile')
      expect(err.message, name).toMatch(/remove/)
      expect(err.message, name).toContain('index-lock status')
    }
    expect(lstatSync(sidecar).isDirectory()).toBe(true)
  })

  it('a symlink: ELOOP that says index-lock does not follow it', async () => {
    const { p, sidecar } = planted((s) => symlinkSync(`${s}.elsewhere`, s))
    for (const [name, call] of Object.entries(locking(p))) {
      const err = await thrown(call)
      expect(err, name).toMatchObject({ code: 'ELOOP', syscall: 'open', path: sidecar })
      expect(err.message, name).toContain(`open '${sidecar}': `)
      expect(err.message, name).toContain('symlink')
      expect(err.message, name).toMatch(/remove/)
    }
    expect(lstatSync(sidecar).isSymbolicLink()).toBe(true)
  })
})

describe('the refusals are classes of their own, exported like LockTimeoutError', () => {
  it('ELOCKNESTED, ELOCKDEADLOCK, ELOCKUPGRADE: instanceof their class and Error, with name, code and path', async () => {
    expect(typeof LockNestedError).toBe('function')
    expect(typeof LockDeadlockError).toBe('function')
    expect(typeof LockUpgradeError).toBe('function')
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const q = join(dir, 'q.json')
    const cases: [Failure | undefined, new (...args: never[]) => Error, string, string][] = []
    let nested: Failure | undefined
    await updateJson(
      p,
      async () => {
        nested = await thrown(() => withIndexLock(p, () => 1))
      },
      { default: {} },
    )
    cases.push([nested, LockNestedError, 'LockNestedError', 'ELOCKNESTED'])
    // Refused in JS: a handle only the chain's own section could grant; a set out of order.
    cases.push([
      await withIndexLock(p, () => thrown(() => acquire(p))),
      LockDeadlockError,
      'LockDeadlockError',
      'ELOCKDEADLOCK',
    ])
    cases.push([
      await withIndexLock(q, () => thrown(() => withIndexLock([p, q], () => 1))),
      LockDeadlockError,
      'LockDeadlockError',
      'ELOCKDEADLOCK',
    ])
    cases.push([
      await withIndexLock(p, () => thrown(() => withIndexLock(p, () => 1)), { mode: 'shared' }),
      LockUpgradeError,
      'LockUpgradeError',
      'ELOCKUPGRADE',
    ])
    // Refused by the native registry (a sync wait on a path this thread holds).
    const h = await acquire(p, { mode: 'shared' })
    cases.push([thrownSync(() => acquireSync(p)), LockUpgradeError, 'LockUpgradeError', 'ELOCKUPGRADE'])
    await h.release()
    const x = await acquire(p)
    cases.push([
      thrownSync(() => acquireSync(p, { timeoutMs: 5000 })),
      LockDeadlockError,
      'LockDeadlockError',
      'ELOCKDEADLOCK',
    ])
    await x.release()
    for (const [err, Ctor, name, code] of cases) {
      expect(err, code).toBeInstanceOf(Ctor)
      expect(err, code).toBeInstanceOf(Error)
      expect(err?.name, code).toBe(name)
      expect(err?.code, code).toBe(code)
      expect(err?.path, code).toBe(p)
      expect(String(err), code).toMatch(new RegExp(`^${name}: `))
    }
  })
})
