'use strict'
// File IO through the native core: whole-file reads and atomic writes (unique temp file, fsync,
// rename; src/atomic.rs), and the IO of an update, done on the path as resolved at call time.

const { native, callNative, awaitNative } = require('./native')
const { absolute } = require('./targets')

/** The bytes of `path`, or null when it does not exist. */
function readBytes(path) {
  return awaitNative(native.readFile(path))
}

function readBytesSync(path) {
  return callNative(() => native.readFileSync(path))
}

/** Atomically replaces `path` with `data` (a string or bytes); `mode`: a new file's permission bits. */
function writeBytes(path, data, fsync, mode) {
  return awaitNative(native.atomicWrite(path, data, fsync, mode))
}

function writeBytesSync(path, data, fsync, mode) {
  callNative(() => native.atomicWriteSync(path, data, fsync, mode))
}

/**
 * Removes the orphaned temp files of the data file `key` (a lock key); resolves with their names,
 * rejects with a SweepError when a removal failed (lib/native.js decodes it).
 */
function sweepTemps(key) {
  return awaitNative(native.sweepTemps(key))
}

/**
 * Where an update does its IO: `path` made absolute under the cwd of the call (as its lock key
 * was), so that a process.chdir() while it waits cannot make it read or write another file.
 */
function ioTarget(path, fsync) {
  return { path, io: absolute(path), fsync }
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
    return await readBytes(target.io)
  } catch (err) {
    throw asGiven(err, target)
  }
}

async function writeTarget(target, text) {
  try {
    await writeBytes(target.io, text, target.fsync, undefined)
  } catch (err) {
    throw asGiven(err, target)
  }
}

function readTargetSync(target) {
  try {
    return readBytesSync(target.io)
  } catch (err) {
    throw asGiven(err, target)
  }
}

function writeTargetSync(target, text) {
  try {
    writeBytesSync(target.io, text, target.fsync, undefined)
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
  readTargetSync,
  writeTargetSync,
}
