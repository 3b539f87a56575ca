#!/usr/bin/env node
'use strict'
// Checks the code blocks of README.md and docs/*.md as written, so that no sample can rot:
// ```ts blocks are type-checked by tsc --strict as ES modules (.mts; `<!-- docs-check: cjs -->`
// before a block makes it CommonJS, .cts), ```js blocks are run by node (ESM when they use
// `import`, else CommonJS), ```sh blocks are run by bash. Each runs in a fresh directory of its
// own where 'index-lock' resolves to this checkout. A block preceded by
// `<!-- docs-check: skip <reason> -->` is not checked (its reason is printed); blocks in other
// languages (python, text, json) are left alone. Prints one line per block and then
// `N passed, N failed`; exits 1 if any failed.
// usage: check-docs.js [file.md ...]   (default: README.md and docs/*.md)

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const CHECKED = new Set(['ts', 'js', 'sh'])
const BLOCK_TIMEOUT_MS = 60_000

/** The fenced code blocks of `file`: `{ file, line, lang, code, directive }`. */
function blocksOf(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const blocks = []
  let directive = null
  for (let i = 0; i < lines.length; i++) {
    const d = /^<!-- docs-check: (\w+)(?: (.*?))? -->\s*$/.exec(lines[i])
    if (d) {
      directive = { kind: d[1], reason: d[2] ?? '' }
      continue
    }
    const open = /^```(\w*)\s*$/.exec(lines[i])
    if (!open) {
      if (lines[i].trim() !== '') directive = null
      continue
    }
    const start = i + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
    blocks.push({ file, line: start, lang: open[1], code: lines.slice(start, end).join('\n'), directive })
    directive = null
    i = end
  }
  return blocks
}

/** A fresh directory where `import 'index-lock'` (and @types/node) resolve to this checkout. */
function sandbox() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'index-lock-docs-'))
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'index-lock'), 'dir')
  fs.symlinkSync(
    path.join(ROOT, 'node_modules', '@types', 'node'),
    path.join(dir, 'node_modules', '@types', 'node'),
    'dir',
  )
  // The CLI as `npx index-lock` (and plain `index-lock` in sh blocks, with .bin on PATH) finds it.
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'))
  fs.symlinkSync(path.join(ROOT, 'bin', 'index-lock.js'), path.join(dir, 'node_modules', '.bin', 'index-lock'))
  return dir
}

function where(b) {
  return `${path.relative(ROOT, b.file)}:${b.line} (${b.lang})`
}

/** Type-checks every ts block in one tsc run; returns the failures by block. */
function checkTypes(blocks) {
  if (blocks.length === 0) return new Map()
  const dir = sandbox()
  const names = blocks.map((b, i) => `block${i}.${b.directive?.kind === 'cjs' ? 'cts' : 'mts'}`)
  blocks.forEach((b, i) => {
    // An empty export keeps each block its own module (no clashes between blocks' names).
    fs.writeFileSync(path.join(dir, names[i]), `${b.code}\nexport {}\n`)
  })
  const tsconfig = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      lib: ['es2022', 'esnext.disposable'],
      types: ['node'],
      skipLibCheck: false,
    },
    files: names,
  }
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc')
  const r = spawnSync(tsc, ['-p', dir, '--pretty', 'false'], { cwd: dir, encoding: 'utf8' })
  const failures = new Map()
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) {
    const m = /^block(\d+)\.[mc]ts\((\d+),(\d+)\): (.*)$/.exec(line.trim())
    if (!m) continue
    const b = blocks[Number(m[1])]
    const list = failures.get(b) ?? []
    list.push(`line ${b.line + Number(m[2]) - 1}: ${m[4]}`)
    failures.set(b, list)
  }
  if (r.status !== 0 && failures.size === 0) failures.set(blocks[0], [`tsc failed: ${r.stdout}${r.stderr}`])
  fs.rmSync(dir, { recursive: true, force: true })
  return failures
}

/** Runs a js or sh block in a sandbox of its own; returns an error text or null. */
function run(b) {
  const dir = sandbox()
  try {
    let cmd
    let args
    if (b.lang === 'sh') {
      fs.writeFileSync(path.join(dir, 'block.sh'), `set -euo pipefail\n${b.code}\n`)
      cmd = 'bash'
      args = ['block.sh']
    } else {
      const esm = /^\s*import\s/m.test(b.code) || /\bawait\b/.test(b.code.replace(/async[\s\S]*/, ''))
      const name = esm ? 'block.mjs' : 'block.cjs'
      fs.writeFileSync(path.join(dir, name), b.code)
      cmd = process.execPath
      args = [name]
    }
    const env = {
      ...process.env,
      PATH: `${path.join(dir, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
    }
    const r = spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', timeout: BLOCK_TIMEOUT_MS })
    if (r.error) return String(r.error)
    if (r.status !== 0) {
      const out = (r.stderr || r.stdout).split('\n').filter((l) => l.trim() && !/^\s+at /.test(l))
      return `exit ${r.status ?? r.signal}: ${out.slice(0, 6).join('\n  ')}`
    }
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function main() {
  const given = process.argv.slice(2)
  const docs = path.join(ROOT, 'docs')
  const files = given.length
    ? given.map((f) => path.resolve(f))
    : [
        path.join(ROOT, 'README.md'),
        ...(fs.existsSync(docs)
          ? fs
              .readdirSync(docs)
              .filter((f) => f.endsWith('.md'))
              .sort()
              .map((f) => path.join(docs, f))
          : []),
      ]
  const blocks = files.flatMap(blocksOf).filter((b) => CHECKED.has(b.lang))
  let passed = 0
  let failed = 0
  const checked = []
  for (const b of blocks) {
    if (b.directive?.kind === 'skip') {
      if (!b.directive.reason) {
        console.log(`FAIL ${where(b)}: a skipped block must say why`)
        failed++
      } else {
        console.log(`skip ${where(b)}: ${b.directive.reason}`)
      }
      continue
    }
    checked.push(b)
  }
  const typeFailures = checkTypes(checked.filter((b) => b.lang === 'ts'))
  for (const b of checked) {
    const error = b.lang === 'ts' ? typeFailures.get(b)?.join('\n  ') : run(b)
    if (error) {
      failed++
      console.log(`FAIL ${where(b)}\n  ${error}`)
    } else {
      passed++
      console.log(`ok   ${where(b)}`)
    }
  }
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main()
