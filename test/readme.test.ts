// Every command in the README runs as pasted after the exports `npm run demo` prints: the README's shell blocks that
// talk to the API are run, in order, in one bash session against a running demo, and each call must succeed.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { startDemo } from './helpers/demo.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** The fenced `sh` blocks, dedented (some sit inside list items). */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)].map(([, indent, body]) =>
    body!
      .split('\n')
      .map((line) => (line.startsWith(indent!) ? line.slice(indent!.length) : line))
      .join('\n'),
  )
}

t.test('the README has no placeholders a shell cannot run', async (t) => {
  for (const block of shellBlocks(readme)) {
    t.notMatch(block, /…|uuidgen|\$BASE\b|<[a-z ]+>/i, `runs as pasted:\n${block}`)
  }
  t.notMatch(readme, /\$BASE\b/, 'no undefined $BASE anywhere')
})

t.test("the README's API commands run as pasted against the demo", async (t) => {
  t.setTimeout(240_000)
  const printed = await startDemo(t)

  const exports = printed
    .split('\n')
    .filter((l) => /^ {2}(export |H=)/.test(l))
    .map((l) => l.trim())
  t.ok(exports.length >= 2, 'the demo prints its exports')
  const blocks = shellBlocks(readme).filter((b) => b.includes('$API'))
  t.ok(blocks.length >= 4, `${blocks.length} README blocks use the API`)

  const script = [
    'set -euo pipefail',
    // Test-only: make every call's HTTP error an error of the script, and bound each one.
    'curl() { command curl --fail-with-body --max-time 30 "$@"; }',
    ...exports,
    ...blocks,
  ].join('\n')
  const run = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 180_000 })
  t.equal(run.status, 0, `the README commands ran (${String(run.error)}):\n${run.stdout}\n${run.stderr}`)
  t.match(run.stdout, /"resolved"/, 'the discrepancy from the edits on both sides was resolved')
  t.match(run.stdout, /"set"/, "the link set Procore's origin")
  t.match(run.stdout, /"succeeded"/, 'the create run succeeded')
})
