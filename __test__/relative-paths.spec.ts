// A relative path names the file under the working directory at the time of the call: a call that
// locks and then reads and writes uses that one file, even if process.chdir() runs meanwhile.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, tryAcquire, updateJson, updateJsonSync, withIndexLock } from '../index.js'
import { node, tempDir } from './helpers'

const startDir = process.cwd()
afterEach(() => process.chdir(startDir))

type N = { n: number }

/** Two directories, a/ and b/, each with an index.json; the cwd is a/. */
function twoDirs() {
  const base = tempDir('rel')
  const a = join(base, 'a')
  const b = join(base, 'b')
  for (const [dir, n] of [
    [a, 0],
    [b, 100],
  ] as const) {
    mkdirSync(dir)
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ n }))
  }
  process.chdir(a)
  const n = (dir: string) => (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as N).n
  return { a, b, n }
}

describe('relative paths are resolved against the cwd at call time', () => {
  it('updateJson waiting for the lock reads and writes the file it locked after a chdir', async () => {
    const { a, b, n } = twoDirs()
    const held = await acquire('index.json')
    const update = updateJson<N>('index.json', (s) => void (s.n += 1))
    process.chdir(b)
    await held.release()
    expect((await update).n).toBe(1)
    expect([n(a), n(b)]).toEqual([1, 100])
  })

  it('a nested updateJson waiting for its turn in a section keeps the file of its call', async () => {
    const { a, b, n } = twoDirs()
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    await withIndexLock('index.json', async () => {
      const first = updateJson<N>('index.json', async (s) => {
        await gate
        s.n += 1
      })
      const second = updateJson<N>('index.json', (s) => void (s.n += 10))
      process.chdir(b)
      open()
      await Promise.all([first, second])
    })
    expect([n(a), n(b)]).toEqual([11, 100])
  })

  it('updateJsonSync writes the file it read even if its mutator changes the cwd', () => {
    const { a, b, n } = twoDirs()
    const next = updateJsonSync<N>('index.json', (s) => {
      process.chdir(b)
      s.n += 1
    })
    expect(next.n).toBe(1)
    expect([n(a), n(b)]).toEqual([1, 100])
  })

  it('errors still name the path as the caller spelled it', async () => {
    const { a } = twoDirs()
    mkdirSync(join(a, 'dir.json'))
    const err = await updateJson('dir.json', () => {}).catch((e: Error & { path?: string }) => e)
    expect(err).toMatchObject({ code: 'EISDIR', path: 'dir.json' })
    expect(err.message).toContain("'dir.json'")
    expect(() => updateJsonSync('dir.json', () => {})).toThrow(
      expect.objectContaining({ code: 'EISDIR', path: 'dir.json' }),
    )
  })
})

describe('a relative path whose working directory is renamed away', () => {
  it('is locked, read and written where the OS resolves it (as Node fs does), all three alike', async () => {
    const base = tempDir('rel')
    const d = join(base, 'data')
    mkdirSync(d)
    const child = node('cwd-hold.cjs', [d])
    await child.line('READY')
    // A deploy swap: the directory the process works in moves away and a new one takes its name.
    // Node's process.cwd() still spells data/; the OS (and fs.readFileSync('index.json')) now
    // resolves relative paths in data.old/.
    renameSync(d, join(base, 'data.old'))
    mkdirSync(d)
    writeFileSync(join(d, 'index.json'), '{"n":1}')
    // Past the 100 ms a released sidecar descriptor and a resolved key are trusted
    // (docs/protocol.md).
    await new Promise((resolve) => setTimeout(resolve, 150))
    child.child.kill('SIGUSR2')
    await child.line('HELD')
    const n = (dir: string) => (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as N).n
    expect([n(join(base, 'data.old')), n(d)]).toEqual([11, 1])
    expect(tryAcquire(join(base, 'data.old', 'index.json'))).toBeNull()
    child.child.kill('SIGKILL')
    await child.exited
  })
})
