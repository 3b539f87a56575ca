'use strict'
// One child process of the platform suite (suite.cjs). Talks only through files, because under
// wine a Node child's stdout/stderr pipes fail (EBADF). argv: role, then the role's arguments.
const fs = require('node:fs')
const il = require('../../index.js')

const [role, ...args] = process.argv.slice(2)

async function main() {
  if (role === 'update') {
    // update <index> <n> <doneFile>: n increments of one counter, each its own read-modify-write.
    const [file, n, done] = args
    let failures = 0
    for (let i = 0; i < Number(n); i++) {
      try {
        await il.updateJson(
          file,
          (s) => {
            s.count += 1
          },
          { default: { count: 0 }, timeoutMs: 120_000 },
        )
      } catch (err) {
        failures++
        fs.appendFileSync(`${done}.errors`, `${err.code} ${err.message}\n`)
      }
    }
    fs.writeFileSync(done, JSON.stringify({ failures }))
  } else if (role === 'set-rounds') {
    // set-rounds <doneFile> <n> <path>...: n rounds of taking the paths as one set, holding them a
    // moment (the other process then wants them too), as given (any order, any spelling).
    const [done, n, ...paths] = args
    const failures = []
    for (let i = 0; i < Number(n); i++) {
      try {
        await il.withIndexLock(paths, () => new Promise((r) => setTimeout(r, 5)), { timeoutMs: 10_000 })
      } catch (err) {
        failures.push(err.code)
      }
    }
    fs.writeFileSync(done, JSON.stringify({ failures }))
  } else if (role === 'hold') {
    // hold <index> <mode> <readyFile>: holds the lock until killed.
    const [file, mode, ready] = args
    const handle = await il.acquire(file, { mode, timeoutMs: 60_000 })
    fs.writeFileSync(ready, String(process.pid))
    setInterval(() => {}, 1 << 30)
    globalThis.keep = handle
  } else if (role === 'read') {
    // read <index> <stopFile> <countFile>: keeps reading the index with Node's own fs until told
    // to stop, as an editor, a backup tool or a second program would.
    const [file, stop, count] = args
    let reads = 0
    while (!fs.existsSync(stop)) {
      try {
        JSON.parse(await fs.promises.readFile(file, 'utf8'))
        if (reads++ === 0) fs.writeFileSync(`${count}.started`, '')
      } catch (err) {
        if (err.code !== 'ENOENT') throw err
      }
    }
    fs.writeFileSync(count, String(reads))
  } else if (role === 'read-slowly') {
    // read-slowly <index> <stopFile> <countFile>: opens the index, keeps it open for a while
    // (a slow reader, a backup tool, a scanner), reads it, closes it, again and again.
    const [file, stop, count] = args
    let reads = 0
    while (!fs.existsSync(stop)) {
      let fd
      try {
        fd = fs.openSync(file, 'r')
      } catch (err) {
        if (err.code === 'ENOENT') continue
        throw err
      }
      await new Promise((r) => setTimeout(r, 150))
      JSON.parse(fs.readFileSync(fd, 'utf8'))
      fs.closeSync(fd)
      if (reads++ === 0) fs.writeFileSync(`${count}.started`, '')
      await new Promise((r) => setTimeout(r, 5))
    }
    fs.writeFileSync(count, String(reads))
  } else if (role === 'keep-open') {
    // keep-open <index> <readyFile>: opens the index and keeps it open until killed.
    const [file, ready] = args
    globalThis.fd = fs.openSync(file, 'r')
    fs.writeFileSync(ready, String(process.pid))
    setInterval(() => {}, 1 << 30)
  } else {
    throw new Error(`unknown role ${role}`)
  }
}

main().catch((err) => {
  fs.writeFileSync(`${process.argv[process.argv.length - 1]}.crash`, String(err && err.stack))
  process.exit(1)
})
