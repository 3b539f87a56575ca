'use strict'
// readJson(path, { pointer }): the value at an RFC 6901 pointer, found by the native engine on
// the threadpool, so that reading one entry of a big index builds no JS object of the whole file.

const { native, callNative, fromNative } = require('./native')
const { CorruptFileError, invalidArgType, invalidArgValue, notFound } = require('./errors')

function checkPointer(pointer) {
  if (typeof pointer !== 'string') throw invalidArgType('options.pointer', 'of type string', pointer)
  // The native engine matches keys as UTF-8: a lone surrogate cannot be told from others.
  if (!pointer.isWellFormed()) {
    throw invalidArgValue(
      'options.pointer',
      pointer,
      'must not contain a lone surrogate (read the whole file for such a key)',
    )
  }
  callNative(() => native.checkPointer(pointer))
}

/** What a read found, as readJson returns it: the value, else the default, else the error. */
function foundValue(path, found, { hasDefault, fallback }) {
  if (found.state === 'value') return JSON.parse(found.text)
  if (hasDefault) return fallback()
  if (found.state === 'absent') return undefined
  throw found.state === 'missing' ? notFound(path) : new CorruptFileError(path, 'the file is empty')
}

async function readPointer(path, pointer, read) {
  checkPointer(pointer)
  let found
  try {
    found = await native.readPointer(path, pointer)
  } catch (err) {
    throw fromNative(err)
  }
  return foundValue(path, found, read)
}

function readPointerSync(path, pointer, read) {
  checkPointer(pointer)
  let found
  try {
    found = native.readPointerSync(path, pointer)
  } catch (err) {
    throw fromNative(err)
  }
  return foundValue(path, found, read)
}

module.exports = { readPointer, readPointerSync, checkPointer }
