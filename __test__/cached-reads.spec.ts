// Reads served from the page cache on the JS thread (Linux): the same results as the threadpool
// read for every kind of file, and only where no wait for a disk or a network can happen.
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { readJson, readJsonSync } from '../index.js'
import { BACKEND, FIXTURES, run, tempDir } from './helpers'
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
})
