// inspect(path), the public report `index-lock status` formats: lock holders (real child
// processes) with their mode, the data file's state, temp files (orphaned and live), the
// filesystem, and an error for a path that cannot be resolved. It changes nothing.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'

import * as lib from '../index.js'
import { inspect, type InspectReport } from '../index.js'
import { HOLDERS_KNOWN, node, ROOT, run, tempDir, until } from './helpers'

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
      // Where the OS cannot name holders, a shared probe still sees an exclusive one.
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
    } else {
      // The probe tells shared holders apart, not who they are.
      expect(report.lock).toMatchObject({
        held: true,
        mode: 'shared',
        holders: [{ pid: null, mode: 'shared', cmdline: null }],
      })
    }
  })

  it.skipIf(process.getuid?.() !== 0)(
    'a shared holder in another pid namespace (a container sharing the volume) is seen as held shared (needs root for unshare)',
    async () => {
      const file = dataFile('{}')
      const readers = [node('proc-hold.cjs', [file, 'shared'])]
      await readers[0]!.line('HELD')
      // Run inspect() where /proc/locks cannot show the holder: a fresh pid namespace with its own /proc.
      const script = `console.log(JSON.stringify(require(${JSON.stringify(join(ROOT, 'index.js'))}).inspect(${JSON.stringify(file)}).lock))`
      const r = run('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', script])
      const { code } = await r.exited
      expect(code, r.stderr()).toBe(0)
      const lock = JSON.parse(r.stdout())
      expect(lock).toMatchObject({
        held: true,
        mode: 'shared',
        holders: [{ pid: null, mode: 'shared', cmdline: null }],
      })
      // An exclusive holder likewise, and a free lock is free.
      readers[0]!.child.kill('SIGTERM')
      await readers[0]!.exited
      const writer = node('proc-hold.cjs', [file, 'exclusive'])
      await writer.line('HELD')
      const w = run('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', script])
      await w.exited
      expect(JSON.parse(w.stdout())).toMatchObject({ held: true, mode: 'exclusive' })
      writer.child.kill('SIGTERM')
      await writer.exited
      const f = run('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', script])
      await f.exited
      expect(JSON.parse(f.stdout())).toMatchObject({ held: false, mode: null, holders: [] })
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
