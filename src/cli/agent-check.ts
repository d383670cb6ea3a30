// `npm run agent-check -- --url https://erp-agent.example.com --token …`: the ERP Connector Protocol
// conformance kit. One line per rule with PASS, FAIL (and the fix) or SKIP; exits 1 when a rule fails.
import { parseArgs } from 'node:util'
import { checkAgent, formatResults } from './agent-conformance.js'
import { fail } from './database.js'

const usage = `usage:
  npm run agent-check -- --url <agent base URL> --token <token>
      [--next-token <second token>] [--resource vendors|departments] [--read-only]
      [--receiver-port <port> --secret <whsec_…> [--receiver-host <host>] [--wait <seconds>]]

Creates one record of --resource (default vendors), changes it and deactivates it, unless --read-only.
With --receiver-port and --secret, listens for the agent's signed notification of that record.`

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    'next-token': { type: 'string' },
    resource: { type: 'string' },
    'read-only': { type: 'boolean' },
    'receiver-port': { type: 'string' },
    'receiver-host': { type: 'string' },
    secret: { type: 'string' },
    wait: { type: 'string' },
    help: { type: 'boolean' },
  },
})
if (values.help === true) {
  console.log(usage)
  process.exit(0)
}
if (values.url === undefined || values.token === undefined) fail(`--url and --token are required\n${usage}`)
if (!/^https?:\/\//.test(values.url)) fail(`--url must start with https:// (http:// for a local agent)\n${usage}`)
const resource = values.resource ?? 'vendors'
if (resource !== 'vendors' && resource !== 'departments') fail(`--resource must be vendors or departments\n${usage}`)
const port = values['receiver-port']
if ((port === undefined) !== (values.secret === undefined)) fail(`--receiver-port and --secret go together\n${usage}`)
if (port !== undefined && !/^\d{1,5}$/.test(port)) fail('--receiver-port takes a port number')

const results = await checkAgent({
  url: values.url,
  token: values.token,
  nextToken: values['next-token'],
  resource,
  readOnly: values['read-only'] === true,
  ...(port !== undefined &&
    values.secret !== undefined && {
      notifications: {
        port: Number(port),
        secret: values.secret,
        ...(values['receiver-host'] !== undefined && { host: values['receiver-host'] }),
        waitMs: Number(values.wait ?? '30') * 1000,
        onListening: (url) => console.error(`listening for notifications at ${url}`),
      },
    }),
})
console.log(formatResults(results))
process.exit(results.some((r) => r.status === 'fail') ? 1 : 0)
