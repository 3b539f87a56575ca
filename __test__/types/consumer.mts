// A strict ESM consumer of every export: compiled (not run) by `npm test` to keep index.d.ts honest.
import {
  AbortError,
  acquire,
  acquireSync,
  atomicWriteSync,
  readJsonSync,
  sweep,
  SweepError,
  updateJsonSync,
  withIndexLockSync,
  writeJsonSync,
  atomicWrite,
  backend,
  CorruptFileError,
  LockDeadlockError,
  LockNestedError,
  LockTimeoutError,
  LockUpgradeError,
  readJson,
  tryAcquire,
  updateJson,
  withIndexLock,
  writeJson,
  type IndexLockErrorCode,
  type LockHandle,
  type LockMode,
  type LockOptions,
} from 'index-lock'

interface Index {
  version: 1
  entries: Record<string, { title: string }>
}

export async function consume(path: string): Promise<number> {
  const n: number = await withIndexLock(path, () => 1)
  const s: string = await withIndexLock(path, async () => 'x', { mode: 'shared', timeoutMs: 10 })
  const mode: LockMode = 'shared'
  const opts: LockOptions = { mode, timeoutMs: Infinity, signal: AbortSignal.timeout(100), networkFs: 'error' }
  const h: LockHandle = await acquire(path, opts)
  const p: string = h.path
  const m: LockMode = h.mode
  await h.release()
  await h[Symbol.asyncDispose]()
  const maybe: LockHandle | null = tryAcquire(path, { mode: 'exclusive' })
  await maybe?.release()
  await atomicWrite(path, 'text', { fsync: false, mode: 0o644, networkFs: 'allow' })
  // @ts-expect-error: unknown network filesystem policies are a type error
  await writeJson(path, {}, { networkFs: 'ignore' })
  await atomicWrite(path, new Uint8Array([1]))
  const idx: Index = await readJson<Index>(path, { default: { version: 1, entries: {} } })
  await writeJson(path, idx, { space: 2, fsync: true })
  const next: Index = await updateJson<Index>(
    path,
    (cur) => {
      cur.entries['a'] = { title: 't' }
    },
    { default: { version: 1, entries: {} }, timeoutMs: 5, space: 2 },
  )
  const replaced: Index = await updateJson<Index>(path, async (cur) => ({ ...cur, version: 1 }))
  try {
    await acquire(path)
  } catch (err) {
    if (err instanceof LockTimeoutError) {
      const code: 'ELOCKTIMEOUT' = err.code
      const pids: number[] = err.holders.map((x) => x.pid)
      return pids.length + code.length + err.path.length
    }
    if (err instanceof CorruptFileError) return err.code.length + (err.line ?? 0)
    if (err instanceof AbortError) return err.code.length + err.path.length
  }
  // @ts-expect-error: unknown lock modes are a type error
  await acquire(path, { mode: 'bogus' })
  // @ts-expect-error: data must be a string or bytes
  await atomicWrite(path, 42)
  // @ts-expect-error: tryAcquire never waits, so it takes no timeout
  tryAcquire(path, { timeoutMs: 1 })
  return n + s.length + p.length + m.length + next.version + replaced.version
}

export function consumeSync(path: string, other: string): number {
  const n: number = withIndexLockSync(path, () => 1, { timeoutMs: 100 })
  const set: string = withIndexLockSync([path, other], () => 'both')
  const h: LockHandle = acquireSync([path, other] as const, { mode: 'shared' })
  const ps: readonly string[] = h.paths
  void h.release()
  atomicWriteSync(path, new Uint8Array(0), { fsync: false })
  const v: { n: number } = readJsonSync<{ n: number }>(path, { default: { n: 0 } })
  writeJsonSync(path, v, { space: 2 })
  const u: { n: number } = updateJsonSync<{ n: number }>(path, (c) => ({ n: c.n + 1 }), { default: { n: 0 } })
  // @ts-expect-error: synchronous calls take no signal
  withIndexLockSync(path, () => 1, { signal: AbortSignal.abort() })
  void sweep(path).then(
    (names: string[]) => names.length,
    (err: unknown) => {
      if (err instanceof SweepError) {
        const why: string[] = err.errors.map((e) => `${e.code} ${e.syscall} ${e.path}`)
        return why.length + err.removed.length + (err.syscall === 'unlink' ? 0 : 1)
      }
      return 0
    },
  )
  return n + set.length + ps.length + u.n
}

/** Each refusal narrows by instanceof to its class, with its literal code and its path. */
export async function refusals(path: string): Promise<number> {
  try {
    await updateJson(path, () => withIndexLock(path, () => 1))
  } catch (err) {
    if (err instanceof LockNestedError) {
      const code: 'ELOCKNESTED' = err.code
      const name: 'LockNestedError' = err.name
      const where: string = err.path
      const error: Error = err
      return code.length + name.length + where.length + error.message.length
    }
    if (err instanceof LockDeadlockError) {
      const code: 'ELOCKDEADLOCK' = err.code
      // @ts-expect-error: a deadlock refusal is not an upgrade refusal
      const wrong: 'ELOCKUPGRADE' = err.code
      return code.length + err.path.length + wrong.length
    }
    if (err instanceof LockUpgradeError) {
      const code: 'ELOCKUPGRADE' = err.code
      return code.length + err.path.length
    }
    if (err instanceof Error && 'code' in err) {
      // The codes of index-lock's own errors.
      const known: IndexLockErrorCode[] = [
        'ELOCKTIMEOUT',
        'ELOCKNESTED',
        'ELOCKDEADLOCK',
        'ELOCKUPGRADE',
        'ECORRUPT',
        'ABORT_ERR',
        'INDEX_LOCK_NETWORK_FS',
        'INDEX_LOCK_NO_BINARY',
      ]
      // @ts-expect-error: OS errors keep Node's codes, which are not index-lock's own
      const os: IndexLockErrorCode = 'ENOENT'
      return known.indexOf(err.code as IndexLockErrorCode) + os.length
    }
  }
  return 0
}

/** The platform backend of the loaded binary, from the package's own entry. */
export function whichBackend(): 'linux' | 'generic-unix' | 'windows' {
  const b: 'linux' | 'generic-unix' | 'windows' = backend()
  // @ts-expect-error: only the three backends exist
  const other: 'darwin' = backend()
  return other === 'darwin' ? b : b
}

/** What the samples of README.md and docs/ rely on: the document type comes from a type argument or an annotated mutator, never from a literal default. */
export async function inference(path: string): Promise<number> {
  interface Idx {
    entries: Record<string, { title: string }>
  }
  // A literal default does not narrow the type to `{ entries: {} }`: the type argument decides.
  const read = await readJson<Idx>(path, { default: { entries: {} } })
  read.entries['a'] = { title: 'a' }
  const synced: Idx = readJsonSync<Idx>(path, { default: { entries: {} } })
  // An annotated mutator decides.
  const updated = await updateJson(
    path,
    (index: Idx) => {
      index.entries['b'] = { title: 'b' }
    },
    { default: { entries: {} } },
  )
  const back: Idx = updated
  updateJsonSync(
    path,
    (index: Idx) => {
      index.entries['c'] = { title: 'c' }
    },
    { default: { entries: {} } },
  )
  // @ts-expect-error: a default that is not a document of the declared type
  await readJson<Idx>(path, { default: { entries: 1 } })
  await updateJson(
    path,
    (index) => {
      // @ts-expect-error: with no type argument and no annotation the document is unknown
      void index.entries
    },
    { default: { entries: {} } },
  )
  const u: unknown = await readJson(path, { default: { entries: {} } })
  return (
    Object.keys(read.entries).length +
    Object.keys(synced.entries).length +
    Object.keys(back.entries).length +
    (u ? 1 : 0)
  )
}
