// The benchmark keeps running: a --quick smoke run prints the one table with every contender, and
// no locked row loses an update. (Speed is measured by `npm run bench`, never asserted here.)
import { join } from 'node:path'
import { expect, it } from 'vitest'

import { ROOT, run } from './helpers'

it('npm run bench --quick prints every row and loses nothing', async () => {
  const bench = run(process.execPath, [join(ROOT, 'bench', 'run.js'), '--quick'])
  const { code } = await bench.exited
  const out = bench.stdout()
  expect(code, out + bench.stderr()).toBe(0)
  for (const row of [
    'index-lock withIndexLock(path, () => {})',
    'proper-lockfile lock()+release()',
    'async-mutex runExclusive',
    '(a) naive',
    '(b) proper-lockfile + write-file-atomic',
    '(c) in-process queue + (b)',
    '(d) index-lock withIndexLock+readJson+writeJson',
    '(e) index-lock updateJson',
    '(f) native bound',
    'index-lock (2 processes, ping-pong)',
  ]) {
    expect(out).toContain(row)
  }
  expect(out).toContain('Correctness: every locked row kept every update')
}, 180_000)
