#!/usr/bin/env node
'use strict'
// The index-lock command: run a command under a data file's lock (flock(1) with the library's
// protocol and messages), show the state of a lock and its data file (the library's inspect()),
// remove orphaned temp files. Only Node's stdlib and the library's public API.

const path = require('node:path')
const { spawn } = require('node:child_process')
const { signals } = require('node:os').constants

const EXIT = {
  OK: 0,
  ERROR: 1, // also `status`: the lock is held
  HELD: 1,
  PROBLEM: 2,
  USAGE: 64, // EX_USAGE
  TIMEOUT: 75, // EX_TEMPFAIL: the lock was busy; trying later may work
  CANNOT_EXECUTE: 126, // as shells, env(1) and timeout(1) report it
  NOT_FOUND: 127,
}

// The command runs in index-lock's process group, so what a terminal sends to its foreground
// group (Ctrl-C, Ctrl-\) reaches the command directly. Passing SIGINT on as well would be a
// second Ctrl-C, which many tools take as "force quit, skip the clean shutdown". Neither these
// nor SIGHUP may kill index-lock while the command runs: the lock would be gone while the
// command (which may survive them, like a JVM printing a thread dump on SIGQUIT) still works.
//
// Passed on: what is typically sent to index-lock alone (kill <pid>, a supervisor), which the
// command would otherwise never see. SIGHUP from a terminal hangup also reaches the group, so the
// command may get it twice; programs do not count hangups the way they count Ctrl-C.
const FORWARDED = ['SIGTERM', 'SIGHUP']
// Not passed on, even when sent to index-lock's pid alone: a process cannot tell that apart from
// the terminal's delivery to the group (Node exposes no siginfo, and a kill(2) of the group looks
// the same as one of the pid anyway), and a doubled Ctrl-C is the worse mistake. To interrupt
// the command through index-lock, send SIGTERM; or signal the command or the group directly.
const TERMINAL = ['SIGINT', 'SIGQUIT']

const HELP = {
  main: `Usage: index-lock <command> [options]

Commands:
  run <path> [--shared] [--timeout <time>] -- <command> [args...]
                 run a command while holding the lock of the data file <path>
  status <path> [--json]
                 who holds the lock, whether the data parses, leftover temp files, filesystem
  sweep <path>   remove temp files left behind by writers that died mid-save
  help [<command>]

Options:
  -h, --help     show help (also: index-lock <command> --help)
  --version      print the version

<path> is the data file (e.g. data/index.json); the lock is flock(2) on its <path>.lock sidecar,
the same lock withIndexLock, updateJson and the other library calls take.

Exit codes:
  0         success; status: the lock is free and nothing is wrong
  1         an error (e.g. a missing directory), message on stderr; status: the lock is held
  2         status: a problem (corrupt data, orphaned temp files, unsafe filesystem, a directory
            or symlink at <path>.lock, an error); the JSON report names it
  64        usage error (unknown command or option, missing argument)
  75        run: the lock was not free within --timeout
  126, 127  run: the command could not be executed / was not found
  128+n     run: the command was killed by signal n
  run otherwise exits with the command's own status.
`,

  run: `Usage: index-lock run <path> [--shared] [--timeout <time>] -- <command> [args...]

Takes the lock of the data file <path> (exclusive unless --shared), runs <command> with stdin,
stdout and stderr inherited, and releases the lock when the command exits. The '--' is required:
it keeps the command and its options apart from index-lock's. Works wherever the library does
(no flock(1) needed).

Options:
  --shared          take the lock shared (for readers): other shared holders run alongside,
                    exclusive ones wait
  --timeout <time>  how long to wait for the lock: 500ms, 10s, 2m, 1h; a bare number is seconds
                    (as flock -w); 0 tries once; inf waits forever. Default 30s (the library's)
  -h, --help        show this help

Exit status:
  the command's own; 128+n if signal n killed it
  75   the lock was not free in time (the message names the path and the pids holding it)
  126  the command could not be executed; 127 it was not found
  64   usage error; 1 other errors (e.g. the directory of <path> does not exist)

Signals: the command runs in index-lock's process group, so a terminal's Ctrl-C (SIGINT) and
Ctrl-\\ (SIGQUIT) reach it directly, once; index-lock does not pass them on again (many tools
take a second Ctrl-C as "force quit"). SIGTERM and SIGHUP sent to index-lock (kill <pid>) are
passed on to the command. SIGINT and SIGQUIT sent to index-lock's pid alone are not: a process
cannot tell them from the terminal's; send SIGTERM instead, or signal the command directly.
index-lock survives all four and keeps the lock until the command exits. While it still waits
for the lock, any of them ends the wait (exit 128+n) and the command never runs.

The lock belongs to index-lock, not to the command: it is released when the command exits, even
if the command left background processes running (unlike flock(1), whose lock the command's
children inherit). If index-lock itself is killed with SIGKILL, the lock goes at once although
the command may still run. The command must not take the same lock itself (directly, or through
a tool using this library): it would wait for index-lock, which waits for it.

Example:
  index-lock run data/index.json --timeout 10s -- sh -c 'jq ".n += 1" data/index.json > t && mv t data/index.json'
`,

  status: `Usage: index-lock status <path> [--json]

Shows, for the data file <path>: whether its lock is held, by which pids (with their command
lines) and in which mode; whether the file parses as JSON (missing, empty, ok, corrupt);
temp files beside it (orphaned ones, which 'index-lock sweep' removes, and ones live writers are
writing now); the filesystem and whether flock is coherent there. It changes nothing and takes
no lock where the OS tells who holds one without it. Holders are read from /proc/locks: only
processes on this host are listed. Where that cannot show them (a container's own pid namespace,
a network, cluster or FUSE filesystem) a shared lock tried for a few microseconds still sees an
exclusive holder (pid unknown); shared holders do not show there.

Options:
  --json      print one JSON object instead (fields below)
  -h, --help  show this help

Exit status: 0 the lock is free, 1 it is held, 2 a problem (corrupt data, orphaned temp files,
an unsafe filesystem, a directory or symlink at <path>.lock, or an error such as a missing
directory); 2 wins over 1. 64 usage error. A directory or symlink at <path>.lock (e.g. a
leftover proper-lockfile lock) shows as lock "unusable", not held: the library refuses it
(EISDIR, ELOOP), so nobody can take the lock until it is removed.

JSON fields (stable; sections that could not be determined are null):
  path        the path as given
  resolved    the canonical data file path (the lock file is <resolved>.lock, or for a name
              over 250 bytes <first 200 bytes>.<16 hex digits of its SHA-256>.lock)
  lock        { held: boolean, mode: "exclusive" | "shared" | null,
                holders: [{ pid, mode, cmdline: string | null }] }
  data        { state: "missing" | "empty" | "ok" | "corrupt" | "error", message: string | null }
  tempFiles   { orphaned: [TempFile], live: [TempFile] }
              TempFile = { name, pid, alive: boolean, ageMs }: alive = its writer holds its
              flock (a save is under way); pid = the one in its name, in the writer's namespace
  filesystem  { fstype, mountPoint: string | null, coherence: "local" | "distributed" | "unsafe",
                reason }
  problems    [string]: what makes the exit status 2, in words
  error       { code, message } when <path> could not be resolved at all, else null
  exitCode    0 | 1 | 2, as above
`,

  sweep: `Usage: index-lock sweep <path>

Removes the temp files of the data file <path> left by writers that died mid-save: those whose
flock no writer holds (writers lock their temp file until the rename; the kernel frees the lock
when a writer dies, in any container or pid namespace). A live writer's temp file is never
removed, so no lock is needed. Prints each name removed, or "nothing to remove", and on stderr
each file that could not be removed and why. (The library's next exclusive holder of the path
does the same on its own.)

Exit status: 0 done, 1 an error (a file that could not be removed, a missing directory), 64 usage
error.
`,
}

class UsageError extends Error {
  constructor(message, command) {
    super(message)
    this.command = command
  }
}

// The public package only, loaded on first use, so --help and --version work even where the
// addon does not load (and where it does not, the package's own message says what to install).
let lib
const library = () => (lib ??= require(path.join(__dirname, '..')))

// ---------------------------------------------------------------------------------------------
// Arguments

const isHelp = (arg) => arg === '-h' || arg === '--help'

/**
 * Parses a command's own arguments: options as in `spec` (name -> 'flag' | 'value', also
 * `--name=value`) anywhere, and at most `max` positionals; `tooMany` says what an extra one means.
 */
function parseArgs(command, args, spec, max, tooMany) {
  const options = {}
  const positionals = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith('-') || arg === '-') {
      if (positionals.length === max) throw new UsageError(tooMany(arg, positionals), command)
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined
    if (kind === undefined) throw new UsageError(`unknown option '${name}' for '${command}'`, command)
    if (kind === 'flag') {
      if (eq !== -1) throw new UsageError(`option '${name}' takes no value`, command)
      options[name] = true
    } else {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1)
      if (value === undefined) throw new UsageError(`option '${name}' needs a value`, command)
      options[name] = value
    }
  }
  return { options, positionals }
}

/** The one <path> argument of `command`. */
function onePath(command, positionals) {
  if (positionals.length === 0) throw new UsageError(`'${command}' needs the data file's <path>`, command)
  return positionals[0]
}

const extraArgument = (arg) => `unexpected argument '${arg}'`

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `--timeout` in ms: 500ms, 10s, 2m, 1h, a bare number of seconds, 0, or inf. */
function parseTimeout(text) {
  if (/^inf(inity)?$/i.test(text)) return Infinity
  const m = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/.exec(text)
  if (!m) throw new UsageError(`invalid --timeout '${text}' (use e.g. 500ms, 10s, 2m, 0 or inf)`, 'run')
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's'])
}

// ---------------------------------------------------------------------------------------------
// run

async function runCommand(args) {
  const dashes = args.indexOf('--')
  const own = dashes === -1 ? args : args.slice(0, dashes)
  const command = dashes === -1 ? [] : args.slice(dashes + 1)
  if (own.some(isHelp)) return help('run')
  const { options, positionals } = parseArgs(
    'run',
    own,
    { '--shared': 'flag', '--timeout': 'value' },
    1,
    (arg, [file]) =>
      dashes === -1
        ? `put '--' before the command: index-lock run ${file} [options] -- ${arg} ...`
        : `unexpected argument '${arg}' (the command goes after '--')`,
  )
  const file = onePath('run', positionals)
  if (command.length === 0) {
    throw new UsageError(dashes === -1 ? "missing '-- <command>' to run" : "missing the command after '--'", 'run')
  }
  const mode = options['--shared'] ? 'shared' : 'exclusive'
  const timeoutMs = options['--timeout'] === undefined ? undefined : parseTimeout(options['--timeout'])

  // Until the command starts, a signal ends the wait for the lock. From then on index-lock
  // survives all four and keeps the lock until the command exits; SIGTERM and SIGHUP are passed
  // on, SIGINT and SIGQUIT already reached the command (see TERMINAL).
  const waiting = new AbortController()
  let child = null
  let caught = null
  const onSignal = (signal) => {
    if (!child) {
      caught ??= signal
      waiting.abort()
    } else if (FORWARDED.includes(signal)) {
      child.kill(signal)
    }
  }
  for (const signal of [...FORWARDED, ...TERMINAL]) process.on(signal, onSignal)

  let lock
  try {
    lock = await library().acquire(file, { mode, timeoutMs, signal: waiting.signal })
  } catch (err) {
    if (caught && err.code === 'ABORT_ERR') return 128 + signals[caught]
    throw err
  }
  try {
    // A signal that came while the grant was on its way.
    if (caught) return 128 + signals[caught]
    return await new Promise((resolve) => {
      child = spawn(command[0], command.slice(1), { stdio: 'inherit' })
      child.once('error', (err) => {
        // Nothing ran (spawn failed); the codes a shell uses.
        const why = { ENOENT: 'command not found', EACCES: 'permission denied' }[err.code] ?? err.message
        console.error(`index-lock: ${command[0]}: ${why}`)
        resolve(err.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.CANNOT_EXECUTE)
      })
      child.once('exit', (code, signal) => resolve(code ?? 128 + signals[signal]))
    })
  } finally {
    await lock.release()
  }
}

// ---------------------------------------------------------------------------------------------
// status: the library's inspect(), formatted

/** The report `status --json` prints: inspect()'s fields as documented in the help, and exitCode. */
function statusReport(report) {
  const { path: given, resolved, lock, data, tempFiles, filesystem, problems, error } = report
  return {
    path: given,
    resolved,
    lock: lock && { held: lock.held, mode: lock.mode, holders: lock.holders },
    data,
    tempFiles,
    filesystem,
    problems,
    error,
    exitCode: problems.length > 0 ? EXIT.PROBLEM : lock.held ? EXIT.HELD : EXIT.OK,
  }
}

const seconds = (ms) => `${Math.round(ms / 1000)} s old`

/** inspect()'s report as a few lines, labels aligned. */
function describe(report) {
  const lines = []
  const line = (label, text) => lines.push(`${label.padEnd(12)}${text}`)
  line('file', report.resolved ?? report.path)
  if (report.lock) {
    const { held, mode, holders, unusable } = report.lock
    line('lock', unusable ? `unusable: the lock file is a ${unusable}` : held ? `held (${mode})` : 'free')
    for (const h of holders) {
      line(
        'holder',
        `pid ${h.pid ?? '?'} (${h.mode}): ${h.cmdline ?? (h.pid ? 'command line unknown' : 'pid unknown')}`,
      )
    }
  }
  if (report.data)
    line('data', report.data.message ? `${report.data.state}: ${report.data.message}` : report.data.state)
  if (report.tempFiles) {
    const { orphaned, live } = report.tempFiles
    const counts = [orphaned.length && `${orphaned.length} orphaned`, live.length && `${live.length} being written`]
    line('temp files', counts.filter(Boolean).join(', ') || 'none')
    // Liveness is the writer's flock on its temp file, exact across pid namespaces and hosts; the
    // pid in the name is its writer's in its own namespace, shown only as a hint.
    for (const t of orphaned)
      line('orphaned', `${t.name} (unlocked: its writer is gone; pid ${t.pid}, ${seconds(t.ageMs)})`)
    for (const t of live) line('writing', `${t.name} (locked by its writer, pid ${t.pid}, ${seconds(t.ageMs)})`)
  }
  if (report.filesystem) {
    const { fstype, mountPoint, coherence, reason } = report.filesystem
    const note = coherence === 'distributed' ? '; holders on other hosts are not listed' : ''
    line('filesystem', `${fstype}${mountPoint ? ` at ${mountPoint}` : ''}: ${coherence} (${reason})${note}`)
  }
  for (const p of report.problems) if (!report.error) line('problem', p)
  return lines.join('\n')
}

function statusCommand(args) {
  if (args.some(isHelp)) return help('status')
  const { options, positionals } = parseArgs('status', args, { '--json': 'flag' }, 1, extraArgument)
  const file = onePath('status', positionals)
  const report = library().inspect(file)
  const json = statusReport(report)
  if (report.error) console.error(`index-lock: ${report.error.message}`)
  if (options['--json']) console.log(JSON.stringify(json, null, 2))
  else if (!report.error) console.log(describe(report))
  return json.exitCode
}

// ---------------------------------------------------------------------------------------------
// sweep

async function sweepCommand(args) {
  if (args.some(isHelp)) return help('sweep')
  const { positionals } = parseArgs('sweep', args, {}, 1, extraArgument)
  const lib = library()
  let removed
  let failed = []
  try {
    removed = await lib.sweep(onePath('sweep', positionals))
  } catch (err) {
    if (!(err instanceof lib.SweepError)) throw err
    ;({ removed } = err)
    failed = err.errors
  }
  for (const name of removed) console.log(`removed ${name}`)
  if (removed.length === 0 && failed.length === 0) console.log('nothing to remove')
  // Each file left behind, with the reason: a sweep that removed nothing must not look clean.
  for (const e of failed) console.error(`index-lock: cannot remove ${path.basename(e.path)}: ${e.message}`)
  return failed.length ? EXIT.ERROR : EXIT.OK
}

// ---------------------------------------------------------------------------------------------

function help(topic) {
  process.stdout.write(HELP[topic])
  return EXIT.OK
}

const COMMANDS = { run: runCommand, status: statusCommand, sweep: sweepCommand }

async function main(argv) {
  const [first, ...rest] = argv
  if (first === undefined) throw new UsageError('missing command')
  if (isHelp(first)) return help('main')
  if (first === '--version') {
    console.log(require(path.join(__dirname, '..', 'package.json')).version)
    return EXIT.OK
  }
  if (first === 'help') {
    if (rest.length === 0) return help('main')
    if (!Object.hasOwn(COMMANDS, rest[0])) throw new UsageError(`unknown command '${rest[0]}'`)
    return help(rest[0])
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}'`)
  if (!Object.hasOwn(COMMANDS, first)) throw new UsageError(`unknown command '${first}'`)
  return COMMANDS[first](rest)
}

main(process.argv.slice(2)).then(
  (code) => {
    // exitCode rather than exit(): output to a pipe is written in full before the process ends.
    process.exitCode = code
  },
  (err) => {
    if (err instanceof UsageError) {
      const more = err.command ? `index-lock ${err.command} --help` : 'index-lock --help'
      console.error(`index-lock: ${err.message}\nTry '${more}' for more information.`)
      process.exitCode = EXIT.USAGE
    } else {
      console.error(`index-lock: ${err?.message ?? err}`)
      process.exitCode = err?.code === 'ELOCKTIMEOUT' ? EXIT.TIMEOUT : EXIT.ERROR
    }
  },
)
