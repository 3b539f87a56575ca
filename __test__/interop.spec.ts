// Mixed-language interop: Python (fcntl.flock + os.replace), shell (flock(1)) and Node (index-lock)
// follow one lock protocol on the same `<path>.lock` sidecar, so their updates never get lost and
// their locks exclude each other both ways. The writers: fixtures/interop_writer.py,
// fixtures/interop_writer.sh and fixtures/interop-writer.cjs.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, LockTimeoutError, tryAcquire } from '../index.js'
import { expectHolder, FIXTURES, node, run, tempDir, type Run } from './helpers'

const PY_WRITER = join(FIXTURES, 'interop_writer.py')
const SH_WRITER = join(FIXTURES, 'interop_writer.sh')
// The interpreter `python3` names, resolved once: a version manager's shim (pyenv) would add a
// shell script and ~100 ms to each of the test's Python starts.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()

type Kind = 'python' | 'python-unlocked' | 'node' | 'node-patch' | 'shell'

interface Writer {
  kind: Kind
  tag: string
  count: number
}

function startWriter(p: string, { kind, tag, count }: Writer, env: Record<string, string>): Run {
  const args = [p, String(count), tag]
  switch (kind) {
    case 'python':
      return run(PYTHON, [PY_WRITER, ...args], env)
    case 'python-unlocked':
      return run(PYTHON, [PY_WRITER, ...args, '--no-lock'], env)
    case 'node':
      return node('interop-writer.cjs', args, env)
    case 'node-patch':
      return node('interop-patcher.cjs', args, env)
    case 'shell':
      return run('bash', [SH_WRITER, ...args], { ...env, PYTHON })
  }
}

interface Outcome {
  /** Keys of the final index, in insertion order (= the order the updates were committed). */
  keys: string[]
  /** Expected keys that are missing. */
  lost: string[]
  /** Maximal runs of consecutive keys from one writer: > writers.length means they interleaved. */
  runs: number
  /** Names in the data file's directory besides the data file and its lock file. */
  strays: string[]
}

/**
 * Starts every writer, lets them all begin at once (each prints READY, then waits for a "go"
 * file), waits for all to exit successfully and inspects the result.
 */
async function race(writers: Writer[]): Promise<Outcome> {
  const dir = tempDir('interop')
  const p = join(dir, 'index.json')
  const go = join(tempDir('go'), 'go')
  const children = writers.map((w) => startWriter(p, w, { INTEROP_GO: go }))
  await Promise.all(children.map((c) => c.line('READY')))
  writeFileSync(go, '')
  const exits = await Promise.all(children.map((c) => c.exited))
  exits.forEach((e, i) => {
    const c = children[i]!
    expect(e, `${writers[i]!.kind} ${writers[i]!.tag}: ${c.stderr()}`).toEqual({ code: 0, signal: null })
    expect(c.stdout()).toContain(`DONE ${writers[i]!.count}`)
  })
  // Every writer parsed the file on each update (a torn file would have made it fail), and the
  // final file parses too.
  const index = JSON.parse(readFileSync(p, 'utf8')) as { entries: Record<string, string> }
  const keys = Object.keys(index.entries)
  const expected = writers.flatMap((w) => Array.from({ length: w.count }, (_, i) => `${w.tag}-${i}`))
  const writerOf = (k: string) => k.slice(0, k.lastIndexOf('-'))
  const runs = keys.filter((k, i) => i === 0 || writerOf(k) !== writerOf(keys[i - 1]!)).length
  const strays = readdirSync(dir).filter((n) => n !== 'index.json' && n !== 'index.json.lock')
  return { keys, lost: expected.filter((k) => !(k in index.entries)), runs, strays }
}

/** Runs a one-shot python3 -c that tries a non-blocking flock on the sidecar of `p`. */
async function pythonTryLock(p: string, how: 'LOCK_EX' | 'LOCK_SH'): Promise<string> {
  const code = [
    'import fcntl, os, sys',
    'fd = os.open(os.path.realpath(sys.argv[1]) + ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)',
    'try:',
    '    fcntl.flock(fd, getattr(fcntl, sys.argv[2]) | fcntl.LOCK_NB)',
    '    print("ACQUIRED")',
    'except BlockingIOError:',
    '    print("BLOCKED")',
  ].join('\n')
  const child = run(PYTHON, ['-c', code, p, how])
  const { code: status } = await child.exited
  expect(status, child.stderr()).toBe(0)
  return child.stdout().trim()
}

/** Starts a Python process that takes the lock of `p` per the protocol and keeps it. */
async function pythonHolder(p: string, mode: 'ex' | 'sh'): Promise<Run> {
  const holder = run(PYTHON, [PY_WRITER, '--hold', mode, p, '30'])
  expect(await holder.line('HELD')).toBe(`HELD ${holder.child.pid}`)
  return holder
}

/** tryAcquire that must find the lock taken (a handle it returns anyway is released, not leaked). */
async function expectTaken(p: string, mode: 'exclusive' | 'shared' = 'exclusive') {
  const h = tryAcquire(p, { mode })
  await h?.release()
  expect(h, `tryAcquire(${mode}) while another process holds the lock`).toBeNull()
}

async function kill(child: Run) {
  child.child.kill('SIGKILL')
  await child.exited
}

async function timeoutOf(promise: Promise<unknown>): Promise<LockTimeoutError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the lock wait to time out')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(LockTimeoutError)
  return err as LockTimeoutError
}

describe('interop with Python (fcntl.flock) and shell (flock(1)) writers', () => {
  it('patchJson/mergeJson writers (batched) beside updateJson, Python and shell writers lose no update', async () => {
    const writers: Writer[] = [
      { kind: 'python', tag: 'py1', count: 40 },
      { kind: 'node', tag: 'node1', count: 40 },
      { kind: 'node-patch', tag: 'patch1', count: 80 },
      { kind: 'node-patch', tag: 'patch2', count: 80 },
      { kind: 'shell', tag: 'sh', count: 15 },
    ]
    const out = await race(writers)
    expect(out.lost).toEqual([])
    expect(out.keys).toHaveLength(255)
    expect(out.strays).toEqual([])
  })

  it('Python, Node and shell writers interleaving on one index lose no update', async () => {
    const writers: Writer[] = [
      { kind: 'python', tag: 'py1', count: 60 },
      { kind: 'python', tag: 'py2', count: 60 },
      { kind: 'node', tag: 'node1', count: 60 },
      { kind: 'node', tag: 'node2', count: 60 },
      { kind: 'shell', tag: 'sh', count: 20 },
    ]
    const out = await race(writers)
    expect(out.lost).toEqual([])
    expect(out.keys).toHaveLength(260)
    expect(out.strays).toEqual([])
    // The writers really took turns (not one after another), so the lock was what kept them apart.
    expect(out.runs, `runs of one writer in commit order: ${out.runs}`).toBeGreaterThan(writers.length)
  })

  it('negative control: a Python writer that skips the lock loses updates', async () => {
    // Same writer, same atomic saves, only the flock left out. Its read-modify-write (parse, write,
    // fsync, rename) is long enough for the Node writers to commit in between, without any sleep.
    let lost: string[] = []
    for (let attempt = 0; attempt < 3 && lost.length === 0; attempt++) {
      const out = await race([
        { kind: 'python-unlocked', tag: 'nolock', count: 60 },
        { kind: 'node', tag: 'node1', count: 60 },
        { kind: 'node', tag: 'node2', count: 60 },
      ])
      // Lost updates, but never a torn file (race() parsed it) nor a leftover temp file.
      expect(out.strays).toEqual([])
      lost = out.lost
    }
    expect(lost.length, 'updates lost by the unlocked writer in 3 races').toBeGreaterThan(0)
  })

  it('a Python LOCK_EX holder excludes index-lock, and an index-lock holder excludes Python', async () => {
    const p = join(tempDir(), 'index.json')
    const holder = await pythonHolder(p, 'ex')
    await expectTaken(p)
    await expectTaken(p, 'shared')
    const err = await timeoutOf(acquire(p, { timeoutMs: 150 }))
    expect(err.code).toBe('ELOCKTIMEOUT')
    expectHolder(err.holders, holder.child.pid)

    // A waiting acquire gets the lock once the Python holder is gone (the kernel frees it).
    const waiting = acquire(p, { timeoutMs: 10_000 })
    await kill(holder)
    const lock = await waiting
    try {
      expect(await pythonTryLock(p, 'LOCK_EX')).toBe('BLOCKED')
      expect(await pythonTryLock(p, 'LOCK_SH')).toBe('BLOCKED')
    } finally {
      await lock.release()
    }
    expect(await pythonTryLock(p, 'LOCK_EX')).toBe('ACQUIRED')
  })

  it('a Python LOCK_SH holder admits shared index-lock holders but not an exclusive one', async () => {
    const p = join(tempDir(), 'index.json')
    const holder = await pythonHolder(p, 'sh')
    await expectTaken(p)
    const err = await timeoutOf(acquire(p, { timeoutMs: 150 }))
    expect(err.code).toBe('ELOCKTIMEOUT')
    expectHolder(err.holders, holder.child.pid)

    const viaTry = tryAcquire(p, { mode: 'shared' })
    expect(viaTry).not.toBeNull()
    const viaAcquire = await acquire(p, { mode: 'shared', timeoutMs: 2000 })
    await viaAcquire.release()
    await viaTry!.release()
    await kill(holder)

    // And the other way round: a Node shared holder admits Python LOCK_SH, not LOCK_EX.
    const shared = await acquire(p, { mode: 'shared', timeoutMs: 2000 })
    try {
      expect(await pythonTryLock(p, 'LOCK_SH')).toBe('ACQUIRED')
      expect(await pythonTryLock(p, 'LOCK_EX')).toBe('BLOCKED')
    } finally {
      await shared.release()
    }
    // Not tryAcquire: the timed-out acquire above left its native flock wait behind, and as the
    // lock frees that wait holds it for a moment before handing it back, so a tryAcquire right
    // now can be null (4-8 rounds in 100).
    const exclusive = await acquire(p, { timeoutMs: 2000 })
    await exclusive.release()
  })

  it('Python (os.path.realpath) and index-lock pick the same lock file for a symlinked spelling', async () => {
    // <dir>/link -> real, real/alias.json -> index.json (not created yet: a dangling link).
    const dir = tempDir()
    mkdirSync(join(dir, 'real'))
    symlinkSync('real', join(dir, 'link'))
    symlinkSync('index.json', join(dir, 'real', 'alias.json'))
    const real = join(dir, 'real', 'index.json')
    const spelled = join(dir, 'link', 'alias.json')

    const holder = await pythonHolder(spelled, 'ex')
    await expectTaken(real)
    await expectTaken(spelled)
    await kill(holder)

    const lock = await acquire(spelled, { timeoutMs: 2000 })
    try {
      expect(await pythonTryLock(real, 'LOCK_EX')).toBe('BLOCKED')
    } finally {
      await lock.release()
    }
    expect(readdirSync(join(dir, 'real')).sort()).toEqual(['alias.json', 'index.json.lock'])
  })
})
