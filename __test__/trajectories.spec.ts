// The adoption example in examples/trajectories: a trajectory store whose index internals use
// index-lock (FileStorage), against the hand-rolled original (NaiveFileStorage). In-process tests
// import the TypeScript sources; child processes run the compiled example (built in beforeAll).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'

import { sweep, withIndexLock } from '../index.js'
import { FileStorage, NaiveFileStorage } from '../examples/trajectories/src/index'
import type { Trajectory, TrajectoryIndex, TrajectoryStorage } from '../examples/trajectories/src/index'
import { buildExamples } from './build-examples'
import { node, tempDir, type Run } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

beforeAll(() => buildExamples())

afterEach(() => {
  vi.restoreAllMocks()
})

const T0 = Date.parse('2025-01-01T00:00:00.000Z')

function trajectory(id: string, i = 0, more: Partial<Trajectory> = {}): Trajectory {
  return { id, title: `title of ${id}`, status: 'active', startedAt: new Date(T0 + i * 1000).toISOString(), ...more }
}

const dataDir = (base: string) => join(base, '.trajectories')
const indexPath = (base: string) => join(dataDir(base), 'index.json')
const readIndex = (base: string) => JSON.parse(readFileSync(indexPath(base), 'utf8')) as TrajectoryIndex
const ids = (base: string) => Object.keys(readIndex(base).trajectories).sort()

/** Every file under `dir`, as paths relative to it. */
function allFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else out.push(relative(dir, join(d, e.name)))
    }
  }
  walk(dir)
  return out.sort()
}

function spyConsoleError() {
  return vi.spyOn(console, 'error').mockImplementation(() => {})
}

describe.each([
  ['FileStorage', FileStorage],
  ['NaiveFileStorage', NaiveFileStorage],
] as const)('%s basics (one caller at a time)', (_name, Storage) => {
  it('saves, gets, lists, completes (moving the file) and deletes', async () => {
    const base = tempDir('traj')
    const store: TrajectoryStorage = new Storage(base)
    await store.initialize()
    expect(readIndex(base)).toMatchObject({ version: 1, trajectories: {} })

    const a = trajectory('a', 1, { steps: [{ tool: 'grep' }] })
    await store.save(a)
    await store.save(trajectory('b', 2))
    await store.save(trajectory('c', 3, { status: 'abandoned', completedAt: '2024-12-31T23:59:59.000Z' }))
    expect(existsSync(join(dataDir(base), 'active', 'a.json'))).toBe(true)
    expect(await store.get('a')).toEqual(a)
    expect(await store.get('missing')).toBeNull()
    expect(await store.get('../index')).toBeNull()

    expect((await store.list()).map((s) => s.id)).toEqual(['c', 'b', 'a'])
    expect((await store.list({ status: 'active', limit: 1 })).map((s) => s.id)).toEqual(['b'])
    expect((await store.list({ since: new Date(T0 + 2000).toISOString() })).map((s) => s.id)).toEqual(['c', 'b'])
    expect(await store.list({ status: 'abandoned' })).toEqual([
      {
        id: 'c',
        title: 'title of c',
        status: 'abandoned',
        startedAt: new Date(T0 + 3000).toISOString(),
        completedAt: '2024-12-31T23:59:59.000Z',
        path: join(dataDir(base), 'completed', '2024-12', 'c.json'),
      },
    ])

    // Completing moves the file from active/ to completed/YYYY-MM/ and repoints the index.
    const done = { ...a, status: 'completed', completedAt: '2025-03-04T05:06:07.000Z' }
    await store.save(done)
    const moved = join(dataDir(base), 'completed', '2025-03', 'a.json')
    expect(existsSync(join(dataDir(base), 'active', 'a.json'))).toBe(false)
    expect(JSON.parse(readFileSync(moved, 'utf8'))).toEqual(done)
    expect(readIndex(base).trajectories.a).toEqual({
      title: 'title of a',
      status: 'completed',
      startedAt: a.startedAt,
      completedAt: '2025-03-04T05:06:07.000Z',
      path: moved,
    })
    expect(await store.get('a')).toEqual(done)

    await store.delete('a')
    expect(existsSync(moved)).toBe(false)
    expect(await store.get('a')).toBeNull()
    expect(ids(base)).toEqual(['b', 'c'])
    await expect(store.save(trajectory('../escape'))).rejects.toThrow(TypeError)
  })

  it('uses process.cwd() by default and reconciles files the index lacks', async () => {
    const base = tempDir('traj')
    vi.spyOn(process, 'cwd').mockReturnValue(base)
    const store = new Storage()
    await store.initialize()
    await store.save(trajectory('kept', 1))
    // Files written by someone else (another tool, an older version) are found by reconcile.
    writeFileSync(join(dataDir(base), 'active', 'x.json'), JSON.stringify(trajectory('x', 2)))
    writeFileSync(join(dataDir(base), 'active', 'not-a-trajectory.json'), '{"hello": 1}')
    expect(await store.reconcileIndex()).toBe(1)
    expect(await store.reconcileIndex()).toBe(0)
    expect(ids(base)).toEqual(['kept', 'x'])
    expect(readIndex(base).trajectories.x!.path).toBe(join(dataDir(base), 'active', 'x.json'))
  })
})

describe('FileStorage (index-lock) keeps the behaviour users rely on', () => {
  it('20 concurrent saves keep 20 index entries and log nothing', async () => {
    const base = tempDir('traj')
    const store = new FileStorage(base)
    await store.initialize()
    const errors = spyConsoleError()
    const want = Array.from({ length: 20 }, (_, i) => `t-${String(i).padStart(2, '0')}`)
    await Promise.all(want.map((id, i) => store.save(trajectory(id, i))))
    expect(ids(base)).toEqual(want)
    expect(errors).not.toHaveBeenCalled()
    // The index format: version 1, ISO lastUpdated, absolute paths, 2-space indentation.
    const raw = readFileSync(indexPath(base), 'utf8')
    expect(raw.startsWith('{\n  "version": 1,\n  "lastUpdated": "')).toBe(true)
    const index = readIndex(base)
    expect(new Date(index.lastUpdated).toISOString()).toBe(index.lastUpdated)
    expect(index.trajectories['t-07']).toEqual({
      title: 'title of t-07',
      status: 'active',
      startedAt: new Date(T0 + 7000).toISOString(),
      path: join(dataDir(base), 'active', 't-07.json'),
    })
  })

  it('the naive original, for contrast, loses some of 20 concurrent saves in one process', async () => {
    let worst = { kept: 20, failed: 0 }
    for (let attempt = 0; attempt < 10 && worst.kept === 20 && worst.failed === 0; attempt++) {
      const base = tempDir('traj')
      const store = new NaiveFileStorage(base)
      await store.initialize()
      spyConsoleError()
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.save(trajectory(`t-${i}`, i))),
      )
      let kept = 0
      try {
        kept = ids(base).length
      } catch {}
      worst = { kept, failed: results.filter((r) => r.status === 'rejected').length }
    }
    expect(worst.kept < 20 || worst.failed > 0).toBe(true)
  })

  for (const [what, content] of [
    ['empty (0 bytes)', ''],
    ['whitespace only', ' \n\t \n'],
  ] as const) {
    it(`index.json ${what} is an empty index, silently; the next save works`, async () => {
      const base = tempDir('traj')
      const store = new FileStorage(base)
      await store.initialize()
      writeFileSync(indexPath(base), content)
      const errors = spyConsoleError()
      expect(await store.list()).toEqual([])
      await store.save(trajectory('next'))
      expect(ids(base)).toEqual(['next'])
      expect(errors).not.toHaveBeenCalled()
    })
  }

  it('a malformed index is reported once and rebuilt from the trajectory files; saves succeed', async () => {
    const base = tempDir('traj')
    const store = new FileStorage(base)
    await store.initialize()
    await store.save(trajectory('old-1', 1))
    await store.save(trajectory('old-2', 2, { status: 'completed', completedAt: '2025-02-02T00:00:00.000Z' }))
    await store.save(trajectory('old-3', 3))
    writeFileSync(indexPath(base), '{\n  "version": 1,\n  "trajectories": {\n    "old-1": {')
    const errors = spyConsoleError()
    // Several saves at once: the first holder of the lock reports and rebuilds, the rest see the
    // rebuilt index.
    await Promise.all(['new-1', 'new-2', 'new-3'].map((id, i) => store.save(trajectory(id, 10 + i))))
    expect(errors).toHaveBeenCalledTimes(1)
    expect(String(errors.mock.calls[0]![0])).toContain(indexPath(base))
    expect(ids(base)).toEqual(['new-1', 'new-2', 'new-3', 'old-1', 'old-2', 'old-3'])
    expect(readIndex(base).trajectories['old-2']!.path).toBe(join(dataDir(base), 'completed', '2025-02', 'old-2.json'))
    await store.save(trajectory('after', 20))
    expect(errors).toHaveBeenCalledTimes(1)
  })

  it('lock and temp files never end in .json, and reconcile ignores them (also those of killed writers)', async () => {
    const base = tempDir('traj')
    const dir = dataDir(base)
    const store = new FileStorage(base)
    await store.initialize()
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.save(trajectory(`t-${i}`, i))))
    await store.save(trajectory('t-0', 0, { status: 'completed', completedAt: '2025-05-05T00:00:00.000Z' }))
    const trajectoryFiles = [
      'completed/2025-05/t-0.json',
      ...Array.from({ length: 7 }, (_, i) => `active/t-${i + 1}.json`),
    ].sort()
    expect(allFiles(dir)).toEqual(['index.json', 'index.json.lock', ...trajectoryFiles].sort())

    // Writers SIGKILLed mid-save (fault-injection build, stopped before the rename) leave index-lock's
    // temp files: one beside a trajectory file, one beside index.json (that one holding the lock).
    for (const [op, id] of [
      ['save', 'ghost'],
      ['reconcile', ''],
    ] as const) {
      const run = node('traj-crash.cjs', [base, op, id], {
        NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD,
        INDEX_LOCK_PAUSE: 'before-rename',
      })
      await pausedThenKilled(run)
    }
    const files = allFiles(dir)
    const temps = files.filter((f) => f.endsWith('.tmp'))
    expect(temps).toHaveLength(2)
    expect(temps.find((f) => f.startsWith('active/.ghost.json.'))).toBeDefined()
    expect(temps.find((f) => f.startsWith('.index.json.'))).toBeDefined()
    expect(files.filter((f) => f.endsWith('.json'))).toEqual(['index.json', ...trajectoryFiles].sort())
    // The orphan beside the trajectory file is a complete trajectory: a scan that took it for one
    // would index 'ghost'.
    const ghostTemp = temps.find((f) => f.includes('ghost'))!
    expect(JSON.parse(readFileSync(join(dir, ghostTemp), 'utf8')).id).toBe('ghost')

    expect(await store.reconcileIndex()).toBe(0)
    // From scratch: exactly the trajectory files, nothing for index.json, locks or temp files.
    writeFileSync(indexPath(base), '')
    expect(await store.reconcileIndex()).toBe(8)
    const index = readIndex(base)
    expect(Object.keys(index.trajectories).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `t-${i}`))
    expect(
      Object.values(index.trajectories)
        .map((e) => relative(dir, e.path))
        .sort(),
    ).toEqual(trajectoryFiles)

    // The next holder of the index's lock swept the dead writer's temp file of index.json. The
    // trajectory file's stays (no lock is ever taken on it) until sweep() is run on its path.
    expect(allFiles(dir).filter((f) => f.endsWith('.tmp'))).toEqual([ghostTemp])
    expect(await sweep(join(dir, 'active', 'ghost.json'))).toEqual([ghostTemp.slice('active/'.length)])
    // A lock taken on a trajectory file leaves its sidecar beside it: still nothing the scan takes.
    await withIndexLock(join(dir, 'active', 't-1.json'), () => {})
    expect(allFiles(dir)).toEqual(['active/t-1.json.lock', 'index.json', 'index.json.lock', ...trajectoryFiles].sort())
    expect(await store.reconcileIndex()).toBe(0)
  })
})

async function pausedThenKilled(run: Run): Promise<void> {
  const end = Date.now() + 20_000
  while (!run.stderr().includes('INDEX_LOCK_PAUSED before-rename')) {
    if (Date.now() > end || run.child.exitCode !== null) {
      throw new Error(`writer never paused: ${run.stdout()}\n${run.stderr()}`)
    }
    await sleep(5)
  }
  run.child.kill('SIGKILL')
  await run.exited
}

interface Round {
  /** save() calls that resolved. */
  saved: number
  /** Of the 40 ids, how many index.json has at the end. */
  kept: number
  errors: string[]
  consoleErrors: number
  ms: number
}

/** 4 processes, each starting 10 save() calls at once (released together), into one fresh data dir. */
async function round(strategy: 'index-lock' | 'naive', processes = 4, perProcess = 10): Promise<Round> {
  const base = tempDir('traj')
  const runs = Array.from({ length: processes }, (_, p) =>
    node('traj-save-many.cjs', [strategy, base, `p${p}`, String(perProcess)]),
  )
  await Promise.all(runs.map((r) => r.line('READY')))
  const started = Date.now()
  for (const r of runs) r.child.kill('SIGUSR2')
  const exits = await Promise.all(runs.map((r) => r.exited))
  const ms = Date.now() - started
  const errors: string[] = []
  let consoleErrors = 0
  let saved = 0
  runs.forEach((r, p) => {
    const line = r.stdout().match(/^RESULT (.*)$/m)
    if (exits[p]!.code !== 0 || !line) {
      errors.push(`process ${p} exited ${exits[p]!.code ?? exits[p]!.signal}: ${r.stderr()}`)
      return
    }
    const res = JSON.parse(line[1]!) as { saved: number; errors: string[]; consoleErrors: number }
    errors.push(...res.errors)
    saved += res.saved
    consoleErrors += res.consoleErrors
  })
  let kept = 0
  try {
    const have = new Set(ids(base))
    for (let p = 0; p < processes; p++) for (let i = 0; i < perProcess; i++) kept += have.has(`p${p}-${i}`) ? 1 : 0
  } catch (err) {
    errors.push(`index.json unreadable: ${(err as Error).message}`)
  }
  return { saved, kept, errors, consoleErrors, ms }
}

describe('4 processes x 10 concurrent saves into one data dir', () => {
  it('FileStorage keeps 40 of 40 entries, 10 times over', async () => {
    const started = Date.now()
    const rounds: Round[] = []
    for (let i = 0; i < 10; i++) {
      const r = await round('index-lock')
      rounds.push(r)
      expect(r, `round ${i}`).toMatchObject({ saved: 40, kept: 40, errors: [], consoleErrors: 0 })
    }
    console.log(
      `[trajectories] index-lock 4x10, 10 rounds: ${Date.now() - started} ms in all; saves took ` +
        rounds.map((r) => r.ms).join(', ') +
        ' ms',
    )
  })

  it('the naive original loses entries (or fails) under the same load', async () => {
    const rounds: Round[] = []
    // Ten rounds, and more (up to 30) only if none of them has shown a loss yet.
    while (rounds.length < 30) {
      rounds.push(await round('naive'))
      const bad = rounds.filter((r) => r.kept < 40 || r.errors.length > 0)
      if (rounds.length >= 10 && bad.length > 0) break
    }
    const bad = rounds.filter((r) => r.kept < 40 || r.errors.length > 0)
    console.log(
      `[trajectories] naive 4x10: ${bad.length} of ${rounds.length} rounds lost entries or failed; ` +
        `kept ${rounds.map((r) => r.kept).join(', ')} of 40; ` +
        `${rounds.reduce((n, r) => n + r.errors.length, 0)} errors, ` +
        `${rounds.reduce((n, r) => n + Math.max(0, r.saved - r.kept), 0)} resolved saves missing from the index, ` +
        `${rounds.reduce((n, r) => n + r.consoleErrors, 0)} console.error calls`,
    )
    expect(bad.length).toBeGreaterThan(0)
  })
})
