// Time entries end to end, over HTTP against the Procore and ERP stand-ins: a batch with unlinked records is
// accepted entry by entry, written to Procore's timecard entries keyed by an integer origin_id, resubmitted
// without duplicates, changed, voided, and invisible to a key of another company.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { createCompany } from '../helpers/app.js'
import { syncHarness, type SyncHarness } from '../sync/fixtures/harness.js'

const USERS = 5
// Two cores shared by many test files: the 500-entry walk-through may take minutes there.
t.setTimeout(600_000)

interface Setup {
  h: SyncHarness
  c: string
  erpUsers: string[]
  procoreUsers: string[]
  unlinkedErpUser: string
  erpJob: string
  procoreProject: string
  erpCodes: string[]
}

async function setup(t: Test): Promise<Setup> {
  const h = await syncHarness(t)
  const c = h.companyId
  const procoreUsers: string[] = []
  const erpUsers: string[] = []
  for (let i = 0; i < USERS; i++) {
    const email = `worker${i}@riverside.example`
    procoreUsers.push(
      h.procore.seed(c, 'users', { first_name: 'Worker', last_name: `No${i}`, email_address: email, is_employee: true })
        .id,
    )
    erpUsers.push(h.erp.seed('employees', { first_name: 'Worker', last_name: `No${i}`, email }).id)
  }
  const unlinkedErpUser = h.erp.seed('employees', {
    first_name: 'Nora',
    last_name: 'Unlinked',
    email: 'n@x.example',
  }).id
  const procoreProject = h.procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-1' }).id
  const erpJob = h.erp.seed('jobs', { number: 'J-1', name: 'Riverside Tower', status: 'active' }).id
  const erpCodes = ['01-100', '03-300', '26-100'].map(
    (code) => h.erp.seed('cost-codes', { job_id: erpJob, code, name: `Code ${code}` }).id,
  )
  await h.refresh()
  for (let i = 0; i < USERS; i++) {
    const res = await h.api(
      'POST',
      `/v1/companies/${c}/links`,
      { type: 'user', procoreId: procoreUsers[i], erpId: erpUsers[i] },
      { 'idempotency-key': randomUUID() },
    )
    if (res.status !== 201) throw new Error(`link user: ${res.status} ${JSON.stringify(res.body)}`)
  }
  const project = await h.api(
    'POST',
    `/v1/companies/${c}/links`,
    { type: 'project', procoreId: procoreProject, erpId: erpJob, fix: true },
    { 'idempotency-key': randomUUID() },
  )
  if (project.status !== 201) throw new Error(`link project: ${project.status} ${JSON.stringify(project.body)}`)
  await h.quiet()
  return { h, c, erpUsers, procoreUsers, unlinkedErpUser, erpJob, procoreProject, erpCodes }
}

/** A real HTTP call to the listening service. */
async function http(h: SyncHarness, method: string, path: string, body?: unknown, key?: string) {
  const res = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers: {
      authorization: key ? `Bearer ${key}` : h.admin.authorization,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

function batch(s: Pick<Setup, 'erpUsers' | 'procoreUsers' | 'procoreProject' | 'erpJob' | 'erpCodes'>, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    externalId: `TC-${String(i).padStart(5, '0')}`,
    user: i % 2 === 0 ? `erp:${s.erpUsers[i % USERS]}` : `procore:${s.procoreUsers[i % USERS]}`,
    project: i % 3 === 0 ? `procore:${s.procoreProject}` : `erp:${s.erpJob}`,
    costCode: `erp:${s.erpCodes[i % s.erpCodes.length]}`,
    date: `2026-11-${String(1 + (i % 28)).padStart(2, '0')}`,
    ...(i % 4 === 0
      ? { timeIn: '2026-11-02T07:00:00-05:00', timeOut: '2026-11-02T15:30:00-05:00', lunchMinutes: 30 }
      : { hours: 8 }),
    description: `Work ${i}`,
    approvedAt: '2026-11-30T16:00:00Z',
  }))
}

const timecardCalls = (h: SyncHarness, from: number, method: string) =>
  h.procore.calls.slice(from).filter((c) => c.method === method && c.path.includes('/timecard_entries')).length

t.test('a batch of 500 with 3 unlinked: 497 in Procore, 3 refused; resubmitted, changed, voided', async (t) => {
  const s = await setup(t)
  const { h, c } = s
  const entries: Array<Record<string, unknown>> = batch(s, 500)
  entries[10] = { ...entries[10], user: `erp:${s.unlinkedErpUser}` }
  entries[200] = { ...entries[200], project: 'erp:J-404' }
  entries[499] = { ...entries[499], costCode: 'erp:NO-SUCH-CODE' }

  const before = h.procore.calls.length
  const first = await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries })
  t.equal(first.status, 202)
  t.same(first.body.counts, { accepted: 497, refused: 3 })
  t.same(
    first.body.refused.map((r: any) => [r.index, r.code]),
    [
      [10, 'user_not_linked'],
      [200, 'project_not_linked'],
      [499, 'cost_code_not_linked'],
    ],
  )
  t.equal(
    first.body.refused[0].detail,
    `user ${s.unlinkedErpUser} is not linked — link it or run onboarding step users`,
  )
  t.match(first.body.refused[0].fix, /POST \/v1\/companies\/\d+\/links/)
  t.ok(first.body.accepted.every((a: any) => a.change === 'created' && a.status === 'pending'))

  await h.quiet()
  const inProcore = h.procore.list(c, 'timecard_entries')
  t.equal(inProcore.length, 497, '497 timecard entries in Procore')
  t.equal(timecardCalls(h, before, 'POST'), 497, 'one create each')
  t.ok(
    inProcore.every((e) => typeof e.origin_id === 'number' && Number.isInteger(e.origin_id)),
    'origin_id is an integer',
  )
  t.equal(new Set(inProcore.map((e) => e.origin_id)).size, 497, 'one origin_id per entry')
  const originOf = new Map(first.body.accepted.map((a: any) => [a.externalId, Number(a.originId)]))
  const twin = (externalId: string) => inProcore.find((e) => e.origin_id === originOf.get(externalId))
  const e1 = twin('TC-00001')!
  t.equal(e1.party_id, s.procoreUsers[1], 'a user named by its Procore id')
  t.equal(e1.project_id, s.procoreProject, 'a project named by its ERP id')
  t.equal(e1.hours, '8')
  const e0 = twin('TC-00000')!
  t.equal(e0.party_id, s.procoreUsers[0], 'a user named by its ERP id')
  t.equal(e0.time_in, '2026-11-02T07:00:00-05:00')
  t.equal(e0.lunch_time, 30)

  const sent = await http(h, 'GET', `/v1/companies/${c}/time-entries?status=sent&limit=200`)
  t.equal(sent.body.items.length, 200)
  t.ok(sent.body.next, 'a next page')
  t.ok(sent.body.items.every((e: any) => e.procoreId && e.status === 'sent' && e.error === null))

  // The same batch again: nothing changes, nothing is sent.
  const again0 = h.procore.calls.length
  const again = await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries })
  t.equal(again.status, 202)
  t.ok(again.body.accepted.every((a: any) => a.change === 'unchanged' && a.status === 'sent'))
  t.same(
    again.body.accepted.map((a: any) => a.originId),
    first.body.accepted.map((a: any) => a.originId),
    'the same origin_ids',
  )
  await h.quiet()
  t.equal(h.procore.list(c, 'timecard_entries').length, 497, 'no duplicates')
  t.equal(timecardCalls(h, again0, 'POST') + timecardCalls(h, again0, 'PATCH'), 0, 'no Procore writes')

  // One entry changed: its twin is updated in place.
  const change0 = h.procore.calls.length
  const changed = await http(h, 'POST', `/v1/companies/${c}/time-entries`, {
    entries: [{ ...entries[1], hours: 6.5, description: 'Rework' }],
  })
  t.equal(changed.body.accepted[0].change, 'updated')
  await h.quiet()
  t.equal(h.procore.get(c, 'timecard_entries', e1.id)?.hours, '6.5', 'its twin updated')
  t.equal(h.procore.get(c, 'timecard_entries', e1.id)?.description, 'Rework')
  t.equal(h.procore.list(c, 'timecard_entries').length, 497)
  t.equal(timecardCalls(h, change0, 'PATCH'), 1, 'one update')
  t.equal(timecardCalls(h, change0, 'POST'), 0, 'no create')

  // Voided by DELETE and by voided: true: removed from Procore.
  const deleted = await http(h, 'DELETE', `/v1/companies/${c}/time-entries/TC-00002`)
  t.equal(deleted.status, 202)
  const voided = await http(h, 'POST', `/v1/companies/${c}/time-entries`, {
    entries: [{ ...entries[3], voided: true }],
  })
  t.equal(voided.body.accepted[0].change, 'voided')
  await h.quiet()
  t.equal(h.procore.list(c, 'timecard_entries').length, 495, 'both removed in Procore')
  t.notOk(twin('TC-00002') && h.procore.get(c, 'timecard_entries', twin('TC-00002')!.id))
  const listedVoided = await http(h, 'GET', `/v1/companies/${c}/time-entries?status=voided`)
  t.same(listedVoided.body.items.map((e: any) => e.externalId).sort(), ['TC-00002', 'TC-00003'])
  t.ok(listedVoided.body.items.every((e: any) => e.procoreId === null))
  const oneDay = await http(h, 'GET', `/v1/companies/${c}/time-entries?date=2026-11-02`)
  t.ok(oneDay.body.items.length > 0 && oneDay.body.items.every((e: any) => e.entry.date === '2026-11-02'))

  // A key of another company sees none of it.
  const other = '8299999'
  await createCompany(h.app, h.adminKey, other)
  const foreign = await h.key('operator', [other])
  t.equal((await http(h, 'GET', `/v1/companies/${c}/time-entries`, undefined, foreign)).status, 404)
  t.equal((await http(h, 'GET', `/v1/companies/${c}/time-entries/TC-00001`, undefined, foreign)).status, 404)
  t.equal((await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries }, foreign)).status, 404)
  t.equal((await http(h, 'DELETE', `/v1/companies/${c}/time-entries/TC-00001`, undefined, foreign)).status, 404)
  t.same((await http(h, 'GET', `/v1/companies/${other}/time-entries`, undefined, foreign)).body.items, [])
})

t.test('a create whose answer was lost is found by origin_id, and a refusal reads as Procore said it', async (t) => {
  const s = await setup(t)
  const { h, c } = s
  const entries = batch(s, 3)
  await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries })
  await h.quiet()
  t.equal(h.procore.list(c, 'timecard_entries').length, 3)
  // The state after Procore created the entry but before its id was stored: create_sent_at set, no id.
  await h.app.db
    .updateTable('time_entries')
    .set({ procore_id: null })
    .where('company_id', '=', c)
    .where('external_id', '=', 'TC-00000')
    .execute()
  const before = h.procore.calls.length
  await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries: [{ ...entries[0], description: 'Again' }] })
  await h.quiet()
  t.equal(h.procore.list(c, 'timecard_entries').length, 3, 'no duplicate')
  t.equal(timecardCalls(h, before, 'POST'), 0, 'no second create')
  t.equal(timecardCalls(h, before, 'PATCH'), 1, 'the twin found and updated')
  const got = await http(h, 'GET', `/v1/companies/${c}/time-entries/TC-00000`)
  t.equal(got.body.status, 'sent')
  t.equal(h.procore.get(c, 'timecard_entries', got.body.procoreId)?.description, 'Again')

  h.procore.faults.push({
    match: { method: 'POST', pathPrefix: `/rest/v1.0/companies/${c}/timecard_entries` },
    status: 422,
    rawBody: JSON.stringify({ errors: { hours: ['exceeds the daily limit for this crew'] } }),
  })
  const fresh = { ...entries[2], externalId: 'TC-NEW' }
  await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries: [fresh] })
  await h.quiet()
  const failed = await http(h, 'GET', `/v1/companies/${c}/time-entries?status=failed`)
  t.equal(failed.body.items.length, 1)
  t.match(failed.body.items[0].error, /422.*hours exceeds the daily limit for this crew/)
  // Resubmitting a failed entry tries it again.
  const retried = await http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries: [fresh] })
  t.equal(retried.body.accepted[0].change, 'updated')
  await h.quiet()
  t.equal((await http(h, 'GET', `/v1/companies/${c}/time-entries/TC-NEW`)).body.status, 'sent')
  t.equal(h.procore.list(c, 'timecard_entries').length, 4)
})

t.test('shape errors are 400s naming the entry and field; a batch with nothing accepted is a 422', async (t) => {
  // Shape errors are refused before any link is read: no records needed.
  const h = await syncHarness(t)
  const c = h.companyId
  const s = { erpUsers: ['EMP-1'], procoreUsers: ['1'], procoreProject: '2', erpJob: 'JOB-1', erpCodes: ['CC-1'] }
  const [good] = batch(s, 1)
  const post = (entries: unknown[]) => http(h, 'POST', `/v1/companies/${c}/time-entries`, { entries })

  const both = await post([good, { ...good, externalId: 'X', hours: 8 }])
  t.equal(both.status, 400)
  t.same(both.body.errors, [
    { pointer: '/body/entries/1/hours', message: 'give either hours or timeIn and timeOut, not both' },
  ])
  const badDate = await post([{ ...good, date: '2026-13-01' }])
  t.equal(badDate.status, 400)
  t.match(badDate.body.errors[0].pointer, '/body/entries/0/date')
  const badType = await post([{ ...good, hours: '8' }])
  t.equal(badType.status, 400)
  t.match(badType.body.errors[0].pointer, '/body/entries/0/hours')
  const bare = await post([{ ...good, user: s.erpUsers[0] }])
  t.equal(bare.status, 400, 'a reference without its side is ambiguous')
  t.match(bare.body.errors[0].pointer, '/body/entries/0/user')
  const backwards = await post([
    { ...good, hours: undefined, timeIn: '2026-11-02T09:00:00Z', timeOut: '2026-11-02T08:00:00Z' },
  ])
  t.same(backwards.body.errors, [{ pointer: '/body/entries/0/timeOut', message: 'must be after timeIn' }])
  const twice = await post([good, good])
  t.equal(twice.status, 400)
  t.match(twice.body.errors[0], { pointer: '/body/entries/1/externalId' })
  t.equal((await post(Array.from({ length: 1001 }, () => good))).status, 400, 'at most 1,000 entries')

  const none = await post([{ ...good, user: 'erp:E1042' }])
  t.equal(none.status, 422)
  t.equal(none.body.code, 'time_entries_refused')
  t.same(
    none.body.refused.map((r: any) => r.detail),
    ['user E1042 is not linked — link it or run onboarding step users'],
  )
  t.same((await http(h, 'GET', `/v1/companies/${c}/time-entries`)).body.items, [], 'nothing stored')
  t.equal((await http(h, 'GET', '/v1/companies/9999991/time-entries')).status, 404, 'an unknown company')
  t.equal((await http(h, 'POST', '/v1/companies/9999991/time-entries', { entries: [good] })).status, 404)
})
