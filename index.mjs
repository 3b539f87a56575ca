// ESM entry: the same module instance as require('index-lock'), so ESM and CommonJS callers in
// one process share one lock registry and one set of error classes.
import lib from './index.js'

export const {
  withIndexLock,
  acquire,
  tryAcquire,
  atomicWrite,
  readJson,
  writeJson,
  updateJson,
  LockTimeoutError,
  CorruptFileError,
  AbortError,
} = lib

export default lib
