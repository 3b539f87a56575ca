// On a case-insensitive volume (Windows; macOS by default) every case spelling of a file is one
// lock: one key orders sets, keeps holds and nesting, and names one sidecar. Here (Linux, case-
// sensitive) the children run the fault-injection build with INDEX_LOCK_FOLD_CASE=1, which folds
// lock keys as a case-insensitive volume does; under wine the platform suite checks the same on
// real Windows semantics (__test__/platform/suite.cjs "one file in two case spellings").
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { node } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

const FOLDING = { NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD, INDEX_LOCK_FOLD_CASE: '1' }

// Forced folding folds the whole key, directories included, and here a folded directory name is
// another (missing) directory: the test directories are spelled in lower case.
const made: string[] = []
let n = 0
function lowerCaseDir() {
  const dir = join(tmpdir(), `index-lock-case-${process.pid}-${n++}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  made.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

it('two spellings of one file are one lock for a set, a nested call and a request from its mutator', async () => {
  const dir = lowerCaseDir()
  const child = node('case-spellings.cjs', [dir], FOLDING)
  const { code } = await child.exited
  expect(code, child.stderr()).toBe(0)
  expect(JSON.parse(child.stdout())).toEqual({ oneKey: true, set: 'ok', nested: 1, inMutator: 'ELOCKNESTED' })
}, 30_000)

it('two processes taking one pair of files as a set in different spellings and orders both finish', async () => {
  const dir = lowerCaseDir()
  const [A, a, B, b] = ['A.json', 'a.json', 'B.json', 'b.json'].map((n) => join(dir, n))
  const go = join(dir, 'go')
  const rounds = 40
  // Spelled apart, [B, a] and [A, b] sort into opposite orders: each process would hold one file
  // and wait for the other's until the timeout.
  const kids = [
    node('set-rounds-held.cjs', [go, String(rounds), B!, a!], FOLDING),
    node('set-rounds-held.cjs', [go, String(rounds), A!, b!], FOLDING),
  ]
  await Promise.all(kids.map((k) => k.line('READY')))
  writeFileSync(go, '')
  const exits = await Promise.all(kids.map((k) => k.exited))
  expect(kids.map((k) => k.stdout().trim().split('\n').pop())).toEqual([`DONE ${rounds}`, `DONE ${rounds}`])
  expect(exits.map((e) => e.code)).toEqual([0, 0])
}, 60_000)
