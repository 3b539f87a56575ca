// Builds the fault-injection variant of the addon (test-only pause points inside a save) once
// per test run, for the crash tests' child processes. Cargo makes this a no-op when up to date.
import { spawnSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const FAULT_BUILD = resolve(__dirname, '..', '..', 'target', 'fault', 'index-lock-fault.node')

export default function setup() {
  const root = resolve(__dirname, '..', '..')
  const res = spawnSync('cargo', ['build', '--profile', 'fault', '--features', 'fault-injection'], {
    cwd: root,
    stdio: 'inherit',
  })
  if (res.status !== 0) throw new Error('cargo build of the fault-injection variant failed')
  copyFileSync(join(root, 'target', 'fault', 'libindex_lock.so'), FAULT_BUILD)
}
