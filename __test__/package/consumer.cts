// A strict CommonJS consumer of the INSTALLED package: `require('index-lock')` typed through the
// same index.d.ts (the "types" condition serves both `import` and `require`).
import lock = require('index-lock')

export async function consume(path: string): Promise<number> {
  await using held = await lock.acquire(path, { mode: 'shared' })
  const same: string = held.path
  const v: { n: number } = await lock.updateJson(path, (c: { n: number }) => ({ n: c.n + 1 }), {
    default: { n: 0 },
  })
  const w: number = lock.withIndexLockSync([path, `${path}.b`], () => v.n)
  const err: Error = new Error('x')
  const isTimeout: boolean = err instanceof lock.LockTimeoutError || err instanceof lock.CorruptFileError
  const r: string = await lock.withIndexLock(path, () => same + v.n)
  return r.length + w + Number(isTimeout)
}
