// The data model shared by both storage classes.

/** `'active'` trajectories live in `active/`; every other status in `completed/YYYY-MM/`. */
export type TrajectoryStatus = 'active' | 'completed' | 'abandoned' | (string & {})

/** One agent trajectory: the fields the store uses, plus whatever else the agent records. */
export interface Trajectory {
  id: string
  title: string
  status: TrajectoryStatus
  /** ISO 8601. */
  startedAt: string
  /** ISO 8601; picks the `completed/YYYY-MM/` folder (falls back to `startedAt`). */
  completedAt?: string
  [field: string]: unknown
}

/** What `index.json` keeps per trajectory. `path` is absolute. */
export interface IndexEntry {
  title: string
  status: TrajectoryStatus
  startedAt: string
  completedAt?: string
  path: string
}

/** `<baseDir>/.trajectories/index.json`, written with 2-space indentation. */
export interface TrajectoryIndex {
  version: 1
  /** ISO 8601 time of the last save. */
  lastUpdated: string
  trajectories: Record<string, IndexEntry>
}

/** An index entry with its id, as `list()` returns it. */
export interface TrajectorySummary extends IndexEntry {
  id: string
}

export interface TrajectoryQuery {
  status?: TrajectoryStatus
  /** Only trajectories started at or after this ISO time. */
  since?: string
  /** At most this many, newest `startedAt` first. */
  limit?: number
}

/** The public API both `FileStorage` and `NaiveFileStorage` implement. */
export interface TrajectoryStorage {
  initialize(): Promise<void>
  save(trajectory: Trajectory): Promise<void>
  get(id: string): Promise<Trajectory | null>
  list(query?: TrajectoryQuery): Promise<TrajectorySummary[]>
  delete(id: string): Promise<void>
  /** Adds index entries for trajectory files the index lacks; resolves with how many it added. */
  reconcileIndex(): Promise<number>
}
