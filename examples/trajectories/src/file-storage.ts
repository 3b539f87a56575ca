// Trajectory storage on index-lock. The public methods are those of the hand-rolled original
// (naive-file-storage.ts); only the index internals differ: every change of index.json runs
// under its lock (a FIFO queue in this process, flock(2) on index.json.lock across processes),
// saves are atomic (unique temp file, fsync, rename), and a malformed index is reported once and
// rebuilt from the trajectory files. Setting or deleting one entry is a JSON Patch / Merge Patch
// applied natively (patchJson, mergeJson): the index, which grows with every trajectory, is never
// parsed or stringified on the event loop for it. Only a change that needs the whole index
// (reconcileIndex) loads it.
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'

import { CorruptFileError, mergeJson, patchJson, readJson, withIndexLock, writeJson } from '../../../index.js'
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

export class FileStorage implements TrajectoryStorage {
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
    const entry = indexEntry(trajectory, path)
    await this.changeIndex(() =>
      patchJson(
        this.layout.indexPath,
        [
          { op: 'add', path: `/trajectories/${pointerToken(trajectory.id)}`, value: entry },
          { op: 'add', path: '/lastUpdated', value: new Date().toISOString() },
        ],
        { default: emptyIndex(), space: 2 },
      ),
    )
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
    await withIndexLock(this.layout.indexPath, async () => {
      // A merge patch's null deletes the entry, and is no error where there is none.
      await this.changeIndex(() =>
        mergeJson(
          this.layout.indexPath,
          { trajectories: { [id]: null }, lastUpdated: new Date().toISOString() },
          { default: emptyIndex(), space: 2 },
        ),
      )
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

  /** Missing or empty: an empty index. Malformed: reported and rebuilt from the trajectory files. */
  private async loadIndex(): Promise<TrajectoryIndex> {
    try {
      return await readJson<TrajectoryIndex>(this.layout.indexPath, { default: emptyIndex() })
    } catch (err) {
      if (!(err instanceof CorruptFileError)) throw err
      console.error(`[trajectories] ${err.message}; rebuilding the index from the trajectory files`)
      const index = emptyIndex()
      await addMissingEntries(this.layout, index)
      return index
    }
  }

  private async saveIndex(index: TrajectoryIndex): Promise<void> {
    index.lastUpdated = new Date().toISOString()
    await writeJson(this.layout.indexPath, index, { space: 2 })
  }

  /** Runs a native `change` of the index; a corrupt index is rebuilt (loadIndex) and the change run again. */
  private async changeIndex(change: () => Promise<void>): Promise<void> {
    try {
      await change()
    } catch (err) {
      if (!(err instanceof CorruptFileError)) throw err
      await this.updateIndex(() => {})
      await change()
    }
  }

  /** Load, change, save while holding the index's lock: no other save, in any process, comes between. */
  private async updateIndex(change: (index: TrajectoryIndex) => void | Promise<void>): Promise<void> {
    await withIndexLock(this.layout.indexPath, async () => {
      const index = await this.loadIndex()
      await change(index)
      await this.saveIndex(index)
    })
  }

  private async writeTrajectory(path: string, trajectory: Trajectory): Promise<void> {
    await writeJson(path, trajectory, { space: 2 })
  }
}

/** `token` as one RFC 6901 pointer token. */
function pointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1')
}
