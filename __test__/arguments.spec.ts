// Bad input gets TypeError/RangeError with Node's ERR_* codes; OS errors look like Node's fs
// errors; nothing stays locked after any error. Also: both module formats load.
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import * as lib from '../index.js'
import { BACKEND, ROOT, run, tempDir } from './helpers'

const { acquire, atomicWrite, readJson, tryAcquire, updateJson, withIndexLock, writeJson } = lib

type Call = (path: unknown) => unknown

/** Every entry point, called with one bad argument each. */
const withPath: Record<string, Call> = {
  withIndexLock: (p) => withIndexLock(p as string, () => 1),
  acquire: (p) => acquire(p as string),
  tryAcquire: (p) => tryAcquire(p as string),
  atomicWrite: (p) => atomicWrite(p as string, 'x'),
  readJson: (p) => readJson(p as string),
  writeJson: (p) => writeJson(p as string, {}),
  updateJson: (p) => updateJson(p as string, () => ({})),
}

async function thrown(f: () => unknown): Promise<unknown> {
  try {
    await f()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw or rejection')
}

async function expectCode(f: () => unknown, Ctor: ErrorConstructor, code: string) {
  const err = (await thrown(f)) as Error & { code: string }
  expect(err, String(err)).toBeInstanceOf(Ctor)
  expect(err.code).toBe(code)
  return err
}

describe('bad arguments', () => {
  for (const [name, call] of Object.entries(withPath)) {
    it(`${name}: non-string, empty and NUL-containing paths`, async () => {
      for (const bad of [undefined, null, 42, {}, Buffer.from('x')]) {
        const err = await expectCode(() => call(bad), TypeError, 'ERR_INVALID_ARG_TYPE')
        expect(err.message).toContain('"path"')
      }
      await expectCode(() => call(''), TypeError, 'ERR_INVALID_ARG_VALUE')
      await expectCode(() => call('/tmp/a\0b.json'), TypeError, 'ERR_INVALID_ARG_VALUE')
    })
  }

  it('fn and mutator must be functions', async () => {
    const p = join(tempDir(), 'index.json')
    for (const bad of [undefined, null, 'fn', 1, {}]) {
      await expectCode(() => withIndexLock(p, bad as never), TypeError, 'ERR_INVALID_ARG_TYPE')
      await expectCode(() => updateJson(p, bad as never), TypeError, 'ERR_INVALID_ARG_TYPE')
    }
  })

  it('unknown modes are refused', async () => {
    const p = join(tempDir(), 'index.json')
    for (const mode of ['EXCLUSIVE', 'write', 1, null]) {
      await expectCode(() => withIndexLock(p, () => 1, { mode: mode as never }), TypeError, 'ERR_INVALID_ARG_VALUE')
      await expectCode(() => acquire(p, { mode: mode as never }), TypeError, 'ERR_INVALID_ARG_VALUE')
      await expectCode(() => tryAcquire(p, { mode: mode as never }), TypeError, 'ERR_INVALID_ARG_VALUE')
    }
    // An update needs the exclusive lock.
    await expectCode(() => updateJson(p, () => ({}), { mode: 'shared' }), TypeError, 'ERR_INVALID_ARG_VALUE')
  })

  it('negative or NaN timeouts are out of range; non-numbers are the wrong type', async () => {
    const p = join(tempDir(), 'index.json')
    for (const t of [-1, -Infinity, Number.NaN]) {
      await expectCode(() => withIndexLock(p, () => 1, { timeoutMs: t }), RangeError, 'ERR_OUT_OF_RANGE')
      await expectCode(() => acquire(p, { timeoutMs: t }), RangeError, 'ERR_OUT_OF_RANGE')
      await expectCode(() => updateJson(p, () => ({}), { timeoutMs: t }), RangeError, 'ERR_OUT_OF_RANGE')
    }
    await expectCode(() => acquire(p, { timeoutMs: '10' as never }), TypeError, 'ERR_INVALID_ARG_TYPE')
  })

  it('signal must be an AbortSignal; options must be an object', async () => {
    const p = join(tempDir(), 'index.json')
    await expectCode(() => acquire(p, { signal: {} as never }), TypeError, 'ERR_INVALID_ARG_TYPE')
    await expectCode(() => acquire(p, 'fast' as never), TypeError, 'ERR_INVALID_ARG_TYPE')
    await expectCode(() => writeJson(p, {}, 3 as never), TypeError, 'ERR_INVALID_ARG_TYPE')
  })

  it('atomicWrite data must be a string or bytes; mode and fsync are checked', async () => {
    const p = join(tempDir(), 'f.json')
    for (const bad of [undefined, null, 1, {}, [1, 2], new ArrayBuffer(2)]) {
      await expectCode(() => atomicWrite(p, bad as never), TypeError, 'ERR_INVALID_ARG_TYPE')
    }
    await expectCode(() => atomicWrite(p, 'x', { mode: -1 }), RangeError, 'ERR_OUT_OF_RANGE')
    await expectCode(() => atomicWrite(p, 'x', { mode: 0o10000 }), RangeError, 'ERR_OUT_OF_RANGE')
    await expectCode(() => atomicWrite(p, 'x', { mode: '644' as never }), TypeError, 'ERR_INVALID_ARG_TYPE')
    await expectCode(() => atomicWrite(p, 'x', { fsync: 'yes' as never }), TypeError, 'ERR_INVALID_ARG_TYPE')
    await expectCode(() => writeJson(p, {}, { space: -1 }), RangeError, 'ERR_OUT_OF_RANGE')
    expect(readdirSync(join(p, '..'))).toEqual([])
  })

  it('leaves nothing locked after an argument error', async () => {
    const p = join(tempDir(), 'index.json')
    await thrown(() => withIndexLock(p, 'nope' as never))
    await thrown(() => acquire(p, { timeoutMs: -5 }))
    await thrown(() => updateJson(p, () => ({}), { mode: 'shared' }))
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })
})

describe('OS errors', () => {
  it('a missing directory rejects with ENOENT naming the path, like Node fs', async () => {
    const dir = tempDir()
    const p = join(dir, 'missing', 'index.json')
    for (const call of [
      () => withIndexLock(p, () => 1),
      () => acquire(p),
      () => tryAcquire(p),
      () => updateJson(p, () => ({}), { default: {} }),
      () => writeJson(p, {}),
    ]) {
      const err = (await thrown(call)) as NodeJS.ErrnoException
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe('ENOENT')
      expect(err.errno).toBe(-2)
      expect(typeof err.syscall).toBe('string')
      expect(err.path).toBe(p)
      expect(err.message).toContain(p)
    }
    expect(readdirSync(dir)).toEqual([])
  })

  it('a lock file that cannot be opened is an error naming it, and nothing stays locked', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    // A directory where the sidecar should be: open(2) fails with EISDIR.
    writeFileSync(p, '{}')
    mkdirSync(`${p}.lock`)
    const err = (await thrown(() => withIndexLock(p, () => 1))) as NodeJS.ErrnoException
    expect(err.code).toBe('EISDIR')
    expect(err.path).toBe(`${p}.lock`)
    expect(err.message).toContain(`${p}.lock`)
  })
})

describe('module formats', () => {
  it("backend() of the package's own entry names the loaded binary's platform backend", () => {
    expect(typeof lib.backend).toBe('function')
    expect(lib.backend()).toBe(BACKEND)
    expect(['linux', 'generic-unix', 'windows']).toContain(lib.backend())
  })

  it('works from require() and from ESM named imports', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(
      join(dir, 'esm.mjs'),
      [
        "import { withIndexLock, updateJson, LockTimeoutError, backend } from 'index-lock'",
        "import lib from 'index-lock'",
        `const v = await withIndexLock(${JSON.stringify(p)}, () => updateJson(${JSON.stringify(p)}, (c) => ({ n: c.n + 1 }), { default: { n: 0 } }))`,
        'console.log(JSON.stringify({ n: v.n, cls: typeof LockTimeoutError, same: lib.withIndexLock === withIndexLock, backend: backend() }))',
      ].join('\n'),
    )
    writeFileSync(
      join(dir, 'cjs.cjs'),
      [
        "const { withIndexLock, readJson } = require('index-lock')",
        `withIndexLock(${JSON.stringify(p)}, () => readJson(${JSON.stringify(p)})).then((v) => console.log(JSON.stringify(v)))`,
      ].join('\n'),
    )
    // Resolve 'index-lock' to this checkout the way an installed package would be.
    mkdirSync(join(dir, 'node_modules'))
    symlinkSync(ROOT, join(dir, 'node_modules', 'index-lock'))
    const esm = run(process.execPath, [join(dir, 'esm.mjs')])
    expect((await esm.exited).code, esm.stderr()).toBe(0)
    expect(JSON.parse(esm.stdout())).toEqual({ n: 1, cls: 'function', same: true, backend: BACKEND })
    const cjs = run(process.execPath, [join(dir, 'cjs.cjs')])
    expect((await cjs.exited).code, cjs.stderr()).toBe(0)
    expect(JSON.parse(cjs.stdout())).toEqual({ n: 1 })
  })
})
