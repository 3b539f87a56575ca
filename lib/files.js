'use strict'
// File IO through the native core: whole-file reads and atomic writes (unique temp file, fsync,
// rename; src/atomic.rs), and the IO of an update, done on the path as resolved at call time.

const { dirname } = require('node:path')
const { native, callNative, awaitNative } = require('./native')
const { absolute, isLocalDirectory } = require('./targets')

/**
 * The bytes of `path`, or null when it does not exist. A threadpool round trip costs several
 * times a small file's whole read, so a file in a directory known to be on a local filesystem is
 * first tried on the JS thread, from the page cache only (native.readFileCached never waits for
 * the disk or a server, and checks the file's own mount: a link may lead off the directory's
 * filesystem); anything that would wait, fail or is not Linux goes to the threadpool.
 */
function readBytes(path, pinned = false) {
  const dir = directoryOf(path)
  const local = dir !== null && isLocalDirectory(dir, false)
  if (local) {
    const bytes = native.readFileCached(path, pinned)
    if (bytes !== undefined) return Promise.resolve(bytes)
  }
  const read = awaitNative(native.readFile(path, pinned))
  // Identified only once its filesystem has just answered a read, not before a first one.
  if (local || dir === null) return read
  return read.then((bytes) => {
    if (bytes !== null) isLocalDirectory(dir, true)
    return bytes
  })
}

/** The directory `path` is in, as an absolute path; null when the cwd it is relative to is gone. */
function directoryOf(path) {
  try {
    return dirname(absolute(path))
  } catch {
    return null
  }
}

function readBytesSync(path, pinned = false) {
  return callNative(() => native.readFileSync(path, pinned))
}

/** Atomically replaces `path` with `data` (a string or bytes); `mode`: a new file's permission bits. */
function writeBytes(path, data, fsync, mode, pinned = false) {
  return awaitNative(native.atomicWrite(path, data, fsync, mode, pinned))
}

function writeBytesSync(path, data, fsync, mode, pinned = false) {
  callNative(() => native.atomicWriteSync(path, data, fsync, mode, pinned))
}

/**
 * Removes the orphaned temp files of the data file `key` (a lock key); resolves with their names,
 * rejects with a SweepError when a removal failed (lib/native.js decodes it).
 */
function sweepTemps(key) {
  return awaitNative(native.sweepTemps(key))
}

/**
 * Where an update does its IO: `io`, the file its lock key names as resolved at the call
 * (lib/targets.js `resolveTarget`), so that neither a process.chdir() nor a symlink or directory
 * re-pointed while it waits can make it read or write a file other than the one it locked. The
 * IO is pinned: a symlink put in place of that file meanwhile is refused (ELOOP), not followed.
 */
function ioTarget(path, io, fsync) {
  return { path, io, fsync }
}

/** An error of IO on `target.io`, naming the path as the caller spelled it (as Node's fs errors do). */
function asGiven(err, { path, io }) {
  if (io !== path && err?.path === io) {
    err.path = path
    if (typeof err.message === 'string') err.message = err.message.split(io).join(path)
  }
  return err
}

async function readTarget(target) {
  try {
    return await readBytes(target.io, true)
  } catch (err) {
    throw asGiven(err, target)
  }
}

async function writeTarget(target, text) {
  try {
    await writeBytes(target.io, text, target.fsync, undefined, true)
  } catch (err) {
    throw asGiven(err, target)
  }
}

/**
 * `writeTarget` by the holder of `lock`, which the native write releases on its own thread the
 * moment the write has succeeded: the next holder (here or in another process) does not wait for
 * the hop back to this thread. A failed write keeps the lock.
 */
async function writeTargetReleasing(target, text, lock) {
  try {
    await awaitNative(native.atomicWriteRelease(target.io, text, target.fsync, lock))
  } catch (err) {
    throw asGiven(err, target)
  }
}

function readTargetSync(target) {
  try {
    return readBytesSync(target.io, true)
  } catch (err) {
    throw asGiven(err, target)
  }
}

function writeTargetSync(target, text) {
  try {
    writeBytesSync(target.io, text, target.fsync, undefined, true)
  } catch (err) {
    throw asGiven(err, target)
  }
}

module.exports = {
  readBytes,
  readBytesSync,
  writeBytes,
  writeBytesSync,
  sweepTemps,
  ioTarget,
  readTarget,
  writeTarget,
  writeTargetReleasing,
  readTargetSync,
  writeTargetSync,
}
