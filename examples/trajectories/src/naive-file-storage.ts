// The hand-rolled original, kept as a fixture: load (readFile + JSON.parse), modify, save
// (writeFile to a fixed index.json.tmp, then rename). Two saves at once (async callers or
// processes) both load the same index and the second rename drops the first one's entry; two
// writers of the one index.json.tmp interleave and can rename a torn file into place.
// Compare with file-storage.ts: the public methods are the same, only the internals differ.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

import {
  addMissingEntries,
  checkTrajectory,
  emptyIndex,
  findTrajectory,
  indexEntry,
  type Layout,
  layoutOf,
  queryIndex,
  readTrajectory,
  removeActiveCopy,
  removeTrajectoryFiles,
  trajectoryPath,
} from './layout'
import type { Trajectory, TrajectoryIndex, TrajectoryQuery, TrajectoryStorage, TrajectorySummary } from './types'

export class NaiveFileStorage implements TrajectoryStorage {
  private readonly layout: Layout

  constructor(baseDir: string = process.cwd()) {
    this.layout = layoutOf(baseDir)
  }

  /** Creates the data directories and the index, and indexes any trajectory file it lacks. */
  async initialize(): Promise<void> {
    await mkdir(this.layout.activeDir, { recursive: true })
    await mkdir(this.layout.completedDir, { recursive: true })
    await this.reconcileIndex()
  }

  /** Writes the trajectory's file (moving it out of active/ once it is not active) and indexes it. */
  async save(trajectory: Trajectory): Promise<void> {
    checkTrajectory(trajectory)
    const path = trajectoryPath(this.layout, trajectory)
    await mkdir(dirname(path), { recursive: true })
    await this.writeTrajectory(path, trajectory)
    await this.updateIndex((index) => {
      index.trajectories[trajectory.id] = indexEntry(trajectory, path)
    })
    await removeActiveCopy(this.layout, trajectory.id, path)
  }

  async get(id: string): Promise<Trajectory | null> {
    const entry = (await this.loadIndex()).trajectories[id]
    return (await readTrajectory(entry?.path, id)) ?? (await findTrajectory(this.layout, id))
  }

  async list(query: TrajectoryQuery = {}): Promise<TrajectorySummary[]> {
    return queryIndex(await this.loadIndex(), query)
  }

  async delete(id: string): Promise<void> {
    await this.updateIndex(async (index) => {
      delete index.trajectories[id]
      await removeTrajectoryFiles(this.layout, id)
    })
  }

  async reconcileIndex(): Promise<number> {
    let added = 0
    await this.updateIndex(async (index) => {
      added = await addMissingEntries(this.layout, index)
    })
    return added
  }

  // --- index internals -------------------------------------------------------------------------

  private async loadIndex(): Promise<TrajectoryIndex> {
    try {
      return JSON.parse(await readFile(this.layout.indexPath, 'utf8')) as TrajectoryIndex
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        console.error('[trajectories] Failed to load index:', err)
      }
      return emptyIndex()
    }
  }

  private async saveIndex(index: TrajectoryIndex): Promise<void> {
    index.lastUpdated = new Date().toISOString()
    const tmp = `${this.layout.indexPath}.tmp`
    await writeFile(tmp, JSON.stringify(index, null, 2))
    await rename(tmp, this.layout.indexPath)
  }

  private async updateIndex(change: (index: TrajectoryIndex) => void | Promise<void>): Promise<void> {
    const index = await this.loadIndex()
    await change(index)
    await this.saveIndex(index)
  }

  private async writeTrajectory(path: string, trajectory: Trajectory): Promise<void> {
    await writeFile(path, JSON.stringify(trajectory, null, 2))
  }
}
