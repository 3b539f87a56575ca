// The index-lock command (bin/index-lock.js), run as a real child process: `run` holds the
// library's lock while a command runs and passes its status and signals through, `status`
// reports holders, data, temp files and filesystem with distinct exit codes, `sweep` removes
// only orphaned temp files, and usage errors exit 64.
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { acquire, tryAcquire } from '../index.js'
import { HOLDERS_KNOWN, LOOK_TAKES_NO_LOCK, ROOT, node, run, tempDir, type RunOptions, waitingForLock } from './helpers'

const BIN = join(ROOT, 'bin', 'index-lock.js')
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version
// Planted temp files: one nobody holds (an orphan), and one a "writer" holds locked (see
// `writing`), as a live writer holds its temp file until the rename.
const ORPHAN = '.index.json.4194305.1.1.0badcafe.tmp'
const LIVE = `.index.json.${process.pid}.1.1.0badcafe.tmp`
// A command that says it started, then waits to be killed (its process group is killed after
// each test in any case).
const STAY = ['node', '-e', "console.log('READY'); setInterval(() => {}, 1000)"]

const cli = (args: string[], options: RunOptions = {}) => run(process.execPath, [BIN, ...args], {}, options)

async function done(args: string[]) {
  const r = cli(args)
  const { code, signal } = await r.exited
  return { code, signal, stdout: r.stdout(), stderr: r.stderr() }
}

function dataFile(content?: string): string {
  const file = join(tempDir('cli'), 'index.json')
  if (content !== undefined) writeFileSync(file, content)
  return file
}

/** Plants the temp file `name` beside `file`, flocked by a child process like a writer's. */
async function writing(file: string, name: string) {
  writeFileSync(join(dirname(file), name), '{')
  await run('flock', [join(dirname(file), name), '-c', 'echo LOCKED; sleep 60'], {}, { group: true }).line('LOCKED')
}

/** Whether the lock of `file` is free for an exclusive taker in this process (released at once). */
function free(file: string): boolean {
  const lock = tryAcquire(file)
  void lock?.release()
  return lock !== null
}

describe('index-lock run', () => {
  it('holds the lock while the command runs and releases it after', async () => {
    const file = dataFile()
    // The command checks from inside, with the library, in both modes.
    const probe = `const { tryAcquire } = require(${JSON.stringify(ROOT)})
      const p = process.argv[1]
      const seen = (mode) => { const l = tryAcquire(p, { mode }); l?.release(); return l ? 'free' : 'locked' }
      console.log('exclusive ' + seen('exclusive') + ', shared ' + seen('shared'))`
    const exclusive = await done(['run', file, '--', 'node', '-e', probe, file])
    expect(exclusive.code, exclusive.stderr).toBe(0)
    expect(exclusive.stdout).toBe('exclusive locked, shared locked\n')
    expect(free(file)).toBe(true)

    const shared = await done(['run', '--shared', file, '--', 'node', '-e', probe, file])
    expect(shared.stdout).toBe('exclusive locked, shared free\n')
    expect(free(file)).toBe(true)
  })

  it("exits with the command's status, 128+n for a signal, 127 for a missing command", async () => {
    const file = dataFile()
    expect((await done(['run', file, '--', 'sh', '-c', 'exit 7'])).code).toBe(7)
    expect((await done(['run', file, '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(128 + 15)
    const missing = await done(['run', file, '--', 'no-such-command-index-lock'])
    expect(missing.code).toBe(127)
    expect(missing.stderr).toBe('index-lock: no-such-command-index-lock: command not found\n')
    // Options after '--' belong to the command.
    expect((await done(['run', file, '--', 'echo', '--help', '--shared'])).stdout).toBe('--help --shared\n')
  })

  it('--shared admits other shared holders and excludes exclusive ones', async () => {
    const file = dataFile()
    const holder = cli(['run', '--shared', file, '--', ...STAY], { group: true })
    await holder.line('READY')
    const other = tryAcquire(file, { mode: 'shared' })
    expect(other).not.toBeNull()
    await other!.release()
    expect(tryAcquire(file)).toBeNull()
    expect((await done(['run', '--shared', '--timeout', '0', file, '--', 'true'])).code).toBe(0)
    expect((await done(['run', '--timeout=0', file, '--', 'true'])).code).toBe(75)
    // SIGTERM goes on to the command, which dies of it: 128 + 15.
    holder.child.kill('SIGTERM')
    expect((await holder.exited).code).toBe(143)
    expect(free(file)).toBe(true)
  })

  it('times out with exit 75 and the library message naming the path and the holder', async () => {
    const file = dataFile()
    const lock = await acquire(file)
    try {
      for (const timeout of ['300ms', '0.3', '0']) {
        const started = Date.now()
        const r = await done(['run', file, '--timeout', timeout, '--', 'sh', '-c', 'echo ran'])
        expect(r.code, timeout).toBe(75)
        expect(r.stdout).toBe('')
        expect(r.stderr).toMatch(/^index-lock: Timed out after \d+ ms waiting for the exclusive lock/)
        expect(r.stderr).toContain(`'${file}'`)
        expect(r.stderr).toContain(HOLDERS_KNOWN ? `held by pid ${process.pid}` : 'holder unknown')
        if (timeout !== '0') expect(Date.now() - started).toBeGreaterThanOrEqual(300)
      }
    } finally {
      await lock.release()
    }
  })

  it('keeps the lock until the command exits after a forwarded SIGTERM', async () => {
    const file = dataFile()
    const script =
      "process.on('SIGTERM', () => { console.log('GOT'); setTimeout(() => process.exit(3), 300) });" +
      "console.log('READY'); setInterval(() => {}, 1000)"
    const r = cli(['run', file, '--', 'node', '-e', script], { group: true })
    await r.line('READY')
    r.child.kill('SIGTERM')
    await r.line('GOT')
    expect(free(file)).toBe(false)
    expect((await r.exited).code).toBe(3)
    expect(free(file)).toBe(true)
  })

  // A command that counts the signals it receives. SIGTERM ends it: it reports the counts and
  // whether the lock of its data file is still held (checked from inside, with the library).
  const counter = (file: string) => [
    'node',
    '-e',
    `const { tryAcquire } = require(${JSON.stringify(ROOT)})
    const n = { SIGINT: 0, SIGQUIT: 0, SIGHUP: 0, SIGTERM: 0 }
    const stay = setInterval(() => {}, 1000)
    for (const s of Object.keys(n)) process.on(s, () => {
      n[s]++
      console.log(s + ' ' + n[s])
      if (s !== 'SIGTERM') return
      const lock = tryAcquire(${JSON.stringify(file)})
      lock?.release()
      console.log('DONE ' + JSON.stringify({ ...n, locked: lock === null }))
      clearInterval(stay)
      process.exitCode = 3
    })
    console.log('READY')`,
  ]
  const report = (line: string) => JSON.parse(line.slice('DONE '.length))

  it('one Ctrl-C or Ctrl-\\ (SIGINT, SIGQUIT to the process group) reaches the command once; index-lock survives it with the lock', async () => {
    const file = dataFile()
    // index-lock leads its own process group, as in a terminal's foreground job.
    const r = cli(['run', file, '--', ...counter(file)], { group: true })
    await r.line('READY')
    const pid = r.child.pid!
    // Stopped, index-lock can pass a signal on only after the command has counted the group's
    // delivery: two SIGINTs pending in the command at once would merge into one.
    process.kill(pid, 'SIGSTOP')
    process.kill(-pid, 'SIGINT')
    await r.line('SIGINT 1')
    process.kill(-pid, 'SIGQUIT')
    await r.line('SIGQUIT 1')
    process.kill(pid, 'SIGCONT')
    // index-lock handles what is pending (SIGINT, SIGQUIT) before this SIGTERM, which it passes
    // on: anything it forwarded reaches the command first.
    process.kill(pid, 'SIGTERM')
    expect(report(await r.line('DONE'))).toEqual({ SIGINT: 1, SIGQUIT: 1, SIGHUP: 0, SIGTERM: 1, locked: true })
    expect((await r.exited).code).toBe(3)
    expect(free(file)).toBe(true)
  })

  it('SIGTERM and SIGHUP sent to index-lock alone reach the command once; SIGINT and SIGQUIT sent to it alone do not', async () => {
    const file = dataFile()
    const r = cli(['run', file, '--', ...counter(file)], { group: true })
    await r.line('READY')
    const pid = r.child.pid!
    // A process cannot tell a kill(1) of its pid from the terminal's delivery to its group,
    // which has already reached the command: index-lock never passes SIGINT or SIGQUIT on.
    process.kill(pid, 'SIGINT')
    process.kill(pid, 'SIGQUIT')
    process.kill(pid, 'SIGHUP')
    await r.line('SIGHUP 1')
    process.kill(pid, 'SIGTERM')
    expect(report(await r.line('DONE'))).toEqual({ SIGINT: 0, SIGQUIT: 0, SIGHUP: 1, SIGTERM: 1, locked: true })
    expect((await r.exited).code).toBe(3)
    expect(free(file)).toBe(true)
  })

  it('a signal while waiting for the lock ends the wait with 128+n; the command never runs', async () => {
    const file = dataFile()
    const lock = await acquire(file)
    try {
      const since = statSync(`${file}.lock`, { bigint: true }).mtimeNs
      const r = cli(['run', file, '--timeout', 'inf', '--', 'sh', '-c', 'echo ran'])
      await waitingForLock(r.child.pid!, `${file}.lock`, since)
      r.child.kill('SIGINT')
      expect((await r.exited).code).toBe(130)
      expect(r.stdout()).toBe('')
    } finally {
      await lock.release()
    }
  })

  it('does not hand the lock to what the command leaves running (unlike flock(1))', async () => {
    const file = dataFile()
    const r = cli(['run', file, '--', 'sh', '-c', 'sleep 5 >/dev/null 2>&1 & exit 0'], { group: true })
    expect((await r.exited).code).toBe(0)
    expect(free(file)).toBe(true)
  })

  it("usage errors exit 64: no '--', a bad --timeout, no command; a missing directory exits 1", async () => {
    const file = dataFile()
    const noDashes = await done(['run', file, 'sh', '-c', 'exit 0'])
    expect(noDashes.code).toBe(64)
    expect(noDashes.stderr).toContain(`put '--' before the command: index-lock run ${file} [options] -- sh`)
    expect(noDashes.stderr).toContain("Try 'index-lock run --help'")
    expect((await done(['run', file, '--timeout', '10x', '--', 'true'])).stderr).toContain("invalid --timeout '10x'")
    expect((await done(['run', file, '--timeout', '-1', '--', 'true'])).code).toBe(64)
    expect((await done(['run', file, '--'])).code).toBe(64)
    expect((await done(['run', '--', 'true'])).code).toBe(64)
    const missingDir = await done(['run', join(dirname(file), 'nope', 'index.json'), '--', 'true'])
    expect(missingDir.code).toBe(1)
    expect(missingDir.stderr).toMatch(/^index-lock: ENOENT: no such file or directory/)
  })
})

describe('index-lock status', () => {
  it('free: missing, empty and valid data exit 0', async () => {
    const file = dataFile()
    let r = await done(['status', file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^lock {8}free$/m)
    expect(r.stdout).toMatch(/^data {8}missing$/m)
    expect(r.stdout).toMatch(/^temp files {2}none$/m)
    expect(r.stdout).toMatch(/^filesystem {2}\S+ at .*: local/m)
    expect(existsSync(`${file}.lock`)).toBe(false) // status creates nothing
    writeFileSync(file, '  \n')
    expect((await done(['status', file])).stdout).toMatch(/^data {8}empty$/m)
    writeFileSync(file, '{"entries":{}}\n')
    r = await done(['status', file])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^data {8}ok$/m)
  })

  it('held: exit 1 with the pid, command line and mode of each holder', async () => {
    const file = dataFile('{}')
    const holder = cli(['run', file, '--', ...STAY], { group: true })
    await holder.line('READY')
    const r = await done(['status', file])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/^lock {8}held \(exclusive\)$/m)
    // Without a holder list (macOS, Windows) status still sees an exclusive holder, not who it is.
    expect(r.stdout).toContain(
      HOLDERS_KNOWN
        ? `holder      pid ${holder.child.pid} (exclusive): ${process.execPath} ${BIN} run ${file} --`
        : 'holder      pid ? (exclusive): pid unknown',
    )
    holder.child.kill('SIGTERM')
    await holder.exited

    const readers = [node('proc-hold.cjs', [file, 'shared']), node('proc-hold.cjs', [file, 'shared'])]
    await Promise.all(readers.map((h) => h.line('HELD')))
    const json = JSON.parse((await done(['status', file, '--json'])).stdout)
    if (!HOLDERS_KNOWN) {
      // Without a holder list F_GETLK (macOS) still tells shared holders from exclusive ones, not
      // who they are; a shared try-lock (Windows) does not see shared holders.
      if (LOOK_TAKES_NO_LOCK) {
        expect(json.exitCode).toBe(1)
        expect(json.lock).toEqual({
          held: true,
          mode: 'shared',
          holders: [{ pid: null, mode: 'shared', cmdline: null }],
        })
      } else {
        expect(json.exitCode).toBe(0)
        expect(json.lock).toEqual({ held: false, mode: null, holders: [] })
      }
      return
    }
    expect(json.exitCode).toBe(1)
    expect(json.lock.held).toBe(true)
    expect(json.lock.mode).toBe('shared')
    expect(json.lock.holders.map((h: { pid: number }) => h.pid).sort()).toEqual(readers.map((h) => h.child.pid).sort())
    for (const h of json.lock.holders) {
      expect(h.mode).toBe('shared')
      expect(h.cmdline).toContain('proc-hold.cjs')
    }
  })

  it('corrupt data: exit 2 with the CorruptFileError message', async () => {
    const file = dataFile('{"entries": {"a": 1,}}')
    const r = await done(['status', file])
    expect(r.code).toBe(2)
    expect(r.stdout).toMatch(new RegExp(`^data {8}corrupt: Corrupt JSON in '${file}': .* at line 1 column \\d+`, 'm'))
    expect(r.stdout).toMatch(/^problem {5}the data file does not parse as JSON$/m)
    const json = JSON.parse((await done(['status', '--json', file])).stdout)
    expect(json.data.state).toBe('corrupt')
    expect(json.data.message).toContain('Corrupt JSON in')
    expect(json.exitCode).toBe(2)
  })

  it("orphaned temp files are a problem (exit 2); a live writer's are listed apart and are not", async () => {
    const file = dataFile('{}')
    await writing(file, LIVE)
    let r = await done(['status', file])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^temp files {2}1 being written$/m)
    // Its age in whole seconds: a slow CLI start on a loaded machine can make it 1 s.
    expect(r.stdout).toMatch(
      new RegExp(
        `writing {5}${LIVE.replaceAll('.', '\\.')} \\(locked by its writer, pid ${process.pid}, [01] s old\\)`,
      ),
    )
    writeFileSync(join(dirname(file), ORPHAN), '{')
    r = await done(['status', file])
    expect(r.code).toBe(2)
    expect(r.stdout).toMatch(/^temp files {2}1 orphaned, 1 being written$/m)
    expect(r.stdout).toContain(`orphaned    ${ORPHAN} (unlocked: its writer is gone; pid 4194305,`)
    expect(r.stdout).toContain(`problem     1 orphaned temp file: remove with 'index-lock sweep ${file}'`)
  })

  it('--json: one object with stable fields; exitCode matches the exit status', async () => {
    const file = dataFile('[1]')
    writeFileSync(join(dirname(file), ORPHAN), '')
    await writing(file, LIVE)
    const r = await done(['status', file, '--json'])
    expect(r.code).toBe(2)
    const json = JSON.parse(r.stdout)
    expect(Object.keys(json)).toEqual([
      'path',
      'resolved',
      'lock',
      'data',
      'tempFiles',
      'filesystem',
      'problems',
      'error',
      'exitCode',
    ])
    expect(json).toMatchObject({
      path: file,
      resolved: file,
      lock: { held: false, mode: null, holders: [] },
      data: { state: 'ok', message: null },
      tempFiles: {
        orphaned: [{ name: ORPHAN, pid: 4194305, alive: false, ageMs: expect.any(Number) }],
        live: [{ name: LIVE, pid: process.pid, alive: true, ageMs: expect.any(Number) }],
      },
      filesystem: { fstype: expect.any(String), coherence: 'local', reason: expect.any(String) },
      problems: [expect.stringContaining('1 orphaned temp file')],
      error: null,
      exitCode: 2,
    })
  })

  it('a missing directory: exit 2 and the error on stderr (and in the JSON)', async () => {
    const file = join(tempDir('cli'), 'nope', 'index.json')
    const r = await done(['status', file])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(
      `index-lock: ENOENT: no such file or directory, open '${file}': the directory '${dirname(file)}' does not exist (index-lock creates no directories)\n`,
    )
    const json = JSON.parse((await done(['status', file, '--json'])).stdout)
    expect(json).toMatchObject({ resolved: null, lock: null, error: { code: 'ENOENT' }, exitCode: 2 })
  })

  it('a directory or symlink at <path>.lock (a leftover proper-lockfile lock): exit 2 naming it, not held', async () => {
    // Nobody can take the lock while it is there: the library refuses it (EISDIR, ELOOP).
    const plants = {
      directory: (sidecar: string) => mkdirSync(sidecar),
      symlink: (sidecar: string) => {
        writeFileSync(`${sidecar}.target`, '')
        symlinkSync(`${sidecar}.target`, sidecar)
      },
      'dangling symlink': (sidecar: string) => symlinkSync(`${sidecar}.nowhere`, sidecar),
    }
    for (const [kind, plant] of Object.entries(plants)) {
      const file = dataFile('{}')
      const sidecar = `${file}.lock`
      plant(sidecar)
      const named = `the lock file ${sidecar} is a ${kind === 'directory' ? 'directory' : 'symlink'}`
      const r = await done(['status', file])
      expect(r.code, `${kind}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(/^lock {8}unusable: the lock file is a (directory|symlink)$/m)
      expect(r.stdout).not.toMatch(/held/)
      expect(r.stdout).toContain(`problem     ${named}`)
      const json = await done(['status', file, '--json'])
      expect(json.code).toBe(2)
      const report = JSON.parse(json.stdout)
      expect(report).toMatchObject({
        lock: { held: false, mode: null, holders: [] },
        data: { state: 'ok' },
        error: null,
        exitCode: 2,
      })
      expect(report.problems).toEqual([expect.stringContaining(named)])
      // status changes nothing.
      expect(lstatSync(sidecar).isDirectory()).toBe(kind === 'directory')
    }
  })

  it("a long name's hashed sidecar is the one status inspects (directory there: exit 2 naming it)", async () => {
    // docs/protocol.md: names over 250 bytes lock on <first 200 bytes>.<16 hex of SHA-256>.lock.
    const file = dataFile('{}')
    const name = 'n'.repeat(252)
    const long = join(dirname(file), name)
    writeFileSync(long, '{}')
    const hash = createHash('sha256').update(name).digest('hex').slice(0, 16)
    const sidecar = join(dirname(file), `${name.slice(0, 200)}.${hash}.lock`)
    mkdirSync(sidecar)
    const r = await done(['status', long])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stdout).toContain(`problem     the lock file ${sidecar} is a directory`)
  })
})

describe('index-lock sweep', () => {
  it("removes the orphaned temp file, keeps a live writer's, says when there is nothing", async () => {
    const file = dataFile('{}')
    const dir = dirname(file)
    writeFileSync(join(dir, ORPHAN), '{')
    await writing(file, LIVE)
    let r = await done(['sweep', file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`removed ${ORPHAN}\n`)
    expect(existsSync(join(dir, ORPHAN))).toBe(false)
    expect(existsSync(join(dir, LIVE))).toBe(true)
    r = await done(['sweep', file])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('nothing to remove\n')
    r = await done(['sweep', join(dir, 'nope', 'index.json')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^index-lock: ENOENT/)
  })
})

describe('help, version and usage errors', () => {
  it('--help and -h, overall and per command', async () => {
    const main = await done(['--help'])
    expect(main.code).toBe(0)
    expect(main.stdout).toMatch(/^Usage: index-lock <command>/)
    expect(main.stdout).toContain('75        run: the lock was not free within --timeout')
    expect((await done(['-h'])).stdout).toBe(main.stdout)
    expect((await done(['help'])).stdout).toBe(main.stdout)
    for (const command of ['run', 'status', 'sweep']) {
      const r = await done([command, '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^Usage: index-lock ${command} <path>`))
      expect((await done(['help', command])).stdout).toBe(r.stdout)
    }
    expect((await done(['run', 'x', '-h', '--', 'true'])).stdout).toMatch(/^Usage: index-lock run/)
  })

  it('--version prints the package version', async () => {
    const r = await done(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${VERSION}\n`)
  })

  it('unknown commands and options, and no command at all, exit 64 with a hint on stderr', async () => {
    for (const args of [['frobnicate'], ['--frobnicate'], ['status', 'x', '--frobnicate'], ['sweep', 'a', 'b'], []]) {
      const r = await done(args)
      expect(r.code, args.join(' ')).toBe(64)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^index-lock: .+\nTry 'index-lock (\w+ )?--help' for more information\.\n$/)
    }
    expect((await done(['frobnicate'])).stderr).toContain("unknown command 'frobnicate'")
    expect((await done(['status', 'x', '--frobnicate'])).stderr).toContain("unknown option '--frobnicate' for 'status'")
  })

  it('runs through its shebang from a symlink named index-lock', async () => {
    expect(statSync(BIN).mode & 0o111).toBe(0o111)
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    const dir = tempDir('cli-bin')
    const link = join(dir, 'index-lock')
    symlinkSync(BIN, link)
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH}` }
    const version = run(link, ['--version'], env)
    expect((await version.exited).code).toBe(0)
    expect(version.stdout()).toBe(`${VERSION}\n`)
    // The library is found beside the real file, not beside the link.
    const file = join(dir, 'index.json')
    const status = run(link, ['run', file, '--', 'sh', '-c', 'exit 5'], env)
    expect((await status.exited).code).toBe(5)
  })
})
