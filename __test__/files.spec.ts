// Atomic writes and the JSON helpers: content, permissions, symlinks, failures, corrupt files.
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import {
  atomicWrite,
  atomicWriteSync,
  CorruptFileError,
  readJson,
  readJsonSync,
  tryAcquire,
  updateJson,
  writeJson,
} from '../index.js'
import { FIXTURES, run, tempDir } from './helpers'

const perm = (p: string) => statSync(p).mode & 0o7777

describe('atomicWrite', () => {
  it('writes strings and every kind of byte view', async () => {
    const dir = tempDir()
    const p = join(dir, 'f.txt')
    await atomicWrite(p, 'héllo')
    expect(readFileSync(p, 'utf8')).toBe('héllo')
    await atomicWrite(p, Buffer.from('buf'))
    expect(readFileSync(p, 'utf8')).toBe('buf')
    await atomicWrite(p, new Uint8Array([104, 105]), { fsync: false })
    expect(readFileSync(p, 'utf8')).toBe('hi')
    const bytes = new Uint8Array([0, 111, 107, 0])
    await atomicWrite(p, new DataView(bytes.buffer, 1, 2))
    expect(readFileSync(p, 'utf8')).toBe('ok')
    expect(readdirSync(dir)).toEqual(['f.txt'])
  })

  it('keeps the permission bits of the file it replaces', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, 'old')
    chmodSync(p, 0o640)
    await atomicWrite(p, 'new')
    expect(perm(p)).toBe(0o640)
    chmodSync(p, 0o604)
    await atomicWrite(p, 'newer', { fsync: false })
    expect(perm(p)).toBe(0o604)
  })

  it('creates new files with 0o666 & ~umask, or the given mode', async () => {
    const dir = tempDir()
    await atomicWrite(join(dir, 'a.json'), '1')
    expect(perm(join(dir, 'a.json'))).toBe(0o666 & ~process.umask())
    await atomicWrite(join(dir, 'b.json'), '1', { mode: 0o600 })
    expect(perm(join(dir, 'b.json'))).toBe(0o600)
    await atomicWrite(join(dir, 'b.json'), '2', { mode: 0o644 })
    expect(perm(join(dir, 'b.json'))).toBe(0o644)
  })

  it('writing through a symlink replaces the target and keeps the link', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'real'))
    writeFileSync(join(dir, 'real', 'index.json'), 'old')
    chmodSync(join(dir, 'real', 'index.json'), 0o600)
    symlinkSync(join('real', 'index.json'), join(dir, 'link.json'))
    await atomicWrite(join(dir, 'link.json'), 'new')
    expect(lstatSync(join(dir, 'link.json')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(join(dir, 'link.json'))).toBe(join('real', 'index.json'))
    expect(readFileSync(join(dir, 'real', 'index.json'), 'utf8')).toBe('new')
    expect(perm(join(dir, 'real', 'index.json'))).toBe(0o600)
    expect(readdirSync(join(dir, 'real'))).toEqual(['index.json'])
    expect(readdirSync(dir).sort()).toEqual(['link.json', 'real'])
  })

  it('fails with Node-style errors, keeping old content and leaving no temp file', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'sub.json'))
    const isDir = await atomicWrite(join(dir, 'sub.json'), 'x').catch((e: NodeJS.ErrnoException) => e)
    expect(isDir).toMatchObject({ code: 'EISDIR', path: join(dir, 'sub.json') })
    const missing = join(dir, 'nope', 'index.json')
    const err = (await atomicWrite(missing, 'x').catch((e: unknown) => e)) as NodeJS.ErrnoException
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ENOENT')
    expect(err.errno).toBe(-2)
    expect(typeof err.syscall).toBe('string')
    expect(err.path).toBe(missing)
    expect(err.message).toContain(missing)
    expect(readdirSync(dir)).toEqual(['sub.json'])
  })

  it('a write that fails midway (EFBIG) keeps the previous content and removes its temp file', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"keep":true}')
    // A 1 KiB file-size limit makes the write into the temp file fail after it was created.
    const script = join(FIXTURES, 'write-once.cjs')
    const limited = (bytes: number) =>
      run('bash', ['-c', `trap '' XFSZ; ulimit -f 1; exec "${process.execPath}" "${script}" "${p}" ${bytes}`])
    const big = limited(64 * 1024)
    await big.exited
    expect(JSON.parse(big.stdout())).toEqual({ ok: false, code: 'EFBIG', syscall: 'write', path: p })
    expect(readFileSync(p, 'utf8')).toBe('{"keep":true}')
    expect(readdirSync(dir)).toEqual(['index.json'])
    const small = limited(10)
    await small.exited
    expect(JSON.parse(small.stdout())).toEqual({ ok: true })
    expect(readFileSync(p, 'utf8')).toBe('x'.repeat(10))
  })

  it('uses a process-unique hidden temp name that never ends in the data extension', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const seen = new Set<string>()
    const watcher = setInterval(() => {
      for (const name of readdirSync(dir)) seen.add(name)
    }, 0)
    await Promise.all(Array.from({ length: 50 }, (_, i) => atomicWrite(p, `{"i":${i}}`, { fsync: i % 2 === 0 })))
    clearInterval(watcher)
    for (const name of readdirSync(dir)) seen.add(name)
    const temps = [...seen].filter((n) => n !== 'index.json')
    for (const t of temps) {
      expect(t).toMatch(new RegExp(`^\\.index\\.json\\.${process.pid}\\.\\d+\\.\\d+\\.[0-9a-f]{8}\\.tmp$`))
    }
    expect(readdirSync(dir)).toEqual(['index.json'])
    expect(JSON.parse(readFileSync(p, 'utf8'))).toHaveProperty('i')
  })
})

describe('readJson', () => {
  it('parses the file', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '\ufeff{"a":[1,2]}\n')
    await expect(readJson(p)).resolves.toEqual({ a: [1, 2] })
  })

  it('returns the default for missing, empty and whitespace-only files', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    await expect(readJson(p, { default: { none: 1 } })).resolves.toEqual({ none: 1 })
    writeFileSync(p, '')
    await expect(readJson(p, { default: [] })).resolves.toEqual([])
    writeFileSync(p, ' \n\t\r\n')
    await expect(readJson(p, { default: null })).resolves.toBeNull()
  })

  it('rejects without a default: ENOENT for missing, ECORRUPT for empty', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const missing = (await readJson(p).catch((e: unknown) => e)) as NodeJS.ErrnoException
    expect(missing.code).toBe('ENOENT')
    expect(missing.path).toBe(p)
    expect(missing.message).toContain(p)
    writeFileSync(p, '  ')
    await expect(readJson(p)).rejects.toBeInstanceOf(CorruptFileError)
  })

  it('rejects malformed JSON with CorruptFileError naming path and position, and leaves it alone', async () => {
    const p = join(tempDir(), 'index.json')
    const bad = '{\n  "a": 1,\n  "b": }\n'
    writeFileSync(p, bad)
    const before = statSync(p)
    const err = (await readJson(p, { default: {} }).catch((e: unknown) => e)) as CorruptFileError
    expect(err).toBeInstanceOf(CorruptFileError)
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('CorruptFileError')
    expect(err.code).toBe('ECORRUPT')
    expect(err.path).toBe(p)
    expect(err.message).toContain(p)
    expect(err.message).toMatch(/line 3 column 8/)
    expect(err.line).toBe(3)
    expect(err.position).toBe(bad.indexOf('}'))
    expect(readFileSync(p, 'utf8')).toBe(bad)
    expect(statSync(p).mtimeMs).toBe(before.mtimeMs)
    // A truncated file (the classic torn write) is corrupt, not empty.
    writeFileSync(p, '{"entries": {"a": 1')
    await expect(readJson(p, { default: {} })).rejects.toMatchObject({ code: 'ECORRUPT' })
    // Positions stay 1-based when the error is before a line's first character.
    writeFileSync(p, '{"a":\n')
    await expect(readJson(p, { default: {} })).rejects.toMatchObject({ line: 2, column: 1, position: 6 })
  })

  it('reports a directory as EISDIR', async () => {
    const dir = tempDir()
    await expect(readJson(dir, { default: {} })).rejects.toMatchObject({ code: 'EISDIR', path: dir })
  })
})

describe('writeJson', () => {
  it('writes JSON.stringify(value, null, space) and a newline', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const value = { b: [1, { c: 'x' }], a: null }
    await writeJson(p, value)
    expect(readFileSync(p, 'utf8')).toBe(`${JSON.stringify(value)}\n`)
    await writeJson(p, value, { space: 2, fsync: false })
    expect(readFileSync(p, 'utf8')).toBe(`${JSON.stringify(value, null, 2)}\n`)
    await writeJson(p, value, { space: '\t' })
    expect(readFileSync(p, 'utf8')).toBe(`${JSON.stringify(value, null, '\t')}\n`)
    expect(readdirSync(dir)).toEqual(['index.json'])
  })

  it('refuses values JSON cannot represent and leaves the file alone', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"ok":1}\n')
    await expect(writeJson(p, undefined)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await expect(writeJson(p, cyclic)).rejects.toBeInstanceOf(TypeError)
    expect(readFileSync(p, 'utf8')).toBe('{"ok":1}\n')
  })
})

describe('updateJson', () => {
  type Idx = { entries: Record<string, number> }

  it('mutates in place or takes a returned value, writes it and resolves with it', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    const a = await updateJson<Idx>(p, (c) => void (c.entries.a = 1), { default: { entries: {} }, space: 2 })
    expect(a).toEqual({ entries: { a: 1 } })
    expect(readFileSync(p, 'utf8')).toBe(`${JSON.stringify(a, null, 2)}\n`)
    const b = await updateJson<Idx>(p, async (c) => ({ entries: { ...c.entries, b: 2 } }))
    expect(b).toEqual({ entries: { a: 1, b: 2 } })
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual(b)
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })

  it('writes nothing when the mutator throws, and releases the lock', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"entries":{"x":1}}')
    await expect(
      updateJson<Idx>(p, (c) => {
        c.entries.y = 2
        throw new Error('mutator failed')
      }),
    ).rejects.toThrow('mutator failed')
    await expect(updateJson<Idx>(p, async () => Promise.reject(new Error('async failed')))).rejects.toThrow(
      'async failed',
    )
    expect(readFileSync(p, 'utf8')).toBe('{"entries":{"x":1}}')
    const h = tryAcquire(p)
    expect(h).not.toBeNull()
    await h!.release()
  })

  it('never changes the default object it was given', async () => {
    const dir = tempDir()
    const fallback: Idx = { entries: {} }
    await updateJson<Idx>(join(dir, 'a.json'), (c) => void (c.entries.a = 1), { default: fallback })
    await updateJson<Idx>(join(dir, 'b.json'), (c) => void (c.entries.b = 1), { default: fallback })
    expect(fallback).toEqual({ entries: {} })
    expect(JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8'))).toEqual({ entries: { b: 1 } })
  })

  it('refuses to overwrite a corrupt file', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"entries": ')
    await expect(updateJson<Idx>(p, () => ({ entries: {} }), { default: { entries: {} } })).rejects.toBeInstanceOf(
      CorruptFileError,
    )
    expect(readFileSync(p, 'utf8')).toBe('{"entries": ')
  })

  it('rejects a missing file without a default', async () => {
    const p = join(tempDir(), 'index.json')
    await expect(updateJson(p, () => ({}))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('data that changes hands during a write', () => {
  it("writes a typed array's bytes as they were at the call, even if its buffer is transferred and reused during the write", async () => {
    const p = join(tempDir(), 'big.bin')
    const size = 64 * 2 ** 20
    const data = new Uint8Array(new ArrayBuffer(size)).fill(0x5a)
    const pending = atomicWrite(p, data, { fsync: false })
    // Detach the buffer (as postMessage(buf, [buf]) to a worker does) and overwrite the memory
    // through its new owner while the write runs.
    const { port1, port2 } = new MessageChannel()
    port1.postMessage(data.buffer, [data.buffer])
    const moved = receiveMessageOnPort(port2)!.message as ArrayBuffer
    new Uint8Array(moved).fill(0)
    port1.close()
    expect(data.byteLength).toBe(0)
    await pending
    const written = readFileSync(p)
    expect(written.length).toBe(size)
    expect(written.every((b) => b === 0x5a)).toBe(true)
  })
})

describe('files that are not regular files', () => {
  const isRoot = process.getuid?.() === 0

  it('a FIFO at the data path (or behind a symlink there) is refused with EFTYPE, never replaced, and never blocks a read', async () => {
    const dir = tempDir()
    const fifo = join(dir, 'index.json')
    execFileSync('mkfifo', [fifo])
    symlinkSync('index.json', join(dir, 'link.json'))
    for (const p of [fifo, join(dir, 'link.json')]) {
      for (const call of [
        () => atomicWrite(p, 'x'),
        () => writeJson(p, {}),
        () => updateJson(p, () => ({}), { default: {} }),
        () => readJson(p, { default: {} }),
        async () => readJsonSync(p, { default: {} }),
        async () => atomicWriteSync(p, 'x'),
      ]) {
        await expect(call()).rejects.toMatchObject({ code: 'EFTYPE', syscall: 'open', path: p })
      }
    }
    expect(lstatSync(fifo).isFIFO()).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock', 'link.json'])
  })

  it('a socket at the data path is refused with EFTYPE and stays a socket', async () => {
    const dir = tempDir()
    const sock = join(dir, 'index.json')
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(sock, resolve))
    try {
      await expect(atomicWrite(sock, 'x')).rejects.toMatchObject({ code: 'EFTYPE', path: sock })
      await expect(readJson(sock)).rejects.toMatchObject({ code: 'EFTYPE' })
      expect(lstatSync(sock).isSocket()).toBe(true)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it.skipIf(!isRoot)(
    'a data path symlinked to a device node is refused; the device stays (needs root for mknod)',
    async () => {
      const dir = tempDir()
      const dev = join(dir, 'null')
      execFileSync('mknod', [dev, 'c', '1', '3'])
      const p = join(dir, 'index.json')
      symlinkSync(dev, p)
      await expect(atomicWrite(p, 'x')).rejects.toMatchObject({ code: 'EFTYPE', syscall: 'open', path: p })
      await expect(writeJson(p, { a: 1 })).rejects.toMatchObject({ code: 'EFTYPE' })
      await expect(readJson(p, { default: {} })).rejects.toMatchObject({ code: 'EFTYPE' })
      expect(lstatSync(dev).isCharacterDevice()).toBe(true)
      expect(readdirSync(dir).sort()).toEqual(['index.json', 'null'])
    },
  )
})
