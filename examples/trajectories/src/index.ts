export { FileStorage } from './file-storage'
export { NaiveFileStorage } from './naive-file-storage'
export type {
  IndexEntry,
  Trajectory,
  TrajectoryIndex,
  TrajectoryQuery,
  TrajectoryStatus,
  TrajectoryStorage,
  TrajectorySummary,
} from './types'
