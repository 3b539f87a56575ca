// patchJson / mergeJson (and sync twins) and readJson({ pointer }): JSON changes applied by the
// native engine under the path's lock. Each call is atomic (a failing operation applies none of
// its operations), batched calls end as they would alone, the output is what updateJson would
// write for the same change, and number text and key order survive as written.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import {
  acquire,
  CorruptFileError,
  mergeJson,
  mergeJsonSync,
  PatchError,
  patchJson,
  patchJsonSync,
  readJson,
  readJsonSync,
  updateJson,
  withIndexLock,
  withIndexLockSync,
  writeJson,
} from '../index.js'
import { node, ROOT, run, tempDir, thrownSync } from './helpers'

type Op = Parameters<typeof patchJson>[1][number]
const file = (tag = 'patch') => join(tempDir(tag), 'index.json')
const text = (p: string) => readFileSync(p, 'utf8')

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; index?: number; op?: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: Error) => e,
  )
}

describe('patchJson applies RFC 6902 natively', () => {
  it('every operation, and the file is what updateJson writes for the same change', async () => {
    const start = { b: { c: [1, 2, 3] }, a: 'x', n: 1.5, keep: true }
    for (const space of [undefined, 2, '\t'] as const) {
      const viaPatch = file()
      const viaUpdate = file()
      await writeJson(viaPatch, start, { space })
      await writeJson(viaUpdate, start, { space })
      const ops: Op[] = [
        { op: 'add', path: '/b/c/1', value: 9 },
        { op: 'add', path: '/b/c/-', value: { z: null } },
        { op: 'remove', path: '/a' },
        { op: 'replace', path: '/n', value: 'five' },
        { op: 'copy', from: '/b/c/0', path: '/first' },
        { op: 'move', from: '/keep', path: '/moved' },
        { op: 'test', path: '/b/c/2', value: 2 },
        { op: 'add', path: '/new', value: { 'a/b': 1, 'm~n': [] } },
      ]
      await patchJson(viaPatch, ops, { space })
      await updateJson(
        viaUpdate,
        (s: { b: { c: unknown[] }; a?: string; n: unknown; keep?: boolean; [k: string]: unknown }) => {
          s.b.c.splice(1, 0, 9)
          s.b.c.push({ z: null })
          delete s.a
          s.n = 'five'
          s.first = s.b.c[0]
          const kept = s.keep
          delete s.keep
          s.moved = kept
          s.new = { 'a/b': 1, 'm~n': [] }
        },
        { space },
      )
      expect(text(viaPatch)).toBe(text(viaUpdate))
      expect(await readJson(viaPatch, { pointer: '/new/a~1b' })).toBe(1)
      expect(await readJson(viaPatch, { pointer: '/new/m~0n' })).toEqual([])
    }
  })

  it('a failing operation applies none of the call’s operations: PatchError with index and op', async () => {
    const p = file()
    await writeJson(p, { a: 1, list: [1] }, { space: 2 })
    const before = text(p)
    const err = await rejection(
      patchJson(p, [
        { op: 'add', path: '/b', value: 2 },
        { op: 'remove', path: '/list/0' },
        { op: 'test', path: '/a', value: 2 },
      ]),
    )
    expect(err).toBeInstanceOf(PatchError)
    expect(err.code).toBe('EPATCH')
    expect(err.index).toBe(2)
    expect(err.op).toBe('test')
    expect((err as unknown as { path: string }).path).toBe(p)
    expect(text(p)).toBe(before)
    for (const [ops, index, op] of [
      [[{ op: 'remove', path: '/missing' }], 0, 'remove'],
      [[{ op: 'replace', path: '/list/5', value: 0 }], 0, 'replace'],
      [[{ op: 'add', path: '/list/2', value: 0 }], 0, 'add'],
      [[{ op: 'add', path: '/nope/x', value: 0 }], 0, 'add'],
      [[{ op: 'move', from: '/a', path: '/a/b' }], 0, 'move'],
      [[{ op: 'copy', from: '/zzz', path: '/y' }], 0, 'copy'],
      [[{ op: 'add', path: '/list/01', value: 0 }], 0, 'add'],
    ] as [Op[], number, string][]) {
      const e = await rejection(patchJson(p, ops))
      expect(e, JSON.stringify(ops)).toBeInstanceOf(PatchError)
      expect(e.index).toBe(index)
      expect(e.op).toBe(op)
      expect(text(p)).toBe(before)
    }
  })

  it('in a batch, a failing call fails alone; the others apply in call order', async () => {
    const p = file()
    await writeJson(p, { list: [] as number[] })
    const held = await acquire(p)
    const calls = [0, 1, 2, 3, 4].map((i) =>
      patchJson(p, [
        { op: 'test', path: '/list', value: i === 2 ? ['never'] : Array.from({ length: i }, (_, k) => k) },
        { op: 'add', path: '/list/-', value: i },
      ]).then(
        () => 'ok',
        (e: Error & { code?: string }) => e.code,
      ),
    )
    await held.release()
    // Call 2's test fails, so calls 3 and 4, which expect the list call 2 would have made, fail too.
    expect(await Promise.all(calls)).toEqual(['ok', 'ok', 'EPATCH', 'EPATCH', 'EPATCH'])
    expect(await readJson(p)).toEqual({ list: [0, 1] })
  })

  it('a malformed patch is a TypeError (ERR_INVALID_ARG_VALUE / ERR_INVALID_ARG_TYPE) and nothing is queued', async () => {
    const p = file()
    await writeJson(p, { a: 1 })
    const bad: unknown[] = [
      [{ op: 'frobnicate', path: '/a' }],
      [{ op: 'add', path: 'a', value: 1 }],
      [{ op: 'add', path: '/a~2', value: 1 }],
      [{ op: 'add', path: '/a' }],
      [{ op: 'move', path: '/a' }],
      [{ path: '/a', value: 1 }],
      [1],
    ]
    for (const ops of bad) {
      const e = await rejection(patchJson(p, ops as Op[]))
      expect(e, JSON.stringify(ops)).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE')
    }
    const notArray = await rejection(patchJson(p, { op: 'add' } as unknown as Op[]))
    expect(notArray).toBeInstanceOf(TypeError)
    expect(notArray.code).toBe('ERR_INVALID_ARG_TYPE')
    const pointer = await rejection(readJson(p, { pointer: 'a' }))
    expect(pointer).toBeInstanceOf(TypeError)
    expect(pointer.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(await readJson(p)).toEqual({ a: 1 })
  })

  it('missing or blank file: the default, else the errors readJson gives; corrupt files are untouched', async () => {
    const p = file()
    await patchJson(p, [{ op: 'add', path: '/entries/a', value: 1 }], { default: { entries: {} } })
    expect(await readJson(p)).toEqual({ entries: { a: 1 } })
    const missing = file()
    const e1 = await rejection(patchJson(missing, [{ op: 'add', path: '/a', value: 1 }]))
    expect(e1.code).toBe('ENOENT')
    const blank = file()
    writeFileSync(blank, ' \n')
    const e2 = await rejection(mergeJson(blank, { a: 1 }))
    expect(e2).toBeInstanceOf(CorruptFileError)
    for (const bytes of [Buffer.from('{"a":'), Buffer.from([0x7b, 0xff, 0x7d])]) {
      const corrupt = file()
      writeFileSync(corrupt, bytes)
      const viaPatch = await rejection(patchJson(corrupt, [{ op: 'add', path: '/b', value: 1 }], { default: {} }))
      const viaRead = await rejection(readJson(corrupt))
      expect(viaPatch).toBeInstanceOf(CorruptFileError)
      expect(viaPatch.message).toBe(viaRead.message)
      expect(readFileSync(corrupt)).toEqual(bytes)
    }
    // A BOM is read as readJson reads it; the file is then written as updateJson writes it.
    const bom = file()
    writeFileSync(bom, '\uFEFF{"a":1}\n')
    await patchJson(bom, [{ op: 'add', path: '/b', value: 2 }])
    expect(text(bom)).toBe('{"a":1,"b":2}\n')
  })

  it('keeps number text and key order as written: big integers and 1e+21 are not rounded', async () => {
    const p = file()
    const raw =
      '{"z":1,"big":123456789012345678901234567890,"e":1e+21,"a":-0.0,"max":18446744073709551615,"tiny":5e-324}\n'
    writeFileSync(p, raw)
    await patchJson(p, [{ op: 'add', path: '/new', value: 1 }])
    expect(text(p)).toBe(`${raw.trimEnd().slice(0, -1)},"new":1}\n`)
    expect(await readJson(p, { pointer: '/big' })).toBe(Number('123456789012345678901234567890'))
  })

  it('nested in a section, beside updateJson: every change kept', async () => {
    const p = file()
    await withIndexLock(p, () =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2
            ? patchJson(p, [{ op: 'add', path: `/k${i}`, value: i }], { default: {} })
            : updateJson(p, (s: Record<string, number>) => ({ ...s, [`k${i}`]: i }), { default: {} }),
        ),
      ),
    )
    expect(Object.keys(await readJson(p))).toHaveLength(20)
  })

  it('many concurrent calls batch and all land; mixed with updateJson calls in call order', async () => {
    const p = file()
    await writeJson(p, { entries: {}, order: [] })
    const calls = Array.from({ length: 100 }, (_, i) =>
      i % 10 === 5
        ? updateJson(p, (s: { order: number[] }) => {
            s.order.push(i)
          })
        : i % 2
          ? mergeJson(p, { entries: { [`m${i}`]: i } })
          : patchJson(p, [
              { op: 'add', path: `/entries/p${i}`, value: i },
              { op: 'add', path: '/order/-', value: i },
            ]),
    )
    await Promise.all(calls)
    const s = (await readJson(p)) as { entries: Record<string, number>; order: number[] }
    expect(Object.keys(s.entries)).toHaveLength(90)
    const expected = Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 10 === 5 || i % 2 === 0)
    expect(s.order).toEqual(expected)
  })

  it('worker threads and other processes patching one index keep every entry', async () => {
    const p = file()
    const children = [0, 1].map((c) => node('interop-patcher.cjs', [p, '40', `proc${c}`]))
    const script = `
      const { workerData, parentPort } = require('node:worker_threads')
      const { patchJson } = require(${JSON.stringify(join(ROOT, 'index.js'))})
      Promise.all(Array.from({ length: 30 }, (_, i) =>
        patchJson(workerData.p, [{ op: 'add', path: '/entries/' + workerData.tag + '-' + i, value: i }], { default: { entries: {} } })
      )).then(() => parentPort.postMessage('done'), (e) => parentPort.postMessage(String(e)))`
    const workers = [0, 1].map(
      (w) =>
        new Promise((resolve) => {
          const worker = new Worker(script, { eval: true, workerData: { p, tag: `w${w}` } })
          worker.once('message', (m) => {
            resolve(m)
            void worker.terminate()
          })
        }),
    )
    expect(await Promise.all(workers)).toEqual(['done', 'done'])
    for (const c of children) expect((await c.exited).code).toBe(0)
    const keys = Object.keys(((await readJson(p)) as { entries: object }).entries)
    expect(keys).toHaveLength(140)
  })
})

describe('one batch across the worker threads of a process', () => {
  type Result = { list: string[]; outcomes: (string[] | 'exited')[] }
  const hasStrace = spawnSync('strace', ['-V']).status === 0

  async function workers(mode: string, traceTo?: string): Promise<Result> {
    const p = file('workers')
    const fixture = join(ROOT, '__test__', 'fixtures', 'worker-batch.cjs')
    const args = [fixture, p, '4', '10', mode]
    const child = traceTo
      ? run('strace', ['-f', '-qq', '-o', traceTo, '-e', 'trace=rename,renameat,renameat2', process.execPath, ...args])
      : run(process.execPath, args)
    const line = await child.line('RESULT')
    expect((await child.exited).code).toBe(0)
    return JSON.parse(line.slice('RESULT '.length))
  }

  /** Each worker's entries, in the order the file holds them. */
  const byWorker = (list: string[], w: number) => list.filter((e) => e.startsWith(`${w}:`))
  const inOrder = (w: number, n: number) => Array.from({ length: n }, (_, i) => `${w}:${i}`)

  it.skipIf(!hasStrace)(
    'calls from 4 workers waiting for one lock are written once, each worker’s in its order (needs strace)',
    async () => {
      const trace = join(tempDir('trace'), 'renames')
      const { list, outcomes } = await workers('batch', trace)
      expect(outcomes).toEqual(Array.from({ length: 4 }, () => Array(10).fill('ok')))
      expect(list).toHaveLength(40)
      for (let w = 0; w < 4; w++) expect(byWorker(list, w)).toEqual(inOrder(w, 10))
      // One write: the first worker's batch carried the other workers' calls.
      const renames = text(trace)
        .split('\n')
        .filter((l) => /^\d+\s+rename/.test(l) && l.includes('index.json'))
      expect(renames).toHaveLength(1)
    },
  )

  it('a call riding with another worker’s batch keeps its own timeout, and is not applied once timed out', async () => {
    const { list, outcomes } = await workers('timeout')
    expect(outcomes[0]).toEqual(Array(10).fill('ok'))
    for (const o of outcomes.slice(1)) expect(o).toEqual(Array(10).fill('ELOCKTIMEOUT'))
    expect(list).toEqual(inOrder(0, 10))
  })

  it('calls riding with a worker that is terminated are queued by their own threads, and kept', async () => {
    const { list, outcomes } = await workers('terminate')
    expect(outcomes[0]).toBe('exited')
    for (const o of outcomes.slice(1)) expect(o).toEqual(Array(10).fill('ok'))
    for (let w = 1; w < 4; w++) expect(byWorker(list, w)).toEqual(inOrder(w, 10))
  })
})

describe('what the second break-it review found', () => {
  async function riderOrder(mode: string): Promise<string[]> {
    const p = file('rider-order')
    const child = node('rider-order.cjs', [p, mode])
    const line = await child.line('RESULT')
    expect((await child.exited).code).toBe(0)
    return JSON.parse(line.slice('RESULT '.length))
  }

  it('a worker’s later call never overtakes its call riding with another worker’s batch', async () => {
    // w1-3 joined w1's own older batch, queued before w0's, which w1-2 rode.
    expect(await riderOrder('local-after-ride')).toEqual(['w1-1', 'w0', 'w1-2', 'w1-3'])
  })

  it('a batch whose own calls all time out still runs for the calls riding with it, in their place', async () => {
    expect(await riderOrder('owner-timeout')).toEqual(['A', 'B'])
  })

  it('a batch whose worker is terminated still runs for the calls riding with it, in their place', async () => {
    expect(await riderOrder('owner-terminate')).toEqual(['A', 'B'])
  })

  it('a riding call whose worker ended or whose timeout passed is not applied', async () => {
    expect(await riderOrder('rider-ends')).toEqual(['w0', 'plain'])
  })

  it('copying the root into its own deepest array cannot nest past the limit (was: SIGSEGV)', async () => {
    const p = file()
    writeFileSync(p, '{"entries":{}}\n')
    const script = `
      const { patchJson } = require(${JSON.stringify(join(ROOT, 'index.js'))})
      let deep = []
      for (let i = 1; i < 2000; i++) deep = [deep]
      const ops = [{ op: 'replace', path: '', value: deep }]
      let depth = 2000
      for (let k = 0; k < 8; k++) {
        ops.push({ op: 'copy', from: '', path: '/0'.repeat(depth - 1) + '/-' })
        depth *= 2
      }
      patchJson(process.argv[1], ops).then(
        () => console.log('OUT resolved'),
        (e) => console.log('OUT ' + e.name + ' ' + e.code + ' ' + e.index + ' ' + e.op))`
    const child = run(process.execPath, ['-e', script, p])
    const out = await child.line('OUT')
    expect((await child.exited).code).toBe(0)
    // The first copy that would pass 100,000 levels fails; none of the call's operations applies.
    expect(out).toBe('OUT PatchError EPATCH 6 copy')
    expect(text(p)).toBe('{"entries":{}}\n')
  })

  it('a value added at the bottom of a file near the limit is refused when the sum passes it', async () => {
    const p = file()
    const depth = 99_990
    writeFileSync(p, `${'['.repeat(depth)}${']'.repeat(depth)}\n`)
    const before = text(p)
    let value: unknown = 1
    for (let i = 0; i < 300; i++) value = [value]
    const bottom = '/0'.repeat(depth - 1)
    const e = await rejection(patchJson(p, [{ op: 'add', path: `${bottom}/-`, value }]))
    expect(e).toBeInstanceOf(PatchError)
    expect(e.message).toMatch(/nest 100290 levels deep, more than the 100000/)
    expect(text(p)).toBe(before)
    // Up to the limit itself is fine.
    await patchJson(p, [{ op: 'add', path: `${bottom}/-`, value: [] }])
    expect(text(p).length).toBe(before.length + 2)
  })

  it('a document nested past the limit is a RangeError (ERR_OUT_OF_RANGE), as Node’s own', () => {
    const p = file()
    writeFileSync(p, `${'['.repeat(100_001)}${']'.repeat(100_001)}`)
    const e = thrownSync(() => patchJsonSync(p, [{ op: 'test', path: '', value: [] }]))
    expect(e).toBeInstanceOf(RangeError)
    expect(e.code).toBe('ERR_OUT_OF_RANGE')
  })

  it('a pointer with a lone surrogate is refused also when it comes from toJSON', async () => {
    const p = file()
    await writeJson(p, { a: 1 })
    const before = text(p)
    const path = { toJSON: () => '/\udc00x' } as unknown as string
    const e = await rejection(patchJson(p, [{ op: 'add', path, value: 1 }]))
    expect(e).toBeInstanceOf(TypeError)
    expect((e as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE')
    expect(e.message).toMatch(/lone surrogate/)
    expect(text(p)).toBe(before)
  })
})

describe('what the third break-it review found', () => {
  it('terminating a worker whose batch holds its granted lock hands the lock on, and nothing hangs', async () => {
    const dir = tempDir('granted')
    const child = node('terminate-granted.cjs', [dir])
    await child.line('main: other file done')
    const { code } = await child.exited
    expect(code).toBe(0)
    expect(child.stdout()).toContain('B: b done')
    expect(child.stdout()).toMatch(/A terminated after \d+ ms/)
    expect(JSON.parse(text(join(dir, 'p.json')))).toEqual({ log: ['b'] })
  })

  it('a sync wait in a thread whose patchJson holds its lock natively is refused (ELOCKDEADLOCK), not a deadlock', async () => {
    const dir = tempDir('sync-after-patch')
    const p = join(dir, 'p.json')
    const q = join(dir, 'q.json')
    await writeJson(p, {})
    const holder = node('proc-hold.cjs', [q])
    await holder.line('HELD')
    try {
      // The lock of p is free: the batch takes it at once, held natively until it has run.
      const pending = patchJson(p, [{ op: 'add', path: '/a', value: 1 }])
      const e = thrownSync(() => withIndexLockSync(q, () => {}, { timeoutMs: 5000 }))
      expect(e.code).toBe('ELOCKDEADLOCK')
      await pending
      expect(await readJson(p)).toEqual({ a: 1 })
    } finally {
      holder.child.kill('SIGTERM')
      await holder.exited
    }
  })
})

describe('mergeJson applies RFC 7396 natively', () => {
  it('the RFC’s examples', async () => {
    const cases: [unknown, unknown, unknown][] = [
      [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
      [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
      [{ a: 'b' }, { a: null }, {}],
      [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
      [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
      [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
      [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
      [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
      [
        ['a', 'b'],
        ['c', 'd'],
        ['c', 'd'],
      ],
      [{ a: 'b' }, ['c'], ['c']],
      [{ a: 'foo' }, null, null],
      [{ a: 'foo' }, 'bar', 'bar'],
      [{ e: null }, { a: 1 }, { e: null, a: 1 }],
      [[1, 2], { a: 'b', c: null }, { a: 'b' }],
      [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
    ]
    for (const [target, patch, result] of cases) {
      const p = file('merge')
      await writeJson(p, target)
      await mergeJson(p, patch)
      expect(await readJson(p), JSON.stringify([target, patch])).toEqual(result)
    }
  })
})

describe('sync twins and readJson({ pointer })', () => {
  it('patchJsonSync and mergeJsonSync', () => {
    const p = file()
    patchJsonSync(p, [{ op: 'add', path: '/a', value: [1] }], { default: {} })
    mergeJsonSync(p, { b: 2 })
    expect(readJsonSync(p)).toEqual({ a: [1], b: 2 })
    const err = thrownSync(() => patchJsonSync(p, [{ op: 'remove', path: '/zz' }]))
    expect(err).toBeInstanceOf(PatchError)
    expect(readJsonSync(p, { pointer: '/a/0' })).toBe(1)
  })

  it('pointer: the value, undefined or the default where nothing is, ENOENT for no file', async () => {
    const p = file()
    await writeJson(p, { entries: { a: { t: 'x' } }, '': 0 })
    expect(await readJson(p, { pointer: '/entries/a' })).toEqual({ t: 'x' })
    expect(await readJson(p, { pointer: '' })).toEqual({ entries: { a: { t: 'x' } }, '': 0 })
    expect(await readJson(p, { pointer: '/' })).toBe(0)
    expect(await readJson(p, { pointer: '/entries/b' })).toBeUndefined()
    expect(await readJson(p, { pointer: '/entries/b', default: null })).toBeNull()
    const missing = file()
    expect((await rejection(readJson(missing, { pointer: '/a' }))).code).toBe('ENOENT')
    expect(await readJson(missing, { pointer: '/a', default: 7 })).toBe(7)
  })
})

describe('what the break-it review found', () => {
  it('a file holding only a BOM (and whitespace) is blank: the default, as readJson reads it', async () => {
    for (const content of ['\uFEFF', '\uFEFF\n', '\uFEFF  \r\n']) {
      const p = file()
      writeFileSync(p, content)
      expect(await readJson(p, { pointer: '/a', default: 5 })).toBe(5)
      await patchJson(p, [{ op: 'add', path: '/x', value: 1 }], { default: { d: 1 } })
      expect(text(p)).toBe('{"d":1,"x":1}\n')
      writeFileSync(p, content)
      await mergeJson(p, { x: 1 }, { default: { d: 1 } })
      expect(text(p)).toBe('{"d":1,"x":1}\n')
    }
  })

  it('a pointer with a lone surrogate is refused (TypeError), never matched to another key', async () => {
    const p = file()
    await writeJson(p, { '\ud800': 'lone', '\ufffd': 'replacement', '\ufffd\ufffd\ufffd': 'three' })
    const before = text(p)
    for (const call of [
      () => patchJson(p, [{ op: 'remove', path: '/\ud800' }]),
      () => patchJson(p, [{ op: 'add', path: '/\udc00', value: 1 }]),
      () => patchJson(p, [{ op: 'move', from: '/\ud800', path: '/x' }]),
      () => readJson(p, { pointer: '/\ud800' }),
    ]) {
      const e = await rejection(call())
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE')
    }
    expect(text(p)).toBe(before)
    // Merge patches address keys as JSON text, lone surrogates included.
    await mergeJson(p, { '\ud800': null })
    expect(await readJson(p)).toEqual({ '\ufffd': 'replacement', '\ufffd\ufffd\ufffd': 'three' })
  })

  it('a value nested 60,000 deep from a worker with a big stack is parsed on the engine thread', async () => {
    const p = file()
    const script = `
      const { workerData, parentPort } = require('node:worker_threads')
      const { patchJson } = require(${JSON.stringify(join(ROOT, 'index.js'))})
      let v = 1
      for (let i = 0; i < 60000; i++) v = [v]
      patchJson(workerData, [{ op: 'add', path: '/deep', value: v }], { default: {} }).then(
        () => parentPort.postMessage('ok'), (e) => parentPort.postMessage(String(e && e.code)))`
    const outcome = await new Promise((resolve, reject) => {
      const w = new Worker(script, { eval: true, workerData: p, resourceLimits: { stackSizeMb: 64 } })
      w.once('message', resolve)
      w.once('error', reject)
      w.once('exit', (code) => reject(new Error(`worker exited ${code}`)))
    })
    expect(outcome).toBe('ok')
    expect(text(p).length).toBe(120_011)
  })

  it.skipIf(spawnSync('prlimit', ['--version']).status !== 0)(
    'engine threads that cannot be started fail the call cleanly (EAGAIN), never the process (needs prlimit)',
    async () => {
      const dir = tempDir('patch')
      const p = join(dir, 'index.json')
      const go = join(dir, 'go')
      const child = node('engine-limit.cjs', [p, go])
      const vm = Number((await child.line('READY')).split(' ')[1])
      // 48 MiB above what the process has mapped: room for V8 and the library, none for one
      // engine thread's 64 MiB stack reservation.
      const limit = run('prlimit', ['--pid', String(child.child.pid), `--as=${(vm + 48 * 1024) * 1024}`])
      expect((await limit.exited).code).toBe(0)
      writeFileSync(go, '')
      const out = await child.line('OUT')
      expect(out).toMatch(/^OUT E[A-Z]+:pthread_create \| E[A-Z]+:pthread_create \| \{"warm":1\}$/)
      expect((await child.exited).code).toBe(0)
    },
  )
})
