// One translation of a failed upstream call into what the API caller sees: the side named,
// 503 + Retry-After when trying later may help, 502 when the answer is unusable or a refusal.
import t from 'tap'
import { AppError, isRefusal, isRetryable, NotConnectedError, upstreamProblem } from '../../src/errors.js'
import { UpstreamError, type UpstreamErrorInit } from '../../src/http/errors.js'

const NOW = 1_750_000_000_000
const ORIGIN = 'https://agent.example'
const failed = (init: Partial<UpstreamErrorInit>) =>
  new UpstreamError({ reason: 'server_error', method: 'GET', url: `${ORIGIN}/v1/jobs/J1`, attempts: 1, ...init })

t.test('each failure maps to one status and code per side', async (t) => {
  const cases: Array<[Partial<UpstreamErrorInit>, number, string, RegExp]> = [
    [
      { side: 'erp', reason: 'timeout', attempts: 5 },
      503,
      'erp_unavailable',
      /^The ERP agent did not answer GET \/v1\/jobs\/J1 in time\. Retry after 30 seconds/,
    ],
    [{ side: 'erp', reason: 'connection' }, 503, 'erp_unavailable', /could not be reached for GET \/v1\/jobs\/J1/],
    [
      { side: 'procore', reason: 'rate_limited', status: 429, retryAt: NOW + 90_500 },
      503,
      'procore_unavailable',
      /^Procore is limiting .* Retry after 91 seconds\.$/,
    ],
    [
      { side: 'procore', reason: 'server_error', status: 500, body: { errors: 'Boom.' } },
      503,
      'procore_unavailable',
      /with 500: Boom\. Retry after/,
    ],
    [{ side: 'procore', reason: 'forbidden', status: 403 }, 422, 'procore_access_denied', /App Management/],
    [{ side: 'erp', reason: 'unauthorized', status: 401 }, 502, 'erp_access_denied', /erp\/connection/],
    [{ side: 'erp', reason: 'invalid_response', status: 200 }, 502, 'erp_bad_response', /not what its API describes/],
    [{ side: 'procore', reason: 'redirect_blocked', status: 302 }, 502, 'procore_bad_response', /a redirect \(302\)/],
    [
      { side: 'procore', reason: 'unprocessable', status: 422, body: { errors: { name: ["can't be blank"] } } },
      502,
      'procore_request_failed',
      /with 422: name can't be blank\. Check the data in Procore/,
    ],
    [{ reason: 'bad_request', status: 400 }, 502, 'upstream_request_failed', /^An upstream service answered/],
  ]
  for (const [init, status, code, detail] of cases) {
    const problem = upstreamProblem(failed(init), NOW)
    t.match(problem, { status, code, detail }, `${init.side ?? 'no side'} ${init.reason}`)
    t.equal(problem.extras.headers?.['retry-after'] !== undefined, status === 503, `${code}: Retry-After only with 503`)
  }
})

t.test('retry decisions read the typed retryable, not codes', async (t) => {
  t.equal(isRetryable(failed({ reason: 'timeout' })), true)
  t.equal(isRetryable(failed({ reason: 'unprocessable', status: 422 })), false)
  t.equal(isRefusal(failed({ reason: 'unprocessable', status: 422 })), true)
  t.equal(isRefusal(failed({ reason: 'unavailable', status: 503 })), false)
  t.equal(isRetryable(new AppError(503, 'busy', 'Busy', 'later')), true)
  t.equal(isRefusal(new NotConnectedError('erp', 'erp_not_connected', 'No ERP connection', 'connect it')), true)
  t.equal(isRefusal(new Error('connection terminated')), false, 'a database failure is no refusal')
  t.equal(isRetryable(new Error('connection terminated')), false)
})
