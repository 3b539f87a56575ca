#!/usr/bin/env node
'use strict'
// `npm run build:targets [-- --quick] [triple...]`: cross-builds the addon for every target in
// package.json `napi.targets` (plus x86_64-pc-windows-gnu, the Windows code built with mingw so it
// can be tested under wine here), copies each binary into its npm/<platform>/ package (a test-only
// target, which has no package, into target/test-binaries/<platform>/) and prints its format as
// `file` sees it. x86_64-pc-windows-msvc cannot link without MSVC's libraries: it is
// type-checked and linted here (`cargo clippy --target`) and linked by .github/workflows/release.yml
// on a Windows runner. `--quick` builds without LTO (the `quick` profile) for the test runs.
//
// Tools (installed by scripts/platform-tools.sh): rustup targets, cargo-zigbuild + ziglang for
// macOS and musl, gcc-aarch64-linux-gnu for linux-arm64-gnu, gcc-mingw-w64-x86-64 and an import
// library of node.exe (LIBNODE_PATH) for windows-gnu.

const { spawnSync } = require('node:child_process')
const { copyFileSync, existsSync, mkdirSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
const pkg = require('../package.json')
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const profile = quick ? 'quick' : 'release'
const asked = args.filter((a) => !a.startsWith('--'))

/** napi-rs's platform name for a triple: the npm/<platform> directory and the binary's infix. */
function platformOf(triple) {
  const [arch, , os, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch]
  if (os === 'darwin') return `darwin-${cpu}`
  if (os === 'windows') return `win32-${cpu}-${abi}`
  return `linux-${cpu}-${abi}`
}

/** How to build one triple here: the cargo subcommand and environment. */
function recipe(triple) {
  const env = { ...process.env }
  if (triple === 'x86_64-pc-windows-msvc')
    return { lintOnly: 'needs MSVC libraries; linked by .github/workflows/release.yml' }
  if (triple.includes('apple-darwin')) return { cmd: 'zigbuild', env }
  if (triple.includes('musl')) {
    // A Node addon must be a dynamic library; musl targets link statically by default.
    env.RUSTFLAGS = `${env.RUSTFLAGS ?? ''} -C target-feature=-crt-static`.trim()
    return { cmd: 'zigbuild', env }
  }
  if (triple === 'aarch64-unknown-linux-gnu') {
    env.CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER = 'aarch64-linux-gnu-gcc'
    return { cmd: 'build', env }
  }
  if (triple === 'x86_64-pc-windows-gnu') {
    env.LIBNODE_PATH = env.LIBNODE_PATH ?? join(root, 'target', 'libnode')
    if (!existsSync(join(env.LIBNODE_PATH, 'libnode.dll.a'))) {
      return { missing: `no node.exe import library in ${env.LIBNODE_PATH} (run scripts/platform-tools.sh)` }
    }
    return { cmd: 'build', env }
  }
  return { cmd: 'build', env }
}

function libraryName(triple) {
  if (triple.includes('windows')) return 'index_lock.dll'
  if (triple.includes('darwin')) return 'libindex_lock.dylib'
  return 'libindex_lock.so'
}

const all = [...pkg.napi.targets, 'x86_64-pc-windows-gnu']
const triples = asked.length ? asked : all
let failed = 0
const rows = []
for (const triple of triples) {
  const platform = platformOf(triple)
  const r = recipe(triple)
  if (r.lintOnly || r.missing) {
    const res = spawnSync('cargo', ['clippy', '--release', '--target', triple, '--', '-D', 'warnings'], {
      cwd: root,
      stdio: 'inherit',
    })
    if (res.status !== 0) failed++
    rows.push(
      `${platform}: ${res.status === 0 ? 'clippy clean' : 'CLIPPY FAILED'}; not linked: ${r.lintOnly ?? r.missing}`,
    )
    continue
  }
  console.log(`\n=== ${triple} (${platform}): cargo ${r.cmd} --profile ${profile}`)
  const res = spawnSync('cargo', [r.cmd, '--profile', profile, '--target', triple], {
    cwd: root,
    env: r.env,
    stdio: 'inherit',
  })
  if (res.status !== 0) {
    failed++
    rows.push(`${platform}: BUILD FAILED`)
    continue
  }
  const built = join(root, 'target', triple, profile, libraryName(triple))
  const published = pkg.napi.targets.includes(triple)
  const dir = published ? join(root, 'npm', platform) : join(root, 'target', 'test-binaries', platform)
  mkdirSync(dir, { recursive: true })
  const dest = join(dir, `index-lock.${platform}.node`)
  copyFileSync(built, dest)
  const kind = spawnSync('file', ['-b', dest], { encoding: 'utf8' }).stdout?.trim() ?? '(file(1) missing)'
  rows.push(`${platform}: ${kind}`)
}
console.log(`\n${rows.join('\n')}`)
process.exit(failed ? 1 : 0)
