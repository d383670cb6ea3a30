// npm run demo: the service with the Procore and ERP stand-ins and sample data for one company,
// then a short curl walkthrough of linking, creating and resolving a discrepancy.
//
//   npm run demo               # runs until Ctrl-C (PORT, default 3000; a fresh database on the DATABASE_URL server,
//                              # else an embedded PostgreSQL)
//   npm run demo -- --check    # also walks through the steps itself and exits (0 when every step worked)
// npm run demo: the service with the Procore and ERP stand-ins and sample data for one company,
// then a short curl walkthrough of linking, creating, editing a record on each side and resolving
// the discrepancy that follows.
//
//   npm run demo               # runs until Ctrl-C (PORT, default 3000; a fresh database on the DATABASE_URL server,
//                              # else an embedded PostgreSQL in a temporary folder, removed at the end)
//   npm run demo -- --check    # also walks through the steps itself and exits (0 when every step worked)
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLIENT, startEnvironment, type Environment } from './sync/fixtures/environment.js'
import type { Kind } from './standins/procore/store.js'
import type { ErpResource } from './standins/erp/rules.js'

const check = process.argv.includes('--check')
const port = Number(process.env.PORT ?? 3000)
const began = performance.now()
const seconds = () => `${((performance.now() - began) / 1000).toFixed(1)} s`
const say = (line: string) => process.stdout.write(`${line}\n`)

/** Whether something already listens on the port: told in one line before anything starts. */
function portTaken(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createNetServer()
    probe.once('error', () => resolve(true))
    probe.listen(p, '127.0.0.1', () => probe.close(() => resolve(false)))
  })
}

/**
 * What a person does in Procore's or the ERP's own screens: edits a record there. Procore then delivers its webhook,
 * the ERP its signed notification, exactly as for any other change.
 *   PATCH /procore/<resource>/<id>  {fields in Procore's names}   e.g. /procore/vendors/4300000002 {"business_phone"}
 *   PATCH /erp/<resource>/<id>      {fields in the ERP's names}    e.g. /erp/vendors/V000001 {"email"}
 *   PATCH /erp/jobs/<id>/cost-totals/<cost code>/<cost type>  {"actual", "committed", "budget"} (a posting)
 */
async function startEditor(env: Environment): Promise<{ url: string; close(): Promise<void> }> {
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString()))
    req.on('end', () => {
      const [, jobId, costCode, costType] =
        /^\/erp\/jobs\/([\w-]+)\/cost-totals\/([\w.-]+)\/([\w-]+)$/.exec(req.url ?? '') ?? []
      if (req.method === 'PATCH' && jobId && costCode && costType) {
        try {
          const patch = JSON.parse(text || '{}') as Record<string, string>
          return answer(res, 200, env.erp.changeCostTotal(jobId, costCode, costType, patch))
        } catch (error) {
          return answer(res, 400, { error: (error as Error).message })
        }
      }
      // What people see in Procore, e.g. GET /procore/invoice_payments: the payments issued on commitments.
      const list = /^\/procore\/([\w-]+)$/.exec(req.url ?? '')
      if (req.method === 'GET' && list) return answer(res, 200, env.procore.list(env.companyId, list[1] as Kind))
      const [, side, resource, id] = /^\/(procore|erp)\/([\w-]+)\/([\w-]+)$/.exec(req.url ?? '') ?? []
      if (req.method !== 'PATCH' || !side || !resource || !id)
        return answer(res, 404, { error: 'PATCH /procore/<resource>/<id> or /erp/<resource>/<id> with a JSON body' })
      try {
        const patch = JSON.parse(text || '{}') as Record<string, unknown>
        const record =
          side === 'procore'
            ? env.procore.change(env.companyId, resource as Kind, id, patch)
            : env.erp.change(resource as ErpResource, id, patch)
        answer(res, 200, record)
      } catch (error) {
        answer(res, 400, { error: (error as Error).message })
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

async function main() {
  if (await portTaken(port)) {
    say(`Port ${port} is already in use (the service or another demo?): stop it, or run PORT=${port + 1} npm run demo`)
    process.exit(1)
  }
  // A signal stops everything in order, also during start-up, and removes the temporary database.
  const aborted = new AbortController()
  let env: Environment | undefined
  let editor: { close(): Promise<void> } | undefined
  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      aborted.abort()
      await editor?.close()
      await env?.stop()
    })())
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      if (stopping) return
      say(`${signal}: stopping the demo`)
      void stop().then(() => {
        say(`stopped after ${seconds()}`)
        process.exit(0)
      })
    })

  // Sample data: a few records of each kind, some on both sides, some on one.
  const ids: Record<string, string> = {}
  say(`Starting the demo on port ${port}; the first start takes a little longer.`)
  try {
    env = await startEnvironment({
      serverUrl: process.env.DATABASE_URL,
      port,
      logLevel: process.env.LOG_LEVEL ?? 'warn',
      signal: aborted.signal,
      onProgress: (step) => say(`  ${seconds().padStart(7)}  ${step}`),
      seed: (procore, erp, c) => {
        ids.pAccounting = procore.seed(c, 'departments', { name: 'Accounting' }).id
        ids.pEstimating = procore.seed(c, 'departments', { name: 'Estimating' }).id
        ids.pAcme = procore.seed(c, 'vendors', {
          name: 'Acme Concrete',
          email_address: 'ap@acme.example',
          business_phone: '555-0100',
        }).id
        ids.pBright = procore.seed(c, 'vendors', {
          name: 'Bright Electric LLC',
          email_address: 'office@bright.example',
        }).id
        ids.pDelta = procore.seed(c, 'vendors', { name: 'Delta Drywall', email_address: 'ap@delta.example' }).id
        // Not ERP-integrated, no cost code list: linking it needs fix: true (step 7).
        ids.pTower = procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-2024-001' }).id
        ids.pAnn = procore.seed(c, 'users', {
          first_name: 'Ann',
          last_name: 'Lee',
          email_address: 'ann.lee@riverside.example',
          employee_id: 'E-7',
          is_employee: true,
        }).id
        ids.eAccounting = erp.seed('departments', { code: '10', name: 'Accounting' }).id
        erp.seed('departments', { code: '30', name: 'Safety' })
        ids.eAcme = erp.seed('vendors', {
          code: 'ACMECO01',
          name: 'Acme Concrete, Inc.',
          email: 'AP@acme.example',
          phone: '(555) 0100',
          tax_id: '12-3456789',
        }).id
        ids.eHarbor = erp.seed('vendors', { code: 'HARBOR01', name: 'Harbor Steel', email: 'sales@harbor.example' }).id
        ids.eTower = erp.seed('jobs', { number: 'J-2024-001', name: 'Riverside Tower', status: 'active' }).id
        // Invoices and payments: an approved invoice of Acme Concrete on its subcontract in Riverside Tower, which
        // the ERP has paid in two checks (payments of an invoice the ERP does not have yet wait, with the reason).
        ids.pSub = procore.seed(
          c,
          'commitments',
          { vendor_id: ids.pAcme, number: 'SC-001', title: 'Concrete' },
          { projectId: ids.pTower },
        ).id
        ids.pInvoice = procore.seed(
          c,
          'requisitions',
          {
            commitment_id: ids.pSub,
            invoice_number: 'INV-2041',
            status: 'approved',
            amount: '1250.10',
            billing_date: '2026-11-30',
          },
          { projectId: ids.pTower },
        ).id
        for (const [amount, check] of [
          ['1000.00', '10421'],
          ['250.10', '10422'],
        ] as const)
          erp.seedPayment({
            vendor_id: ids.eAcme,
            job_id: ids.eTower,
            invoice_number: 'INV-2041',
            amount,
            check_number: check,
          })
        for (const [code, name] of [
          ['01-100', 'General Conditions'],
          ['03-300', 'Cast-in-place Concrete'],
          ['26-100', 'Electrical'],
        ] as const)
          ids[`eCode${code}`] = erp.seed('cost-codes', {
            job_id: ids.eTower,
            code,
            name,
            parent_code: code.slice(0, 2),
          }).id
        // Job costs: the company's cost types in Procore, and the job's totals in the ERP (one on a cost code the
        // job does not have, which the job-cost run reports with its fix).
        for (const [code, name] of [
          ['L', 'Labor'],
          ['M', 'Materials'],
          ['S', 'Subcontract'],
        ] as const)
          procore.seed(c, 'line_item_types', { code, name })
        erp.setCostTotals(ids.eTower, [
          { cost_code: '01-100', cost_type: 'L', budget: '48000.00', actual: '12650.00', committed: '0.00' },
          { cost_code: '03-300', cost_type: 'M', budget: '210000.00', actual: '17980.25', committed: '64000.00' },
          { cost_code: '03-300', cost_type: 'S', budget: '95000.00', actual: '0.00', committed: '95000.00' },
          { cost_code: '26-100', cost_type: 'S', budget: '132500.00', actual: '8800.00', committed: '120000.00' },
          { cost_code: '31-200', cost_type: 'L', budget: '5000.00', actual: '1200.00', committed: '0.00' },
        ])
        erp.seed('jobs', { number: 'J-2024-002', name: 'Harbor Bridge' })
        ids.eAnn = erp.seed('employees', {
          first_name: 'Ann',
          last_name: 'Lee',
          email: 'ann.lee@riverside.example',
          employee_number: 'E-7',
        }).id
      },
    })
  } catch (error) {
    if (aborted.signal.aborted) return // the signal handler stops what was started and exits
    const code = (error as { code?: string }).code
    say(
      code === 'EADDRINUSE'
        ? `Port ${port} is already in use: stop what uses it, or run PORT=${port + 1} npm run demo`
        : `The demo could not start: ${(error as Error).message}`,
    )
    await stop()
    process.exit(1)
  }
  if (aborted.signal.aborted) return

  try {
    const { api, key, procore, erp, call, waitRun, companyId: COMPANY } = env
    const started = await startEditor(env)
    editor = started
    const EDIT = started.url
    const { pAccounting, pAcme, pBright, pDelta, pEstimating, eAccounting, eAcme, eHarbor, pTower, eTower } =
      ids as Record<
        | 'pAccounting'
        | 'pAcme'
        | 'pBright'
        | 'pDelta'
        | 'pEstimating'
        | 'eAccounting'
        | 'eAcme'
        | 'eHarbor'
        | 'pTower'
        | 'eTower',
        string
      >
    const must = async (what: string, status: number, p: ReturnType<typeof call>) => {
      const res = await p
      if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`)
      return res
    }

    // A linked department renamed in Procore afterwards: a discrepancy waits for a person.
    await must(
      'link Accounting',
      201,
      call(
        'POST',
        `/v1/companies/${COMPANY}/links`,
        { type: 'department', procoreId: pAccounting, erpId: eAccounting },
        { 'idempotency-key': randomUUID() },
      ),
    )
    procore.change(COMPANY, 'departments', pAccounting, { name: 'Accounting & Finance' })
    let discrepancyId = ''
    for (let i = 0; i < 200 && !discrepancyId; i++) {
      discrepancyId =
        (await call('GET', `/v1/companies/${COMPANY}/discrepancies?type=department`)).body.items[0]?.id ?? ''
      if (!discrepancyId) await sleep(100)
    }

    say(`
Procore ⇄ ERP sync demo is running (started in ${seconds()}): ${api}/docs (Swagger UI; Authorize with $KEY)
Procore stand-in ${procore.url}, ERP stand-in (Foundation) ${erp.url}, record editor ${EDIT}

Paste these exports into a shell; the README's commands (section "Keeping records in step") run as they are after them:

  export API=${api} C=${COMPANY} KEY=${key} EDIT=${EDIT}
  export PV=${pAcme} EV=${eAcme} EV2=${eHarbor} PV2=${pBright}
  export PD=${pDelta} PJ=${pTower} EJ=${eTower} PDEP=${pEstimating} PI=${ids.pInvoice}
  export PU=${ids.pAnn} EU=${ids.eAnn} ECC=${ids['eCode03-300']}
  export CLIENT_ID=${CLIENT.id} CLIENT_SECRET=${CLIENT.secret} AGENT_URL=${erp.url} AGENT_TOKEN=${erp.token}
  H="Authorization: Bearer $KEY"

PV/EV: the vendor "Acme Concrete" in Procore and the ERP (not linked yet); EV2: "Harbor Steel", only in the ERP;
PV2: "Bright Electric LLC", only in Procore; PD: "Delta Drywall", only in Procore (to send to the ERP);
PJ/EJ: the project "Riverside Tower" in Procore (not ERP-integrated) and its ERP job with 3 cost codes and cost totals;
PI: the approved invoice INV-2041 of Acme Concrete on its subcontract in Riverside Tower (paid in the ERP in two
checks);
PDEP: the department "Estimating", only in Procore; PU/EU: Ann Lee, a Procore user and an ERP employee (not linked yet);
ECC: the job's cost code 03-300 in the ERP; CLIENT_*: the Procore stand-in's service account; AGENT_*: the ERP
stand-in's agent address and token. The commands need curl and jq.

1. Vendors on both sides, with their status and counts:
  curl -s -H "$H" "$API/v1/companies/$C/records/vendor" |
    jq '.counts, [.items[] | {status, procore: .procore.fields.name, erp: .erp.fields.name}]'

2. Suggestions for the Procore vendor $PV, with score and reasons:
  curl -s -H "$H" "$API/v1/companies/$C/records/vendor/procore/$PV/suggestions" | jq '.items[] | {id, score, reasons}'

3. Link it to the ERP vendor $EV (201 at once; a job then puts the ERP id in Procore's origin_id and compares
   the pair; the names differ, so a discrepancy opens: GET the link until origin is "set"):
  curl -s -H "$H" -H 'Content-Type: application/json' -H "Idempotency-Key: $(node -p 'crypto.randomUUID()')" \\
    -d "{\\"type\\":\\"vendor\\",\\"procoreId\\":\\"$PV\\",\\"erpId\\":\\"$EV\\"}" "$API/v1/companies/$C/links" | jq

4. Someone edits the vendor on each side: Procore delivers its webhook, the ERP its signed notification:
  curl -s -X PATCH "$EDIT/procore/vendors/$PV" -d '{"business_phone":"555-0199"}' | jq '{id, business_phone}'
  curl -s -X PATCH "$EDIT/erp/vendors/$EV" -d '{"email":"billing@acme.example"}' | jq '{id, email}'
  curl -s -H "$H" "$API/v1/companies/$C/discrepancies?type=vendor" | jq '.items[] | {id, fields}'

5. Resolve it field by field (see the README for the ETag and apply commands).

6. Who did what, with before and after values:
  curl -s -H "$H" "$API/v1/companies/$C/audit" | jq '.items[] | {at, actor, action, type, before, after}'

7. Link the ERP job "Riverside Tower" ($EJ) to its Procore project ($PJ), which is not ERP-integrated:
  curl -s -H "$H" "$API/v1/companies/$C/records/project/erp/$EJ/link-candidates" \\
    | jq '.items[] | {id, eligible, unmet}'
  curl -s -H "$H" -H 'Content-Type: application/json' -H "Idempotency-Key: $(node -p 'crypto.randomUUID()')" \\
    -d '{"type":"project","procoreId":"'"$PJ"'","erpId":"'"$EJ"'","fix":true}' "$API/v1/companies/$C/links" \\
    | jq '.fixed, .dependents'
  (the job's 3 cost codes then appear in the Procore project:
  curl -s -H "$H" "$API/v1/companies/$C/records/cost_code?status=linked" | jq .counts
  and then its job costs, per cost code and cost type; one on a cost code the job lacks is refused with its fix:
  curl -s -H "$H" "$API/v1/companies/$C/runs?kind=job_costs" | jq '.items[0] | {status, result}')

8. Send the Procore-only vendor "Delta Drywall" ($PD) to the ERP; an approver accepts it as DELTADRY:
  curl -s -H "$H" "$API/v1/companies/$C/exports/eligibility?type=vendor&procoreId=$PD" | jq
  EX=$(curl -s -H "$H" -H 'Content-Type: application/json' \\
    -d '{"type":"vendor","procoreId":"'"$PD"'","sentBy":{"name":"Pat"}}' "$API/v1/companies/$C/exports" | jq -r .id)
  curl -s -H "$H" "$API/v1/companies/$C/exports?status=pending_acceptance" | jq '.items[] | {id, status, sentFields}'
  ETAG=$(curl -s -o /dev/null -D - -H "$H" "$API/v1/companies/$C/exports/$EX" | tr -d '\\r' | sed -n 's/^etag: //Ip')
  curl -s -H "$H" -H 'Content-Type: application/json' -H "If-Match: $ETAG" \\
    -d '{"erpId":"DELTADRY","companyType":"sub"}' "$API/v1/companies/$C/exports/$EX/accept" | jq .status
  curl -s -H "$H" "$API/v1/companies/$C/exports/$EX" | jq '.status, .erpId, [.history[].to]'

9. Walk the five-step set-up (README "Onboarding a company"): where it stands, the Procore company and cost code
   lists to choose from, then import users in auto mode once step 1 is done:
  curl -s -H "$H" "$API/v1/companies/$C/onboarding" | jq '.next, [.steps[] | {step, status, counts}]'
  curl -s -H "$H" "$API/v1/companies/$C/onboarding/steps/company/options" | jq '.costCodeLists'

10. Time entries: link Ann Lee, then submit approved time (records named erp:<id> or procore:<id>); each becomes a
   Procore timecard entry (after step 7, which links the job and its cost codes):
  curl -s -H "$H" -H 'Content-Type: application/json' -H "Idempotency-Key: $(node -p 'crypto.randomUUID()')" \\
    -d '{"type":"user","procoreId":"'"$PU"'","erpId":"'"$EU"'"}' "$API/v1/companies/$C/links" | jq .id
  curl -s -H "$H" -H 'Content-Type: application/json' -d '{"entries":[{"externalId":"TC-1","user":"erp:'"$EU"'",
    "project":"erp:'"$EJ"'","costCode":"erp:'"$ECC"'","date":"2026-12-01","hours":8,
    "approvedAt":"2026-12-02T16:00:00Z"}]}' \\
    "$API/v1/companies/$C/time-entries" | jq '.counts'
  curl -s -H "$H" "$API/v1/companies/$C/time-entries" | jq '.items[] | {externalId, status, procoreId, originId}'

Also waiting: the department "Accounting", renamed in Procore after it was linked (discrepancy ${discrepancyId || '?'}).
${check ? '' : 'Ctrl-C stops everything.'}`)

    if (check) {
      let link = await must(
        'step 3: link',
        201,
        call(
          'POST',
          `/v1/companies/${COMPANY}/links`,
          { type: 'vendor', procoreId: pAcme, erpId: eAcme },
          { 'idempotency-key': randomUUID() },
        ),
      )
      // The link answers once committed; its job writes Procore's origin_id and compares the pair.
      for (let i = 0; i < 200 && link.body.origin === 'pending'; i++) {
        await sleep(50)
        link = await call('GET', `/v1/companies/${COMPANY}/links/${link.body.id}`)
      }
      const toProcore = await waitRun(
        (
          await must(
            'create in Procore',
            202,
            call(
              'POST',
              `/v1/companies/${COMPANY}/records/vendor/create-in-procore`,
              { erpIds: [eHarbor] },
              { 'idempotency-key': randomUUID() },
            ),
          )
        ).body.id,
      )
      const toErp = await waitRun(
        (
          await must(
            'create in the ERP',
            202,
            call(
              'POST',
              `/v1/companies/${COMPANY}/records/vendor/create-in-erp`,
              { procoreIds: [pBright] },
              { 'idempotency-key': randomUUID() },
            ),
          )
        ).body.id,
      )
      const d = await must(
        'department discrepancy',
        200,
        call('GET', `/v1/companies/${COMPANY}/discrepancies/${discrepancyId}`),
      )
      const applied = await must(
        'apply',
        200,
        call(
          'POST',
          `/v1/companies/${COMPANY}/discrepancies/${discrepancyId}/apply`,
          { fields: { name: 'procore' } },
          { 'idempotency-key': randomUUID(), 'if-match': d.etag ?? '' },
        ),
      )
      const audit = await must('step 6: audit', 200, call('GET', `/v1/companies/${COMPANY}/audit`))
      const projectLink = await must(
        'step 7: link the project with fix',
        201,
        call(
          'POST',
          `/v1/companies/${COMPANY}/links`,
          { type: 'project', procoreId: pTower, erpId: eTower, fix: true },
          { 'idempotency-key': randomUUID() },
        ),
      )
      let followed = 0
      for (let i = 0; i < 200 && followed < 3; i++) {
        followed = procore.list(COMPANY, 'cost_codes').filter((x) => String(x.project_id) === pTower).length
        if (followed < 3) await sleep(100)
      }
      const sent = await must(
        'step 8: send',
        201,
        call('POST', `/v1/companies/${COMPANY}/exports`, {
          type: 'vendor',
          procoreId: pDelta,
          sentBy: { name: 'Pat' },
        }),
      )
      await must(
        'step 8: accept',
        200,
        call(
          'POST',
          `/v1/companies/${COMPANY}/exports/${sent.body.id}/accept`,
          { erpId: 'DELTADRY', companyType: 'sub' },
          { 'if-match': sent.etag ?? '' },
        ),
      )
      let exported = sent
      for (let i = 0; i < 200 && exported.body.status !== 'exported'; i++) {
        await sleep(50)
        exported = await call('GET', `/v1/companies/${COMPANY}/exports/${sent.body.id}`)
      }
      // Step 9: choose the company's ERP list, then import users (Ann Lee links by e-mail).
      const options = await must(
        'step 9: options',
        200,
        call('GET', `/v1/companies/${COMPANY}/onboarding/steps/company/options`),
      )
      const erpList = (options.body.costCodeLists as Array<{ id: string; isErpList: boolean }>).find((l) => l.isErpList)
      await must(
        'step 9: company',
        200,
        call(
          'POST',
          `/v1/companies/${COMPANY}/onboarding/steps/company`,
          { costCodeListId: erpList?.id },
          { 'idempotency-key': randomUUID() },
        ),
      )
      const users = await waitRun(
        (
          await must(
            'step 9: users',
            202,
            call(
              'POST',
              `/v1/companies/${COMPANY}/onboarding/steps/users`,
              { mode: 'auto' },
              { 'idempotency-key': randomUUID() },
            ),
          )
        ).body.run.id,
      )
      // Step 10: time entries for Ann Lee, linked by the user import of step 9.
      const entry = {
        externalId: 'TC-1',
        user: `erp:${ids.eAnn}`,
        project: `erp:${eTower}`,
        costCode: `erp:${ids['eCode03-300']}`,
        date: '2026-12-01',
        hours: 8,
        approvedAt: '2026-12-02T16:00:00Z',
      }
      let submitted = await call('POST', `/v1/companies/${COMPANY}/time-entries`, { entries: [entry] })
      // The job's cost codes are linked by a background run right after the project link.
      for (let i = 0; i < 200 && submitted.status === 422; i++) {
        await sleep(100)
        submitted = await call('POST', `/v1/companies/${COMPANY}/time-entries`, { entries: [entry] })
      }
      let timecards = 0
      for (let i = 0; i < 200 && timecards === 0; i++) {
        timecards = procore.list(COMPANY, 'timecard_entries').length
        if (timecards === 0) await sleep(100)
      }
      const ok =
        link.body.origin === 'set' &&
        toProcore.result.counts.created === 1 &&
        toErp.result.counts.created === 1 &&
        applied.body.status === 'resolved' &&
        erp.get('departments', eAccounting)?.name === 'Accounting & Finance' &&
        projectLink.body.fixed.length === 2 &&
        followed === 3 &&
        exported.body.status === 'exported' &&
        users.status === 'succeeded' &&
        users.result.counts.linked === 1 &&
        submitted.status === 202 &&
        timecards === 1
      say(
        `check: link ${link.body.origin}, create-in-procore ${JSON.stringify(toProcore.result.counts)}, ` +
          `create-in-erp ${JSON.stringify(toErp.result.counts)}, ` +
          `apply ${applied.body.status}, audit entries ${audit.body.items.length}, ` +
          `send to ERP ${exported.body.status}, onboarding users ${JSON.stringify(users.result?.counts)}, ` +
          `time entries in Procore ${timecards}: ` +
          `${ok ? 'OK' : 'FAILED'} ` +
          `(project linked with ${projectLink.body.fixed.length} fixes, ${followed} cost codes followed)`,
      )
      await stop()
      process.exit(ok ? 0 : 1)
    }
  } catch (error) {
    say(`The demo failed: ${(error as Error).message}`)
    await stop()
    process.exit(1)
  }
}

await main()
