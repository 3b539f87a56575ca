// Reads served from the page cache on the JS thread (Linux): the same results as the threadpool
// read for every kind of file, and only where no wait for a disk or a network can happen.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { readJson, readJsonSync } from '../index.js'
import { BACKEND, FIXTURES, run, tempDir, until } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

const binding = createRequire(import.meta.url)('../binding.js') as typeof import('../binding.js')

/** What a call gives: its value, or the fields of what it throws. */
async function outcome(call: () => unknown) {
  try {
    return { value: await call() }
  } catch (err) {
    const e = err as Record<string, unknown> & Error
    const { name, message } = e
    const fields = ['code', 'errno', 'syscall', 'path', 'line', 'column', 'position']
    return { error: { name, message, ...Object.fromEntries(fields.map((f) => [f, e[f]])) } }
  }
}

describe('reads served from the page cache', () => {
  it('readJson returns what the threadpool read returns for every kind of file, most served without the pool', async () => {
    const dir = tempDir()
    const at = (name: string) => join(dir, name)
    writeFileSync(at('warm.json'), '{}')
    // The first read in a directory goes to the pool and learns the directory's filesystem.
    await readJson(at('warm.json'))
    writeFileSync(at('value.json'), '{"a":[1,2]}\n')
    writeFileSync(at('empty.json'), '')
    writeFileSync(at('blank.json'), ' \n\t')
    writeFileSync(at('bom.json'), '\ufeff{"b":1}')
    writeFileSync(at('utf8.json'), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))
    writeFileSync(at('bad.json'), '{\n  "a": }')
    symlinkSync('value.json', at('link.json'))
    symlinkSync('nowhere.json', at('dangling.json'))
    mkdirSync(at('dir.json'))
    execFileSync('mkfifo', [at('fifo.json')])
    // Served on the JS thread (Buffer), missing (null) or left to the pool (undefined).
    const cases: [string, 'bytes' | null | undefined][] = [
      ['value.json', 'bytes'],
      ['empty.json', 'bytes'],
      ['blank.json', 'bytes'],
      ['bom.json', 'bytes'],
      ['utf8.json', 'bytes'],
      ['bad.json', 'bytes'],
      ['link.json', 'bytes'],
      ['missing.json', null],
      ['dangling.json', null],
      ['no-dir/missing.json', null],
      ['dir.json', undefined],
      ['fifo.json', undefined],
    ]
    for (const [name, served] of cases) {
      const p = at(name)
      for (const options of [undefined, { default: { none: true } }]) {
        const sync = await outcome(() => readJsonSync(p, options))
        // Twice: the first lookup of a missing name may not be in the dentry cache yet.
        for (let i = 0; i < 2; i++) {
          expect(await outcome(() => readJson(p, options)), `${name} ${JSON.stringify(options)}`).toEqual(sync)
        }
      }
      const cached = binding.readFileCached(p)
      const kind = cached instanceof Buffer ? 'bytes' : cached
      // Only the linux backend can read without waiting (RWF_NOWAIT); elsewhere all goes to the pool.
      expect(kind, name).toBe(BACKEND === 'linux' ? served : undefined)
    }
  })

  const pool = async (dir: string, files: string[], env: Record<string, string> = {}) => {
    const child = run(process.execPath, [join(FIXTURES, 'cached-read-pool.cjs'), dir, ...files], {
      UV_THREADPOOL_SIZE: '4',
      ...env,
    })
    const { code } = await child.exited
    expect(code, child.stderr()).toBe(0)
    return JSON.parse(child.stdout()) as {
      poolWasBlocked: boolean
      whileBlocked: Record<string, boolean>
      after: Record<string, boolean>
    }
  }

  it.skipIf(BACKEND !== 'linux')(
    'a small cached file is read while every threadpool thread is blocked; a large or uncached one waits for the pool (linux backend only: elsewhere every read uses the pool)',
    async () => {
      const dir = tempDir()
      const fs = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim()
      // tmpfs keeps every page in memory: `dd iflag=nocache` cannot drop a file from the cache there.
      const files = ['small.json:small', 'big.json:big', ...(fs === 'tmpfs' ? [] : ['cold.json:uncached'])]
      const seen = await pool(dir, files)
      expect(seen.poolWasBlocked).toBe(true)
      expect(seen.whileBlocked).toEqual({ 'small.json': true })
      expect(seen.after).toEqual(Object.fromEntries(files.map((f) => [f.split(':')[0], true])))
    },
  )

  it.skipIf(BACKEND !== 'linux')(
    'a file in a directory on a filesystem classified non-local is read on the threadpool (linux backend only)',
    async () => {
      const dir = tempDir()
      const seen = await pool(dir, ['small.json:small'], {
        NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD,
        INDEX_LOCK_FAKE_FSTYPE: 'fuse.sshfs',
      })
      expect(seen.poolWasBlocked).toBe(true)
      expect(seen.whileBlocked).toEqual({})
      expect(seen.after).toEqual({ 'small.json': true })
    },
  )

  const SFTP_SERVER = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server'].find((p) => existsSync(p))
  const SSHFS = spawnSync('sshfs', ['--version']).error === undefined
  const ROOT_FUSE = process.getuid?.() === 0 && existsSync('/dev/fuse')
  const mounted = (dir: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === dir)

  it.skipIf(BACKEND !== 'linux' || !SSHFS || !SFTP_SERVER || !ROOT_FUSE)(
    'readJson of a file on a FUSE mount whose server hangs returns a pending promise and the event loop keeps running, also behind a symlink in a local directory (linux backend, root, /dev/fuse, sshfs and sftp-server only: scripts/platform-tools.sh installs them)',
    async () => {
      const base = tempDir('fuse')
      const [src, mnt, local] = ['src', 'mnt', 'local'].map((d) => join(base, d))
      for (const d of [src, mnt, local]) mkdirSync(d)
      writeFileSync(join(src, 'idx.json'), '{"on":"fuse"}\n')
      // The link's directory is local: only the file's own filesystem tells the read would wait.
      symlinkSync(join(mnt, 'idx.json'), join(local, 'idx.json'))
      // sshfs in passive mode speaks SFTP over its stdin/stdout, here to a local sftp-server,
      // which the test can stop and resume.
      const server = spawn(SFTP_SERVER!, [], { stdio: ['pipe', 'pipe', 'ignore'] })
      const sshfs = spawn('sshfs', ['-f', '-o', 'passive', `:${src}`, mnt], {
        stdio: [server.stdout, server.stdin, 'ignore'],
      })
      // Closed here in the same tick, before this process could read any of the server's answers.
      server.stdout!.destroy()
      server.stdin!.destroy()
      const go = join(base, 'go')
      let reader: ReturnType<typeof run> | undefined
      // A regression hangs the reader, not the runner: it is given up on (and killed) instead.
      const orHung = (line: Promise<string>) =>
        Promise.race([line, new Promise<string>((resolve) => setTimeout(resolve, 10_000, 'hung').unref())])
      try {
        await until(() => mounted(mnt), 10_000, 'sshfs mount')
        reader = run(process.execPath, [join(FIXTURES, 'hung-server-read.cjs'), join(local, 'idx.json'), go])
        expect(await orHung(reader.line('warm'))).toBe('warm [{"on":"fuse"},{"on":"fuse"}]')
        process.kill(server.pid!, 'SIGSTOP')
        writeFileSync(go, '')
        // A read that waits for the server on the JS thread never lets the timer run: no line.
        expect(await orHung(reader.line('pendingWhenTimerFired'))).toBe('{"pendingWhenTimerFired":true}')
        process.kill(server.pid!, 'SIGCONT')
        expect(await orHung(reader.line('value'))).toBe('value {"on":"fuse"}')
        expect((await reader.exited).code).toBe(0)
      } finally {
        if (reader?.child.exitCode === null && reader.child.signalCode === null) reader.child.kill('SIGKILL')
        process.kill(server.pid!, 'SIGCONT')
        spawnSync('umount', ['-l', mnt])
        for (const p of [sshfs, server]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
        await until(() => !mounted(mnt), 10_000, 'unmount')
      }
    },
  )
})
