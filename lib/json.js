'use strict'
// JSON as the library reads and writes it: strict UTF-8, blank = empty, coded errors for corrupt
// files and for values JSON cannot hold, `default` copies, and `mutateOnce`, the one
// read-mutate-write step every update path (nested, sync, group commit) runs.

const { native } = require('./native')
const { CorruptFileError, codedError, invalidArgValue, notFound, received } = require('./errors')

/** A file state's `value` when the file is missing or blank (`absent` says which). */
const MISSING = Symbol('missing')

// Invalid UTF-8 is corrupt JSON: decoding it lossily would write U+FFFD back. Strips a BOM.
const utf8 = new TextDecoder('utf-8', { fatal: true })
// JSON's whitespace; a file of nothing else is empty (other Unicode spaces are corrupt JSON).
const BLANK = /^[ \t\n\r]*$/
// V8's own TypeErrors for what JSON cannot hold; any other error (a toJSON's or getter's own,
// TypeErrors included) passes as it is.
const UNSERIALIZABLE = /^(Do not know how to serialize a BigInt|Converting circular structure to JSON)/

/**
 * A `default` as it is at call time, and a fresh copy of it per use, so that no caller can
 * change what a later one gets and none is handed the caller's object: structuredClone (exact
 * for plain data, Dates, Maps, ...); where that fails (a function inside), a JSON round trip,
 * i.e. what the file would hold once written; where both fail (a function next to a BigInt, a
 * function itself), ERR_INVALID_ARG_VALUE.
 */
function copierOf(value) {
  // Primitives (a symbol too: a sentinel telling a missing file apart) cannot be shared mutably.
  const type = typeof value
  if (value === null || (type !== 'object' && type !== 'function')) return () => value
  let cloneError
  try {
    const snapshot = structuredClone(value)
    return () => structuredClone(snapshot)
  } catch (err) {
    cloneError = err
  }
  let text
  let jsonError
  try {
    text = JSON.stringify(value)
  } catch (err) {
    jsonError = err
  }
  if (text !== undefined) return () => JSON.parse(text)
  const why = jsonError ? String(jsonError.message).split('\n')[0] : 'JSON cannot hold it'
  const err = invalidArgValue(
    'options.default',
    value,
    `must be copyable by structuredClone (${String(cloneError?.message).split('\n')[0]}) or as JSON (${why})`,
  )
  err.cause = jsonError ?? cloneError
  throw err
}

/** A call's `default`, if any: `{ hasDefault, fallback }`, `fallback()` making a fresh copy per use. */
function readDefault(o) {
  // Read once: a getter on the options is not asked again while a batch runs.
  const value = o.default
  if (value === undefined) return { hasDefault: false, fallback: () => undefined }
  return { hasDefault: true, fallback: copierOf(value) }
}

function decode(path, bytes) {
  try {
    return utf8.decode(bytes)
  } catch (err) {
    if (err?.code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw err
    throw corruptError(path, bytes, 'invalid UTF-8')
  }
}

/** A CorruptFileError naming where `bytes` stop being valid (V8's messages do not always say). */
function corruptError(path, bytes, detail) {
  const at = native.jsonErrorPosition(bytes)
  if (!at) return new CorruptFileError(path, detail)
  return new CorruptFileError(path, `${at.reason} at line ${at.line} column ${at.column} (position ${at.offset})`, at)
}

/**
 * The state of a JSON file from its bytes (`null`: missing): `{ text, value, unshared }`, where
 * `text` is what the file holds, `value` is parsed (MISSING for a missing or blank file, with
 * `absent` saying which), and `unshared` holds while no caller has been given `value` itself.
 * Throws CorruptFileError for anything else that is not JSON.
 */
function fileState(path, bytes) {
  if (bytes === null) return { text: null, value: MISSING, absent: 'missing', unshared: false }
  const text = decode(path, bytes)
  if (BLANK.test(text)) return { text: null, value: MISSING, absent: 'empty', unshared: false }
  let value
  try {
    value = JSON.parse(text)
  } catch (err) {
    // Anything but a SyntaxError (out of memory, say) says nothing about the file.
    if (!(err instanceof SyntaxError)) throw err
    throw corruptError(path, bytes, err.message)
  }
  return { text, value, unshared: true }
}

/**
 * What a reader of `state` gets: its value (the parsed object itself the first time, a parsed
 * copy after that), else a copy of the call's default, else the error a missing or empty file is.
 */
function valueFor(path, state, { hasDefault, fallback }) {
  if (state.value === MISSING) {
    if (hasDefault) return fallback()
    throw state.absent === 'missing' ? notFound(path) : new CorruptFileError(path, 'the file is empty')
  }
  if (state.unshared) {
    state.unshared = false
    return state.value
  }
  return JSON.parse(state.text)
}

/** Parses the bytes of a JSON file (`null`: missing) the way every JSON reader here does. */
function parseJson(path, bytes, read) {
  return valueFor(path, fileState(path, bytes), read)
}

function serialize(value, space) {
  let text
  try {
    text = JSON.stringify(value, null, space)
  } catch (err) {
    if (err instanceof TypeError && err.code === undefined && UNSERIALIZABLE.test(err.message)) {
      const out = invalidArgValue('value', value, `must be serializable as JSON (${err.message.split('\n')[0]})`)
      out.cause = err
      throw out
    }
    // JSON.stringify recurses on the stack: about 4,000 levels with Node's default stack size
    // (JSON.parse reads any depth).
    if (err instanceof RangeError && err.code === undefined && /call stack/i.test(err.message)) {
      const out = codedError(
        RangeError,
        'ERR_INVALID_ARG_VALUE',
        `The argument 'value' is nested too deeply for JSON.stringify (${err.message}).${received(value)}`,
      )
      out.cause = err
      throw out
    }
    throw err
  }
  if (text === undefined) throw invalidArgValue('value', value, 'must be serializable as JSON')
  return `${text}\n`
}

function isThenable(value) {
  return (
    value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function'
  )
}

/** The state a mutator leaves: what it returned, or (returning undefined) its input as it changed it. */
function stateAfter(input, returned, space) {
  const value = returned === undefined ? input : returned
  return { text: serialize(value, space), value, unshared: false }
}

/**
 * One read-mutate-write step on `state`, short of the write: the mutator's input (see `valueFor`),
 * `run(input)` calling the mutator the way its path needs (in a mutator scope, in its caller's
 * async context), and the state it leaves, serialized. A promise when `run` returns a thenable,
 * unless `sync` (a synchronous update, whose `run` has refused promises already).
 */
function mutateOnce(path, state, read, space, run, sync = false) {
  const input = valueFor(path, state, read)
  const returned = run(input)
  if (!sync && isThenable(returned)) return Promise.resolve(returned).then((r) => stateAfter(input, r, space))
  return stateAfter(input, returned, space)
}

module.exports = { readDefault, parseJson, fileState, serialize, mutateOnce, isThenable }
