// graphile-worker prints a worker that stopped on an error with console.trace besides logging it: for a lost
// database connection (Ctrl-C reaching an embedded PostgreSQL, a restart) that stack is left out, and only then.
import t from 'tap'
import { quietConnectionLossTraces } from '../../src/jobs/runner.js'

t.test('a lost connection prints no trace; any other error still does', async (t) => {
  const printed: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = (chunk: string | Uint8Array) => {
    printed.push(String(chunk))
    return true
  }
  try {
    quietConnectionLossTraces()
    quietConnectionLossTraces() // installed once, however many runners start
    console.trace(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    console.trace(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))
    console.trace(new Error('Connection terminated unexpectedly'))
    // pg's answer to a query on a client whose connection was lost a moment before
    console.trace(new Error('Client has encountered a connection error and is not queryable'))
    t.same(printed, [], 'nothing printed for a lost connection')
    console.trace(new Error('relation "jobs" does not exist'))
  } finally {
    process.stderr.write = write
  }
  t.equal(printed.length, 1, 'another error is still traced')
  t.match(printed[0], /Trace: Error: relation "jobs" does not exist/)
})
