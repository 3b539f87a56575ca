// Strict TypeScript (node16 resolution), ES module side: the installed package's "types"
// condition must give these exact types; the expected errors prove the types are not `any`.
import { LockTimeoutError, readJson, type UpdateJsonOptions, updateJson } from 'index-lock'

interface Counter {
  n: number
}

const options: UpdateJsonOptions<Counter> = { default: { n: 0 }, timeoutMs: 1000 }

export async function bump(path: string): Promise<number> {
  const next: Counter = await updateJson<Counter>(path, (c) => ({ n: c.n + 1 }), options)
  const read: Counter = await readJson<Counter>(path)
  return next.n + read.n
}

export function isTimeout(err: unknown): boolean {
  return err instanceof LockTimeoutError && err.code === 'ELOCKTIMEOUT'
}

// @ts-expect-error: the path is a string
void updateJson(42, () => {})
