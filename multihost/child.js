'use strict'
// One role of the multi-host test, run as its own process (the "host" is whichever mount the path
// goes through). Prints progress lines and, at the end, one `RESULT {json}` line.
//
//   writer   <path> <tag> <n> <networkFs>   n sequential updateJson increments (+ one entry each)
//   hold     <path> <mode>                  acquire, print HELD, keep it until stdin closes
//   try      <path> <mode>                  tryAcquire once: { got }
//   wait     <path> <mode> <timeoutMs>      print WAITING, acquire (blocking): { acquiredAt } or
//                                           { code, holders } on timeout
//   atomic   <path> <ms> <items>            rewrite a big JSON with atomicWrite for <ms>
//   reader   <path> <ms>                    readJson in a loop for <ms>, classify every read
//   policy   <path> <networkFs>             withIndexLock once: warnings and error code seen
//   final    <path>                         readJson once: { count, entries, text }

const { join } = require('node:path')
const lib = require(join(__dirname, '..'))

const now = () => performance.timeOrigin + performance.now()
const out = (line) => process.stdout.write(`${line}\n`)
const result = (value) => out(`RESULT ${JSON.stringify(value)}`)

async function writer(path, tag, n, networkFs) {
  const errors = {}
  let done = 0
  const t0 = now()
  for (let k = 0; k < n; k++) {
    try {
      await lib.updateJson(
        path,
        (index) => {
          index.count += 1
          index.entries[`${tag}-${k}`] = k
        },
        { default: { count: 0, entries: {} }, networkFs, timeoutMs: 120000 },
      )
      done += 1
    } catch (err) {
      const code = err.code || err.name || 'Error'
      errors[code] = (errors[code] || 0) + 1
    }
  }
  result({ done, errors, ms: now() - t0 })
}

async function hold(path, mode) {
  const lock = await lib.acquire(path, { mode, timeoutMs: 10000, networkFs: 'allow' })
  out(`HELD ${now()}`)
  process.stdin.resume()
  await new Promise((res) => process.stdin.on('end', res).on('close', res))
  await lock.release()
  result({ released: true })
}

function tryOnce(path, mode) {
  const lock = lib.tryAcquire(path, { mode, networkFs: 'allow' })
  if (lock) lock.release()
  result({ got: lock !== null })
}

async function wait(path, mode, timeoutMs) {
  out('WAITING')
  try {
    const lock = await lib.acquire(path, { mode, timeoutMs, networkFs: 'allow' })
    const acquiredAt = now()
    out(`ACQUIRED ${acquiredAt}`)
    await lock.release()
    result({ acquiredAt })
  } catch (err) {
    result({ code: err.code, holders: err.holders })
  }
}

function bigIndex(version, items) {
  const list = []
  for (let i = 0; i < items; i++) list.push({ v: version, i, pad: 'x'.repeat(100) })
  return { version, n: items, items: list }
}

async function atomic(path, ms, items) {
  const errors = {}
  let writes = 0
  const end = now() + ms
  for (let v = 1; now() < end; v++) {
    try {
      await lib.atomicWrite(path, JSON.stringify(bigIndex(v, items)), { networkFs: 'allow' })
      writes += 1
    } catch (err) {
      errors[err.code || 'Error'] = (errors[err.code || 'Error'] || 0) + 1
    }
  }
  result({ writes, errors, bytes: JSON.stringify(bigIndex(1, items)).length })
}

async function reader(path, ms) {
  const r = { reads: 0, ok: 0, torn: 0, corrupt: 0, estale: 0, enoent: 0, other: {}, backwards: 0, versions: 0 }
  let last = 0
  const end = now() + ms
  while (now() < end) {
    r.reads += 1
    let index
    try {
      index = await lib.readJson(path)
    } catch (err) {
      if (err.code === 'ECORRUPT') r.corrupt += 1
      else if (err.code === 'ESTALE') r.estale += 1
      else if (err.code === 'ENOENT') r.enoent += 1
      else r.other[err.code || err.message] = (r.other[err.code || err.message] || 0) + 1
      continue
    }
    const whole =
      index &&
      Array.isArray(index.items) &&
      index.items.length === index.n &&
      index.items.every((it, i) => it.v === index.version && it.i === i)
    if (!whole) {
      r.torn += 1
      continue
    }
    r.ok += 1
    if (index.version < last) r.backwards += 1
    if (index.version !== last) r.versions += 1
    last = Math.max(last, index.version)
  }
  result(r)
}

async function policy(path, networkFs) {
  const warnings = []
  process.removeAllListeners('warning')
  process.on('warning', (w) => warnings.push(w.code || w.name))
  let error = null
  try {
    await lib.withIndexLock(path, () => {}, { networkFs })
  } catch (err) {
    error = err.code || err.message
  }
  await new Promise((res) => setImmediate(res)) // warnings are emitted on the next tick
  result({ warnings, error })
}

async function final(path) {
  let index
  for (let attempt = 0; ; attempt++) {
    try {
      index = await lib.readJson(path)
      break
    } catch (err) {
      // Only with client caching on (--default-caching) does a fresh reader meet ESTALE here.
      if (err.code !== 'ESTALE' || attempt >= 50) throw err
      await new Promise((res) => setTimeout(res, 100))
    }
  }
  result({ count: index.count, entries: Object.keys(index.entries).length, text: JSON.stringify(index) })
}

async function main() {
  const [role, path, a, b, c] = process.argv.slice(2)
  if (role === 'writer') return writer(path, a, Number(b), c)
  if (role === 'hold') return hold(path, a)
  if (role === 'try') return tryOnce(path, a)
  if (role === 'wait') return wait(path, a, Number(b))
  if (role === 'atomic') return atomic(path, Number(a), Number(b))
  if (role === 'reader') return reader(path, Number(a))
  if (role === 'policy') return policy(path, a)
  if (role === 'final') return final(path)
  throw new Error(`unknown role ${role}`)
}

main().catch((err) => {
  out(`RESULT ${JSON.stringify({ fatal: `${err.code || ''} ${err.message}` })}`)
  process.exitCode = 1
})
