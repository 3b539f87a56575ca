// Plain CommonJS, no TypeScript: what `require('index-lock')` gives a JS user.
const lib = require('index-lock')
const pkg = require('index-lock/package.json')
console.log(
  JSON.stringify({
    resolved: require.resolve('index-lock'),
    version: pkg.version,
    exports: Object.keys(lib).sort(),
    types: Object.fromEntries(Object.entries(lib).map(([k, v]) => [k, typeof v])),
  }),
)
