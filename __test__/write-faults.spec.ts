// A save that fails at each of its steps (temp write, temp fsync, rename, directory fsync),
// injected into the real syscalls of a child process (strace, a file-size limit): group commit
// must leave the file exactly where the same calls made one after another leave it, and never
// move it backwards. A failed directory fsync happens after the rename, so the file already
// holds the new state: the error says so (`renamed: true`) and nothing retries an older state.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { FIXTURES, tempDir } from './helpers'

const hasStrace = spawnSync('strace', ['-V']).status === 0
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0

interface Outcome {
  outcomes: string[]
  seen: (number[] | null)[]
  disk: number[] | null
}

/** The fixture under `wrap` (a command prefix that injects the fault). */
function runUnder(wrap: string[], mode: 'batched' | 'sequential', n: number, kind = 'update'): Outcome {
  const dir = tempDir('fault')
  const path = join(dir, 'index.json')
  const r = spawnSync(
    wrap[0],
    [...wrap.slice(1), process.execPath, join(FIXTURES, 'fault-batch.cjs'), path, mode, String(n), kind],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  )
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'))
  expect(line, `no result: ${r.stdout}\n${r.stderr}`).toBeDefined()
  expect(r.stdout).not.toContain('UNHANDLED')
  // No temp file is left by any failed step.
  expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  return JSON.parse(line!)
}

const strace = (inject: string) => [
  'strace',
  '-f',
  '-qq',
  '-o',
  '/dev/null',
  '-e',
  `trace=${inject.split(':')[0]}`,
  '-e',
  `inject=${inject}`,
]

/** True when the lists seen never lose an element they had (the file never moves backwards). */
function monotone(seen: (number[] | null)[]): boolean {
  for (let i = 1; i < seen.length; i++) {
    const before = seen[i - 1] ?? []
    const now = seen[i] ?? []
    if (!before.every((x) => now.includes(x))) return false
  }
  return true
}

describe.skipIf(!hasStrace)('a save failing at one step: batched ends where sequential does (needs strace)', () => {
  const cases: [string, string[], (o: Outcome) => void][] = [
    [
      'directory fsync (after the rename)',
      // Each save fsyncs its temp file, then the directory, on one thread: every second fsync
      // of a thread is a directory's.
      strace('fsync:error=EIO:when=2+2'),
      (o) => {
        expect(o.disk).toEqual([0, 1, 2])
        expect(o.outcomes).toEqual(['EIO:renamed', 'EIO:renamed', 'EIO:renamed'])
      },
    ],
    [
      'temp file fsync',
      strace('fsync:error=EIO'),
      (o) => {
        expect(o.disk).toBeNull()
        expect(o.outcomes).toEqual(['EIO', 'EIO', 'EIO'])
      },
    ],
    [
      'rename',
      strace('rename:error=EIO'),
      (o) => {
        expect(o.disk).toBeNull()
        expect(o.outcomes).toEqual(['EIO', 'EIO', 'EIO'])
      },
    ],
  ]
  for (const kind of ['update', 'patch']) {
    for (const [name, wrap, check] of cases) {
      it(`${name} (${kind === 'patch' ? 'patchJson, native group commit' : 'updateJson'})`, () => {
        const sequential = runUnder(wrap, 'sequential', 3, kind)
        const batched = runUnder(wrap, 'batched', 3, kind)
        check(sequential)
        expect(batched.disk).toEqual(sequential.disk)
        expect(batched.outcomes).toEqual(sequential.outcomes)
        expect(monotone(batched.seen), JSON.stringify(batched.seen)).toBe(true)
      })
    }
  }
})

describe.skipIf(!hasPrlimit)(
  'a temp write failing (file-size limit): batched ends where sequential does (needs prlimit)',
  () => {
    it.each(['update', 'patch'])('temp write (%s)', (kind) => {
      // Pipes are not limited, so the fixture still reports; every save's write fails (EFBIG).
      const wrap = ['prlimit', '--fsize=4']
      const sequential = runUnder(wrap, 'sequential', 3, kind)
      const batched = runUnder(wrap, 'batched', 3, kind)
      expect(sequential.disk).toBeNull()
      expect(sequential.outcomes).toEqual(['EFBIG', 'EFBIG', 'EFBIG'])
      expect(batched.disk).toEqual(sequential.disk)
      expect(batched.outcomes).toEqual(sequential.outcomes)
    })
  },
)
