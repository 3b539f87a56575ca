'use strict'
// One writer process of the demo (forked by demo/relay.js): a relay worker running `agents` async
// agents at once; each registers `saves` trajectories through the example trajectory store
// (examples/trajectories), whose save() writes the trajectory file and then does
// load index.json -> add entry -> save index.json.
//
// argv[2] is a JSON object: { strategy: 'naive' | 'index-lock', baseDir, proc, agents, saves }.
// Protocol with the parent over IPC:
//   worker -> parent  { type: 'ready' }                           everything loaded, waiting
//   parent -> worker  'go'                                        all workers start together
//   worker -> parent  { type: 'done', errors: { CODE: count } }   then the worker exits

const path = require('node:path')

// The same FileStorage class twice: the hand-rolled original (load with readFile + JSON.parse,
// save with writeFile to a fixed index.json.tmp + rename) and the one whose private index
// internals use index-lock. Their public API is identical; only those internals differ.
const { FileStorage, NaiveFileStorage } = require(path.join(__dirname, '..', 'examples', 'trajectories', 'dist'))

const { strategy, baseDir, proc, agents, saves } = JSON.parse(process.argv[2])
const Storage = { naive: NaiveFileStorage, 'index-lock': FileStorage }[strategy]
if (!Storage) throw new Error(`unknown strategy '${strategy}'`)
const storage = new Storage(baseDir)

const errors = {}

// The stores report an index they could not parse (the naive one: a torn file from an interleaved
// write of the shared index.json.tmp) with console.error. Count those reads instead of printing a
// stack per occurrence.
console.error = () => {
  errors['unparsable index read'] = (errors['unparsable index read'] || 0) + 1
}

async function agent(a) {
  for (let s = 0; s < saves; s++) {
    // Unique per process/agent/save, so the parent knows exactly which ids must be in the index.
    const id = `p${proc}-a${a}-s${s}`
    try {
      await storage.save({
        id,
        title: `worker ${proc}, agent ${a}, task ${s}`,
        status: 'active',
        startedAt: new Date().toISOString(),
        pid: process.pid,
      })
    } catch (err) {
      // Counted, not fatal: the agent goes on with its next entry, as a real app would.
      const code = err.code || err.name || 'Error'
      errors[code] = (errors[code] || 0) + 1
    }
  }
}

process.once('message', async (msg) => {
  if (msg !== 'go') throw new Error(`unexpected message ${JSON.stringify(msg)}`)
  await Promise.all(Array.from({ length: agents }, (_, a) => agent(a)))
  // Exit only once the parent has the result (send's callback), then leave the IPC channel.
  // (If the parent is gone there is nobody to tell; just exit.)
  if (!process.connected) return
  process.send({ type: 'done', errors }, () => process.connected && process.disconnect())
})

process.send({ type: 'ready' })
