#!/usr/bin/env node
'use strict'
// `prepublishOnly` (run in the package root): writes the root package.json's
// optionalDependencies, one `index-lock-<platform>` per `napi.targets` entry at the root's
// version, after checking that npm/<platform>/package.json names that package at that version.
//
// The repository's package.json lists none: npm leaves packages that are not published (and
// other platforms' packages) out of package-lock.json, and `npm ci` then refuses the lock file
// as out of sync. `npm publish` runs this before packing and re-reads the manifest afterwards,
// so the published package still lists all of them. `napi pre-publish` writes the same map, so
// running both is harmless. Leave the result uncommitted.

const fs = require('node:fs')
const path = require('node:path')
// napi-rs's own triple parser: the same <platform> names `napi create-npm-dirs` and the loader use.
const { parseTriple } = require('@napi-rs/cli')

const root = process.cwd()
const manifestPath = path.join(root, 'package.json')
const pkg = JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
const packageName = pkg.napi?.packageName ?? pkg.name
const targets = pkg.napi?.targets ?? []

const problems = []
if (targets.length === 0) problems.push('package.json has no napi.targets')
const wanted = {}
for (const triple of targets) {
  const platform = parseTriple(triple).platformArchABI
  const name = `${packageName}-${platform}`
  const file = path.join('npm', platform, 'package.json')
  let platformPkg
  try {
    platformPkg = JSON.parse(fs.readFileSync(path.join(root, file), 'utf8'))
  } catch (err) {
    problems.push(`${file} (for ${triple}): ${err.message}; run 'npx napi create-npm-dirs'`)
    continue
  }
  if (platformPkg.name !== name) problems.push(`${file} names '${platformPkg.name}', not '${name}' (for ${triple})`)
  if (platformPkg.version !== pkg.version) {
    problems.push(
      `${file}: ${name} is at ${platformPkg.version}, ${pkg.name} at ${pkg.version}; run 'npx napi version'`,
    )
  }
  wanted[name] = pkg.version
}
if (problems.length > 0) {
  console.error(`platform-dependencies: not publishing ${pkg.name}@${pkg.version}:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}

// Entries for targets no longer configured go; other optional dependencies stay.
const kept = Object.entries(pkg.optionalDependencies ?? {}).filter(([name]) => !name.startsWith(`${packageName}-`))
pkg.optionalDependencies = { ...Object.fromEntries(kept), ...wanted }
fs.writeFileSync(manifestPath, `${JSON.stringify(pkg, null, 2)}\n`)
console.log(`platform-dependencies: ${Object.keys(wanted).length} optionalDependencies at ${pkg.version}`)
