// ESM entry: the same module instance as require('index-lock'), so ESM and CommonJS callers in
// one process share one lock registry and one set of error classes.
import lib from './index.js'

export const {
  withIndexLock,
  withIndexLockSync,
  acquire,
  acquireSync,
  tryAcquire,
  atomicWrite,
  atomicWriteSync,
  readJson,
  readJsonSync,
  writeJson,
  writeJsonSync,
  updateJson,
  updateJsonSync,
  patchJson,
  patchJsonSync,
  mergeJson,
  mergeJsonSync,
  sweep,
  inspect,
  backend,
  SweepError,
  LockTimeoutError,
  CorruptFileError,
  PatchError,
  AbortError,
  LockNestedError,
  LockDeadlockError,
  LockUpgradeError,
} = lib

export default lib
