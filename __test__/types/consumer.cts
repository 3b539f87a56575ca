// A strict CommonJS consumer: `require('index-lock')` typed through the same index.d.ts.
import lock = require('index-lock')

export async function consume(path: string): Promise<void> {
  await using held = await lock.acquire(path)
  const same: string = held.path
  const v: { n: number } = await lock.updateJson(path, (c: { n: number }) => ({ n: c.n + 1 }), {
    default: { n: 0 },
  })
  await lock.withIndexLock(path, () => same + v.n)
}
