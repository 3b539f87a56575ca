'use strict'
// What a path argument locks: its lock key (the canonical path the native registry and the
// sidecar are named by), the global order of a lock set, and the network-filesystem policy,
// with the caches that policy keeps.

const { dirname, isAbsolute, sep } = require('node:path')
const { native, callNative } = require('./native')
const { codedError } = require('./errors')

/** Most directories whose filesystem is remembered (and warned about) at once; then it starts over. */
const FILESYSTEM_CACHE_MAX = 4096
// flock is advisory and local: on SMB, sshfs and other FUSE mounts, NFS with nolock and the like,
// it does not exclude writers on other hosts. Each directory is identified once per process.
const filesystems = new Map()
const warned = new Set()
/** Directories being identified on the threadpool: dir -> promise of its info (null: unknown). */
const learning = new Map()

/**
 * How long a resolved lock key is reused without resolving the path again (a realpath of the
 * directory and an lstat each time): long enough to keep both off a hot lock/unlock loop, short
 * enough that a directory symlink re-pointed or a directory moved is followed at once by any
 * call made later than this. Within it, a call locks the key the path had when it was resolved,
 * as any call that resolved it just before the change would.
 */
const KEY_TRUST_MS = 100
/** Most paths whose key is remembered at once; then it starts over. */
const KEY_CACHE_MAX = 4096
/** Resolved target by absolute path (see `absolute`): `{ key, path, at }`. */
const keys = new Map()

/**
 * `{ key, path }` for `path`: its lock key and the file it names, resolved (symlinks followed,
 * unfolded), which a locked update reads and writes so that its IO goes to the file it locked
 * whatever changes while it waits. A relative path is made absolute first against the OS's
 * working directory (`absolute`), which is what every file call resolves it against.
 */
function resolveTarget(path) {
  let spelled
  try {
    spelled = absolute(path)
  } catch {
    // No working directory (deleted): the native call reports it.
    return callNative(() => native.resolveTarget(path))
  }
  const now = performance.now()
  const known = keys.get(spelled)
  if (known !== undefined && now - known.at < KEY_TRUST_MS) return known
  let resolved
  try {
    resolved = callNative(() => native.resolveTarget(spelled))
  } catch (err) {
    throw asSpelled(err, spelled, path)
  }
  if (keys.size >= KEY_CACHE_MAX) keys.clear()
  const entry = { key: resolved.key, path: resolved.path, at: now }
  keys.set(spelled, entry)
  return entry
}

/** The lock key of `path` (see `resolveTarget`). */
function resolveKey(path) {
  return resolveTarget(path).key
}

/**
 * A native error about `spelled` (a relative `path` made absolute, or a lock key) naming `path`,
 * as Node's fs errors do.
 */
function asSpelled(err, spelled, path) {
  if (spelled === path) return err
  if (err?.path === spelled) err.path = path
  if (typeof err?.message === 'string') err.message = err.message.split(spelled).join(path)
  return err
}

/**
 * Checked path(s) as `[{ key, path }]`: one per file, in the global lock order, each checked
 * against the `networkFs` policy.
 */
function targetsOf(pathOrPaths, networkFs, sync = true) {
  if (!Array.isArray(pathOrPaths)) {
    const { key, path: io } = resolveTarget(pathOrPaths)
    checkFilesystem(key, pathOrPaths, networkFs, sync)
    return [{ key, path: pathOrPaths, io }]
  }
  const byKey = new Map()
  for (const path of pathOrPaths) {
    const { key, path: io } = resolveTarget(path)
    checkFilesystem(key, path, networkFs, sync)
    if (!byKey.has(key)) byKey.set(key, { key, path, io })
  }
  // Every caller takes a set in the order of the canonical paths, so overlapping sets taken by
  // two callers cannot deadlock.
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** The paths a handle reports: as given, in the caller's order, one spelling per file. */
function pathsOf(pathOrPaths, targets) {
  if (!Array.isArray(pathOrPaths)) return [pathOrPaths]
  const spellings = new Set(targets.map((t) => t.path))
  return pathOrPaths.filter((p) => spellings.delete(p))
}

/** The filesystem of directory `dir` (`null`: it could not be identified), once per process. */
function filesystemOf(dir) {
  let info = filesystems.get(dir)
  if (info === undefined) {
    try {
      info = native.filesystemInfo(dir)
    } catch {
      info = null // the lock or write itself will report what is wrong with the directory
    }
    remember(dir, info)
  }
  return info
}

function remember(dir, info) {
  if (filesystems.size >= FILESYSTEM_CACHE_MAX) filesystems.clear()
  filesystems.set(dir, info)
}

/**
 * The filesystem of directory `dir` if known, else a promise of it, identified on the threadpool
 * (statfs waits as long as a network or FUSE server takes to answer: never on the JS thread).
 * The promise never rejects (null: it could not be identified).
 */
function learnFilesystem(dir) {
  const known = filesystems.get(dir)
  if (known !== undefined) return known
  let pending = learning.get(dir)
  if (pending === undefined) {
    pending = native.filesystemInfoAsync(dir).then(
      (info) => info,
      () => null,
    )
    pending = pending.then((info) => {
      learning.delete(dir)
      remember(dir, info)
      return info
    })
    learning.set(dir, pending)
  }
  return pending
}

/**
 * Applies `policy` to the directory of `key`. An async call (`sync` false) with the default
 * `'warn'` never identifies a directory on the JS thread: it is identified on the threadpool and
 * the warning follows. `'error'` must refuse before anything is locked, so a directory not yet
 * known is identified at once, on the calling thread.
 */
function checkFilesystem(key, path, policy, sync = true) {
  if (policy === 'allow') return
  const dir = dirname(key)
  if (sync || policy === 'error') return applyPolicy(filesystemOf(dir), dir, path, policy)
  const info = learnFilesystem(dir)
  if (!(info instanceof Promise)) return applyPolicy(info, dir, path, policy)
  info.then((known) => applyPolicy(known, dir, path, policy)).catch(() => {})
}

/** Warns about or refuses (`policy`) `path` in `dir` when `info` says flock is unsafe there. */
function applyPolicy(info, dir, path, policy) {
  if (info?.coherence !== 'unsafe') return
  const message =
    `'${path}' is on ${info.fstype} (${info.reason}): index-lock's flock there does not exclude ` +
    'writers on other hosts, so their updates can be lost. Keep the data directory on a local ' +
    "filesystem, or pass { networkFs: 'allow' } if only this host writes it."
  if (policy === 'error') {
    const err = codedError(Error, 'INDEX_LOCK_NETWORK_FS', message)
    err.path = path
    err.fstype = info.fstype
    throw err
  }
  if (!warned.has(dir)) {
    if (warned.size >= FILESYSTEM_CACHE_MAX) warned.clear()
    warned.add(dir)
    process.emitWarning(message, { code: 'INDEX_LOCK_NETWORK_FS', detail: `filesystem: ${info.fstype}` })
  }
}

/**
 * `checkFilesystem` for a write, which has no lock key yet: a path that does not resolve is left
 * to the write itself to report.
 */
function checkWriteFilesystem(path, policy) {
  if (policy === 'allow') return
  let key
  try {
    key = native.resolvePath(path)
  } catch {
    return
  }
  checkFilesystem(key, path, policy)
}

/**
 * `checkWriteFilesystem` for an async write, asking the filesystem nothing on the JS thread: the
 * directory `path` is in (as spelled, made absolute) is identified on the threadpool once. With
 * `'error'` the returned promise must be awaited before writing (it rejects); with `'warn'` the
 * write goes ahead and the warning follows once the directory is known. Undefined when there is
 * nothing to wait for.
 */
function checkWriteFilesystemAsync(path, policy) {
  if (policy === 'allow') return
  let dir
  try {
    dir = dirname(absolute(path))
  } catch {
    return // no working directory: the write reports it
  }
  const info = learnFilesystem(dir)
  if (!(info instanceof Promise)) return applyPolicy(info, dir, path, policy)
  const applied = info.then((known) => applyPolicy(known, dir, path, policy))
  if (policy === 'error') return applied
  // A warning's own failure (a throwing process.emitWarning listener) must not go unhandled.
  applied.catch(() => {})
}

/**
 * `path` made absolute against the OS's working directory now (what a relative path in any file
 * call resolves against; Node's process.cwd() keeps the spelling of the last chdir, which names
 * another directory once the working directory is renamed under the process). Not normalized (no
 * `..` folding), so the OS resolves it exactly as it would have resolved the relative path.
 * Throws (a coded error, `syscall: 'getcwd'`) when the working directory is gone.
 */
function absolute(path) {
  if (isAbsolute(path)) return path
  const cwd = callNative(() => native.currentDir())
  return cwd.endsWith(sep) ? cwd + path : cwd + sep + path
}

module.exports = {
  resolveKey,
  resolveTarget,
  targetsOf,
  pathsOf,
  checkWriteFilesystem,
  checkWriteFilesystemAsync,
  absolute,
  asSpelled,
}

/**
 * Whether reads in the directory `dir` may be tried on the JS thread (lib/files.js): only where
 * its filesystem is known local, since an open on a network or FUSE mount can wait on a server.
 * `learn`: identify an unknown directory now (once its filesystem has just answered a read).
 */
function isLocalDirectory(dir, learn) {
  if (learn) {
    const info = learnFilesystem(dir)
    return !(info instanceof Promise) && info?.coherence === 'local'
  }
  return filesystems.get(dir)?.coherence === 'local'
}

module.exports.isLocalDirectory = isLocalDirectory
