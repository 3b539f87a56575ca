// Plain ESM, no TypeScript: named and default imports, and one module instance with require().
import { createRequire } from 'node:module'
import * as ns from 'index-lock'
import lib, { withIndexLock, LockTimeoutError } from 'index-lock'

const require = createRequire(import.meta.url)
const cjs = require('index-lock')
const file = new URL('./data-plain-mjs.json', import.meta.url).pathname
const value = await withIndexLock(file, () => 42)
console.log(
  JSON.stringify({
    resolved: import.meta.resolve('index-lock'),
    named: Object.keys(ns)
      .filter((k) => k !== 'default')
      .sort(),
    hasDefault: 'default' in ns,
    sameInstance: lib === cjs && withIndexLock === cjs.withIndexLock && LockTimeoutError === cjs.LockTimeoutError,
    value,
  }),
)
