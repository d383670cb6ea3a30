import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { checkAgent, formatResults, RULES } from '../../src/cli/agent-conformance.js'
import { newNotificationSecret } from '../../src/erp/signature.js'
import { startErpStandin } from '../standins/erp/index.js'

const exec = promisify(execFile)

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', 'src/cli/agent-check.ts', ...args], {
      timeout: 60_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

t.test('npm run agent-check passes against the stand-in, one line per rule', async (t) => {
  const erp = await startErpStandin({
    system: 'foundation',
    formats: { departments: { code: { mask: '9999', example: '0420', description: '4 digits' } } },
  })
  t.teardown(() => erp.close())
  for (let i = 0; i < 5; i++) erp.seed('vendors', { name: `Vendor ${i}` })
  erp.seed('departments', { code: '0100', name: 'Operations' })

  const { code, stdout, stderr } = await cli(['--url', erp.url, '--token', erp.token])
  t.equal(code, 0, 'exit status 0')
  if (code !== 0) t.comment(stdout + stderr)
  const lines = stdout.trim().split('\n')
  for (const rule of Object.keys(RULES))
    t.ok(
      lines.some((l) => l.includes(` ${rule} `)),
      `a line for ${rule}`,
    )
  t.notOk(
    lines.some((l) => l.startsWith('FAIL')),
    'no rule fails',
  )
  t.match(stdout, /PASS +create\.idempotent/)
  t.match(stdout, /SKIP +notifications\.signature .* to check it: Pass --receiver-port and --secret/)
  t.match(lines.at(-1), /passed, 0 failed, \d+ skipped/)
  t.equal(erp.get('vendors', erp.list('vendors').at(-1)!.id)?.['active'], false, 'the record it made is deactivated')
})

t.test('every rule, signatures and a token rotation included, passes against the stand-in', async (t) => {
  const erp = await startErpStandin({
    formats: { departments: { code: { pattern: '[0-9]{2}-[0-9]{2}', example: '10-01' } } },
  })
  t.teardown(() => erp.close())
  erp.seed('departments', { code: '10-01', name: 'Operations' })
  erp.seed('departments', { code: '20-01', name: 'Estimating' })
  const next = 'erp_next_token_0123456789'
  erp.tokens.accept(next)
  const secret = newNotificationSecret()
  const results = await checkAgent({
    url: erp.url,
    token: erp.token,
    nextToken: next,
    resource: 'departments',
    notifications: { port: 0, secret, waitMs: 10_000, onListening: (url) => erp.notifications.configure(url, secret) },
  })
  t.same(
    results.filter((r) => r.status !== 'pass'),
    [],
    'every rule passes',
  )
  if (results.some((r) => r.status !== 'pass')) t.comment(formatResults(results))
  t.equal(results.length, Object.keys(RULES).length, 'every rule ran')
  t.equal(erp.stats().creates, 1, 'the rotation retry replayed instead of creating a second department')
})

t.test('a broken agent fails, naming the rule and the fix, and the command exits non-zero', async (t) => {
  const broken = await startErpStandin({
    quirks: { tokenScopedKeys: true, ignoreIfMatch: true, newestFirst: true },
    formats: { vendors: { code: { mask: '9999', example: 'ACME' } } },
  })
  t.teardown(() => broken.close())
  for (let i = 0; i < 5; i++) broken.seed('vendors', { name: `Vendor ${i}`, code: String(1000 + i) })
  const next = 'erp_next_token_abcdefghijk'
  broken.tokens.accept(next)

  const { code, stdout } = await cli(['--url', broken.url, '--token', broken.token, '--next-token', next])
  t.equal(code, 1, 'exit status 1')
  const failed = stdout
    .split('\n')
    .filter((l) => l.startsWith('FAIL'))
    .map((l) => l.split(/ +/)[1])
  t.same(
    failed.sort(),
    ['create.token_rotation', 'info.formats', 'lists.order', 'update.conditional', 'update.if_match_required'].sort(),
  )
  t.match(stdout, /FAIL +create\.token_rotation .* fix: Scope Idempotency-Keys to the connection, not the token/)
  t.match(stdout, /FAIL +info\.formats +vendors\.code example "ACME" does not fit/)
})

t.test('an agent that is not there fails the connection rule', async (t) => {
  const erp = await startErpStandin()
  const url = erp.url
  await erp.close()
  const results = await checkAgent({ url, token: 'x' })
  t.equal(results.at(-1)?.rule, 'connection')
  t.equal(results.at(-1)?.status, 'fail')
})
