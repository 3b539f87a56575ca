/**
 * index-lock: read-modify-write of small files (an `index.json`, a `config.yaml`) from many async
 * callers, worker threads and processes without lost updates or torn files.
 *
 * Locks are a per-path FIFO queue inside the process plus an flock(2) on the sidecar file
 * `<path>.lock` across processes. Writes go to a unique temp file that is fsynced and renamed over
 * the target, then the directory is fsynced.
 */

/**
 * `T` as a parameter's type that takes no part in inferring `T` (TypeScript's `NoInfer`, spelled
 * so that TypeScript before 5.4 reads it too): a literal `default` such as `{ entries: {} }`
 * must not narrow the document's type to `{ entries: {} }`. The type comes from an explicit type
 * argument (`readJson<Index>(...)`) or an annotated mutator (`(index: Index) => ...`).
 */
export type Uninferred<T> = [T][T extends any ? 0 : never]

/** `'exclusive'` (one holder; for writers) or `'shared'` (many holders at once; for readers). */
export type LockMode = 'exclusive' | 'shared'

/**
 * What to do when a path is on a filesystem where flock does not exclude writers on other hosts
 * (SMB/CIFS, sshfs and other FUSE mounts, 9p, vboxsf, NFS mounted with `nolock` or `local_lock`):
 * `'warn'` (default) emits one `process` warning per directory with code
 * `INDEX_LOCK_NETWORK_FS`; `'error'` refuses with an error of that code naming the filesystem;
 * `'allow'` says nothing (only this host writes there).
 */
export type NetworkFsPolicy = 'warn' | 'error' | 'allow'

export interface LockOptions {
  /** See {@link NetworkFsPolicy}. Default `'warn'`. */
  networkFs?: NetworkFsPolicy
  /** Lock mode. Default `'exclusive'`. */
  mode?: LockMode
  /**
   * How long to wait for the lock before rejecting with {@link LockTimeoutError}, in ms.
   * Default `30000`; `0` tries once without waiting; `Infinity` waits forever.
   * Negative or `NaN` throws a `RangeError` (`ERR_OUT_OF_RANGE`).
   */
  timeoutMs?: number
  /**
   * Aborts a wait for the lock with an {@link AbortError}; has no effect once the lock is held.
   * Watched before the call queues: if its `addEventListener` throws, the call rejects with
   * that error and nothing is left queued.
   */
  signal?: AbortSignal
}

/** Options of the synchronous lock calls: no `signal`, since a blocked thread cannot see it. */
export interface SyncLockOptions {
  /** See {@link NetworkFsPolicy}. Default `'warn'`. */
  networkFs?: NetworkFsPolicy
  /** Lock mode. Default `'exclusive'`. */
  mode?: LockMode
  /** As in {@link LockOptions.timeoutMs}: default `30000`, `0` tries once, `Infinity` waits forever. */
  timeoutMs?: number
}

/**
 * A path, or several paths taken as one set: all locks are taken in one global order (by
 * canonical path) so overlapping sets cannot deadlock, within one overall `timeoutMs`, and
 * released in reverse order. A timeout or abort while taking the set releases what was taken.
 * A set requested inside a section that holds some of its paths, which would have to lock a path
 * ordered before one already held, is refused at once with `code: 'ELOCKDEADLOCK'` (naming both
 * paths): take the whole set from the start.
 */
export type LockTarget = string | readonly string[]

/**
 * A held lock (or set of locks), from {@link acquire}, {@link acquireSync} or {@link tryAcquire}.
 * It stays held until `release()` (or `await using` disposal), or until its process or worker
 * thread ends, whether or not the program keeps a reference to the handle: a dropped handle is
 * never released by the garbage collector.
 */
export interface LockHandle {
  /** The path the lock was requested for, as given (for a set: the first path given). */
  readonly path: string
  /**
   * Every path this handle holds, as given and in the order given (one spelling per file; the
   * locks themselves are taken in the canonical order).
   */
  readonly paths: readonly string[]
  readonly mode: LockMode
  /** True once released. */
  readonly released: boolean
  /** Releases the lock. Idempotent: later calls resolve and do nothing. */
  release(): Promise<void>
  /** Same as {@link LockHandle.release}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * Runs `fn` while holding the lock of `path` and resolves with its result. The lock is released
 * when `fn` has returned, thrown or settled its promise and the nested calls below are done; a
 * rejection from `fn` propagates.
 *
 * Reentrant within one async call chain: a nested call ({@link withIndexLock},
 * {@link updateJson}, {@link withIndexLockSync}, {@link updateJsonSync}) for a path the chain holds
 * (any spelling) needs no second lock when the held one covers it (exclusive covers both modes;
 * shared covers shared), but nested calls on a held path are serialized among themselves, in call
 * order: each waits for its turn (its `timeoutMs` and `signal` apply to that wait), then runs with
 * a hold of its own, so its own nested calls queue inside it. The section's own `fn` is the holder
 * and is not serialized against them. A nested `updateJson` reads, mutates and writes on its turn
 * (no group commit inside a held section).
 * - The section releases the lock only once every nested call made during it (running or
 *   queued) has finished. A call made after the section ended is an ordinary caller and waits
 *   for the lock (or, if the section was itself nested, queues in the section it was nested in).
 *   No nested call ever writes after the lock is gone. A call made from an `updateJson`
 *   mutator's context after the mutator returned (a microtask, a timer) queues behind that
 *   update's write.
 * - An async call made inside a synchronous section starts after that section has returned,
 *   queued in call order ahead of anything called after it.
 * - A synchronous nested call while another nested call of the chain runs or waits on the path
 *   throws a {@link LockDeadlockError} (`code: 'ELOCKDEADLOCK'`): a blocked thread could never
 *   let it finish.
 * - Asking for `'exclusive'` inside a shared hold rejects at once with a {@link LockUpgradeError}
 *   (`code: 'ELOCKUPGRADE'`).
 * - Inside an {@link updateJson}/{@link updateJsonSync} mutator, any lock request for the
 *   mutator's own path (this function, `updateJson`, `acquire`, `tryAcquire` and the sync twins)
 *   is refused at once with a {@link LockNestedError} (`code: 'ELOCKNESTED'`): the update's write
 *   would replace what it did; the mutator should change the object it was given.
 *
 * The lock file `<path>.lock` is created beside `path`, so its directory must exist: otherwise
 * `ENOENT` (`syscall: 'open'`), whose message names the first directory that does not exist (as
 * for every lock and write call; index-lock creates no directories).
 */
export declare function withIndexLock<T>(path: LockTarget, fn: () => T | Promise<T>, options?: LockOptions): Promise<T>

/**
 * Waits for the lock of `path` and resolves with a handle; call `release()` when done (or use
 * `await using`). Handles are not reentrant: use {@link withIndexLock} for nested sections.
 * Inside an {@link updateJson} mutator of the same path it rejects at once (`ELOCKNESTED`).
 * Inside an async section of this call chain that holds the path, a request only that section's
 * end could grant rejects at once: `ELOCKUPGRADE` for exclusive in a shared section,
 * `ELOCKDEADLOCK` otherwise (shared in a shared section is granted as usual).
 */
export declare function acquire(path: LockTarget, options?: LockOptions): Promise<LockHandle>

/**
 * Takes the lock of `path` only if that needs no waiting and jumps no queue: returns `null`
 * when another holder (in this process or another) or an earlier waiter is in the way. The lock
 * stays held until released even if the handle is dropped (`if (!tryAcquire(p)) process.exit(1)`
 * holds it for the process's life). Throws `ELOCKNESTED` inside an {@link updateJson} mutator of
 * the same path.
 */
export declare function tryAcquire(
  path: LockTarget,
  options?: { mode?: LockMode; networkFs?: NetworkFsPolicy },
): LockHandle | null

export interface AtomicWriteOptions {
  /** See {@link NetworkFsPolicy}. Default `'warn'`. */
  networkFs?: NetworkFsPolicy
  /** fsync the temp file before the rename and the directory after it. Default `true`. */
  fsync?: boolean
  /**
   * Permission bits of the written file. Default: those of the file being replaced, or
   * `0o666 & ~umask` for a new file. The temp file is never more open than these at any moment
   * (created owner-only, loosened once its owner is set), so a private file's new content is
   * never readable by others.
   */
  mode?: number
}

/**
 * Replaces the content of `path` atomically: readers see the old or the new content, never a
 * mix. Writes a hidden temp file beside it (`.<name>.<pid>.<tid>.<n>.<random>.tmp`, created
 * exclusively and flocked while it is written), fsyncs it, renames it over `path` and fsyncs the
 * directory. A symlink at `path` stays a symlink and its target is replaced. A FIFO, socket or
 * device at `path` (or behind a symlink there) is refused with `EFTYPE` and left as it is.
 * `data` is copied when the call is made: changing or transferring its buffer afterwards does
 * not affect the write. On failure the old content stays and the temp file is removed. If only
 * the final directory fsync fails (`syscall: 'fsync'`, `path`: the directory), the new content
 * is already in place but may not survive a power cut; writing again is safe (the error then
 * has `renamed: true`). Takes no lock:
 * combine with {@link withIndexLock} for read-modify-write. Inside a section of the current
 * async call chain that holds `path` it is one of the section's nested calls: the section
 * releases the lock only after it has ended, awaited or not. Inside an {@link updateJson}
 * mutator of `path` it rejects with `ELOCKNESTED`.
 */
export declare function atomicWrite(
  path: string,
  data: string | Uint8Array,
  options?: AtomicWriteOptions,
): Promise<void>

export interface ReadJsonOptions<T> {
  /**
   * Returned (a fresh copy each call, so callers never share it) when the file is missing,
   * empty or only JSON whitespace (space, tab, CR, LF). Without it those reject. Copied as it is
   * at the call: by `structuredClone`; if that fails (a function inside), as a JSON round trip
   * (what the file would hold: functions dropped, a `Date` becomes its string); if both fail (a
   * function next to a BigInt, a function itself), the call rejects with a `TypeError` of code
   * `ERR_INVALID_ARG_VALUE`, whether or not the file exists.
   */
  default?: T
  /**
   * An RFC 6901 JSON Pointer (`''` the whole document, `'/entries/a~1b'` the member `a/b` of
   * `entries`): resolves with only the value there, found natively on the threadpool (a big
   * index's one entry costs no JS object of the whole file). Where nothing is there: `default`
   * if given, else `undefined`. A pointer that is not RFC 6901 syntax rejects with a `TypeError`
   * of code `ERR_INVALID_ARG_VALUE`.
   */
  pointer?: string
}

/**
 * Reads and parses a JSON file (UTF-8, an optional BOM). Takes no lock (an atomic rename never
 * shows a torn file). Missing (`ENOENT`, also in a directory that does not exist) or empty files
 * resolve with `options.default` when given; malformed JSON and invalid UTF-8 reject with {@link CorruptFileError} and the file is
 * left as it is.
 */
export declare function readJson<T = unknown>(path: string, options?: ReadJsonOptions<Uninferred<T>>): Promise<T>

export interface WriteJsonOptions {
  /** See {@link NetworkFsPolicy}. Default `'warn'`. */
  networkFs?: NetworkFsPolicy
  /** As in {@link atomicWrite}. Default `true`. */
  fsync?: boolean
  /**
   * Indentation passed to `JSON.stringify`: an integer 0-10, or a string of at most 10 JSON
   * whitespace characters (space, tab, CR, LF). Default: none. Anything else would write invalid
   * JSON and throws (`ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`).
   */
  space?: number | string
}

/**
 * `atomicWrite(path, JSON.stringify(value, null, space) + '\n')`. Takes no lock. A value JSON
 * cannot represent (`undefined`, a function, a BigInt, a cycle) rejects with a `TypeError` of
 * code `ERR_INVALID_ARG_VALUE` and nothing is written. A value nested deeper than
 * `JSON.stringify` can recurse (about 4,000 levels with Node's default stack size, though
 * `readJson` reads any depth) rejects with a `RangeError` of code `ERR_INVALID_ARG_VALUE`
 * (`cause`: V8's stack overflow) and nothing is written. Errors a `toJSON` or getter throws
 * pass through as they are. Inside a section holding `path` it is one of the section's nested
 * calls, and inside an updateJson mutator of `path` it is refused, as {@link atomicWrite} is.
 */
export declare function writeJson(path: string, value: unknown, options?: WriteJsonOptions): Promise<void>

export interface UpdateJsonOptions<T> extends LockOptions, WriteJsonOptions {
  /**
   * The value the mutator gets when the file is missing or empty (a fresh copy each call,
   * copied as {@link ReadJsonOptions.default} describes).
   */
  default?: T
}

/**
 * Read-modify-write under the exclusive lock: reads `path` (or `options.default`), runs
 * `mutator`, writes the result atomically and resolves with it. The mutator may change the value
 * in place and return nothing, or return a new value. If it throws, or leaves a value JSON
 * cannot represent (`ERR_INVALID_ARG_VALUE`, see {@link writeJson}), nothing is written.
 * `options.mode` may only be `'exclusive'`. A relative `path` is resolved against the working
 * directory (as the OS has it) at the call: the update reads and writes the file it locked,
 * resolved then, even if `process.chdir()` runs or a symlink in its path is re-pointed while it
 * waits.
 *
 * Group commit: consecutive calls on one path (with the same `fsync` and `space`, and no other
 * lock request for the path made between them) that wait for the lock together in this thread
 * share one acquisition, one read and one write; their mutators run in call order, each on the
 * state the previous one left, and each call resolves with the state after its own mutator.
 * Every call ends as it would have if the calls had run one after another, and no later, except
 * where a state is too large to write (the last item):
 * - a mutator that throws (any value, even a falsy one) or leaves something JSON cannot
 *   represent rejects only its own call, with what it threw, and its change is not written;
 * - a mutator whose promise is still pending once the microtask queue drains (it waits for IO
 *   or a timer) first has the calls before it written and settled;
 * - a call's `timeoutMs` and `signal` apply until its own mutator starts: while its batch waits
 *   for the lock and while earlier mutators run;
 * - each call's state is serialized when its mutator returns, as alone: a later mutator that
 *   changes an object it holds (or a global such as `Date.prototype.toJSON`) changes nothing
 *   written for it;
 * - if a batched write fails (`ENOSPC`, `EFBIG`, ...), the calls are written one at a time in
 *   call order, so then each fails or succeeds as alone. A call whose state was computed on top
 *   of a call whose write failed runs its mutator again on the state actually on disk: the only
 *   case in which a mutator runs twice;
 * - only the last state of a batch (of each part, if a slow mutator splits it) is written: a call
 *   whose own state could not have been written alone (larger than the disk or the file-size
 *   limit allows) succeeds when a later call in the batch shrinks the state again, and the calls
 *   after it start from its state, where alone it would fail with `ENOSPC` or `EFBIG`.
 *
 * Batches are bounded (64 calls, 64 MiB of state copies).
 *
 * Inside a section that holds `path` (see {@link withIndexLock}) it takes its turn among the
 * section's nested calls instead. Called from inside a mutator of the same path (directly or in
 * a nested call) it rejects at once with `code: 'ELOCKNESTED'`, as does any other lock request for
 * that path from there: the mutator should change the object it was given. Once a mutator has
 * settled, a call made from its context (a timer it set) is an ordinary caller, also in a batch.
 */
export declare function updateJson<T>(
  path: string,
  mutator: (current: T) => T | void | Promise<T | void>,
  options?: UpdateJsonOptions<Uninferred<T>>,
): Promise<T>

/** One RFC 6902 JSON Patch operation. `path` and `from` are RFC 6901 pointers; `-` appends. */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'move'; from: string; path: string }
  | { op: 'copy'; from: string; path: string }
  | { op: 'test'; path: string; value: unknown }

export interface ChangeJsonOptions extends LockOptions, WriteJsonOptions {
  /** The document a change applies to when the file is missing or blank (copied as JSON). */
  default?: unknown
}

/**
 * Applies an RFC 6902 JSON Patch to the JSON file at `path`, natively: under the exclusive lock,
 * in the path's queue with every other request, saved atomically like {@link updateJson}, with
 * its options. The document is never parsed, stringified or copied on the JS thread (only
 * `operations` cross, as JSON text), so a big index does not stall the event loop.
 *
 * Atomic per call: if any operation fails (a `test` that does not match, a path that is not
 * there, an array index out of range, a `move` into its own child), the call rejects with a
 * {@link PatchError} naming the operation (`index`, `op`) and none of its operations is applied.
 * A malformed patch (not an array, an unknown `op`, a pointer that is not RFC 6901 syntax, a
 * missing `value` or `from`) rejects with a `TypeError` (`ERR_INVALID_ARG_TYPE` or
 * `ERR_INVALID_ARG_VALUE`) before anything is queued. A missing or blank file gets
 * `options.default`, else rejects as {@link readJson} does (`ENOENT`, {@link CorruptFileError});
 * a corrupt file rejects as `readJson` does and is left as it is.
 *
 * Group commit: consecutive calls on one path in this thread (same `fsync` and `space`) that wait
 * for the lock together are applied in call order to one parse of the file and written once,
 * on a native thread, which releases the lock the moment the write is on disk. Each call ends
 * as it would alone: a failing call fails only itself; a failed write is retried call by call.
 *
 * Fidelity: members keep their order in the file, new members go last, and number text is kept
 * exactly as written (big integers are not rounded, `1e+21` is not reformatted). For a file
 * written by {@link writeJson} the result is byte-identical to what `updateJson` applying the
 * same change with the same `space` writes, except for integer-like keys (`"1"`, `"42"`), which
 * V8 orders first and the engine adds last. Documents nested deeper than 100,000 levels reject
 * with `ERR_OUT_OF_RANGE`. Inside a section holding `path` it takes its turn among the
 * section's nested calls; inside an updateJson mutator of `path` it rejects with `ELOCKNESTED`.
 */
export declare function patchJson(
  path: string,
  operations: readonly PatchOperation[],
  options?: ChangeJsonOptions,
): Promise<void>

/**
 * Applies an RFC 7396 JSON Merge Patch (`null` deletes a member; a non-object patch replaces the
 * document) to the JSON file at `path`, natively, with everything {@link patchJson} promises. A
 * merge patch cannot fail; a value JSON cannot hold rejects with `ERR_INVALID_ARG_VALUE`.
 */
export declare function mergeJson(path: string, mergePatch: unknown, options?: ChangeJsonOptions): Promise<void>

/**
 * Removes the temp files of `path` left by writers that died mid-save: those whose flock no
 * writer holds (every writer locks its temp file from creation to rename, and the kernel frees
 * the lock when it dies). A live writer's temp file is never removed, whatever pid namespace or
 * (on a filesystem with coherent flock) host it runs on, so it needs no lock. A temp file whose
 * lock cannot be tested (not readable by this user) is kept. (The next exclusive holder of a
 * path does the same on its own, on a thread beside it.) Resolves with the names of the files removed; if any removal
 * fails, rejects with a {@link SweepError} naming each file and why.
 */
export declare function sweep(path: string): Promise<string[]>

/** A process holding (or waiting for) a lock, as {@link inspect} reports it. */
export interface LockHolderInfo {
  /** `null`: the lock is known to be held (seen without a holder list) but the OS does not say by whom. */
  pid: number | null
  mode: LockMode
  /** Its command line (Linux: /proc/<pid>/cmdline), or `null` where it cannot be read. */
  cmdline: string | null
}

/** A temp file beside a data file, as {@link inspect} reports it. */
export interface TempFileInfo {
  name: string
  /** The pid its name carries, in its writer's pid namespace: a hint only. */
  pid: number
  /** Its writer holds its flock: a save is under way (`sweep` keeps it). */
  alive: boolean
  /** Age in whole milliseconds. */
  ageMs: number
}

/** The state of a data file's lock, files and filesystem, from {@link inspect}. */
export interface InspectReport {
  /** The path as given. */
  path: string
  /** The lock key: the canonical data file path (case-folded on a case-insensitive volume: Windows, most macOS volumes), or `null` when `path` cannot be resolved. */
  resolved: string | null
  /** The sidecar lock file (`<resolved>.lock`, or the hashed name of a long file name). */
  lockFile: string | null
  /** `null` when it could not be determined (see `problems`). */
  lock: {
    held: boolean
    /** `'exclusive'` if any holder is; `null` when free. */
    mode: LockMode | null
    /**
     * Holders on this host (Linux: /proc/locks); one with `pid: null` where no holder list shows
     * it (macOS: F_GETLK; elsewhere a shared try-lock, which sees an exclusive holder only).
     */
    holders: LockHolderInfo[]
    /**
     * Processes blocked waiting for the lock on this host, with the mode each asks for (Linux:
     * /proc/locks; a waiter inside a process that holds the lock is not listed, it waits in that
     * process's queue); `null` where the OS cannot tell (macOS, Windows).
     */
    waiters: LockHolderInfo[] | null
    /**
     * A directory (e.g. a leftover proper-lockfile lock) or symlink at the lock file's path: nobody
     * can take the lock (`EISDIR`, `ELOOP`) until it is removed. `null` otherwise.
     */
    unusable: 'directory' | 'symlink' | null
  } | null
  /** Whether the data file parses as the JSON readers decide it; `message` for corrupt and error. */
  data: { state: 'missing' | 'empty' | 'ok' | 'corrupt' | 'error'; message: string | null } | null
  /** Orphaned temp files (`sweep` removes them) and live writers' ones. */
  tempFiles: { orphaned: TempFileInfo[]; live: TempFileInfo[] } | null
  /** The filesystem holding the data file and whether flock is coherent there. */
  filesystem: {
    fstype: string
    mountPoint: string | null
    coherence: 'local' | 'distributed' | 'unsafe'
    reason: string
  } | null
  /** What is wrong, in words: corrupt data, orphaned temp files, an unusable lock file, ... */
  problems: string[]
  /** Why `path` could not be resolved at all (e.g. `ENOENT` for a missing directory), else `null`. */
  error: { code: string | null; message: string } | null
}

/**
 * The state of `path`'s lock and files, as `index-lock status` prints it: who holds the lock and
 * in which mode, whether the data file parses, its temp files, and the filesystem. Changes
 * nothing and takes no lock where the OS can tell without one (Linux: /proc/locks; macOS:
 * F_GETLK); elsewhere (a container's own pid namespace, a network, cluster or FUSE filesystem,
 * Windows) it tries a shared lock for a few microseconds, which no shared request waits for, and
 * sees an exclusive holder only (docs/guarantees.md). Synchronous. Throws only for a `path` that is not a string; a path that
 * cannot be resolved is reported in `error`.
 */
export declare function inspect(path: string): InspectReport

/**
 * The platform backend of the loaded native binary: `'linux'` (flock, holders and waiters from
 * /proc/locks, network filesystems from mountinfo, a blocked wait woken at once), `'generic-unix'`
 * (macOS and other Unixes: no holder list, a polling wait, statfs) or `'windows'` (LockFileEx, a
 * polling wait). See docs/platforms.md for what differs.
 */
export declare function backend(): 'linux' | 'generic-unix' | 'windows'

/** An error of one file operation, as Node's fs functions report it. */
export interface FileSystemError extends Error {
  code: string
  errno: number
  syscall: string
  path: string
}

/**
 * The codes of index-lock's own errors: {@link LockTimeoutError} (`ELOCKTIMEOUT`),
 * {@link LockNestedError}, {@link LockDeadlockError}, {@link LockUpgradeError},
 * {@link CorruptFileError} (`ECORRUPT`), {@link AbortError} (`ABORT_ERR`), a refused network
 * filesystem (`INDEX_LOCK_NETWORK_FS`, see {@link NetworkFsPolicy}) and a missing native binary
 * at load time (`INDEX_LOCK_NO_BINARY`). OS errors keep Node's codes (`ENOENT`, `EISDIR`, ...;
 * see {@link FileSystemError}) and bad arguments Node's `ERR_*` codes.
 */
export type IndexLockErrorCode =
  | 'ELOCKTIMEOUT'
  | 'ELOCKNESTED'
  | 'ELOCKDEADLOCK'
  | 'ELOCKUPGRADE'
  | 'ECORRUPT'
  | 'EPATCH'
  | 'ABORT_ERR'
  | 'INDEX_LOCK_NETWORK_FS'
  | 'INDEX_LOCK_NO_BINARY'

/**
 * {@link sweep} could not remove some orphaned temp files (e.g. `EPERM` in an immutable
 * directory, `EACCES` without write permission on it). `errors` has one error per file
 * (`syscall: 'unlink'`, `path`: the temp file); `code`, `errno`, `syscall` and `path` repeat
 * the first of them; `removed` lists the files that were removed.
 */
export declare class SweepError extends AggregateError {
  readonly name: 'SweepError'
  readonly code: string
  readonly errno: number
  readonly syscall: 'unlink'
  readonly path: string
  readonly errors: FileSystemError[]
  readonly removed: string[]
}

/**
 * A wait for a lock outlasted `timeoutMs`. The message names how long the caller waited in all
 * (for a lock set: across all its paths) and who holds the lock: pids, or "this process" when it
 * is the caller's own (a handle not released yet, or a wait for a lock its own code holds).
 */
export declare class LockTimeoutError extends Error {
  readonly name: 'LockTimeoutError'
  readonly code: 'ELOCKTIMEOUT'
  /** The path as given (for a set: the one whose wait ran out). */
  readonly path: string
  readonly mode: LockMode
  /** The caller's `timeoutMs` (for a set too, not the time that was left for its last path). */
  readonly timeoutMs: number
  /** Processes holding the lock when the wait gave up (Linux: from /proc/locks); may be empty. */
  readonly holders: { pid: number }[]
}

/**
 * A lock request for a path from inside an {@link updateJson}/{@link updateJsonSync} mutator of
 * the same file (`withIndexLock`, `updateJson`, `acquire`, `tryAcquire` or a sync twin), refused
 * at once: the update's write would replace whatever it did. The mutator should change the object
 * it was given (or return a new one).
 */
export declare class LockNestedError extends Error {
  readonly name: 'LockNestedError'
  readonly code: 'ELOCKNESTED'
  /** The path as given. */
  readonly path: string
}

/**
 * A lock request refused at once because only the caller's own release could ever grant it: a
 * handle for a path held by a section of this call chain, a synchronous nested call while
 * another nested call of the chain runs or waits on the path, a synchronous wait while this
 * thread holds or awaits locks asynchronously or already holds (or waits for) the path, or a
 * nested set that would lock a path ordered before one the chain holds (the message names both).
 */
export declare class LockDeadlockError extends Error {
  readonly name: 'LockDeadlockError'
  readonly code: 'ELOCKDEADLOCK'
  /** The path as given (for a set: the one that could not be locked in order). */
  readonly path: string
}

/**
 * An exclusive request by a caller that holds the path shared (a nested call in a shared
 * section, a handle, a synchronous wait by a thread holding it shared), refused at once: take
 * the lock exclusive from the start.
 */
export declare class LockUpgradeError extends Error {
  readonly name: 'LockUpgradeError'
  readonly code: 'ELOCKUPGRADE'
  /** The path as given. */
  readonly path: string
}

/**
 * A JSON file that does not parse, or is not valid UTF-8. The message names the path and the
 * position of the first error: the one `JSON.parse` rejects (after the UTF-8 check), at any
 * nesting depth. Positions count bytes of the file as stored, a BOM included.
 */
/**
 * A JSON Patch operation of a {@link patchJson} call could not be applied; none of the call's
 * operations was.
 */
export declare class PatchError extends Error {
  readonly name: 'PatchError'
  readonly code: 'EPATCH'
  /** The path as the caller gave it. */
  readonly path: string
  /** The failing operation's position in the patch. */
  readonly index: number
  readonly op: PatchOperation['op']
}

export declare class CorruptFileError extends Error {
  readonly name: 'CorruptFileError'
  readonly code: 'ECORRUPT'
  readonly path: string
  /** 1-based line of the first error, when known. */
  readonly line?: number
  /** 1-based column of the first error in bytes from the start of its line, when known. */
  readonly column?: number
  /** 0-based byte offset of the first error from the start of the file, when known. */
  readonly position?: number
}

/** A wait for a lock ended by its `signal`; `cause` is the signal's reason. */
export declare class AbortError extends Error {
  readonly name: 'AbortError'
  readonly code: 'ABORT_ERR'
  /**
   * The path as given whose wait the signal ended (for a set: the one it was waiting for, or, for
   * a signal aborted before the call, the first in the lock order).
   */
  readonly path: string
}

// ---------------------------------------------------------------------------------------------
// Synchronous twins, for command-line code. They block the calling thread (never use them on a
// server's event loop), follow the same protocol, and so exclude async callers and other
// processes alike. A request that needs no wait is granted (shared joins shared, also this
// thread's own shared lock, as with tryAcquire). A wait that could only deadlock throws at once
// instead of hanging: `ELOCKDEADLOCK` when this thread already holds (or awaits) the path outside the current call
// chain, `ELOCKUPGRADE` when it holds it shared and asks for exclusive. A sync call that would
// have to wait (the lock is not free at once) while this thread holds or awaits any lock
// asynchronously (an async section, a handle from acquire/acquireSync/tryAcquire, a pending
// async call) also throws `ELOCKDEADLOCK` at once, whatever its `timeoutMs`: blocking the thread
// would keep those locks from ever being released, so another process holding the wanted lock
// and waiting for one of them would deadlock with it. Enclosing synchronous sections on the
// current stack do not count, and `timeoutMs: 0` (no wait) is always allowed. In a worker thread,
// a blocking wait delays `worker.terminate()` and `process.exit()` until it ends (forever with
// `timeoutMs: Infinity`).

/**
 * {@link withIndexLock} for a synchronous `fn`: holds the lock while `fn` runs. Reentrant like
 * the async version (also inside an async `withIndexLock` on the same path, when no other nested
 * call of that chain runs or waits on the path; else `ELOCKDEADLOCK`). Async calls made inside
 * `fn` start after it returns, queued in call order ahead of anything called after it. If `fn`
 * returns a promise, throws `ERR_INVALID_RETURN_VALUE` (the lock cannot cover async work).
 */
export declare function withIndexLockSync<T>(path: LockTarget, fn: () => T, options?: SyncLockOptions): T

/** {@link acquire}, blocking the calling thread. Throws {@link LockTimeoutError} on timeout. */
export declare function acquireSync(path: LockTarget, options?: SyncLockOptions): LockHandle

/** {@link atomicWrite} on the calling thread. */
export declare function atomicWriteSync(path: string, data: string | Uint8Array, options?: AtomicWriteOptions): void

/** {@link readJson} on the calling thread. */
export declare function readJsonSync<T = unknown>(path: string, options?: ReadJsonOptions<Uninferred<T>>): T

/** {@link writeJson} on the calling thread. */
export declare function writeJsonSync(path: string, value: unknown, options?: WriteJsonOptions): void

export interface ChangeJsonSyncOptions extends SyncLockOptions, WriteJsonOptions {
  /** As in {@link ChangeJsonOptions.default}. */
  default?: unknown
}

/** {@link patchJson} blocking the thread. */
export declare function patchJsonSync(
  path: string,
  operations: readonly PatchOperation[],
  options?: ChangeJsonSyncOptions,
): void

/** {@link mergeJson} blocking the thread. */
export declare function mergeJsonSync(path: string, mergePatch: unknown, options?: ChangeJsonSyncOptions): void

export interface UpdateJsonSyncOptions<T> extends SyncLockOptions, WriteJsonOptions {
  /** As in {@link UpdateJsonOptions.default}. */
  default?: T
}

/**
 * {@link updateJson} for a synchronous mutator. A mutator that returns a promise throws
 * `ERR_INVALID_RETURN_VALUE` and nothing is written. A lock request for `path` from inside the
 * mutator throws `ELOCKNESTED`.
 */
export declare function updateJsonSync<T>(
  path: string,
  mutator: (current: T) => T | void,
  options?: UpdateJsonSyncOptions<Uninferred<T>>,
): T
