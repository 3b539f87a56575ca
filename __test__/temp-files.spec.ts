// Temp files of a save: a live writer's temp file is never removed, wherever its process runs
// (liveness is the flock its writer holds on it, not a pid), its mode is never looser than the
// target's, and a sweep that cannot remove an orphan says which and why.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, atomicWrite, sweep, writeJson, type SweepError } from '../index.js'
import { FIXTURES, ROOT, run, tempDir, type Run } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

const isRoot = process.getuid?.() === 0
const canUnshare =
  isRoot && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' }).status === 0
const BIN = join(ROOT, 'bin', 'index-lock.js')

const immutable: string[] = []
afterEach(() => {
  for (const dir of immutable.splice(0)) spawnSync('chattr', ['-i', dir])
})

interface Paused {
  run: Run
  tmp: string
  resume: () => void
}

/**
 * Starts a save of `content` to `p` in the fault-injection build that stops at `step` until
 * `resume()`. `prefix` runs the writer under another command (e.g. unshare).
 */
async function pausedSave(
  p: string,
  content: string,
  step: string,
  opts: { mode?: number; prefix?: string[] } = {},
): Promise<Paused> {
  const resumeFile = `${p}.resume-${Math.random().toString(16).slice(2)}`
  const args = [join(FIXTURES, 'paused-save.cjs'), p, content]
  if (opts.mode !== undefined) args.push(opts.mode.toString(8))
  const prefix = opts.prefix ?? []
  const [cmd, ...rest] = [...prefix, process.execPath, ...args]
  const r = run(
    cmd!,
    rest,
    { NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD, INDEX_LOCK_PAUSE: step, INDEX_LOCK_RESUME: resumeFile },
    { group: true },
  )
  const end = Date.now() + 20_000
  // The whole line, newline included: stderr may arrive in pieces, and a temp path read from a
  // partial line names a file that does not exist.
  const paused = new RegExp(`INDEX_LOCK_PAUSED ${step} (\\S+)\\n`)
  while (!paused.test(r.stderr())) {
    if (Date.now() > end || r.child.exitCode !== null)
      throw new Error(`writer never paused: ${r.stdout()} ${r.stderr()}`)
    await sleep(5)
  }
  const tmp = r.stderr().match(paused)![1]!
  return { run: r, tmp, resume: () => writeFileSync(resumeFile, '') }
}

/** The pid a temp file's name carries (`.<name>.<pid>.<tid>.<n>.<random>.tmp`). */
const pidIn = (tmp: string, target: string) =>
  Number(
    basename(tmp)
      .slice(target.length + 2)
      .split('.')[0],
  )

function status(p: string) {
  const r = spawnSync(process.execPath, [BIN, 'status', p, '--json'], { encoding: 'utf8' })
  return JSON.parse(r.stdout) as {
    tempFiles: { orphaned: { name: string }[]; live: { name: string; alive: boolean }[] }
  }
}

/** A pid that no process in this pid namespace has, so `kill(pid, 0)` cannot see its owner. */
function invisiblePid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
  let pid = max - 200
  while (existsSync(`/proc/${pid}`) || existsSync(`/proc/${pid + 1}`)) pid--
  return pid
}

describe('liveness of temp files is the lock their writer holds', () => {
  it.skipIf(!canUnshare)(
    'a live writer in another pid namespace keeps its temp through sweep() and the automatic sweep; its save completes (needs root for unshare --pid)',
    async () => {
      const dir = tempDir()
      const p = join(dir, 'index.json')
      writeFileSync(p, '{"n":1}')
      // The writer runs in a fresh pid namespace, at a pid nobody has in ours: the situation of
      // containers sharing a volume, where a pid check calls the writer dead.
      const pid = invisiblePid()
      const shell = `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; "$0" "$@"; exit $?`
      const w = await pausedSave(p, '{"n":2}', 'before-rename', {
        prefix: ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', 'sh', '-c', shell],
      })
      expect(pidIn(w.tmp, 'index.json')).toBe(pid)
      expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))

      expect(await sweep(p)).toEqual([])
      expect(existsSync(w.tmp)).toBe(true)
      // An exclusive holder sweeps on its own; it must keep the temp too.
      const h = await acquire(p, { timeoutMs: 1000 })
      await h.release()
      expect(existsSync(w.tmp)).toBe(true)
      const s = status(p)
      expect(s.tempFiles.orphaned).toEqual([])
      expect(s.tempFiles.live).toMatchObject([{ name: basename(w.tmp), alive: true }])

      w.resume()
      await w.run.line('SAVED')
      expect(readFileSync(p, 'utf8')).toBe('{"n":2}')
      expect(await sweep(p)).toEqual([])
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
    },
  )

  it("sweep() keeps a live writer's temp on this host and removes it once the writer is killed", async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"n":1}')
    const w = await pausedSave(p, '{"n":2}', 'before-rename')
    expect(await sweep(p)).toEqual([])
    expect(existsSync(w.tmp)).toBe(true)
    expect(status(p).tempFiles.live.map((t) => t.name)).toEqual([basename(w.tmp)])
    w.run.child.kill('SIGKILL')
    await w.run.exited
    expect(status(p).tempFiles.orphaned.map((t) => t.name)).toEqual([basename(w.tmp)])
    expect(await sweep(p)).toEqual([basename(w.tmp)])
    expect(readFileSync(p, 'utf8')).toBe('{"n":1}')
  })

  it("a killed writer's temp is found and removed when the name's 160-byte cut halves a multibyte character", async () => {
    const dir = tempDir()
    // 'é' is bytes 159-160 of the name: the temp name keeps only its first byte, so the temp's
    // name is not valid UTF-8 (and the writer's own report of it is lossy).
    const name = `${'a'.repeat(159)}é.json`
    const p = join(dir, name)
    writeFileSync(p, '{"n":1}')
    const w = await pausedSave(p, '{"n":2}', 'before-rename')
    const temps = () => readdirSync(dir, { encoding: 'buffer' }).filter((f) => f.subarray(-4).toString() === '.tmp')
    expect(temps()).toHaveLength(1)
    expect(temps()[0]!.subarray(1, 162)).toEqual(Buffer.concat([Buffer.from(name).subarray(0, 160), Buffer.from('.')]))
    expect(await sweep(p)).toEqual([])
    expect(status(p).tempFiles.live).toHaveLength(1)
    w.run.child.kill('SIGKILL')
    await w.run.exited
    expect(status(p).tempFiles.orphaned).toHaveLength(1)
    expect(await sweep(p)).toHaveLength(1)
    expect(temps()).toEqual([])
    expect(readFileSync(p, 'utf8')).toBe('{"n":1}')
  })

  it('a temp file no writer holds is orphaned even when its name carries a running pid', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const planted = `.index.json.${process.pid}.1.1.0badcafe.tmp`
    writeFileSync(join(dir, planted), 'partial')
    expect(status(p).tempFiles.orphaned.map((t) => t.name)).toEqual([planted])
    expect(await sweep(p)).toEqual([planted])
    expect(readdirSync(dir)).toEqual([])
  })
})

describe('temp file permissions', () => {
  for (const target of [0o600, 0o640]) {
    it(`the temp file of a ${target.toString(8)} file is never looser than it, from its creation on`, async () => {
      const dir = tempDir()
      const p = join(dir, 'index.json')
      writeFileSync(p, 'secret')
      chmodSync(p, target)
      for (const step of ['after-create', 'before-rename']) {
        const w = await pausedSave(p, 'new secret', step)
        const mode = statSync(w.tmp).mode & 0o7777
        expect(mode & ~target, `${step}: temp mode ${mode.toString(8)}`).toBe(0)
        w.resume()
        await w.run.line('SAVED')
        expect(statSync(p).mode & 0o7777).toBe(target)
      }
    })
  }

  it('a new file written with mode 0o600 is private while its temp is written', async () => {
    const p = join(tempDir(), 'index.json')
    const w = await pausedSave(p, 'secret', 'after-create', { mode: 0o600 })
    expect(statSync(w.tmp).mode & 0o077).toBe(0)
    w.resume()
    await w.run.line('SAVED')
    expect(statSync(p).mode & 0o7777).toBe(0o600)
  })
})

/** Why the ACL tests cannot run here, or null: they need Linux (the only OS whose POSIX ACL a
 * save copies), setfacl/getfacl (Debian package `acl`) and a temp filesystem with POSIX ACLs. */
function aclUnsupported(): string | null {
  if (process.platform !== 'linux') return 'not Linux'
  if (spawnSync('setfacl', ['--version']).status !== 0) return 'no setfacl'
  const dir = mkdtempSync(join(tmpdir(), 'index-lock-acl-'))
  try {
    writeFileSync(join(dir, 'f'), '')
    return spawnSync('setfacl', ['-m', 'u:nobody:r', join(dir, 'f')]).status === 0
      ? null
      : 'no POSIX ACLs on the temp filesystem'
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
const NO_ACL = aclUnsupported()
const getfacl = (p: string) =>
  spawnSync('getfacl', ['--omit-header', '--absolute-names', p], { encoding: 'utf8' }).stdout
/** Whether `cat` running as uid/gid (no supplementary groups) can read `p`. */
const canRead = (p: string, uid: number, gid: number) =>
  spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'cat', p], { stdio: 'ignore' }).status ===
  0

describe('POSIX ACLs', () => {
  it.skipIf(NO_ACL !== null)(
    `a rewrite keeps the file's access ACL, so a group the ACL shuts out stays shut out (needs Linux, setfacl and a filesystem with ACLs${NO_ACL ? `: ${NO_ACL}` : ''})`,
    async () => {
      const dir = tempDir()
      chmodSync(dir, 0o755)
      const p = join(dir, 'secret.json')
      writeFileSync(p, '{"secret":1}')
      // stat shows 0640, yet only the owner and the named user may read: the group class is the
      // mask (r--), the owning group's own entry is ---.
      expect(spawnSync('setfacl', ['--set', 'u::rw-,u:nobody:r--,g::---,m::r--,o::---', p]).status).toBe(0)
      const acl = getfacl(p)
      expect(acl).toContain('user:nobody:r--')
      expect(statSync(p).mode & 0o7777).toBe(0o640)
      await atomicWrite(p, '{"secret":2}')
      expect(getfacl(p)).toBe(acl)
      await writeJson(p, { secret: 3 })
      expect(getfacl(p)).toBe(acl)
      expect(statSync(p).mode & 0o7777).toBe(0o640)
      expect(readFileSync(p, 'utf8')).toContain('3')
      if (isRoot) {
        const { gid } = statSync(p)
        expect(canRead(p, 2, gid), 'a member of the owning group reads it').toBe(false)
        const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout)
        expect(canRead(p, nobody, nobody), 'the named user reads it').toBe(true)
      }
    },
  )

  it.skipIf(NO_ACL !== null)(
    `a file without an ACL gets none from the directory's default ACL when rewritten (needs Linux, setfacl and a filesystem with ACLs${NO_ACL ? `: ${NO_ACL}` : ''})`,
    async () => {
      const dir = tempDir()
      const p = join(dir, 'index.json')
      writeFileSync(p, '{}')
      chmodSync(p, 0o600)
      const plain = getfacl(p)
      expect(spawnSync('setfacl', ['-d', '-m', 'u:nobody:rw', dir]).status).toBe(0)
      await atomicWrite(p, '{"n":1}')
      expect(getfacl(p)).toBe(plain)
      expect(statSync(p).mode & 0o7777).toBe(0o600)
    },
  )
})

describe('a sweep that cannot remove an orphan', () => {
  it(`rejects naming each file and why, and the CLI prints them and exits 1 (${isRoot ? 'chattr +i' : 'a read-only directory'})`, async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const orphans = ['.index.json.4194305.1.1.0badcafe.tmp', '.index.json.4194305.1.2.0badcafe.tmp']
    for (const o of orphans) writeFileSync(join(dir, o), 'partial')
    if (isRoot) {
      const r = spawnSync('chattr', ['+i', dir], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`chattr +i failed: ${r.stderr}`)
      immutable.push(dir)
    } else {
      chmodSync(dir, 0o555)
    }
    try {
      const err = (await sweep(p).catch((e: unknown) => e)) as SweepError
      expect(err).toBeInstanceOf(Error)
      const code = isRoot ? 'EPERM' : 'EACCES'
      expect(err).toMatchObject({ code, syscall: 'unlink', removed: [] })
      expect(err.errors.map((e) => [e.code, e.syscall, e.path])).toEqual(
        orphans.map((o) => [code, 'unlink', join(dir, o)]),
      )
      for (const o of orphans) expect(err.message).toContain(o)

      const cli = spawnSync(process.execPath, [BIN, 'sweep', p], { encoding: 'utf8' })
      expect(cli.status).toBe(1)
      for (const o of orphans)
        expect(cli.stderr).toContain(
          `${code}: ${isRoot ? 'operation not permitted' : 'permission denied'}, unlink '${join(dir, o)}'`,
        )
    } finally {
      if (isRoot) spawnSync('chattr', ['-i', dir])
      else chmodSync(dir, 0o755)
    }
    expect(await sweep(p)).toEqual(orphans)
  })
})
