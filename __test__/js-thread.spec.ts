// The JS thread never asks a filesystem or the kernel's lock table anything that can take long:
// statfs of a directory (a FUSE or network server may never answer it) and /proc/locks (it
// lists every lock on the host: tens of ms on a busy one) are only ever called on other threads.
// Checked on the real system calls, by thread, with strace; the calls still give what they gave
// (holders named, a busy process still lets a waiting one in).
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { BACKEND, FIXTURES, tempDir } from './helpers'

const hasStrace = spawnSync('strace', ['-V']).status === 0

describe.skipIf(!hasStrace || BACKEND !== 'linux')(
  'the JS thread makes no slow probe (strace; linux backend: generic Unix has no /proc/locks)',
  () => {
    it('no statfs and no read of /proc/locks by the main thread', () => {
      const dir = tempDir('probes')
      const trace = join(dir, 'trace')
      const r = spawnSync(
        'strace',
        [
          '-f',
          '-qq',
          '-o',
          trace,
          '-e',
          'trace=statfs,fstatfs,open,openat',
          process.execPath,
          join(FIXTURES, 'js-thread-probes.cjs'),
          dir,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      )
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'))
      expect(line, `${r.stdout}\n${r.stderr}`).toBeDefined()
      const out = JSON.parse(line!)
      expect(out.read).toEqual({ a: 1 })
      expect(out.zero).toBe(`ELOCKTIMEOUT:${out.holder}`)
      expect(out.timer).toBe(`ELOCKTIMEOUT:${out.holder}`)
      expect(out.update).toBe(`ELOCKTIMEOUT:${out.holder}`)
      expect(out.waiter).toBe(0)
      const lines = require('node:fs').readFileSync(trace, 'utf8').split('\n') as string[]
      const byMain = lines.filter((l) => l.startsWith(`${out.pid} `))
      const statfs = byMain.filter((l) => /^\d+ +f?statfs\(/.test(l.replace(/^\d+ +/, (m) => m)))
      const procLocks = byMain.filter((l) => l.includes('"/proc/locks"'))
      expect(statfs.filter((l) => /statfs\(/.test(l))).toEqual([])
      expect(procLocks).toEqual([])
      // The probes did happen, on other threads.
      expect(lines.some((l) => l.includes('"/proc/locks"') && !l.startsWith(`${out.pid} `))).toBe(true)
      expect(lines.some((l) => /statfs\(/.test(l) && !l.startsWith(`${out.pid} `))).toBe(true)
    })
  },
)
