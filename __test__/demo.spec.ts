// `npm run demo`, run small: the naive store loses index entries, index-lock keeps all of them.
import { join } from 'node:path'
import { beforeAll, expect, it } from 'vitest'

import { buildExamples } from './build-examples'
import { ROOT, run } from './helpers'

beforeAll(() => buildExamples())

it('the demo shows naive losing entries and index-lock keeping every one', async () => {
  const demo = run(process.execPath, [join(ROOT, 'demo', 'relay.js'), '--processes', '3', '--agents=3', '--saves', '4'])
  const { code } = await demo.exited
  expect(code, demo.stdout() + demo.stderr()).toBe(0)
  const out = demo.stdout()
  expect(out).toMatch(/^index-lock\s+\|\s+36 \/ 36 \|\s+0 \|\s+0 \|/m)
  const naive = /^naive\s+\|\s+(\d+) \/ 36 \|/m.exec(out)
  expect(naive).not.toBeNull()
  expect(out).toContain('index-lock kept all entries')
})

it('the demo rejects bad flags with usage and exit code 2', async () => {
  const demo = run(process.execPath, [join(ROOT, 'demo', 'relay.js'), '--processes', '0'])
  expect((await demo.exited).code).toBe(2)
  expect(demo.stderr()).toContain('Usage')
})
