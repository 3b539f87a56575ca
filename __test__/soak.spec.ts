// The short soak: the same program as `npm run soak`, small enough for every test run.
import { join } from 'node:path'
import { expect, it } from 'vitest'

import { ROOT, run } from './helpers'

it('a short counter soak loses no update and leaks no fd or temp file', async () => {
  const soak = run(process.execPath, [
    '--expose-gc',
    join(ROOT, 'bench', 'soak.js'),
    '--processes=3',
    '--callers=3',
    '--increments=20',
    '--cycles=5000',
    '--writes=300',
  ])
  const { code } = await soak.exited
  expect(code, soak.stdout() + soak.stderr()).toBe(0)
  expect(soak.stdout()).toMatch(/lost updates: 0; failed processes: 0; leaks: none/)
  expect(soak.stdout()).toMatch(/^\s+true \|\s+180 \|\s+180 \|\s+0 \|/m)
  expect(soak.stdout()).toMatch(/^\s+false \|\s+180 \|\s+180 \|\s+0 \|/m)
})
