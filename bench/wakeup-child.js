'use strict'
// The event-loop half of the floor of bench/run.js's hand-over (section 3): how long an idle
// event loop takes to run a callback that another thread of the process asked for. index-lock's
// waiter pays this once per hand-over: its flock thread returns and wakes the idle main loop
// (a napi threadsafe function, uv_async_send underneath, as a MessagePort's post is).
//
// A worker thread waits `holdMs` (the main thread has nothing to do meanwhile and sleeps in
// epoll), takes process.hrtime.bigint() and posts it; the main thread's handler takes its own
// time first: one wake-up. Only then does the main thread ask for the next, so every post finds
// it idle. Prints one JSON line: { latenciesUs }.
//
// argv: <wake-ups> <holdMs>

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')

// Not counted: the first posts also pay for the worker's start and the handlers' first runs.
const WARM_UP = 10

if (isMainThread) {
  const [rounds, holdMs] = process.argv.slice(2).map(Number)
  const worker = new Worker(__filename, { workerData: { holdMs } })
  const latenciesUs = []
  let seen = 0
  worker.on('message', (ns) => {
    const now = process.hrtime.bigint()
    if (++seen > WARM_UP) latenciesUs.push(Number(now - BigInt(ns)) / 1e3)
    if (latenciesUs.length < rounds) worker.postMessage('next')
    else {
      // Exit once the result line is out: a pipe write can still be queued, and exit drops it.
      process.stdout.write(`${JSON.stringify({ latenciesUs })}\n`, () => process.exit(0))
    }
  })
  worker.on('error', (err) => {
    console.error(err)
    process.exit(1)
  })
} else {
  const post = () => setTimeout(() => parentPort.postMessage(String(process.hrtime.bigint())), workerData.holdMs)
  parentPort.on('message', post)
  post()
}
