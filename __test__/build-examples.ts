// Compiles examples/trajectories (TypeScript -> CommonJS in examples/trajectories/dist) for the
// child processes that require it. Idempotent: a stamp file newer than every input skips tsc, and
// the build runs under an index-lock lock so two test runs at once do not write dist/ together.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

import { withIndexLockSync } from '../index.js'

const ROOT = resolve(__dirname, '..')
export const EXAMPLE = join(ROOT, 'examples', 'trajectories')
export const EXAMPLE_DIST = join(EXAMPLE, 'dist')

function newestInput(): number {
  let newest = 0
  const visit = (p: string) => {
    const st = statSync(p)
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name))
    else newest = Math.max(newest, st.mtimeMs)
  }
  for (const p of [join(EXAMPLE, 'src'), join(EXAMPLE, 'tsconfig.json'), join(ROOT, 'index.d.ts')]) visit(p)
  return newest
}

/** Runs `tsc -p examples/trajectories` unless dist/ is newer than its sources; throws on errors. */
export function buildExamples(): void {
  mkdirSync(EXAMPLE_DIST, { recursive: true })
  const stamp = join(EXAMPLE_DIST, '.build-stamp')
  withIndexLockSync(
    stamp,
    () => {
      const fresh =
        existsSync(stamp) && existsSync(join(EXAMPLE_DIST, 'index.js')) && statSync(stamp).mtimeMs >= newestInput()
      if (fresh) return
      const tsc = join(ROOT, 'node_modules', '.bin', 'tsc')
      const res = spawnSync(tsc, ['-p', EXAMPLE], { cwd: ROOT, encoding: 'utf8' })
      if (res.status !== 0) {
        throw new Error(
          `tsc -p examples/trajectories failed (${res.status ?? res.signal}):\n${res.stdout}${res.stderr}`,
        )
      }
      writeFileSync(stamp, `${new Date().toISOString()}\n`)
    },
    { timeoutMs: 120_000 },
  )
}
