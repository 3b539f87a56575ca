// Builds the fault-injection variant of the addon (test-only pause points inside a save) once
// per test run, for the crash tests' child processes. Cargo makes this a no-op when up to date.
import { spawnSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

// INDEX_LOCK_FEATURES (set by scripts/generic-unix.js) adds cargo features, e.g. the generic-Unix
// backend; that variant gets a target directory of its own so neither build invalidates the other.
const EXTRA = process.env.INDEX_LOCK_FEATURES ?? ''
const TARGET = resolve(__dirname, '..', '..', 'target', ...(EXTRA ? [EXTRA.replaceAll(',', '-')] : []))
export const FAULT_BUILD = join(TARGET, 'fault', 'index-lock-fault.node')

export default function setup() {
  const root = resolve(__dirname, '..', '..')
  const features = ['fault-injection', ...(EXTRA ? [EXTRA] : [])].join(',')
  const res = spawnSync('cargo', ['build', '--profile', 'fault', '--features', features, '--target-dir', TARGET], {
    cwd: root,
    stdio: 'inherit',
  })
  if (res.status !== 0) throw new Error('cargo build of the fault-injection variant failed')
  copyFileSync(join(TARGET, 'fault', 'libindex_lock.so'), FAULT_BUILD)
}
