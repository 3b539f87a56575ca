'use strict'
// inspect(path): the state of a data file's lock and files, as `index-lock status` shows it.
// It changes nothing and makes no lock request of another process fail or wait, except where
// the OS cannot tell about a lock without a lock (native.probeLock).

const fs = require('node:fs')
const { dirname } = require('node:path')
const { native, callNative } = require('./native')
const { invalidArgType } = require('./errors')
const { readBytesSync } = require('./files')
const { fileState } = require('./json')

/** /proc/<pid>/cmdline with its NUL separators as spaces; null where there is none to read. */
function commandLine(pid) {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return raw.replace(/\0+$/, '').split('\0').join(' ') || null
  } catch {
    return null
  }
}

/**
 * Why the sidecar cannot be a lock file, or null. The library refuses a directory (EISDIR; a
 * proper-lockfile lock is a `<path>.lock` directory) and never follows a symlink there (ELOOP,
 * O_NOFOLLOW), so nobody can take the lock while either is in the way: that is a problem, not a
 * holder.
 */
function unusableSidecar(sidecar) {
  let stats
  try {
    stats = fs.lstatSync(sidecar)
  } catch (err) {
    if (err.code === 'ENOENT') return null
    throw err
  }
  if (stats.isDirectory()) {
    return {
      kind: 'directory',
      problem:
        `the lock file ${sidecar} is a directory (a proper-lockfile lock, perhaps left over): ` +
        'index-lock cannot take this lock (EISDIR) until it is removed',
    }
  }
  if (stats.isSymbolicLink()) {
    return {
      kind: 'symlink',
      problem:
        `the lock file ${sidecar} is a symlink: index-lock does not follow it and cannot take ` +
        'this lock (ELOOP) until it is removed',
    }
  }
  return null
}

/** Who holds the lock of the data file whose lock key is `key`, and in which mode. */
function lockState(key, sidecar) {
  let holders = callNative(() => native.lockHolders(key)).map(({ pid, mode }) => ({
    pid,
    mode,
    cmdline: commandLine(pid),
  }))
  // Where the OS lists nobody, it may simply not show the lock: macOS and Windows have no
  // /proc/locks, a holder in another pid namespace (a container sharing the volume) is not listed
  // in ours, and distributed filesystems (GlusterFS) hand flocks to their server. The native
  // probe asks without a lock where the OS can (F_GETLK on macOS; on Linux nothing is asked
  // where /proc/locks shows all), else with a shared try-lock, which sees only an exclusive
  // holder; never an exclusive one, which would refuse every other process's request meanwhile.
  if (holders.length === 0 && fs.existsSync(sidecar)) {
    const held = callNative(() => native.probeLock(key))
    if (held !== 'free') holders = [{ pid: null, mode: held, cmdline: null }]
  }
  const mode = holders.length === 0 ? null : holders.some((h) => h.mode === 'exclusive') ? 'exclusive' : 'shared'
  // Processes blocked waiting for it (Linux: /proc/locks); null where the OS cannot tell.
  const waiters =
    callNative(() => native.lockWaiters(key))?.map(({ pid, mode }) => ({ pid, mode, cmdline: commandLine(pid) })) ??
    null
  return { held: holders.length > 0, mode, holders, waiters, unusable: null }
}

/** Whether the data file parses, exactly as the JSON readers decide it. */
function dataState(path) {
  try {
    const state = fileState(path, readBytesSync(path))
    return { state: state.absent ?? 'ok', message: null }
  } catch (err) {
    return { state: err.code === 'ECORRUPT' ? 'corrupt' : 'error', message: err.message }
  }
}

const tempInfo = ({ name, pid, alive, ageMs }) => ({ name, pid, alive, ageMs: Math.round(ageMs) })

/**
 * Everything known about the lock and files of `path`. Only a path that is not a string throws;
 * one that cannot be resolved (empty, a missing directory) is reported in `error`.
 */
function inspect(path) {
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path)
  const report = {
    path,
    resolved: null,
    lockFile: null,
    lock: null,
    data: null,
    tempFiles: null,
    filesystem: null,
    problems: [],
    error: null,
  }
  const problem = (text) => report.problems.push(text)
  try {
    report.resolved = callNative(() => native.resolvePath(path))
  } catch (err) {
    report.error = { code: err.code ?? null, message: err.message }
    problem(err.message)
    return report
  }
  const { resolved } = report
  try {
    report.lockFile = callNative(() => native.sidecarPath(resolved))
    const unusable = unusableSidecar(report.lockFile)
    if (unusable) {
      // Nobody can wait for a lock file nobody can open; null only where the OS cannot tell.
      const waiters = callNative(() => native.lockWaiters(resolved)) === null ? null : []
      report.lock = { held: false, mode: null, holders: [], waiters, unusable: unusable.kind }
      problem(unusable.problem)
    } else {
      report.lock = lockState(resolved, report.lockFile)
    }
  } catch (err) {
    problem(`cannot tell whether the lock is held: ${err.message}`)
  }
  report.data = dataState(path)
  if (report.data.state === 'corrupt') problem('the data file does not parse as JSON')
  if (report.data.state === 'error') problem(`the data file cannot be read: ${report.data.message}`)
  try {
    const temps = callNative(() => native.tempFiles(resolved))
    report.tempFiles = {
      orphaned: temps.filter((t) => t.orphaned).map(tempInfo),
      live: temps.filter((t) => !t.orphaned).map(tempInfo),
    }
    const n = report.tempFiles.orphaned.length
    if (n > 0) problem(`${n} orphaned temp file${n === 1 ? '' : 's'}: remove with 'index-lock sweep ${path}'`)
  } catch (err) {
    problem(`cannot list temp files: ${err.message}`)
  }
  try {
    const info = callNative(() => native.filesystemInfo(dirname(resolved)))
    report.filesystem = {
      fstype: info.fstype,
      mountPoint: info.mountPoint ?? null,
      coherence: info.coherence,
      reason: info.reason,
    }
    if (info.coherence === 'unsafe') {
      problem(`${info.fstype} (${info.reason}): flock does not exclude writers on other hosts`)
    }
  } catch (err) {
    problem(`cannot identify the filesystem: ${err.message}`)
  }
  return report
}

module.exports = { inspect }
