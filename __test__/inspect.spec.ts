// inspect(path), the public report `index-lock status` formats: lock holders (real child
// processes) with their mode, the data file's state, temp files (orphaned and live), the
// filesystem, and an error for a path that cannot be resolved. It changes nothing.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'

import * as lib from '../index.js'
import { inspect, type InspectReport } from '../index.js'
import { HOLDERS_KNOWN, LOOK_TAKES_NO_LOCK, node, ROOT, run, tempDir, until } from './helpers'

const BIN = join(ROOT, 'bin', 'index-lock.js')

const ORPHAN = '.index.json.4194305.1.1.0badcafe.tmp'
const LIVE = `.index.json.${process.pid}.1.1.0badcafe.tmp`

function dataFile(content?: string): string {
  const file = join(tempDir('inspect'), 'index.json')
  if (content !== undefined) writeFileSync(file, content)
  return file
}

/** Every field index.d.ts declares for InspectReport, with the types it declares. */
function expectShape(report: InspectReport) {
  expect(Object.keys(report)).toEqual([
    'path',
    'resolved',
    'lockFile',
    'lock',
    'data',
    'tempFiles',
    'filesystem',
    'problems',
    'error',
  ])
  expect(Array.isArray(report.problems)).toBe(true)
  if (report.lock) {
    expect(Object.keys(report.lock).sort()).toEqual(['held', 'holders', 'mode', 'unusable', 'waiters'])
    expect(typeof report.lock.held).toBe('boolean')
    expect([null, 'exclusive', 'shared']).toContain(report.lock.mode)
    for (const h of report.lock.holders) {
      expect(Object.keys(h).sort()).toEqual(['cmdline', 'mode', 'pid'])
      expect(['exclusive', 'shared']).toContain(h.mode)
    }
    expect(report.lock.waiters === null || Array.isArray(report.lock.waiters)).toBe(true)
    expect([null, 'directory', 'symlink']).toContain(report.lock.unusable)
  }
  if (report.data) {
    expect(Object.keys(report.data).sort()).toEqual(['message', 'state'])
    expect(['missing', 'empty', 'ok', 'corrupt', 'error']).toContain(report.data.state)
  }
  if (report.tempFiles) {
    for (const t of [...report.tempFiles.orphaned, ...report.tempFiles.live]) {
      expect(Object.keys(t).sort()).toEqual(['ageMs', 'alive', 'name', 'pid'])
      expect(Number.isInteger(t.ageMs)).toBe(true)
    }
  }
  if (report.filesystem) {
    expect(Object.keys(report.filesystem).sort()).toEqual(['coherence', 'fstype', 'mountPoint', 'reason'])
    expect(['local', 'distributed', 'unsafe']).toContain(report.filesystem.coherence)
  }
  if (report.error) expect(Object.keys(report.error).sort()).toEqual(['code', 'message'])
}

/**
 * Runs inspect() over and over for 2.5 s (yielding every few ms), and `index-lock status` three
 * times meanwhile, while a child process tries the lock of `file` in `mode` over and over:
 * the child's count of tries and of tries that returned null, and how many inspections ran.
 */
async function triesDuringInspection(file: string, mode: 'shared' | 'exclusive') {
  const looper = node('try-loop.cjs', [file, mode, '3000'])
  await looper.line('LOOPING')
  let inspected = 0
  const end = Date.now() + 2500
  const cliRuns = (async () => {
    const codes = []
    for (let i = 0; i < 3; i++) {
      const r = run(process.execPath, [BIN, 'status', file, '--json'])
      codes.push((await r.exited).code)
    }
    return codes
  })()
  while (Date.now() < end) {
    const slice = Date.now() + 5
    while (Date.now() < slice) {
      inspect(file)
      inspected++
    }
    await new Promise((r) => setImmediate(r))
  }
  const codes = await cliRuns
  const { tries, nulls } = JSON.parse((await looper.line('RESULT')).slice('RESULT '.length))
  return { tries, nulls, inspected, codes }
}

describe('inspect()', () => {
  it('is exported from CommonJS and ESM as the same function', async () => {
    const esm = await import('../index.mjs')
    expect(typeof lib.inspect).toBe('function')
    expect(esm.inspect).toBe(lib.inspect)
  })

  it('a free lock and a missing data file: nothing held, nothing wrong, nothing created', () => {
    const file = dataFile()
    const report = inspect(file)
    expectShape(report)
    expect(report).toMatchObject({
      path: file,
      resolved: file,
      lockFile: `${file}.lock`,
      lock: { held: false, mode: null, holders: [], unusable: null },
      data: { state: 'missing', message: null },
      tempFiles: { orphaned: [], live: [] },
      filesystem: { coherence: 'local' },
      problems: [],
      error: null,
    })
    expect(readdirSync(dirname(file))).toEqual([])
    writeFileSync(file, ' \n')
    expect(inspect(file).data).toEqual({ state: 'empty', message: null })
    writeFileSync(file, '{"n": 1}\n')
    expect(inspect(file).data).toEqual({ state: 'ok', message: null })
  })

  it('a lock held by another process: its pid, mode and command line', async () => {
    const file = dataFile('{}')
    const holder = node('proc-hold.cjs', [file, 'exclusive'])
    await holder.line('HELD')
    let report = inspect(file)
    expectShape(report)
    expect(report.lock).toMatchObject({ held: true, mode: 'exclusive' })
    if (HOLDERS_KNOWN) {
      expect(report.lock!.holders).toEqual([
        { pid: holder.child.pid, mode: 'exclusive', cmdline: expect.stringContaining('proc-hold.cjs') },
      ])
    } else {
      // Where the OS cannot name holders, a look at the lock still sees an exclusive one.
      expect(report.lock!.holders).toEqual([{ pid: null, mode: 'exclusive', cmdline: null }])
    }
    holder.child.kill('SIGTERM')
    await holder.exited

    const readers = [node('proc-hold.cjs', [file, 'shared']), node('proc-hold.cjs', [file, 'shared'])]
    await Promise.all(readers.map((r) => r.line('HELD')))
    report = inspect(file)
    if (HOLDERS_KNOWN) {
      expect(report.lock).toMatchObject({ held: true, mode: 'shared' })
      expect(report.lock!.holders.map((h) => h.pid).sort()).toEqual(readers.map((r) => r.child.pid).sort())
      for (const h of report.lock!.holders) expect(h.mode).toBe('shared')
    } else if (LOOK_TAKES_NO_LOCK) {
      // F_GETLK tells shared holders apart, not who they are.
      expect(report.lock).toMatchObject({
        held: true,
        mode: 'shared',
        holders: [{ pid: null, mode: 'shared', cmdline: null }],
      })
    } else {
      // A shared try-lock does not see shared holders (docs/guarantees.md).
      expect(report.lock).toMatchObject({ held: false, mode: null, holders: [] })
    }
  })

  it.skipIf(process.getuid?.() !== 0)(
    'from another pid namespace (a container sharing the volume), where /proc/locks hides holders: an exclusive holder is seen, pid unknown, and no shared request fails (needs root for unshare)',
    async () => {
      const file = dataFile('{}')
      // inspect() over and over for `ms` (once for 0) in a fresh pid namespace with its own /proc:
      // how often, and each distinct lock report.
      const fromNamespace = async (ms: number) => {
        const script = `const { inspect } = require(${JSON.stringify(join(ROOT, 'index.js'))})
          const end = Date.now() + ${ms}, seen = new Set()
          let n = 0
          do { seen.add(JSON.stringify(inspect(${JSON.stringify(file)}).lock)); n++ } while (Date.now() < end)
          console.log(JSON.stringify({ n, locks: [...seen].map((l) => JSON.parse(l)) }))`
        const r = run('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', script])
        const { code } = await r.exited
        expect(code, r.stderr()).toBe(0)
        return JSON.parse(r.stdout()) as { n: number; locks: InspectReport['lock'][] }
      }
      const writer = node('proc-hold.cjs', [file, 'exclusive'])
      await writer.line('HELD')
      expect((await fromNamespace(0)).locks).toEqual(
        [
          {
            held: true,
            mode: 'exclusive',
            holders: [{ pid: null, mode: 'exclusive', cmdline: null }],
            waiters: [],
            unusable: null,
          },
        ].map((l) => (HOLDERS_KNOWN ? l : { ...l, waiters: null })),
      )
      writer.child.kill('SIGTERM')
      await writer.exited
      expect((await fromNamespace(0)).locks).toMatchObject([{ held: false, mode: null, holders: [] }])
      // There nothing tells without a lock: the probe is a shared try-lock, which never refuses
      // another process's shared request (an exclusive one, which it did take, refused them all).
      const looper = node('try-loop.cjs', [file, 'shared', '3000'])
      await looper.line('LOOPING')
      const seen = await fromNamespace(2500)
      const { tries, nulls } = JSON.parse((await looper.line('RESULT')).slice('RESULT '.length))
      expect(seen.n).toBeGreaterThan(50)
      expect(tries).toBeGreaterThan(50)
      expect(nulls).toBe(0)
    },
  )

  it('never makes a shared request fail: a shared holder, a child trying shared over and over, inspect() and status in a loop', async () => {
    const file = dataFile('{}')
    const reader = node('proc-hold.cjs', [file, 'shared'])
    await reader.line('HELD')
    const r = await triesDuringInspection(file, 'shared')
    expect(r.inspected).toBeGreaterThan(50)
    expect(r.tries).toBeGreaterThan(50)
    // Held (exit 1), where the shared holder can be seen without a lock; a shared try-lock
    // cannot see it (docs/guarantees.md).
    expect(r.codes).toEqual(LOOK_TAKES_NO_LOCK ? [1, 1, 1] : [0, 0, 0])
    expect(r.nulls).toBe(0)
  })

  it('never makes a shared request fail while nobody else holds the lock', async () => {
    const file = dataFile('{}')
    const r = await triesDuringInspection(file, 'shared')
    expect(r.inspected).toBeGreaterThan(50)
    expect(r.tries).toBeGreaterThan(50)
    expect(r.nulls).toBe(0)
  })

  // Where the OS tells who holds a lock only to a lock of its own (a shared try-lock), an
  // exclusive try that lands in its microseconds finds the lock taken (docs/guarantees.md).
  it.skipIf(!LOOK_TAKES_NO_LOCK)(
    'never makes an exclusive request fail: a child trying exclusive over and over, inspect() and status in a loop',
    async () => {
      const file = dataFile('{}')
      const r = await triesDuringInspection(file, 'exclusive')
      expect(r.inspected).toBeGreaterThan(50)
      expect(r.tries).toBeGreaterThan(50)
      expect(r.nulls).toBe(0)
    },
  )

  it('processes waiting for the lock: their pid and the mode they ask for (null where the OS cannot tell)', async () => {
    const file = dataFile('{}')
    const holder = node('proc-hold.cjs', [file, 'exclusive'])
    await holder.line('HELD')
    expect(inspect(file).lock!.waiters).toEqual(HOLDERS_KNOWN ? [] : null)
    const waiter = node('proc-hold.cjs', [file, 'shared'])
    if (!HOLDERS_KNOWN) {
      await new Promise((r) => setTimeout(r, 300))
      expect(inspect(file).lock!.waiters).toBeNull()
      return
    }
    await until(() => (inspect(file).lock!.waiters ?? []).length > 0, 10_000, 'waiter listed')
    expect(inspect(file).lock!.waiters).toEqual([
      { pid: waiter.child.pid, mode: 'shared', cmdline: expect.stringContaining('proc-hold.cjs') },
    ])
    holder.child.kill('SIGTERM')
    await waiter.line('HELD')
    expect(inspect(file).lock!.waiters).toEqual([])
  })

  it('a corrupt data file: state corrupt with the CorruptFileError message, and a problem', () => {
    const file = dataFile('{"entries": {"a": 1,}}')
    const report = inspect(file)
    expectShape(report)
    expect(report.data!.state).toBe('corrupt')
    expect(report.data!.message).toMatch(new RegExp(`^Corrupt JSON in '${file}': .* at line 1 column \\d+`))
    expect(report.problems).toEqual(['the data file does not parse as JSON'])
  })

  it("orphaned and live temp files are told apart by their writer's lock", async () => {
    const file = dataFile('{}')
    writeFileSync(join(dirname(file), ORPHAN), '{')
    writeFileSync(join(dirname(file), LIVE), '{')
    const writer = run('flock', [join(dirname(file), LIVE), '-c', 'echo LOCKED; sleep 60'], {}, { group: true })
    await writer.line('LOCKED')
    const report = inspect(file)
    expectShape(report)
    expect(report.tempFiles!.orphaned).toEqual([
      { name: ORPHAN, pid: 4194305, alive: false, ageMs: expect.any(Number) },
    ])
    expect(report.tempFiles!.live).toEqual([{ name: LIVE, pid: process.pid, alive: true, ageMs: expect.any(Number) }])
    expect(report.problems).toEqual([expect.stringContaining('1 orphaned temp file')])
    expect(existsSync(join(dirname(file), ORPHAN))).toBe(true) // inspect removes nothing
  })

  it('a directory at the lock file: unusable, not held, and a problem naming it', () => {
    const file = dataFile('{}')
    mkdirSync(`${file}.lock`)
    const report = inspect(file)
    expectShape(report)
    expect(report.lock).toEqual({
      held: false,
      mode: null,
      holders: [],
      waiters: HOLDERS_KNOWN ? [] : null,
      unusable: 'directory',
    })
    expect(report.problems).toEqual([expect.stringContaining(`the lock file ${file}.lock is a directory`)])
  })

  it('a path that cannot be resolved is reported in error; a non-string path throws', () => {
    const file = join(tempDir('inspect'), 'nope', 'index.json')
    const report = inspect(file)
    expectShape(report)
    expect(report).toMatchObject({ resolved: null, lock: null, data: null, error: { code: 'ENOENT' } })
    expect(report.problems).toEqual([report.error!.message])
    expect(() => inspect(42 as unknown as string)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    )
  })
})
