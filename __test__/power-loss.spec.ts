// Power loss: writers run on a LazyFS mount (the FUSE filesystem Jepsen uses: it keeps written
// data in a cache of its own until the writer fsyncs it, and on command drops every byte not
// fsynced), are SIGKILLed at a random moment, and then the unsynced data is dropped, as a power
// cut would. After each cut the index parses and holds every update whose call had resolved.
// Torn writes: LazyFS persists only parts of a save's temp-file write and kills itself (the power
// goes mid-write); the torn temp never becomes the index. Two controls show the test bed does
// drop unsynced data: `fsync: false` and a naive writeFile + rename lose acknowledged updates.
import { spawnSync } from 'node:child_process'
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { readJson } from '../index.js'
import { node, ROOT, run, type Run } from './helpers'
import { FAULT_BUILD } from './setup/fault-build'

/**
 * The prebuilt LazyFS (dsrhaslab/lazyfs a47a5bae, with its libpcache beside it): INDEX_LOCK_LAZYFS,
 * else the workspace's shared tools beside this repository's checkout.
 */
const LAZYFS =
  [
    process.env.INDEX_LOCK_LAZYFS,
    join(ROOT, '..', 'shared', 'tools', 'lazyfs', 'lazyfs'),
    '/work/shared/tools/lazyfs/lazyfs',
  ]
    .filter((p): p is string => typeof p === 'string' && p !== '')
    .find((p) => existsSync(p)) ?? ''
const WRITER = 'power-loss-writer.cjs'
const ROUNDS = 3

const missing = [
  LAZYFS === '' && 'the LazyFS binary (set INDEX_LOCK_LAZYFS)',
  process.getuid?.() !== 0 && 'root',
  !existsSync('/dev/fuse') && '/dev/fuse',
  spawnSync('fusermount3', ['-V']).error !== undefined && 'fusermount3',
  !/libfuse3\.so\.3\b/.test(spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '') && 'libfuse3',
].filter((m): m is string => typeof m === 'string')

const mounted = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir)

/** Resolves once `cond()` holds; rejects after `ms`, or at once when `dead()` says the process
 * the wait depends on is gone. */
async function waitFor(cond: () => boolean, what: string, ms = 10_000, dead = () => false) {
  const end = Date.now() + ms
  while (!cond()) {
    if (dead()) throw new Error(`${what}: the process it waited for is gone`)
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(5)
  }
}

const running = (r: Run) => r.child.exitCode === null && r.child.signalCode === null

/** One LazyFS test bed: `root` is the disk (what survives the power cut), `mnt` the mount the
 * writers use, `base` holds the config, the faults FIFO and resume files. Paths are short on
 * purpose: LazyFS reads a command from its FIFO in one read of at most 100 bytes, and a torn-write
 * command names the temp file by its full path on the disk. */
interface Bed {
  base: string
  root: string
  mnt: string
  lazyfs?: Run
}

const beds: Bed[] = []
const writers: Run[] = []

afterEach(async () => {
  for (const w of writers.splice(0)) if (running(w)) w.child.kill('SIGKILL')
  for (const bed of beds.splice(0)) {
    await unmount(bed)
    // Never recurse into a mount: only a directory with nothing mounted in it is removed.
    if (!mounted(bed.mnt)) rmSync(bed.base, { recursive: true, force: true })
  }
})

function newBed(): Bed {
  const base = realpathSync(mkdtempSync('/tmp/pl'))
  const bed = { base, root: join(base, 'r'), mnt: join(base, 'm') }
  mkdirSync(bed.root)
  mkdirSync(bed.mnt)
  writeFileSync(
    join(base, 'lazyfs.toml'),
    [
      '[faults]',
      `fifo_path="${join(base, 'faults.fifo')}"`,
      '[cache]',
      'apply_eviction=false',
      '[cache.simple]',
      'custom_size="128mb"',
      'blocks_per_page=1',
      '[filesystem]',
      'log_all_operations=false',
      'logfile=""',
      '',
    ].join('\n'),
  )
  beds.push(bed)
  return bed
}

/** Starts LazyFS on `bed` (again after a crash: the disk is kept) and waits until the mount and
 * the FIFO reader are up. LazyFS now and then fails to read its config and aborts: tried again. */
async function mount(bed: Bed) {
  for (let attempt = 1; ; attempt++) {
    const lazyfs = run(LAZYFS, [
      bed.mnt,
      '--config-path',
      join(bed.base, 'lazyfs.toml'),
      '-o',
      'allow_other',
      '-o',
      'modules=subdir',
      '-o',
      `subdir=${bed.root}`,
      '-f',
    ])
    bed.lazyfs = lazyfs
    try {
      await waitFor(
        () => mounted(bed.mnt) && lazyfs.stdout().includes('waiting for fault commands'),
        'LazyFS mount',
        10_000,
        () => !running(lazyfs),
      )
      return
    } catch (err) {
      if (running(lazyfs)) lazyfs.child.kill('SIGKILL')
      await lazyfs.exited
      if (mounted(bed.mnt)) spawnSync('umount', ['-l', bed.mnt])
      if (attempt === 5) throw new Error(`${(err as Error).message}\n${lazyfs.stdout()}\n${lazyfs.stderr()}`)
    }
  }
}

async function unmount(bed: Bed) {
  if (mounted(bed.mnt) && spawnSync('fusermount3', ['-u', bed.mnt]).status !== 0) {
    spawnSync('umount', ['-l', bed.mnt])
  }
  const lazyfs = bed.lazyfs
  if (lazyfs) {
    // An unmount ends LazyFS; one that does not end is killed (by its own pid).
    await Promise.race([lazyfs.exited, sleep(5000)])
    if (running(lazyfs)) lazyfs.child.kill('SIGKILL')
    await lazyfs.exited
  }
  await waitFor(() => !mounted(bed.mnt), 'unmount', 5000)
}

/** Writes one command to LazyFS's faults FIFO (non-blocking: fails if LazyFS is not reading). */
function command(bed: Bed, cmd: string) {
  if (cmd.length > 99) throw new Error(`LazyFS reads at most 100 bytes per command: '${cmd}'`)
  const fd = openSync(join(bed.base, 'faults.fifo'), constants.O_WRONLY | constants.O_NONBLOCK)
  try {
    writeSync(fd, `${cmd}\n`)
  } finally {
    closeSync(fd)
  }
}

const count = (text: string, what: string) => text.split(what).length - 1

/** The power cut: every byte not fsynced is dropped (`lazyfs::clear-cache`). */
async function clearCache(bed: Bed) {
  const lazyfs = bed.lazyfs!
  const before = count(lazyfs.stdout(), 'cache is cleared.')
  command(bed, 'lazyfs::clear-cache')
  await waitFor(
    () => count(lazyfs.stdout(), 'cache is cleared.') > before,
    'clear-cache',
    10_000,
    () => !running(lazyfs),
  )
}

function writer(args: string[], env: Record<string, string> = {}): Run {
  const w = node(WRITER, args, env)
  writers.push(w)
  return w
}

/** Keys (or counter values) a writer acknowledged: whole lines only. */
const acks = (w: Run) => [...w.stdout().matchAll(/^ACK (\S+)\n/gm)].map((m) => m[1]!)

/** Lets every writer acknowledge something, then SIGKILLs them all 0.3-0.9 s later. */
async function killAtRandom(ws: Run[]) {
  await Promise.all(ws.map((w) => w.line('ACK ')))
  await sleep(300 + Math.random() * 600)
  for (const w of ws) expect(running(w), `a writer died on its own: ${w.stderr()}`).toBe(true)
  for (const w of ws) w.child.kill('SIGKILL')
  await Promise.all(ws.map((w) => w.exited))
}

/** The index on the disk: it must parse. */
function indexOnDisk(file: string, round: number): { entries: Record<string, number> } {
  const text = readFileSync(file, 'utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(
      `round ${round}: the index does not parse after the power cut: ${JSON.stringify(text.slice(0, 200))}`,
    )
  }
}

/** `procs` writer processes of `mode` with `lanes` concurrent callers each, cut ROUNDS times;
 * after every cut the index parses and holds every acknowledged key of every round. */
async function everyAcknowledgedUpdateSurvives(mode: 'update' | 'section', procs: number, lanes: number) {
  const bed = newBed()
  await mount(bed)
  const file = join(bed.mnt, 'i.json')
  const acked: string[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    const ws = Array.from({ length: procs }, (_, w) => writer([mode, file, `r${round}w${w}`, String(lanes)]))
    await killAtRandom(ws)
    for (const w of ws) acked.push(...acks(w))
    await clearCache(bed)
    const index = indexOnDisk(join(bed.root, 'i.json'), round)
    expect(
      acked.filter((k) => index.entries[k] !== 1),
      `round ${round}: acknowledged updates lost`,
    ).toEqual([])
  }
  expect(acked.length).toBeGreaterThanOrEqual(procs * ROUNDS)
}

describe.skipIf(missing.length > 0)(
  `power loss on LazyFS (root, /dev/fuse, fusermount3 and libfuse3 only: .ci/run installs fuse3)${missing.length ? `: missing ${missing.join(', ')}` : ''}`,
  () => {
    it('updateJson, batched (2 processes x 16 concurrent calls, group commit): every acknowledged update survives', async () => {
      await everyAcknowledgedUpdateSurvives('update', 2, 16)
    })

    it('updateJson, one call at a time (2 processes): every acknowledged update survives', async () => {
      await everyAcknowledgedUpdateSurvives('update', 2, 1)
    })

    it('withIndexLock + readJson + writeJson (2 processes x 4 sections): every acknowledged update survives', async () => {
      await everyAcknowledgedUpdateSurvives('section', 2, 4)
    })

    it('atomicWrite: the counter on disk is never behind the last acknowledged value', async () => {
      const bed = newBed()
      await mount(bed)
      let last = 0
      for (let round = 1; round <= ROUNDS; round++) {
        const w = writer(['atomic', join(bed.mnt, 'n'), 'n'])
        await killAtRandom([w])
        last = Math.max(last, ...acks(w).map(Number))
        await clearCache(bed)
        const text = readFileSync(join(bed.root, 'n'), 'utf8')
        expect(text, `round ${round}`).toMatch(/^\d+\n$/)
        // At most one write was in flight when the writer was killed.
        expect(Number(text), `round ${round}: an acknowledged value lost`).toBeGreaterThanOrEqual(last)
        expect(Number(text), `round ${round}`).toBeLessThanOrEqual(last + 1)
      }
    })

    // A writer of the fault-injection build stops after creating its temp file, so the test can
    // name that file to LazyFS; LazyFS then persists only some parts of the temp's write, or only
    // some of its writes, and kills itself: the power goes in the middle of the save.
    async function tornSaves(kind: 'torn-op' | 'torn-seq', variants: string[]) {
      const bed = newBed()
      const file = join(bed.mnt, 'i.json')
      const disk = join(bed.root, 'i.json')
      const acked: string[] = []
      let previous: string | undefined
      for (const [i, variant] of variants.entries()) {
        const round = i + 1
        await mount(bed)
        const lazyfs = bed.lazyfs!
        const ws = [0, 1].map((w) => writer(['update', file, `r${round}w${w}`, '8']))
        await Promise.all(ws.map((w) => w.line('ACK ')))
        await sleep(300 + Math.random() * 600)
        const resume = join(bed.base, `resume${round}`)
        // torn-seq needs several writes: FUSE hands a write over in pieces of at most 1 MiB.
        const pad = kind === 'torn-seq' ? '1500000' : '0'
        const torn = writer(['once', file, `r${round}torn`, '1', pad], {
          NAPI_RS_NATIVE_LIBRARY_PATH: FAULT_BUILD,
          INDEX_LOCK_PAUSE: 'after-create',
          INDEX_LOCK_RESUME: resume,
        })
        // The whole line: stderr may come in pieces.
        const paused = () => torn.stderr().match(/^INDEX_LOCK_PAUSED after-create (\S+)\n/m)
        await waitFor(
          () => paused() !== null,
          'the torn writer paused',
          10_000,
          () => !running(torn),
        )
        const temp = join(bed.root, basename(paused()![1]!))
        const cmd =
          kind === 'torn-op'
            ? `lazyfs::torn-op::file=${temp}::${variant}`
            : `lazyfs::torn-seq::op=write::file=${temp}::${variant}`
        command(bed, cmd)
        await waitFor(() => lazyfs.stdout().includes(`configured successfully '${cmd}'`), `LazyFS took '${cmd}'`)
        writeFileSync(resume, '')
        // LazyFS kills itself once the chosen parts are on the disk.
        await waitFor(() => !running(lazyfs), 'LazyFS crashed on the torn write')
        for (const w of ws) w.child.kill('SIGKILL')
        await Promise.all([...ws, torn].map((w) => w.exited))
        expect(torn.stdout(), 'the torn save never resolved').toMatch(/^FAILED \S+$/m)
        for (const w of ws) acked.push(...acks(w))
        await unmount(bed)

        const index = indexOnDisk(disk, round)
        expect(
          acked.filter((k) => index.entries[k] !== 1),
          `round ${round}: acknowledged updates lost`,
        ).toEqual([])
        expect(index.entries[`r${round}torn`]).toBeUndefined()
        // The torn temp file is on the disk, and is no JSON document: the fault did tear it.
        expect(() => JSON.parse(readFileSync(temp, 'utf8')), `round ${round}: the temp was not torn`).toThrow()
        // The previous round's torn temp was removed by this round's writers (automatic sweep).
        if (previous) expect(existsSync(previous), `round ${round}: orphan not swept`).toBe(false)
        previous = temp
      }
      expect(acked.length).toBeGreaterThanOrEqual(2 * variants.length)
    }

    it('a temp-file write torn by the power cut (torn-op: parts of one write persisted) never becomes visible', async () => {
      await tornSaves('torn-op', ['parts=2::persist=1', 'parts=3::persist=2', 'parts=3::persist=1,3'])
    })

    it('temp-file writes persisted out of order by the power cut (torn-seq) never become visible', async () => {
      await tornSaves('torn-seq', ['persist=2', 'persist=1'])
    })

    it('control: fsync: false may lose acknowledged updates, as README says, but never leaves a torn file', async () => {
      const bed = newBed()
      await mount(bed)
      const lostPerRound: number[] = []
      for (let round = 1; round <= ROUNDS; round++) {
        const w = writer(['update', join(bed.mnt, 'i.json'), `r${round}`, '4'], { PL_FSYNC: '0' })
        await killAtRandom([w])
        const acked = acks(w)
        await clearCache(bed)
        // docs/guarantees.md: an older version or an empty file; readJson reads an empty or missing file as
        // its default and rejects a torn one.
        const index = (await readJson(join(bed.root, 'i.json'), { default: { entries: {} } })) as {
          entries: Record<string, number>
        }
        lostPerRound.push(acked.filter((k) => index.entries[k] !== 1).length)
      }
      expect(
        lostPerRound.some((n) => n > 0),
        `LazyFS dropped nothing unsynced: ${lostPerRound}`,
      ).toBe(true)
    })

    it('control: a naive writeFile + rename loses the index', async () => {
      const bed = newBed()
      await mount(bed)
      const outcomes: string[] = []
      for (let round = 1; round <= ROUNDS; round++) {
        const w = writer(['naive', join(bed.mnt, 'i.json'), `r${round}`])
        await killAtRandom([w])
        const acked = acks(w)
        await clearCache(bed)
        const text = readFileSync(join(bed.root, 'i.json'), 'utf8')
        let index: { entries: Record<string, number> } | undefined
        try {
          index = JSON.parse(text)
        } catch {}
        const lost = acked.filter((k) => index?.entries[k] !== 1).length
        outcomes.push(index ? `${lost} of ${acked.length} lost` : `unparsable (${text.length} bytes)`)
      }
      expect(
        outcomes.some((o) => !o.startsWith('0 of')),
        `the naive writer lost nothing: ${outcomes}`,
      ).toBe(true)
    })
  },
)
