import t from 'tap'
import type { HttpClient, HttpRequest } from '../../src/http/client.js'
import { mockedClient, ORIGIN, upstreamError } from './fixtures/harness.js'

const json = { 'content-type': 'application/json' }

async function collect<T>(client: HttpClient, req: HttpRequest<T[]> & { perPage?: number }): Promise<T[][]> {
  const pages: T[][] = []
  for await (const page of client.paginate(req)) pages.push(page)
  return pages
}

void t.test('follows Link rel="next" (absolute or relative) over three pages, then stops', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  pool
    .intercept({ path: '/rest/v1.0/projects?company_id=7&page=1&per_page=2', method: 'GET' })
    .reply(200, '[{"id":1},{"id":2}]', {
      headers: {
        ...json,
        link:
          `<${ORIGIN}/rest/v1.0/projects?company_id=7&page=2&per_page=2>; rel="next", ` +
          `<${ORIGIN}/rest/v1.0/projects?company_id=7&page=3&per_page=2>; rel="last"`,
      },
    })
  pool
    .intercept({ path: '/rest/v1.0/projects?company_id=7&page=2&per_page=2', method: 'GET' })
    .reply(200, '[{"id":3},{"id":4}]', {
      headers: { ...json, link: '</rest/v1.0/projects?company_id=7&page=3&per_page=2>; rel=next' },
    })
  pool
    .intercept({ path: '/rest/v1.0/projects?company_id=7&page=3&per_page=2', method: 'GET' })
    .reply(200, '[{"id":5}]', {
      headers: { ...json, link: `<${ORIGIN}/rest/v1.0/projects?company_id=7&page=1&per_page=2>; rel="first"` },
    })

  const pages = await collect<{ id: number }>(client, {
    method: 'GET',
    path: '/rest/v1.0/projects',
    query: { company_id: 7 },
    perPage: 2,
  })
  t.strictSame(pages, [[{ id: 1 }, { id: 2 }], [{ id: 3 }, { id: 4 }], [{ id: 5 }]])
  mock.assertNoPendingInterceptors()
})

void t.test('without Link, asks for the next page while fewer than Total items were seen', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  for (const [page, body] of [
    [1, '[1,2]'],
    [2, '[3,4]'],
    [3, '[5]'],
  ] as const) {
    pool
      .intercept({ path: `/erp/vendors?page=${page}&per_page=2`, method: 'GET' })
      .reply(200, body, { headers: { ...json, total: '5' } })
  }
  t.strictSame(await collect(client, { method: 'GET', path: '/erp/vendors', perPage: 2 }), [[1, 2], [3, 4], [5]])
  mock.assertNoPendingInterceptors()
})

void t.test('without Link or Total, a single page is all', async (t) => {
  const { client, pool } = mockedClient(t)
  pool.intercept({ path: '/x?page=1', method: 'GET' }).reply(200, '[1]', { headers: json })
  t.strictSame(await collect(client, { method: 'GET', path: '/x' }), [[1]])
})

void t.test('a Link to another host is refused before it is requested', async (t) => {
  const { client, pool, mock } = mockedClient(t)
  pool
    .intercept({ path: '/x?page=1', method: 'GET' })
    .reply(200, '[1]', { headers: { link: '<https://evil.example/x?page=2>; rel="next"' } })
  mock.get('https://evil.example').intercept({ path: '/x?page=2', method: 'GET' }).reply(200, '[2]')

  const pages: number[][] = []
  const err = await upstreamError(
    t,
    (async () => {
      for await (const page of client.paginate<number>({ method: 'GET', path: '/x' })) pages.push(page)
    })(),
  )
  t.strictSame(pages, [[1]])
  t.match(err, { reason: 'host_not_allowed', url: 'https://evil.example/x' })
  t.equal(mock.pendingInterceptors().length, 1, 'the other host was never called')
})

void t.test('a Link that loops back, or a page that is not an array, is invalid_response', async (t) => {
  const { client, pool } = mockedClient(t)
  pool
    .intercept({ path: '/loop?page=1', method: 'GET' })
    .reply(200, '[1]', { headers: { link: '</loop?page=2>; rel="next"' } })
  pool
    .intercept({ path: '/loop?page=2', method: 'GET' })
    .reply(200, '[2]', { headers: { link: '</loop?page=1>; rel="next"' } })
  pool
    .intercept({ path: '/object?page=1', method: 'GET' })
    .reply(200, '{"data":[]}', { headers: { 'x-request-id': 'r1' } })

  t.match(await upstreamError(t, collect(client, { method: 'GET', path: '/loop' })), {
    reason: 'invalid_response',
    attempts: 0,
  })
  t.match(await upstreamError(t, collect(client, { method: 'GET', path: '/object' })), {
    reason: 'invalid_response',
    attempts: 1,
    requestId: 'r1',
  })
})

void t.test('each page goes through parse', async (t) => {
  const { client, pool } = mockedClient(t)
  pool.intercept({ path: '/x?page=1', method: 'GET' }).reply(200, '[{"id":"7"}]', { headers: json })
  const pages = await collect(client, {
    method: 'GET',
    path: '/x',
    parse: (body) => (body as Array<{ id: string }>).map((row) => ({ id: BigInt(row.id) })),
  })
  t.strictSame(pages, [[{ id: 7n }]])
})
