// A consumer's own vitest suite, run with the consumer project's vitest against the installed
// package (named `.test.ts` so the repository's vitest, which runs `*.spec.ts`, leaves it alone).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire, CorruptFileError, LockTimeoutError, readJson, updateJson, withIndexLock } from 'index-lock'

const dir = mkdtempSync(join(tmpdir(), 'index-lock-consumer-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('index-lock in a consumer project', () => {
  it('loses no update across 50 concurrent updateJson calls', async () => {
    const file = join(dir, 'counter.json')
    const results = await Promise.all(
      Array.from({ length: 50 }, () => updateJson<{ n: number }>(file, (c) => ({ n: c.n + 1 }), { default: { n: 0 } })),
    )
    expect((await readJson<{ n: number }>(file)).n).toBe(50)
    expect(new Set(results.map((r) => r.n)).size).toBe(50)
  })

  it('runs withIndexLock sections one at a time', async () => {
    const file = join(dir, 'sections.json')
    let inside = 0
    let most = 0
    await Promise.all(
      Array.from({ length: 10 }, () =>
        withIndexLock(file, async () => {
          inside++
          most = Math.max(most, inside)
          await new Promise((r) => setTimeout(r, 2))
          inside--
        }),
      ),
    )
    expect(most).toBe(1)
  })

  it('times out with LockTimeoutError while the lock is held', async () => {
    const file = join(dir, 'held.json')
    const held = await acquire(file)
    try {
      await expect(acquire(file, { timeoutMs: 20 })).rejects.toBeInstanceOf(LockTimeoutError)
    } finally {
      await held.release()
    }
  })

  it('reports malformed JSON as CorruptFileError', async () => {
    const file = join(dir, 'corrupt.json')
    writeFileSync(file, '{"a": ')
    await expect(readJson(file)).rejects.toBeInstanceOf(CorruptFileError)
  })
})
