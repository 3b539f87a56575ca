// Strict TypeScript (node16 resolution), CommonJS side: `import = require()` of the installed
// package, typed through the same index.d.ts.
import lock = require('index-lock')

export function bumpSync(path: string): number {
  const next: { n: number } = lock.updateJsonSync(path, (c: { n: number }) => ({ n: c.n + 1 }), {
    default: { n: 0 },
  })
  const backend: 'linux' | 'generic-unix' | 'windows' = lock.backend()
  return next.n + backend.length
}

// @ts-expect-error: the mutator's result must be the document's type
lock.updateJsonSync<{ n: number }>('x.json', () => 'not a counter')
