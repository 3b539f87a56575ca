// Lock waits and writes visible in Node's conventions: diagnostics_channel tracing channels per
// async operation (start/end/asyncStart/asyncEnd/error with a context that carries the path(s),
// mode, time waited and held, batch size and bytes written), and NODE_DEBUG=index-lock lines for
// long waits naming the holder's pid.
import dc from 'node:diagnostics_channel'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

import { acquire, atomicWrite, mergeJson, patchJson, readJson, updateJson, withIndexLock, writeJson } from '../index.js'
import { HOLDERS_KNOWN, node, tempDir } from './helpers'

type Context = Record<string, unknown>

/** Collects the contexts `name`'s tracing channel publishes while `run` runs. */
async function collect(name: string, run: () => Promise<unknown>) {
  const seen: { event: string; context: Context }[] = []
  const channel = dc.tracingChannel(`index-lock:${name}`)
  const handlers = Object.fromEntries(
    ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((event) => [
      event,
      (context: Context) => seen.push({ event, context }),
    ]),
  ) as unknown as Parameters<typeof channel.subscribe>[0]
  channel.subscribe(handlers)
  try {
    await run()
  } finally {
    channel.unsubscribe(handlers)
  }
  return seen
}

describe('diagnostics_channel tracing channels', () => {
  it('withIndexLock: paths, mode, time waited for the lock and held', async () => {
    const p = join(tempDir('dc'), 'index.json')
    const held = await acquire(p)
    const seen = await collect('withIndexLock', async () => {
      const section = withIndexLock(p, () => sleep(30), { mode: 'exclusive' })
      await sleep(40)
      await held.release()
      await section
    })
    expect(seen.map((s) => s.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
    const context = seen[0]!.context
    expect(context.paths).toEqual([p])
    expect(context.mode).toBe('exclusive')
    expect(context.waitedMs).toBeGreaterThanOrEqual(35)
    expect(context.heldMs).toBeGreaterThanOrEqual(25)
  })

  it('updateJson: batch size, bytes written; error channel for a failing call', async () => {
    const p = join(tempDir('dc'), 'index.json')
    const held = await acquire(p)
    const seen = await collect('updateJson', async () => {
      const calls = [0, 1, 2].map((i) =>
        updateJson(p, (s: Record<string, number>) => ({ ...s, [`k${i}`]: i }), { default: {} }),
      )
      const failing = updateJson(p, () => {
        throw new Error('no')
      }).catch((e: Error) => e)
      await held.release()
      await Promise.all([...calls, failing])
    })
    const contexts = [...new Set(seen.map((s) => s.context))]
    expect(contexts).toHaveLength(4)
    for (const c of contexts.slice(0, 3)) {
      expect(c.path).toBe(p)
      expect(c.batchSize).toBe(4)
      expect(c.bytes).toBe(Buffer.byteLength(JSON.stringify({ k0: 0, k1: 1, k2: 2 }) + '\n'))
      expect(c.waitedMs).toBeGreaterThanOrEqual(0)
    }
    expect(seen.filter((s) => s.event === 'error').map((s) => (s.context.error as Error).message)).toEqual(['no'])
  })

  it('patchJson, mergeJson, writeJson, atomicWrite, readJson, acquire publish too', async () => {
    const p = join(tempDir('dc'), 'index.json')
    const names = ['writeJson', 'atomicWrite', 'patchJson', 'mergeJson', 'readJson', 'acquire']
    const all: Record<string, Context> = {}
    for (const name of names) {
      const seen = await collect(name, async () => {
        if (name === 'writeJson') await writeJson(p, { a: 1 })
        if (name === 'atomicWrite') await atomicWrite(p, '{"a":2}')
        if (name === 'patchJson') await patchJson(p, [{ op: 'add', path: '/b', value: 1 }])
        if (name === 'mergeJson') await mergeJson(p, { c: 1 })
        if (name === 'readJson') await readJson(p, { pointer: '/c' })
        if (name === 'acquire') await (await acquire(p, { mode: 'shared' })).release()
      })
      expect(
        seen.map((s) => s.event),
        name,
      ).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
      all[name] = seen[0]!.context
    }
    expect(all.writeJson).toMatchObject({ path: p, bytes: 8, fsync: true })
    expect(all.atomicWrite).toMatchObject({ path: p, bytes: 7 })
    expect(all.patchJson).toMatchObject({ path: p, mode: 'exclusive', batchSize: 1 })
    expect(all.mergeJson).toMatchObject({ path: p, batchSize: 1 })
    expect(all.readJson).toMatchObject({ path: p, pointer: '/c', result: 1 })
    expect(all.acquire).toMatchObject({ paths: [p], mode: 'shared' })
    expect(typeof all.acquire.waitedMs).toBe('number')
  })

  it('nothing is published or measured without subscribers', async () => {
    const p = join(tempDir('dc'), 'index.json')
    const channel = dc.tracingChannel('index-lock:updateJson')
    expect(channel.hasSubscribers).toBe(false)
    await updateJson(p, () => ({ a: 1 }), { default: {} })
    expect(await readJson(p)).toEqual({ a: 1 })
  })
})

describe('NODE_DEBUG=index-lock', () => {
  it.skipIf(!HOLDERS_KNOWN)(
    'a wait longer than INDEX_LOCK_DEBUG_WAIT_MS logs the holder’s pid (linux backend: elsewhere holders are unknown)',
    async () => {
      const p = join(tempDir('dc'), 'index.json')
      const holder = node('proc-hold.cjs', [p])
      await holder.line('HELD')
      const waiter = node('wait-exclusive.cjs', [p, '20000'], {
        NODE_DEBUG: 'index-lock',
        INDEX_LOCK_DEBUG_WAIT_MS: '50',
      })
      const line = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no debug line: ${waiter.stderr()}`)), 10_000)
        const check = setInterval(() => {
          const l = waiter
            .stderr()
            .split('\n')
            .find((x) => x.includes('INDEX-LOCK'))
          if (l) {
            clearInterval(check)
            clearTimeout(t)
            resolve(l)
          }
        }, 20)
      })
      expect(line).toContain(`waiting over 50 ms for the exclusive lock on '${p}'`)
      expect(line).toContain(`held by pid ${holder.child.pid}`)
      holder.child.kill('SIGTERM')
      await holder.exited
      await waiter.exited
    },
  )
})
