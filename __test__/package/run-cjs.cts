// CommonJS consumer compiled by tsc (to dist/run-cjs.cjs) and run by __test__/package.spec.ts:
// `require('index-lock')` resolves through "exports" -> "require" and works against the addon.
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import lock = require('index-lock')

const dir = mkdtempSync(join(process.cwd(), 'data-cjs-'))
const file = join(dir, 'index.json')

const n = lock.withIndexLockSync(file, () => {
  lock.writeJsonSync(file, { n: 1 })
  return lock.updateJsonSync<{ n: number }>(file, (c) => ({ n: c.n + 1 })).n
})
lock.atomicWriteSync(file, '{"broken": ')
let corrupt = ''
try {
  lock.readJsonSync(file)
} catch (err) {
  if (err instanceof lock.CorruptFileError) corrupt = err.code
}
console.log(JSON.stringify({ n, corrupt }))
