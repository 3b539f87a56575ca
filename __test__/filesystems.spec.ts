// Filesystem checks: flock is advisory and local, so paths on filesystems that do not carry it
// between hosts are flagged once per directory (warn), refused (error) or let through (allow).
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { acquire, tryAcquire, updateJson, withIndexLock, writeJson } from '../index.js'
import { FIXTURES, run, tempDir } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

const isRoot = process.getuid?.() === 0
const mounts: string[] = []
afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m])
})

type Seen = {
  warnings: { code: string; message: string }[]
  errors: { code: string; message: string; fstype: string }[]
}

async function pretend(fstype: string, policy: string): Promise<Seen> {
  const base = tempDir()
  const child = run(process.execPath, [join(FIXTURES, 'netfs-check.cjs'), base, policy], {
    NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD,
    INDEX_LOCK_FAKE_FSTYPE: fstype,
  })
  const { code } = await child.exited
  expect(code, child.stderr()).toBe(0)
  return JSON.parse(child.stdout()) as Seen
}

async function noWarningsDuring(body: () => Promise<unknown>) {
  const seen: Error[] = []
  const onWarning = (w: Error) => seen.push(w)
  process.on('warning', onWarning)
  try {
    await body()
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('warning', onWarning)
  }
  return seen.filter((w) => (w as { code?: string }).code === 'INDEX_LOCK_NETWORK_FS')
}

describe('filesystem checks', () => {
  it('local filesystems (ext4 temp dir) pass silently', async () => {
    const p = join(tempDir(), 'index.json')
    const warnings = await noWarningsDuring(async () => {
      await withIndexLock(p, () => 1)
      await updateJson(p, () => ({ n: 1 }), { default: {} })
      await writeJson(p, {}, { networkFs: 'error' })
    })
    expect(warnings).toEqual([])
  })

  it.skipIf(!isRoot)('tmpfs passes silently (needs root to mount tmpfs)', async () => {
    const dir = join(tempDir(), 'mnt')
    mkdirSync(dir)
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status).toBe(0)
    mounts.push(dir)
    const p = join(dir, 'index.json')
    const warnings = await noWarningsDuring(async () => {
      const h = await acquire(p, { networkFs: 'error' })
      await h.release()
    })
    expect(warnings).toEqual([])
  })

  it('an unsafe filesystem is warned about once per directory, naming path and type', async () => {
    const seen = await pretend('fuse.sshfs', 'default')
    expect(seen.errors).toEqual([])
    expect(seen.warnings).toHaveLength(2)
    for (const [i, sub] of ['a', 'b'].entries()) {
      expect(seen.warnings[i]!.code).toBe('INDEX_LOCK_NETWORK_FS')
      expect(seen.warnings[i]!.message).toContain(join(sub, 'index.json'))
      expect(seen.warnings[i]!.message).toContain('fuse.sshfs')
    }
  })

  it("networkFs: 'error' refuses with a clear error; 'allow' says nothing", async () => {
    const refused = await pretend('cifs', 'error')
    expect(refused.warnings).toEqual([])
    expect(refused.errors).toHaveLength(8)
    for (const e of refused.errors) {
      expect(e.code).toBe('INDEX_LOCK_NETWORK_FS')
      expect(e.fstype).toBe('cifs')
      expect(e.message).toMatch(/local filesystem/)
    }
    const allowed = await pretend('fuse.sshfs', 'allow')
    expect(allowed).toEqual({ warnings: [], errors: [] })
  })

  it('filesystems that carry locks between hosts are not flagged', async () => {
    for (const fstype of ['nfs4', 'fuse.glusterfs', 'ceph']) {
      expect(await pretend(fstype, 'error'), fstype).toEqual({ warnings: [], errors: [] })
    }
  })

  it("local FUSE filesystems (rootless containers' fuse-overlayfs, NTFS/exFAT drives) are not flagged; remote FUSE ones are", async () => {
    for (const fstype of ['fuse.fuse-overlayfs', 'fuseblk', 'fuse.lxcfs']) {
      expect(await pretend(fstype, 'error'), fstype).toEqual({ warnings: [], errors: [] })
    }
    for (const fstype of ['fuse.rclone', 'fuse.s3fs', 'fuse']) {
      expect((await pretend(fstype, 'error')).errors.length, fstype).toBeGreaterThan(0)
    }
  })

  it('rejects an unknown policy', async () => {
    const p = join(tempDir(), 'index.json')
    expect(() => tryAcquire(p, { networkFs: 'ignore' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    )
    await expect(writeJson(p, {}, { networkFs: 1 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
  })
})
