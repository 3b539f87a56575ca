// An ES module consumer in a project that installed index-lock from the test registry
// (__test__/registry.spec.ts): named imports, concurrent updates, and where it all came from.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { readJson, updateJson } from 'index-lock'

const file = fileURLToPath(new URL('./esm-data.json', import.meta.url))
await Promise.all([1, 2, 3, 4, 5].map(() => updateJson(file, (c) => ({ n: c.n + 1 }), { default: { n: 0 } })))
const require = createRequire(import.meta.url)
console.log(
  JSON.stringify({
    resolved: fileURLToPath(import.meta.resolve('index-lock')),
    n: (await readJson(file)).n,
    binaries: Object.keys(require.cache).filter((f) => f.endsWith('.node')),
  }),
)
