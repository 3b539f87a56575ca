// What both storage classes share: where files go, index entries, queries and the reconcile
// scan. Nothing here touches index.json; that is left to each class's private internals.
import { readdir, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'

import type { IndexEntry, Trajectory, TrajectoryIndex, TrajectoryQuery, TrajectorySummary } from './types'

export interface Layout {
  /** `<baseDir>/.trajectories` */
  dataDir: string
  activeDir: string
  completedDir: string
  indexPath: string
}

export function layoutOf(baseDir: string): Layout {
  const dataDir = join(resolve(baseDir), '.trajectories')
  return {
    dataDir,
    activeDir: join(dataDir, 'active'),
    completedDir: join(dataDir, 'completed'),
    indexPath: join(dataDir, 'index.json'),
  }
}

export function emptyIndex(): TrajectoryIndex {
  return { version: 1, lastUpdated: new Date().toISOString(), trajectories: {} }
}

// A file name, not a path; no leading dot, so it can never look like a hidden or temp file.
const ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID.test(id) && id.length <= 200
}

/** Throws a TypeError for a trajectory `save()` cannot store. */
export function checkTrajectory(t: Trajectory): void {
  if (t === null || typeof t !== 'object') throw new TypeError('trajectory must be an object')
  if (!isValidId(t.id)) throw new TypeError(`invalid trajectory id: ${JSON.stringify(t.id)}`)
  for (const field of ['title', 'status', 'startedAt'] as const) {
    if (typeof t[field] !== 'string') throw new TypeError(`trajectory ${t.id}: ${field} must be a string`)
  }
  if (Number.isNaN(Date.parse(t.startedAt))) throw new TypeError(`trajectory ${t.id}: bad startedAt`)
  if (t.completedAt !== undefined && Number.isNaN(Date.parse(t.completedAt))) {
    throw new TypeError(`trajectory ${t.id}: bad completedAt`)
  }
}

/** `active/<id>.json` while active, else `completed/YYYY-MM/<id>.json` (UTC month). */
export function trajectoryPath(layout: Layout, t: Trajectory): string {
  if (t.status === 'active') return join(layout.activeDir, `${t.id}.json`)
  const month = new Date(t.completedAt ?? t.startedAt).toISOString().slice(0, 7)
  return join(layout.completedDir, month, `${t.id}.json`)
}

export function indexEntry(t: Trajectory, path: string): IndexEntry {
  const entry: IndexEntry = { title: t.title, status: t.status, startedAt: t.startedAt, path }
  if (t.completedAt !== undefined) entry.completedAt = t.completedAt
  return entry
}

function isTrajectory(value: unknown): value is Trajectory {
  const t = value as Trajectory | null
  return (
    t !== null &&
    typeof t === 'object' &&
    isValidId(t.id) &&
    typeof t.title === 'string' &&
    typeof t.status === 'string' &&
    typeof t.startedAt === 'string'
  )
}

/** The trajectory in `path`, or null when it is missing, unreadable or not a trajectory (of `id`). */
export async function readTrajectory(path: string | undefined, id?: string): Promise<Trajectory | null> {
  if (path === undefined) return null
  let value: unknown
  try {
    value = JSON.parse(await readFile(path, 'utf8'))
  } catch {
    return null
  }
  return isTrajectory(value) && (id === undefined || value.id === id) ? value : null
}

async function dirNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** Where a trajectory's file may be: `active/<id>.json` and `completed/<month>/<id>.json`. */
export async function candidatePaths(layout: Layout, id: string): Promise<string[]> {
  if (!isValidId(id)) return []
  const months = await dirNames(layout.completedDir)
  return [join(layout.activeDir, `${id}.json`), ...months.map((m) => join(layout.completedDir, m, `${id}.json`))]
}

/** Looks for `id` on disk without the index. */
export async function findTrajectory(layout: Layout, id: string): Promise<Trajectory | null> {
  for (const path of await candidatePaths(layout, id)) {
    const t = await readTrajectory(path, id)
    if (t) return t
  }
  return null
}

/** Removes every file of `id` (for `delete()`). */
export async function removeTrajectoryFiles(layout: Layout, id: string): Promise<void> {
  for (const path of await candidatePaths(layout, id)) await rm(path, { force: true })
}

/** Once a trajectory is saved elsewhere (it completed), removes its `active/` copy. */
export async function removeActiveCopy(layout: Layout, id: string, savedAt: string): Promise<void> {
  const active = join(layout.activeDir, `${id}.json`)
  if (savedAt !== active) await rm(active, { force: true })
}

/**
 * Every `*.json` file under `active/` and `completed/` (any depth). index.json lives outside
 * them, and index-lock's lock (`<name>.lock`) and temp files (`.<name>.<pid>.<tid>.<n>.<rand>.tmp`)
 * do not end in `.json`, so neither is picked up.
 */
export async function scanTrajectoryFiles(layout: Layout): Promise<string[]> {
  const found: string[] = []
  const walk = async (dir: string): Promise<void> => {
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const e of entries) {
      const path = join(dir, e.name)
      if (e.isDirectory()) await walk(path)
      else if (e.isFile() && e.name.endsWith('.json')) found.push(path)
    }
  }
  await walk(layout.activeDir)
  await walk(layout.completedDir)
  return found.sort()
}

/** Adds an entry for every trajectory file the index lacks; returns how many it added. */
export async function addMissingEntries(layout: Layout, index: TrajectoryIndex): Promise<number> {
  let added = 0
  for (const path of await scanTrajectoryFiles(layout)) {
    const t = await readTrajectory(path)
    if (!t || index.trajectories[t.id]) continue
    index.trajectories[t.id] = indexEntry(t, path)
    added++
  }
  return added
}

/** Filters by status and `since`, newest `startedAt` first, at most `limit`. */
export function queryIndex(index: TrajectoryIndex, query: TrajectoryQuery = {}): TrajectorySummary[] {
  const since = query.since === undefined ? -Infinity : Date.parse(query.since)
  const rows = Object.entries(index.trajectories)
    .map(([id, entry]) => ({ id, ...entry }))
    .filter((s) => query.status === undefined || s.status === query.status)
    .filter((s) => Date.parse(s.startedAt) >= since)
    .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? -1 : 1))
  return query.limit === undefined ? rows : rows.slice(0, Math.max(0, query.limit))
}
