// ESM consumer compiled by tsc (to dist/run-esm.mjs) and run by __test__/package.spec.ts: the
// named imports resolve through "exports" -> "import" and work against the real addon.
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { acquire, LockTimeoutError, readJson, updateJson, withIndexLock } from 'index-lock'

interface Counter {
  n: number
  seen: number[]
}

const dir = mkdtempSync(join(process.cwd(), 'data-esm-'))
const file = join(dir, 'index.json')

await Promise.all(
  Array.from({ length: 20 }, (_, i) =>
    updateJson<Counter>(
      file,
      (c) => {
        c.n++
        c.seen.push(i)
      },
      { default: { n: 0, seen: [] } },
    ),
  ),
)
const inside = await withIndexLock(file, async () => (await readJson<Counter>(file)).n)
const held = await acquire(file)
let timeout = ''
try {
  await acquire(file, { timeoutMs: 0 })
} catch (err) {
  if (err instanceof LockTimeoutError) timeout = err.code
}
await held.release()
console.log(JSON.stringify({ n: inside, seen: (await readJson<Counter>(file)).seen.length, timeout }))
