'use strict'
// JSON as the library reads and writes it: strict UTF-8, blank = empty, coded errors for corrupt
// files and for values JSON cannot hold, `default` copies, and `mutateOnce`, the one
// read-mutate-write step every update path (nested, sync, group commit) runs.

const { types } = require('node:util')
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
 * The state of a JSON file from its bytes (`null`: missing): `{ text, value, fresh }`, where
 * `text` is what the file holds, `value` is parsed (MISSING for a missing or blank file, with
 * `absent` saying which), and `fresh` is `value` until a reader takes it. Throws
 * CorruptFileError for anything else that is not JSON.
 */
function fileState(path, bytes) {
  if (bytes === null) return { text: null, value: MISSING, absent: 'missing' }
  const text = decode(path, bytes)
  if (BLANK.test(text)) return { text: null, value: MISSING, absent: 'empty' }
  let value
  try {
    value = JSON.parse(text)
  } catch (err) {
    // Anything but a SyntaxError (out of memory, say) says nothing about the file.
    if (!(err instanceof SyntaxError)) throw err
    throw corruptError(path, bytes, err.message)
  }
  return { text, value, fresh: value }
}

/**
 * What a reader of `state` gets: its `fresh` value the first time (an object nobody else holds),
 * a parsed copy of its text after that, else a copy of the call's default, else the error a
 * missing or empty file is.
 */
function valueFor(path, state, { hasDefault, fallback }) {
  if (state.value === MISSING) {
    if (hasDefault) return fallback()
    throw state.absent === 'missing' ? notFound(path) : new CorruptFileError(path, 'the file is empty')
  }
  const fresh = state.fresh
  if (fresh !== undefined) {
    state.fresh = undefined
    return fresh
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

/** Thrown inside `copyOf` when it meets anything but plain JSON data. */
const NOT_PLAIN = Symbol('not plain')
/**
 * Deepest nesting `jsonCopy` follows: far below where JSON.stringify overflows (about 4,000
 * levels), so what it copies can be serialized later. Deeper (or a cycle) takes the parse of its text.
 */
const COPY_DEPTH = 1000
// Taken once: code that replaces a built-in later must not run inside a copy.
const { defineProperty, getOwnPropertyDescriptor, getOwnPropertyNames, getPrototypeOf, hasOwn, keys } = Object
const { isArray } = Array
const { isBoxedPrimitive, isDate, isProxy } = types
const { apply, ownKeys } = Reflect
const OBJECT_PROTO = Object.prototype
const ARRAY_PROTO = Array.prototype
const DATE_PROTO = Date.prototype
// The Date built-ins JSON.stringify runs on a Date, as they are now; `dateJSON` is used only while
// they are still these and these are V8's own (not already replaced when this module loads).
const DATE_BUILTINS = ['toJSON', Symbol.toPrimitive, 'valueOf', 'toISOString'].map((key) => [key, DATE_PROTO[key]])
const DATES_NATIVE = DATE_BUILTINS.every(
  ([key, fn]) =>
    typeof fn === 'function' &&
    Function.prototype.toString.call(fn) ===
      `function ${typeof key === 'symbol' ? '[Symbol.toPrimitive]' : key}() { [native code] }`,
)
// JSON.rawJSON (not in Node 20) makes null-prototype objects JSON writes as their raw text.
const isRawJSON = JSON.isRawJSON ?? (() => false)

/**
 * `JSON.parse(JSON.stringify(value))` for plain JSON data, without the text (about half the
 * round trip's time on a 40 KB index): objects with Object.prototype or none, arrays without
 * holes, strings, numbers, booleans, null, Dates (see `dateJSON`). As JSON writes them, an
 * undefined member is dropped (in an array: null), a non-finite number becomes null and -0
 * becomes 0. Anything else (a toJSON, a class instance, a getter, a Proxy, a boxed primitive, a
 * function, a symbol, a BigInt, a hole, a cycle, deep nesting) gives NOT_PLAIN before any code
 * of the value's has run: only data properties of ordinary objects are read, so each getter and
 * toJSON runs once, in the value's own serialization (as alone), and the next mutator gets the
 * parse of that text instead.
 */
function jsonCopy(value) {
  // JSON.stringify calls an inherited toJSON on every object; an accessor or a read-only
  // property on a prototype would catch the assignments building the copy (JSON.parse defines
  // own properties instead).
  if (getPrototypeOf(ARRAY_PROTO) !== OBJECT_PROTO || 'toJSON' in ARRAY_PROTO) return NOT_PLAIN
  if (!plainPrototype(ARRAY_PROTO) || !plainPrototype(OBJECT_PROTO)) return NOT_PLAIN
  try {
    return copyOf(value, 0)
  } catch {
    // NOT_PLAIN, or this walk overflowed the stack: no code of the value's has run either way.
    return NOT_PLAIN
  }
}

/**
 * What JSON makes of a Date (the commonest value that is not plain data, so that a state holding
 * one is not walked in vain): its toJSON's result, computed here only while that would run
 * nothing but the built-ins (toJSON, Symbol.toPrimitive, valueOf, toISOString) as they were
 * when this module loaded, on a Date with no own properties.
 */
function dateJSON(d) {
  if (!DATES_NATIVE || getPrototypeOf(d) !== DATE_PROTO || ownKeys(d).length !== 0) throw NOT_PLAIN
  for (let i = 0; i < DATE_BUILTINS.length; i++) {
    const own = getOwnPropertyDescriptor(DATE_PROTO, DATE_BUILTINS[i][0])
    if (own === undefined || !hasOwn(own, 'value') || own.value !== DATE_BUILTINS[i][1]) throw NOT_PLAIN
  }
  // Date.prototype.toJSON: null for an invalid date (valueOf NaN), else toISOString().
  const time = apply(DATE_BUILTINS[2][1], d, [])
  return time - time === 0 ? apply(DATE_BUILTINS[3][1], d, []) : null
}

/** No accessor (but `__proto__`) and no read-only property on `proto`. */
function plainPrototype(proto) {
  const names = getOwnPropertyNames(proto)
  for (let i = 0; i < names.length; i++) {
    if (names[i] === '__proto__') continue
    const d = getOwnPropertyDescriptor(proto, names[i])
    if (!hasOwn(d, 'value') || !d.writable) return false
  }
  return true
}

function copyOf(v, depth) {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      // Finite (NaN and Infinity give NaN); + 0 turns -0 into 0.
      return v - v === 0 ? v + 0 : null
    case 'object':
      if (v === null) return null
      break
    default:
      throw NOT_PLAIN
  }
  // The Proxy test comes first: every later one would run its traps.
  if (depth > COPY_DEPTH || isProxy(v) || isBoxedPrimitive(v) || hasOwn(v, 'toJSON')) throw NOT_PLAIN
  if (isDate(v)) return dateJSON(v)
  const proto = getPrototypeOf(v)
  if (isArray(v)) {
    if (proto !== ARRAY_PROTO) throw NOT_PLAIN
    const out = []
    for (let i = 0; i < v.length; i++) {
      const d = getOwnPropertyDescriptor(v, i)
      // A hole reads through the prototype chain; a getter is code.
      if (d === undefined || !hasOwn(d, 'value')) throw NOT_PLAIN
      out[i] = d.value === undefined ? null : copyOf(d.value, depth + 1)
    }
    return out
  }
  if (proto !== OBJECT_PROTO && (proto !== null || isRawJSON(v))) throw NOT_PLAIN
  const out = {}
  // In the order JSON.stringify writes the keys (and JSON.parse adds them back).
  const names = keys(v)
  for (let i = 0; i < names.length; i++) {
    const key = names[i]
    const d = getOwnPropertyDescriptor(v, key)
    if (!hasOwn(d, 'value')) throw NOT_PLAIN
    if (d.value === undefined) continue
    const copy = copyOf(d.value, depth + 1)
    // JSON.parse makes '__proto__' an own key; assigning it would set the prototype instead.
    if (key === '__proto__') {
      defineProperty(out, key, { __proto__: null, value: copy, writable: true, enumerable: true, configurable: true })
    } else out[key] = copy
  }
  return out
}

/**
 * The state a mutator leaves: what it returned, or (returning undefined) its input as it changed
 * it, serialized now, as alone: its text is fixed before any other code runs (a later mutator
 * may change objects this value holds, or a global such as a toJSON), and it is also what fails
 * this call if JSON cannot hold the value. With `copy` (another mutator runs next), plain JSON
 * data is also copied for that mutator (`fresh`) instead of that mutator parsing the text.
 */
function stateAfter(input, returned, space, copy) {
  const value = returned === undefined ? input : returned
  const text = serialize(value, space)
  if (copy) {
    // Plain data runs no code of its own in `serialize`, so the copy equals that text's parse.
    const fresh = jsonCopy(value)
    if (fresh !== NOT_PLAIN) return { text, value, fresh }
  }
  return { text, value }
}

/**
 * One read-mutate-write step on `state`, short of the write: the mutator's input (see `valueFor`),
 * `run(input)` calling the mutator the way its path needs (in a mutator scope, in its caller's
 * async context), and the state it leaves, serialized (and with `copy`, copied for the next
 * mutator: see `stateAfter`). A promise when `run` returns a thenable, unless `sync` (a
 * synchronous update, whose `run` has refused promises already).
 */
function mutateOnce(path, state, read, space, run, sync = false, copy = false) {
  const input = valueFor(path, state, read)
  const returned = run(input)
  if (!sync && isThenable(returned)) return Promise.resolve(returned).then((r) => stateAfter(input, r, space, copy))
  return stateAfter(input, returned, space, copy)
}

module.exports = { readDefault, parseJson, fileState, serialize, mutateOnce, isThenable }
