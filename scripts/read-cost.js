#!/usr/bin/env node
'use strict'
// What one readJson of a small file costs next to fs.readFileSync + JSON.parse of it, measured
// side by side in one process (rounds alternate, medians compared): a ~20-byte and a ~50 KB file.
// Usage: node scripts/read-cost.js [rounds]

const fs = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { readJson } = require('..')

const ROUNDS = Number(process.argv[2] ?? 9)

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]
}

async function measure(path, calls) {
  await readJson(path)
  await readJson(path)
  const sync = []
  const lib = []
  for (let r = 0; r < ROUNDS; r++) {
    let t = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) JSON.parse(fs.readFileSync(path, 'utf8'))
    sync.push(Number(process.hrtime.bigint() - t) / calls / 1000)
    t = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) await readJson(path)
    lib.push(Number(process.hrtime.bigint() - t) / calls / 1000)
  }
  return { sync: median(sync), lib: median(lib) }
}

async function main() {
  const dir = fs.mkdtempSync(join(tmpdir(), 'index-lock-read-cost-'))
  try {
    const small = join(dir, 'small.json')
    fs.writeFileSync(small, '{"a":1,"b":[1,2,3]}\n')
    const entries = {}
    for (let i = 0; JSON.stringify(entries).length < 50_000; i++) {
      entries[`key${i}`] = { n: i, s: 'x'.repeat(20) }
    }
    const medium = join(dir, 'medium.json')
    fs.writeFileSync(medium, JSON.stringify(entries))
    for (const [path, calls] of [
      [small, 5000],
      [medium, 500],
    ]) {
      const { sync, lib } = await measure(path, calls)
      const size = fs.statSync(path).size
      console.log(
        `${String(size).padStart(6)} bytes: readFileSync+JSON.parse ${sync.toFixed(2)} us, ` +
          `readJson ${lib.toFixed(2)} us, ratio ${(lib / sync).toFixed(2)}`,
      )
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
