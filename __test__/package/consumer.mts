// A strict ESM consumer of the INSTALLED package: every export of index.d.ts, value and type, is
// imported and used with the types it promises. Type-checked (not run) by __test__/package.spec.ts
// with moduleResolution node16, nodenext and bundler. The spec also fails when index.d.ts gains
// an export that is not imported here: add it below.
import {
  AbortError,
  acquire,
  acquireSync,
  atomicWrite,
  atomicWriteSync,
  backend,
  CorruptFileError,
  inspect,
  LockDeadlockError,
  LockNestedError,
  LockTimeoutError,
  LockUpgradeError,
  mergeJson,
  mergeJsonSync,
  PatchError,
  patchJson,
  patchJsonSync,
  readJson,
  readJsonSync,
  sweep,
  SweepError,
  tryAcquire,
  updateJson,
  updateJsonSync,
  withIndexLock,
  withIndexLockSync,
  writeJson,
  writeJsonSync,
  type AtomicWriteOptions,
  type ChangeJsonOptions,
  type ChangeJsonSyncOptions,
  type PatchOperation,
  type FileSystemError,
  type IndexLockErrorCode,
  type InspectReport,
  type LockHandle,
  type LockHolderInfo,
  type LockMode,
  type LockOptions,
  type LockTarget,
  type NetworkFsPolicy,
  type ReadJsonOptions,
  type SyncLockOptions,
  type TempFileInfo,
  type Uninferred,
  type UpdateJsonOptions,
  type UpdateJsonSyncOptions,
  type WriteJsonOptions,
} from 'index-lock'
import lib from 'index-lock'

interface Index {
  version: 1
  entries: Record<string, { title: string }>
}

const empty = (): Index => ({ version: 1, entries: {} })
// The document type comes from the type argument, not from a literal default.
const notNarrowed: Uninferred<Index> = { version: 1, entries: { a: { title: 'a' } } }
void notNarrowed

export async function consumeAsync(path: string, other: string): Promise<number> {
  const mode: LockMode = 'shared'
  const policy: NetworkFsPolicy = 'error'
  const target: LockTarget = [path, other]
  const opts: LockOptions = { mode, timeoutMs: 1000, signal: AbortSignal.timeout(5000), networkFs: policy }

  const n: number = await withIndexLock(path, () => 1)
  const s: string = await withIndexLock(target, async () => 'both', opts)

  const h: LockHandle = await acquire(path, { timeoutMs: Infinity })
  const held: string = h.path
  const all: readonly string[] = h.paths
  const m: LockMode = h.mode
  const done: boolean = h.released
  await h.release()
  await h[Symbol.asyncDispose]()
  {
    await using scoped = await acquire(target, opts)
    void scoped.paths
  }
  const maybe: LockHandle | null = tryAcquire(path, { mode: 'exclusive', networkFs: 'allow' })
  await maybe?.release()

  const w: AtomicWriteOptions = { fsync: false, mode: 0o644, networkFs: 'allow' }
  await atomicWrite(path, 'text', w)
  await atomicWrite(path, new Uint8Array([123, 125]))
  const r: ReadJsonOptions<Index> = { default: empty() }
  const idx: Index = await readJson<Index>(path, r)
  const unknownValue: unknown = await readJson(path)
  const wj: WriteJsonOptions = { space: 2, fsync: true }
  await writeJson(path, idx, wj)
  const u: UpdateJsonOptions<Index> = { default: empty(), timeoutMs: 50, space: '\t', signal: AbortSignal.abort() }
  const next: Index = await updateJson<Index>(
    path,
    (cur) => {
      cur.entries['a'] = { title: 't' }
    },
    u,
  )
  const replaced: Index = await updateJson<Index>(path, async (cur) => ({ ...cur, version: 1 }))
  const removed: string[] = await sweep(path).catch((err: unknown) => {
    if (!(err instanceof SweepError)) throw err
    const failed: FileSystemError[] = err.errors
    const syscall: 'unlink' = err.syscall
    return [...err.removed, ...failed.map((e) => `${e.code} ${syscall} ${e.path} ${e.errno}`)]
  })

  try {
    await acquire(path, { timeoutMs: 0 })
  } catch (err) {
    if (err instanceof LockTimeoutError) {
      const code: 'ELOCKTIMEOUT' = err.code
      const name: 'LockTimeoutError' = err.name
      const pids: number[] = err.holders.map((x) => x.pid)
      const waited: number = err.timeoutMs
      const wanted: LockMode = err.mode
      return pids.length + code.length + name.length + waited + wanted.length + err.path.length
    }
    if (err instanceof CorruptFileError) {
      const code: 'ECORRUPT' = err.code
      const line: number | undefined = err.line
      const column: number | undefined = err.column
      const position: number | undefined = err.position
      return code.length + err.path.length + (line ?? 0) + (column ?? 0) + (position ?? 0)
    }
    if (err instanceof AbortError) {
      const code: 'ABORT_ERR' = err.code
      return code.length + String(err.cause).length + err.path.length
    }
    if (err instanceof LockNestedError || err instanceof LockDeadlockError || err instanceof LockUpgradeError) {
      const code: 'ELOCKNESTED' | 'ELOCKDEADLOCK' | 'ELOCKUPGRADE' = err.code
      const own: IndexLockErrorCode = err.code
      return code.length + own.length + err.path.length
    }
    if (err instanceof Error) return err.message.length
  }

  const ops: PatchOperation[] = [
    { op: 'add', path: '/entries/b', value: { title: 'b' } },
    { op: 'test', path: '/version', value: 1 },
    { op: 'move', from: '/entries/b', path: '/entries/c' },
  ]
  const co: ChangeJsonOptions = { default: empty(), space: 2, timeoutMs: 100 }
  await patchJson(path, ops, co)
  await mergeJson(path, { entries: { c: null } })
  const one: { title: string } | undefined = await readJson<{ title: string } | undefined>(path, {
    pointer: '/entries/a',
  })
  void one
  try {
    await patchJson(path, [{ op: 'remove', path: '/nope' }])
  } catch (err) {
    if (err instanceof PatchError) {
      const code: 'EPATCH' = err.code
      const at: number = err.index
      const op: PatchOperation['op'] = err.op
      void [code, at, op, err.path]
    }
  }
  // @ts-expect-error: an operation needs a known op
  await patchJson(path, [{ op: 'frobnicate', path: '/a' }])
  // @ts-expect-error: add needs a value
  await patchJson(path, [{ op: 'add', path: '/a' }])

  const platform: 'linux' | 'generic-unix' | 'windows' = backend()
  void platform
  const report: InspectReport = inspect(path)
  const holders: LockHolderInfo[] = report.lock?.holders ?? []
  const temps: TempFileInfo[] = report.tempFiles?.orphaned ?? []
  const state: 'missing' | 'empty' | 'ok' | 'corrupt' | 'error' | undefined = report.data?.state
  void [holders.map((x) => x.pid ?? x.cmdline), temps.map((t) => t.ageMs), state, report.error?.code]

  // The default export is the same module object (CommonJS `module.exports`).
  const same: typeof withIndexLock = lib.withIndexLock

  // @ts-expect-error: unknown lock modes are a type error
  await acquire(path, { mode: 'bogus' })
  // @ts-expect-error: unknown network filesystem policies are a type error
  await writeJson(path, {}, { networkFs: 'ignore' })
  // @ts-expect-error: data must be a string or bytes
  await atomicWrite(path, 42)
  // @ts-expect-error: tryAcquire never waits, so it takes no timeout
  tryAcquire(path, { timeoutMs: 1 })
  // @ts-expect-error: the mutator gets the declared type
  await updateJson<Index>(path, (cur: { other: string }) => cur)

  return (
    n +
    s.length +
    held.length +
    all.length +
    m.length +
    Number(done) +
    next.version +
    replaced.version +
    removed.length +
    (unknownValue === null ? 0 : 1) +
    same.length
  )
}

export function consumeSync(path: string, other: string): number {
  const so: SyncLockOptions = { mode: 'shared', timeoutMs: 100, networkFs: 'warn' }
  const n: number = withIndexLockSync(path, () => 1, { timeoutMs: 100 })
  const set: string = withIndexLockSync([path, other], () => 'both', so)
  const h: LockHandle = acquireSync([path, other] as const, so)
  const ps: readonly string[] = h.paths
  void h.release()
  atomicWriteSync(path, new Uint8Array(0), { fsync: false })
  atomicWriteSync(path, '{}')
  const v: { n: number } = readJsonSync<{ n: number }>(path, { default: { n: 0 } })
  writeJsonSync(path, v, { space: 2 })
  const uo: UpdateJsonSyncOptions<{ n: number }> = { default: { n: 0 }, timeoutMs: 10, fsync: false }
  const u: { n: number } = updateJsonSync<{ n: number }>(path, (c) => ({ n: c.n + 1 }), uo)
  updateJsonSync<{ n: number }>(path, (c) => {
    c.n++
  })
  const cso: ChangeJsonSyncOptions = { default: {}, fsync: false }
  patchJsonSync(path, [{ op: 'add', path: '/x', value: 1 }], cso)
  mergeJsonSync(path, { x: null })
  // @ts-expect-error: synchronous calls take no signal
  withIndexLockSync(path, () => 1, { signal: AbortSignal.abort() })
  // @ts-expect-error: a synchronous mutator cannot be async
  updateJsonSync<{ n: number }>(path, async (c) => c)
  return n + set.length + ps.length + u.n
}
