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
 */
async function startEditor(env: Environment): Promise<{ url: string; close(): Promise<void> }> {
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString()))
    req.on('end', () => {
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
        procore.seed(c, 'users', {
          first_name: 'Ann',
          last_name: 'Lee',
          email_address: 'ann.lee@riverside.example',
          employee_id: 'E-7',
          is_employee: true,
        })
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
        for (const [code, name] of [
          ['01-100', 'General Conditions'],
          ['03-300', 'Cast-in-place Concrete'],
          ['26-100', 'Electrical'],
        ] as const)
          erp.seed('cost-codes', { job_id: ids.eTower, code, name, parent_code: code.slice(0, 2) })
        erp.seed('jobs', { number: 'J-2024-002', name: 'Harbor Bridge' })
        erp.seed('employees', {
          first_name: 'Ann',
          last_name: 'Lee',
          email: 'ann.lee@riverside.example',
          employee_number: 'E-7',
        })
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
  export PD=${pDelta} PJ=${pTower} EJ=${eTower} PDEP=${pEstimating}
  export CLIENT_ID=${CLIENT.id} CLIENT_SECRET=${CLIENT.secret} AGENT_URL=${erp.url} AGENT_TOKEN=${erp.token}
  H="Authorization: Bearer $KEY"

PV/EV: the vendor "Acme Concrete" in Procore and the ERP (not linked yet); EV2: "Harbor Steel", only in the ERP;
PV2: "Bright Electric LLC", only in Procore; PD: "Delta Drywall", only in Procore (to send to the ERP);
PJ/EJ: the project "Riverside Tower" in Procore (not ERP-integrated) and its ERP job with 3 cost codes;
PDEP: the department "Estimating", only in Procore; CLIENT_*: the Procore stand-in's service account; AGENT_*: the ERP
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
  curl -s -H "$H" "$API/v1/companies/$C/records/cost_code?status=linked" | jq .counts)

8. Send the Procore-only vendor "Delta Drywall" ($PD) to the ERP; an approver accepts it as DELTADRY:
  curl -s -H "$H" "$API/v1/companies/$C/exports/eligibility?type=vendor&procoreId=$PD" | jq
  EX=$(curl -s -H "$H" -H 'Content-Type: application/json' \\
    -d '{"type":"vendor","procoreId":"'"$PD"'","sentBy":{"name":"Pat"}}' "$API/v1/companies/$C/exports" | jq -r .id)
  curl -s -H "$H" "$API/v1/companies/$C/exports?status=pending_acceptance" | jq '.items[] | {id, status, sentFields}'
  ETAG=$(curl -s -o /dev/null -D - -H "$H" "$API/v1/companies/$C/exports/$EX" | tr -d '\\r' | sed -n 's/^etag: //Ip')
  curl -s -H "$H" -H 'Content-Type: application/json' -H "If-Match: $ETAG" \\
    -d '{"erpId":"DELTADRY","companyType":"sub"}' "$API/v1/companies/$C/exports/$EX/accept" | jq .status
  curl -s -H "$H" "$API/v1/companies/$C/exports/$EX" | jq '.status, .erpId, [.history[].to]'

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
      const ok =
        link.body.origin === 'set' &&
        toProcore.result.counts.created === 1 &&
        toErp.result.counts.created === 1 &&
        applied.body.status === 'resolved' &&
        erp.get('departments', eAccounting)?.name === 'Accounting & Finance' &&
        projectLink.body.fixed.length === 2 &&
        followed === 3 &&
        exported.body.status === 'exported'
      say(
        `check: link ${link.body.origin}, create-in-procore ${JSON.stringify(toProcore.result.counts)}, ` +
          `create-in-erp ${JSON.stringify(toErp.result.counts)}, ` +
          `apply ${applied.body.status}, audit entries ${audit.body.items.length}, ` +
          `send to ERP ${exported.body.status}: ${ok ? 'OK' : 'FAILED'} ` +
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
