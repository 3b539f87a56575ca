'use strict'
// index-lock's public face: every export, its argument checks, and the one call into lib/ that
// does the work. The full contract of each function is in index.d.ts; how the pieces fit is in
// ARCHITECTURE.md. Locking and file IO live in Rust (src/), reached through lib/native.js.

const errors = require('./lib/errors')
const {
  checkData,
  checkFunction,
  checkOptions,
  checkPath,
  checkPaths,
  lockOptions,
  writeOptions,
} = require('./lib/options')
const { checkWriteFilesystem, checkWriteFilesystemAsync, pathsOf, resolveKey, targetsOf } = require('./lib/targets')
const { lockSet, lockSetSync, newHandle, retain, tryLockSet } = require('./lib/locks')
const { holds, refuseHeldByChain, refuseInMutator, runAsNestedWrite, runLocked, runLockedSync } = require('./lib/holds')
const { readBytes, readBytesSync, sweepTemps, writeBytes, writeBytesSync } = require('./lib/files')
const { parseJson, readDefault, serialize } = require('./lib/json')
const { update, updateRequest, updateSync } = require('./lib/update')
const { change, changeRequest, changeSync } = require('./lib/changes')
const { readPointer, readPointerSync } = require('./lib/pointer')
const { inspect } = require('./lib/inspect')
const { byteLength, lockTimes, traced } = require('./lib/diagnostics')
const { native } = require('./lib/native')

// ---------------------------------------------------------------------------------------------
// Locks

/** Runs `fn` holding the lock of `pathOrPaths` (reentrant within an async call chain). */
async function withIndexLock(pathOrPaths, fn, options) {
  checkPaths(pathOrPaths)
  checkFunction(fn, 'fn')
  const opts = lockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs, false)
  return traced(
    'withIndexLock',
    () => ({ paths: [pathOrPaths].flat(), mode: opts.mode }),
    (context) => runLocked(targets, opts, fn, lockTimes(context)),
  )
}

/** `withIndexLock` blocking the thread for the lock; `fn` must be synchronous. */
function withIndexLockSync(pathOrPaths, fn, options) {
  checkPaths(pathOrPaths)
  checkFunction(fn, 'fn')
  const opts = lockOptions(options, 'sync')
  return runLockedSync(targetsOf(pathOrPaths, opts.networkFs), opts, fn)
}

/** Waits for the lock of `pathOrPaths` and resolves with a handle to `release()`. */
async function acquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = lockOptions(options)
  const targets = targetsOf(pathOrPaths, opts.networkFs, false)
  refuseInMutator(targets)
  refuseHeldByChain(targets, opts.mode)
  return traced(
    'acquire',
    () => ({ paths: [pathOrPaths].flat(), mode: opts.mode }),
    async (context) => {
      const times = lockTimes(context)
      const locks = await lockSet(targets, opts)
      times?.granted()
      return newHandle(locks, pathsOf(pathOrPaths, targets), opts.mode)
    },
  )
}

/** `acquire` blocking the thread for the lock. */
function acquireSync(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const opts = lockOptions(options, 'sync')
  const targets = targetsOf(pathOrPaths, opts.networkFs)
  refuseInMutator(targets)
  const locks = lockSetSync(targets, opts).map(retain)
  return newHandle(locks, pathsOf(pathOrPaths, targets), opts.mode)
}

/** The lock of `pathOrPaths` if that needs no waiting and jumps no queue, else null. */
function tryAcquire(pathOrPaths, options) {
  checkPaths(pathOrPaths)
  const { mode, networkFs } = lockOptions(options, 'try')
  const targets = targetsOf(pathOrPaths, networkFs)
  refuseInMutator(targets)
  const locks = tryLockSet(targets, mode)
  return locks && newHandle(locks, pathsOf(pathOrPaths, targets), mode)
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * `write()` of `path`, ending under the lock of the section of this chain that holds the path
 * (`writeSync()` in a synchronous one; see lib/holds.js `runAsNestedWrite`), else as it is. Only
 * a chain that holds something pays for resolving the path's lock key.
 */
function chainWrite(path, write, writeSync) {
  if (!holds.getStore()?.size) return write()
  let key
  try {
    key = resolveKey(path)
  } catch {
    return write() // a path that does not resolve: the write itself reports what is wrong
  }
  return runAsNestedWrite(key, path, write, writeSync)
}

/**
 * `write()` once the `networkFs` policy allows it, identifying the directory on the threadpool the
 * first time (lib/targets.js `checkWriteFilesystemAsync`); no extra turn once it is known.
 */
function checkedWrite(path, networkFs, write) {
  const check = checkWriteFilesystemAsync(path, networkFs)
  return check ? check.then(write) : write()
}

/** A sync write of `path` inside an updateJson mutator of the path would be replaced by its update. */
function refuseWriteInMutator(path) {
  if (!holds.getStore()?.size) return
  let key
  try {
    key = resolveKey(path)
  } catch {
    return
  }
  refuseInMutator([{ key, path }])
}

/** Replaces the content of `path` atomically (temp file, fsync, rename). Takes no lock. */
async function atomicWrite(path, data, options) {
  checkPath(path)
  const bytes = checkData(data)
  const { fsync, mode, networkFs } = writeOptions(options)
  await traced(
    'atomicWrite',
    () => ({ path, bytes: byteLength(bytes), fsync }),
    () =>
      chainWrite(
        path,
        () => checkedWrite(path, networkFs, () => writeBytes(path, bytes, fsync, mode)),
        () => {
          checkWriteFilesystem(path, networkFs)
          writeBytesSync(path, bytes, fsync, mode)
        },
      ),
  )
}

function atomicWriteSync(path, data, options) {
  checkPath(path)
  const bytes = checkData(data)
  const { fsync, mode, networkFs } = writeOptions(options)
  checkWriteFilesystem(path, networkFs)
  refuseWriteInMutator(path)
  writeBytesSync(path, bytes, fsync, mode)
}

/** Reads and parses a JSON file; `options.default` for a missing or empty one. Takes no lock. */
async function readJson(path, options) {
  checkPath(path)
  const o = checkOptions(options)
  const read = readDefault(o)
  return traced(
    'readJson',
    () => ({ path, pointer: o.pointer }),
    async () => {
      if (o.pointer !== undefined) return readPointer(path, o.pointer, read)
      return parseJson(path, await readBytes(path), read)
    },
  )
}

function readJsonSync(path, options) {
  checkPath(path)
  const o = checkOptions(options)
  const read = readDefault(o)
  if (o.pointer !== undefined) return readPointerSync(path, o.pointer, read)
  return parseJson(path, readBytesSync(path), read)
}

/** `atomicWrite(path, JSON.stringify(value, null, space) + '\n')`. Takes no lock. */
async function writeJson(path, value, options) {
  checkPath(path)
  const { fsync, space, networkFs } = writeOptions(options, { json: true })
  // Serialized now: the value as it is at the call, whenever the write's turn comes.
  const text = serialize(value, space)
  await traced(
    'writeJson',
    () => ({ path, bytes: byteLength(text), fsync }),
    () =>
      chainWrite(
        path,
        () => checkedWrite(path, networkFs, () => writeBytes(path, text, fsync, undefined)),
        () => {
          checkWriteFilesystem(path, networkFs)
          writeBytesSync(path, text, fsync, undefined)
        },
      ),
  )
}

function writeJsonSync(path, value, options) {
  checkPath(path)
  const { fsync, space, networkFs } = writeOptions(options, { json: true })
  checkWriteFilesystem(path, networkFs)
  refuseWriteInMutator(path)
  writeBytesSync(path, serialize(value, space), fsync, undefined)
}

/** Read-modify-write under the exclusive lock, with group commit of concurrent calls. */
async function updateJson(path, mutator, options) {
  const req = updateRequest(path, mutator, options, false)
  return traced(
    'updateJson',
    () => ({ path, mode: 'exclusive' }),
    (context) => update(req, mutator, context),
  )
}

function updateJsonSync(path, mutator, options) {
  return updateSync(updateRequest(path, mutator, options, true), mutator)
}

/** Applies an RFC 6902 JSON Patch to the file natively, under the exclusive lock; atomic per call. */
async function patchJson(path, operations, options) {
  const req = changeRequest(path, 'patch', operations, options, false)
  return traced(
    'patchJson',
    () => ({ path, mode: 'exclusive' }),
    (context) => change(req, context),
  )
}

function patchJsonSync(path, operations, options) {
  changeSync(changeRequest(path, 'patch', operations, options, true))
}

/** Applies an RFC 7396 JSON Merge Patch to the file natively, under the exclusive lock. */
async function mergeJson(path, mergePatch, options) {
  const req = changeRequest(path, 'merge', mergePatch, options, false)
  return traced(
    'mergeJson',
    () => ({ path, mode: 'exclusive' }),
    (context) => change(req, context),
  )
}

function mergeJsonSync(path, mergePatch, options) {
  changeSync(changeRequest(path, 'merge', mergePatch, options, true))
}

// ---------------------------------------------------------------------------------------------
// Maintenance

/**
 * Removes temp files of `path` left by writers that died mid-save (no writer holds their lock).
 * Resolves with the names removed; rejects with a `SweepError` naming each file it could not
 * remove. Needs no lock: a live writer's temp file is never removed.
 */
async function sweep(path) {
  checkPath(path)
  return sweepTemps(resolveKey(path))
}

module.exports = {
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
  /** The state of `path`'s lock, data file, temp files and filesystem; changes nothing. */
  inspect,
  /** The platform backend of the loaded binary: 'linux', 'generic-unix' (macOS) or 'windows'. */
  backend: () => native.backend(),
  SweepError: errors.SweepError,
  LockTimeoutError: errors.LockTimeoutError,
  CorruptFileError: errors.CorruptFileError,
  PatchError: errors.PatchError,
  AbortError: errors.AbortError,
  LockNestedError: errors.LockNestedError,
  LockDeadlockError: errors.LockDeadlockError,
  LockUpgradeError: errors.LockUpgradeError,
}
