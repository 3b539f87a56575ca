// The docs a newcomer reads: README.md stays a short page (the rest lives in docs/), states the
// repository's two set-up commands (CI runs the test one), and every code sample in README.md and
// docs/*.md type-checks or runs as written (scripts/check-docs.js).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { ROOT, run } from './helpers'

const README = join(ROOT, 'README.md')
const SETUP_COMMANDS = ['npm ci && npm run demo', 'npm ci && npm test']

/** The text of README's `## <title>` section, up to the next `## ` heading. */
function section(text: string, title: string): string {
  const start = text.indexOf(`\n## ${title}\n`)
  expect(start, `README has a "## ${title}" section`).toBeGreaterThanOrEqual(0)
  const next = text.indexOf('\n## ', start + 1)
  return text.slice(start, next === -1 ? undefined : next)
}

/** The commands of the fenced sh blocks in `text`: each line without its comment, blank lines dropped. */
function shCommands(text: string): string[] {
  const commands: string[] = []
  for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1].split('\n')) {
      const command = line.replace(/\s+#.*$/, '').trim()
      if (command && !command.startsWith('#')) commands.push(command)
    }
  }
  return commands
}

describe('README.md', () => {
  it('is under 15 KiB', () => {
    expect(statSync(README).size).toBeLessThan(15 * 1024)
  })

  it('states exactly the two set-up commands for a fresh machine', () => {
    const text = readFileSync(README, 'utf8')
    expect(shCommands(section(text, 'Set up (working on this repository)'))).toEqual(SETUP_COMMANDS)
    // Nowhere else does it offer another way to set up the repository.
    expect(shCommands(text).filter((c) => c.startsWith('npm ci'))).toEqual(SETUP_COMMANDS)
  })

  it('links to every page of docs/, and every page links back', () => {
    const text = readFileSync(README, 'utf8')
    const pages = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))
    expect(pages.length).toBeGreaterThan(0)
    for (const page of pages) {
      expect(text, `README links to docs/${page}`).toContain(`(docs/${page})`)
      expect(readFileSync(join(ROOT, 'docs', page), 'utf8'), `docs/${page} links back`).toContain('(../README.md)')
    }
  })
})

it('every code block of README.md and docs/*.md type-checks or runs as written', async () => {
  const check = run(process.execPath, [join(ROOT, 'scripts', 'check-docs.js')])
  const { code } = await check.exited
  const out = check.stdout()
  expect(code, out + check.stderr()).toBe(0)
  expect(out).toMatch(/^\d+ passed, 0 failed$/m)
  expect(out).not.toMatch(/^FAIL /m)
}, 300_000)
