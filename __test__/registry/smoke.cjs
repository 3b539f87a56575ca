'use strict'
// Copied into a project that installed index-lock from the test registry (__test__/registry.spec.ts)
// and run there by a platform's own Node: this machine's, linux-arm64's under qemu-user,
// win32-x64's under wine. `require('index-lock')` as a user's CommonJS code does, a few updates
// through the native core, and which .node file was loaded. The result goes to the JSON file
// argv[2] (wine breaks a Node child's stdout pipe); a load failure is a result too.
const fs = require('node:fs')

const [out] = process.argv.slice(2)
const result = { platform: process.platform, arch: process.arch }

async function main() {
  const il = require('index-lock')
  const file = `${out}.data.json`
  il.updateJsonSync(file, (c) => ({ n: c.n + 1 }), { default: { n: 0 } })
  await Promise.all([1, 2, 3].map(() => il.updateJson(file, (c) => ({ n: c.n + 1 }))))
  result.n = il.readJsonSync(file).n
  result.backend = il.backend()
  result.resolved = require.resolve('index-lock')
  // Every .node file this process loaded: the addon, from the platform package npm installed.
  result.binaries = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
}

main()
  .catch((err) => {
    result.error = { message: err.message, code: err.code }
  })
  .finally(() => fs.writeFileSync(out, JSON.stringify(result)))
