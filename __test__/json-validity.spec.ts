// What counts as valid JSON on disk, read and written: the `space` option, UTF-8, nesting depth,
// error positions (bytes, BOM included), fresh defaults, and values JSON cannot hold.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import {
  CorruptFileError,
  readJson,
  readJsonSync,
  updateJson,
  updateJsonSync,
  withIndexLock,
  writeJson,
  writeJsonSync,
} from '../index.js'
import { node, tempDir } from './helpers'

type Coded = Error & { code?: string }

async function failure(p: Promise<unknown> | (() => unknown)): Promise<Coded> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return err as Coded
  }
  throw new Error('expected a failure')
}

/** Every writer of a JSON value to `p`, each refusing (or throwing) the same way for the same value. */
function writers(p: string, value: unknown): (() => unknown)[] {
  return [
    () => writeJson(p, value),
    () => writeJsonSync(p, value),
    () => updateJson(p, () => value),
    () => updateJson(p, (c: Record<string, unknown>) => void (c.bad = value)),
    () => withIndexLock(p, () => updateJson(p, () => value)),
    () => updateJsonSync(p, () => value),
  ]
}

/** Every reader of a JSON file, each rejecting (or throwing) the same way for the same bytes. */
function readers(p: string): [string, () => Promise<unknown>][] {
  const change = (c: Record<string, unknown>) => void (c.changed = true)
  return [
    ['readJson', () => readJson(p, { default: {} })],
    ['readJsonSync', async () => readJsonSync(p, { default: {} })],
    ['updateJson', () => updateJson(p, change, { default: {} })],
    ['updateJson inside withIndexLock', () => withIndexLock(p, () => updateJson(p, change, { default: {} }))],
    ['updateJsonSync', async () => updateJsonSync(p, change, { default: {} })],
  ]
}

describe('the space option', () => {
  it('refuses what JSON.stringify would turn into invalid JSON, and writes nothing', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"a":1}\n')
    for (const space of ['--', '> ', 'x', '\u00a0', '\u2028', ' '.repeat(11), '\t'.repeat(12)]) {
      for (const call of [
        () => writeJson(p, { a: 2 }, { space }),
        () => writeJsonSync(p, { a: 2 }, { space }),
        () => updateJson(p, () => ({ a: 2 }), { space }),
        () => updateJsonSync(p, () => ({ a: 2 }), { space }),
      ]) {
        const err = await failure(call)
        expect(err, JSON.stringify(space)).toBeInstanceOf(TypeError)
        expect(err.code).toBe('ERR_INVALID_ARG_VALUE')
        expect(err.message).toContain('options.space')
      }
    }
    for (const space of [1.5, -1, 11, NaN]) {
      await expect(writeJson(p, {}, { space })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    }
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}\n')
  })

  it('accepts up to 10 JSON whitespace characters or 0-10 spaces, and what it writes parses', async () => {
    const p = join(tempDir(), 'index.json')
    const value = { a: [1, { b: 'x' }] }
    for (const space of ['', ' ', '\t', '\r\n', ' \t\n\r', ' '.repeat(10), 0, 4, 10]) {
      await writeJson(p, value, { space })
      expect(readFileSync(p, 'utf8')).toBe(`${JSON.stringify(value, null, space)}\n`)
      expect(await readJson(p)).toEqual(value)
      expect(await updateJson(p, (c: typeof value) => void c.a.push(2), { space })).toEqual({ a: [1, { b: 'x' }, 2] })
      expect(updateJsonSync(p, (c: typeof value) => void c.a.pop(), { space })).toEqual(value)
    }
  })

  it('two concurrent updateJson calls with a bad space reject and never crash the process', async () => {
    const dir = tempDir()
    const r = node('hostile-json.cjs', [join(dir, 'index.json')])
    const { code } = await r.exited
    expect(r.stderr()).toBe('')
    expect(r.stdout()).not.toContain('UNHANDLED')
    expect(code).toBe(0)
    const report = JSON.parse(r.stdout().trim().split('\n').pop()!)
    expect(report.space).toEqual(['ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_VALUE'])
    expect(report.bigint).toEqual(['ERR_INVALID_ARG_VALUE', 'ok'])
    expect(report.cyclic).toEqual(['ok', 'ERR_INVALID_ARG_VALUE', 'ok'])
    expect(report.thenGetter).toEqual(['then getter', 'ok'])
    expect(report.defaultGetter).toEqual(['ok', 'ok'])
    expect(report.toJSON).toEqual(['toJSON failed', 'ok'])
    expect(report.final).toEqual({ n: 6 })
  })
})

describe('UTF-8', () => {
  it('invalid UTF-8 is corrupt JSON for every reader, naming the byte, and the file is untouched', async () => {
    const p = join(tempDir(), 'index.json')
    const bytes = Buffer.concat([Buffer.from('{\n"name": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')])
    writeFileSync(p, bytes)
    for (const [name, read] of readers(p)) {
      const err = (await failure(read)) as CorruptFileError
      expect(err, name).toBeInstanceOf(CorruptFileError)
      expect(err.code).toBe('ECORRUPT')
      expect(err.position, name).toBe(bytes.indexOf(0xe9))
      expect(err.line).toBe(2)
      expect(err.column).toBe(bytes.indexOf(0xe9) - 1)
      expect(err.message).toMatch(/UTF-8/)
      expect(readFileSync(p).equals(bytes), name).toBe(true)
    }
  })

  it('valid multi-byte UTF-8 round-trips unchanged', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"name":"café ☃ 😀"}')
    expect(await readJson(p)).toEqual({ name: 'café ☃ 😀' })
    await updateJson(p, (c: { n?: number }) => void (c.n = 1))
    expect(readFileSync(p, 'utf8')).toBe('{"name":"café ☃ 😀","n":1}\n')
  })
})

describe('error positions', () => {
  it('count bytes from the start of the file, a BOM included', async () => {
    const p = join(tempDir(), 'index.json')
    const text = '\ufeff{\n  "é": 1,\n  "b": }\n'
    writeFileSync(p, text)
    const bytes = Buffer.from(text)
    for (const [name, read] of readers(p)) {
      const err = (await failure(read)) as CorruptFileError
      expect(err, name).toBeInstanceOf(CorruptFileError)
      expect(err.position, name).toBe(bytes.indexOf('}'))
      expect(err.line).toBe(3)
      expect(err.column).toBe(8)
      expect(err.message).toContain('line 3 column 8')
    }
    writeFileSync(p, '\ufeff{"a": }')
    await expect(readJson(p)).rejects.toMatchObject({ line: 1, column: 10, position: 9 })
    // A second BOM is not whitespace.
    writeFileSync(p, '\ufeff\ufeff{}')
    await expect(readJson(p)).rejects.toMatchObject({ code: 'ECORRUPT', line: 1, column: 4, position: 3 })
  })

  it('point at the error V8 rejects, for hand-picked and randomly broken documents', () => {
    const p = join(tempDir(), 'index.json')
    const cases = [
      '{"a": }',
      'trux',
      'tru',
      '[1,]',
      '01',
      '[01]',
      '-a',
      '1.',
      '1.e5',
      '"\\x"',
      '"\\u12G4"',
      '"\\u12"',
      '"abc',
      '"a\u0001"',
      '{"a" 1}',
      '{1:2}',
      '[1 2]',
      '1 2',
      'nulx',
      '{"a":1,}',
      '-',
      '1e',
      '1e+',
      '[',
      '{',
      '{"a"',
      '[1,2',
      '"ab\\',
      'fals',
      'Infinity',
      'NaN',
      '+1',
      '.5',
      '[1]]',
      '{"a":1}}',
      ' \u00a0',
      '\u00a0',
      '{"a":1 "b":2}',
      '"\t"',
      "'a'",
      '[-]',
      '[1e5x]',
      '{"a":[{"b":tru}]}',
      '{"\u00e9":1,"\u00e9"}',
    ]
    // Deterministic single-byte damage to a document with every kind of token.
    const doc = '{"a": [1, -2.5e+3, true, false, null, "s\\n\\u00e9"], "b": {"c": {}}, "d": []}'
    let seed = 42
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const junk = '{}[],:"\\-+.eE0123456789tfnaulrsx \t\n'
    for (let i = 0; i < 400; i++) {
      const at = rand(doc.length)
      const how = rand(3)
      const ch = junk[rand(junk.length)]
      cases.push(
        how === 0
          ? doc.slice(0, at)
          : how === 1
            ? doc.slice(0, at) + ch + doc.slice(at + 1)
            : doc.slice(0, at) + ch + doc.slice(at),
      )
    }
    let checked = 0
    for (const text of cases) {
      let message: string
      try {
        JSON.parse(text)
        continue
      } catch (err) {
        message = (err as Error).message
      }
      writeFileSync(p, text)
      let err: CorruptFileError | undefined
      try {
        readJsonSync(p)
      } catch (e) {
        err = e as CorruptFileError
      }
      const bytes = Buffer.from(text)
      if (text.trim() === '' && /^[ \t\n\r]*$/.test(text)) continue
      expect(err, text).toBeInstanceOf(CorruptFileError)
      const pos = err!.position!
      const at = /at position (\d+)/.exec(message)
      const token = /^Unexpected token '(.)'/u.exec(message) ?? /^"(.)/u.exec(message)
      if (at) expect(pos, `${text}: ${message}`).toBe(Buffer.byteLength(text.slice(0, Number(at[1]))))
      else if (/end of JSON input/.test(message)) expect(pos, `${text}: ${message}`).toBe(bytes.length)
      else if (token) expect(bytes.subarray(pos).toString().startsWith(token[1]), `${text}: ${message}`).toBe(true)
      else throw new Error(`unrecognised V8 message for ${text}: ${message}`)
      const lines = bytes.subarray(0, pos).toString('latin1').split('\n')
      expect(err!.line, text).toBe(lines.length)
      expect(err!.column, text).toBe(lines[lines.length - 1].length + 1)
      checked++
    }
    expect(checked).toBeGreaterThan(200)
  })

  it('JSON nested 10,000 deep reads like any other; deep damage is reported where it is', async () => {
    const p = join(tempDir(), 'index.json')
    const depth = 10_000
    writeFileSync(p, `${'['.repeat(depth)}1${']'.repeat(depth)}`)
    let v = (await readJson(p)) as unknown
    for (let i = 0; i < depth; i++) v = (v as unknown[])[0]
    expect(v).toBe(1)
    expect(readJsonSync(p)).toBeInstanceOf(Array)
    const text = `${'{"a":\n'.repeat(depth)}[1,]${'}'.repeat(depth)}`
    writeFileSync(p, text)
    for (const [name, read] of readers(p)) {
      const err = (await failure(read)) as CorruptFileError
      expect(err, name).toBeInstanceOf(CorruptFileError)
      expect(err.message).not.toMatch(/recursion/)
      expect({ line: err.line, column: err.column, position: err.position }).toEqual({
        line: depth + 1,
        column: 4,
        position: text.indexOf(']'),
      })
    }
    const unclosed = '['.repeat(200_000)
    writeFileSync(p, unclosed)
    await expect(readJson(p)).rejects.toMatchObject({ code: 'ECORRUPT', position: unclosed.length })
  })

  it('only JSON whitespace counts as an empty file', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, ' \t\r\n')
    await expect(readJson(p, { default: 1 })).resolves.toBe(1)
    writeFileSync(p, '\u00a0')
    await expect(readJson(p, { default: 1 })).rejects.toMatchObject({ code: 'ECORRUPT', position: 0 })
  })
})

describe('defaults', () => {
  it('readJson and readJsonSync return a fresh copy of the default each time', async () => {
    const dir = tempDir()
    const fallback = { entries: {} as Record<string, number>, list: [1] }
    const a = await readJson<typeof fallback>(join(dir, 'a.json'), { default: fallback })
    a.entries.x = 1
    a.list.push(2)
    const b = readJsonSync<typeof fallback>(join(dir, 'b.json'), { default: fallback })
    expect(b).toEqual({ entries: {}, list: [1] })
    expect(b).not.toBe(fallback)
    b.entries.y = 1
    writeFileSync(join(dir, 'empty.json'), '')
    const c = await readJson<typeof fallback>(join(dir, 'empty.json'), { default: fallback })
    expect(c).toEqual({ entries: {}, list: [1] })
    expect(c).not.toBe(fallback)
    expect(fallback).toEqual({ entries: {}, list: [1] })
  })

  it('a default structuredClone cannot copy is copied as JSON stores it, or refused at call time if JSON cannot either', async () => {
    const dir = tempDir()
    const missing = join(dir, 'missing.json')
    const existing = join(dir, 'existing.json')
    writeFileSync(existing, '{"n":1}')
    // A function inside: structuredClone fails, a JSON round trip does not (as the file would hold it).
    const jsonOnly = { entries: [] as string[], when: new Date(0), helper() {} }
    const asJson = { entries: [], when: '1970-01-01T00:00:00.000Z' }
    const copies = [
      await readJson<typeof jsonOnly>(missing, { default: jsonOnly }),
      readJsonSync<typeof jsonOnly>(missing, { default: jsonOnly }),
    ]
    for (const copy of copies) {
      expect(copy).toStrictEqual(asJson)
      copy.entries.push('changed')
    }
    const updated = await updateJson<typeof jsonOnly>(missing, (c) => void c.entries.push('u'), {
      default: jsonOnly,
      fsync: false,
    })
    expect(updated).toStrictEqual({ ...asJson, entries: ['u'] })
    expect(jsonOnly.entries).toEqual([])
    rmSync(missing)
    // Neither can copy it: refused at call time, whether or not the file exists.
    const neither = { entries: [], version: 1n, migrate() {} }
    for (const value of [neither, () => 1]) {
      for (const [name, call] of [
        ['readJson missing', () => readJson(missing, { default: value })],
        ['readJson existing', () => readJson(existing, { default: value })],
        ['readJsonSync', () => readJsonSync(missing, { default: value })],
        ['updateJson', () => updateJson(missing, () => {}, { default: value })],
        ['updateJsonSync', () => updateJsonSync(missing, () => {}, { default: value })],
      ] as const) {
        const err = await failure(call)
        expect(err, name).toBeInstanceOf(TypeError)
        expect(err.code, name).toBe('ERR_INVALID_ARG_VALUE')
        expect(err.message, name).toMatch(/options\.default/)
      }
    }
    // Primitives are values, not shared objects: a symbol (a sentinel for "missing") comes back as it is.
    const sentinel = Symbol('missing')
    expect(await readJson(missing, { default: sentinel })).toBe(sentinel)
    expect(existsSync(missing)).toBe(false)
    expect(readFileSync(existing, 'utf8')).toBe('{"n":1}')
  })
})

describe('values JSON cannot hold', () => {
  it('BigInt and cycles are refused with ERR_INVALID_ARG_VALUE and nothing is written', async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"ok":1}\n')
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    for (const bad of [{ n: 1n }, cyclic]) {
      for (const call of [
        () => writeJson(p, bad),
        () => writeJsonSync(p, bad),
        () => updateJson(p, () => bad),
        () => updateJson(p, (c: Record<string, unknown>) => void (c.bad = bad)),
        () => withIndexLock(p, () => updateJson(p, () => bad)),
        () => updateJsonSync(p, () => bad),
      ]) {
        const err = await failure(call)
        expect(err).toBeInstanceOf(TypeError)
        expect(err.code).toBe('ERR_INVALID_ARG_VALUE')
        expect(err.message).toMatch(/BigInt|circular/)
      }
    }
    expect(readFileSync(p, 'utf8')).toBe('{"ok":1}\n')
  })

  it("a toJSON's own errors pass through as they are, TypeErrors included", async () => {
    const p = join(tempDir(), 'index.json')
    writeFileSync(p, '{"ok":1}\n')
    const mine = new TypeError('my toJSON failed')
    const own = {
      toJSON: () => {
        throw mine
      },
    }
    const v8s = { toJSON: () => (null as unknown as { x: number }).x }
    for (const bad of [own, v8s]) {
      for (const call of writers(p, bad)) {
        const err = await failure(call)
        if (bad === own) expect(err).toBe(mine)
        expect(err).toBeInstanceOf(TypeError)
        expect(err.code).toBeUndefined()
      }
    }
    expect(readFileSync(p, 'utf8')).toBe('{"ok":1}\n')
  })

  it('a value nested too deeply for JSON.stringify is refused with a RangeError coded ERR_INVALID_ARG_VALUE; nothing is written', async () => {
    const dir = tempDir()
    const p = join(dir, 'index.json')
    writeFileSync(p, '{"ok":1}\n')
    let deep: unknown = []
    for (let i = 0; i < 100_000; i++) deep = [deep]
    for (const call of writers(p, deep)) {
      const err = await failure(call)
      expect(err).toBeInstanceOf(RangeError)
      expect(err.code).toBe('ERR_INVALID_ARG_VALUE')
      expect(err.message).toMatch(/nested too deeply/)
      expect(err.cause).toBeInstanceOf(RangeError)
    }
    expect(readFileSync(p, 'utf8')).toBe('{"ok":1}\n')
    expect(readdirSync(dir).sort()).toEqual(['index.json', 'index.json.lock'])
  })
})
