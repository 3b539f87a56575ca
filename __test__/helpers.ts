// Shared test plumbing: temp directories that are removed afterwards, and child processes.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, realpathSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, expect } from 'vitest'

import { acquire } from '../index.js'

export const ROOT = resolve(__dirname, '..')
export const FIXTURES = join(__dirname, 'fixtures')

/** The addon's platform backend (src/sys). Only 'linux' can name lock holders (/proc/locks); the
 * 'generic-unix' backend (macOS; run here by scripts/generic-unix.js) and 'windows' report none. */
export const BACKEND: 'linux' | 'generic-unix' | 'windows' = (
  createRequire(import.meta.url)('../binding.js') as typeof import('../binding.js')
).backend()
export const HOLDERS_KNOWN = BACKEND === 'linux'

/** Whether inspect() tells who holds a lock without taking one here: /proc/locks (Linux), F_GETLK
 * (the generic backend on macOS and the BSDs). The generic backend built on Linux (F_GETLK cannot
 * see flocks there) and Windows try a shared lock instead, which sees an exclusive holder only. */
export const LOOK_TAKES_NO_LOCK = BACKEND === 'linux' || (BACKEND === 'generic-unix' && process.platform !== 'linux')

/** A holder list (LockTimeoutError.holders, lockHolders) names `pid` where the backend can tell
 * who holds a lock, and is empty where it cannot. */
export function expectHolder(holders: { pid: number | null }[], pid: number | undefined) {
  if (HOLDERS_KNOWN) expect(holders).toContainEqual({ pid })
  else expect(holders).toEqual([])
}

/** `expectHolder` for a list of pids. */
export function expectHolderPid(pids: (number | null)[], pid: number | undefined) {
  if (HOLDERS_KNOWN) expect(pids).toContain(pid)
  else expect(pids).toEqual([])
}

const made: string[] = []
const children = new Set<ChildProcess>()
// Children started in a process group of their own (`run(..., { group: true })`): the whole
// group is killed afterwards, so grandchildren (a shell's `sleep`, flock(1)'s command) go too.
const groups = new Set<number>()

afterEach(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {}
    }
  }
  children.clear()
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {}
  }
  groups.clear()
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** Resolves once `cond()` is true, checking every few ms; fails after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition') {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A fresh directory (symlinks resolved), removed after the test. */
export function tempDir(tag = 't'): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), `index-lock-${tag}-`)))
  made.push(dir)
  return dir
}

export interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first stdout line that contains `text`. */
  line: (text: string) => Promise<string>
}

export interface RunOptions {
  /** Start the child as the leader of a new process group, killed as a whole after the test. */
  group?: boolean
}

/** Starts a child process (killed after the test if still running) and collects its output. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, options: RunOptions = {}): Run {
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group === true,
  })
  children.add(child)
  if (options.group && child.pid) groups.add(child.pid)
  let out = ''
  let err = ''
  const waiters: { text: string; resolve: (l: string) => void }[] = []
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
    for (const w of waiters.slice()) {
      const l = out.split('\n').find((x) => x.includes(w.text))
      if (l !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(l)
      }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('close', (code, signal) => res({ code, signal })),
  )
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    line: (text) =>
      new Promise((res, rej) => {
        const l = out.split('\n').find((x) => x.includes(text))
        if (l !== undefined) return res(l)
        waiters.push({ text, resolve: res })
        exited.then(() => rej(new Error(`exited before printing '${text}': ${out}\n${err}`)))
      }),
  }
}

/** Runs a fixture script under node. */
export function node(fixture: string, args: string[] = [], env: Record<string, string> = {}): Run {
  return run(process.execPath, [join(FIXTURES, fixture), ...args], env)
}

/** `acquire(path, { timeoutMs })` as an outcome: 'acquired' (released again at once) or the error's code. */
export function acquireOutcome(path: string, timeoutMs: number): Promise<string> {
  return acquire(path, { timeoutMs }).then(
    async (h) => {
      await h.release()
      return 'acquired'
    },
    (err: { code: string }) => err.code,
  )
}

/** What a synchronous call throws; fails the test when it does not throw. */
export function thrownSync(f: () => unknown): Error & { code?: string; path?: string } {
  try {
    f()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

/** Resolves once `pid` waits for the lock of `sidecar`: a blocked flock (a "->" line of
 * /proc/locks) on Linux; elsewhere (no /proc/locks) the polling waiter's mark, the sidecar's
 * modification time moving past `since` (default: its time now). */
export async function waitingForLock(pid: number, sidecar: string, since?: bigint) {
  const from = since ?? statSync(sidecar, { bigint: true }).mtimeNs
  for (let i = 0; i < 500; i++) {
    if (HOLDERS_KNOWN) {
      const lines = readFileSync('/proc/locks', 'utf8').split('\n')
      if (lines.some((l) => l.includes('->') && l.split(/\s+/).includes(String(pid)))) return
    } else if (statSync(sidecar, { bigint: true }).mtimeNs !== from) {
      return
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`pid ${pid} never waited for the lock`)
}
