// The ESM entry's types (index.mjs): the same declarations as index.d.ts, whose module object is
// also the default export (index.mjs exports CommonJS `module.exports` as its default).
export * from './index.js'
import lib from './index.js'
export default lib
