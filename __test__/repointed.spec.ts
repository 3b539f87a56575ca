// An update resolves its file at the call and locks that file. If the file is replaced by a
// symlink (to a file whose lock someone else holds) while the update waits, following the link
// would read and write a file whose lock is not held: the update refuses it (ELOOP) instead, and
// neither file changes.
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, readJson, updateJson, withIndexLock } from '../index.js'
import { node, tempDir, waitingForLock } from './helpers'

/** Replaces `path` by a symlink to `target` in one rename, as an attacker or a careless tool would. */
function repoint(path: string, target: string) {
  const link = `${path}.link`
  symlinkSync(target, link)
  renameSync(link, path)
}

describe('a symlink put in place of an update’s file while it waits', () => {
  for (const batched of [true, false]) {
    it(`is refused, not followed (${batched ? 'group commit' : 'nested in a section'})`, async () => {
      const dir = tempDir('repoint')
      const a = join(dir, 'a.json')
      const b = join(dir, 'b.json')
      writeFileSync(a, '{"n":1}\n')
      writeFileSync(b, '{"b":"theirs"}\n')
      const holdA = await acquire(a)
      let ran = false
      const update = batched
        ? updateJson(a, (s: { n: number }) => {
            ran = true
            s.n++
          })
        : withIndexLock([a, join(dir, 'z.json')], () =>
            updateJson(a, (s: { n: number }) => {
              ran = true
              s.n++
            }),
          )
      const outcome = update.then(
        () => 'resolved',
        (e: NodeJS.ErrnoException) => e,
      )
      // b's lock is held by someone else for the whole time.
      const holdB = await acquire(b)
      repoint(a, b)
      await holdA.release()
      const err = (await outcome) as NodeJS.ErrnoException
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe('ELOOP')
      expect(err.path).toBe(a)
      expect(err.message).toMatch(/symbolic link while this update waited/)
      expect(ran).toBe(false)
      expect(readFileSync(b, 'utf8')).toBe('{"b":"theirs"}\n')
      await holdB.release()
    })
  }

  it('a directory on its way replaced by a symlink is refused too, before any mutator runs', async () => {
    const dir = tempDir('repoint')
    const sub = join(dir, 'sub')
    const elsewhere = join(dir, 'elsewhere')
    mkdirSync(sub)
    mkdirSync(elsewhere)
    const a = join(sub, 'x.json')
    writeFileSync(a, '{"n":1}\n')
    writeFileSync(join(elsewhere, 'x.json'), '{"theirs":1}\n')
    const hold = await acquire(a)
    let runs = 0
    const outcomes = [1, 2, 3].map(() =>
      updateJson(a, (s: { n: number }) => {
        runs++
        s.n++
      }).then(
        () => 'resolved',
        (e: NodeJS.ErrnoException) => e.code,
      ),
    )
    renameSync(sub, join(dir, 'sub-old'))
    symlinkSync(elsewhere, sub)
    await hold.release()
    expect(await Promise.all(outcomes)).toEqual(['ELOOP', 'ELOOP', 'ELOOP'])
    expect(runs).toBe(0)
    expect(readFileSync(join(elsewhere, 'x.json'), 'utf8')).toBe('{"theirs":1}\n')
    expect(readFileSync(join(dir, 'sub-old', 'x.json'), 'utf8')).toBe('{"n":1}\n')
  })

  it('updateJsonSync, waiting on another process, refuses it too', async () => {
    const dir = tempDir('repoint')
    const a = join(dir, 'a.json')
    const b = join(dir, 'b.json')
    writeFileSync(a, '{"n":1}\n')
    writeFileSync(b, '{"b":"theirs"}\n')
    const go = join(dir, 'go')
    const child = node('repoint-sync.cjs', [a, go])
    await child.line('WAITING')
    await waitingForLock(child.child.pid!, `${a}.lock`)
    repoint(a, b)
    writeFileSync(go, '')
    expect((await child.exited).code).toBe(0)
    expect(child.stdout()).toContain('OUTCOME ELOOP')
    expect(readFileSync(b, 'utf8')).toBe('{"b":"theirs"}\n')
  })

  it('a symlink there at the call is followed as before: the update locks and writes its target', async () => {
    const dir = tempDir('repoint')
    const a = join(dir, 'a.json')
    const b = join(dir, 'b.json')
    writeFileSync(b, '{"n":1}\n')
    symlinkSync(b, a)
    await updateJson(a, (s: { n: number }) => {
      s.n++
    })
    expect(await readJson(b)).toEqual({ n: 2 })
  })
})
