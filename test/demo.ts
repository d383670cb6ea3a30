// npm run demo: the service with the Procore and ERP stand-ins and sample data for one company,
// then a short curl walkthrough of linking, creating and resolving a discrepancy.
//
//   npm run demo               # runs until Ctrl-C (PORT, default 3000; a fresh database on the DATABASE_URL server,
//                              # else an embedded PostgreSQL)
//   npm run demo -- --check    # also walks through the steps itself and exits (0 when every step worked)
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { startEnvironment } from './sync/fixtures/environment.js'

const check = process.argv.includes('--check')
const port = Number(process.env.PORT ?? 3000)

async function main() {
  // Sample data: a few records of each kind, some on both sides, some on one.
  const ids: Record<string, string> = {}
  const env = await startEnvironment({
    serverUrl: process.env.DATABASE_URL,
    port,
    logLevel: process.env.LOG_LEVEL ?? 'warn',
    seed: (procore, erp, c) => {
      ids.pAccounting = procore.seed(c, 'departments', { name: 'Accounting' }).id
      procore.seed(c, 'departments', { name: 'Estimating' })
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
      procore.seed(c, 'projects', { name: 'Riverside Tower', project_number: 'J-2024-001' })
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
      erp.seed('jobs', { number: 'J-2024-001', name: 'Riverside Tower' })
      erp.seed('jobs', { number: 'J-2024-002', name: 'Harbor Bridge' })
      erp.seed('employees', {
        first_name: 'Ann',
        last_name: 'Lee',
        email: 'ann.lee@riverside.example',
        employee_number: 'E-7',
      })
    },
  })
  const stop = () => env.stop()
  process.once('SIGINT', () => void stop().then(() => process.exit(0)))
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)))

  try {
    const { api, key, procore, erp, call, waitRun, companyId: COMPANY } = env
    const { pAccounting, pAcme, pBright, pDelta, eAccounting, eAcme, eHarbor } = ids as Record<
      'pAccounting' | 'pAcme' | 'pBright' | 'pDelta' | 'eAccounting' | 'eAcme' | 'eHarbor',
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

    const H = `-H "Authorization: Bearer $KEY"`
    const J = `-H 'Content-Type: application/json' -H "Idempotency-Key: $(uuidgen || date +%s%N)"`
    process.stdout.write(
      `
Procore ⇄ ERP sync demo is running: ${api}/docs (Swagger UI; Authorize with the key below)
Procore stand-in ${procore.url}, ERP stand-in (Foundation) ${erp.url}

  export API=${api} C=${COMPANY} KEY=${key}

1. Vendors on both sides, with their status and counts:
  curl -s ${H} "$API/v1/companies/$C/records/vendor" | jq '.counts, ` +
        `[.items[] | {status, procore: .procore.fields.name, erp: .erp.fields.name}]'

2. Suggestions for the Procore vendor "Acme Concrete" (${pAcme}), with score and reasons:
  curl -s ${H} "$API/v1/companies/$C/records/vendor/procore/${pAcme}/suggestions" | jq '.items[] | {id, score, reasons}'

3. Link it to the ERP vendor ${eAcme}; the ERP id lands in Procore's origin_id, the code in origin_code:
  curl -s ${H} ${J} -d '{"type":"vendor","procoreId":"${pAcme}","erpId":"${eAcme}"}' "$API/v1/companies/$C/links" | jq

4. Create the ERP-only vendor "Harbor Steel" in Procore, ` +
        `and the Procore-only "Bright Electric LLC" in the ERP (each a run to poll):
  curl -s ${H} ${J} -d '{"erpIds":["${eHarbor}"]}' "$API/v1/companies/$C/records/vendor/create-in-procore" | jq .id
  curl -s ${H} ${J} -d '{"procoreIds":["${pBright}"]}' "$API/v1/companies/$C/records/vendor/create-in-erp" | jq .id
  curl -s ${H} "$API/v1/companies/$C/runs/<run id>" | jq '.status, .result.items'
  (Before step 3, create-in-erp for Acme is refused by the duplicate guard: ` +
        `the result names the ERP vendor that already matches.)

5. The department "Accounting" was renamed in Procore after it was linked: resolve it field by field.
  curl -s ${H} "$API/v1/companies/$C/discrepancies" | jq '.items[] | {id, fields}'
  curl -si ${H} "$API/v1/companies/$C/discrepancies/${discrepancyId || '<id>'}" | grep -i etag
  curl -s ${H} ${J} -H 'If-Match: "<etag>"' -d '{"fields":{"name":"procore"}}' ` +
        `"$API/v1/companies/$C/discrepancies/${discrepancyId || '<id>'}/apply" | jq '.status, .applied'

6. Who did what, with before and after values:
  curl -s ${H} "$API/v1/companies/$C/audit" | jq '.items[] | {at, actor, action, type, before, after}'

7. Send the Procore-only vendor "Delta Drywall" (${pDelta}) to the ERP; an approver accepts it as DELTADRY:
  curl -s ${H} "$API/v1/companies/$C/exports/eligibility?type=vendor&procoreId=${pDelta}" | jq
  curl -si ${H} ${J} -d '{"type":"vendor","procoreId":"${pDelta}","sentBy":{"name":"Pat"}}' ` +
        `"$API/v1/companies/$C/exports" | grep -iE 'etag|location'
  curl -s ${H} "$API/v1/companies/$C/exports?status=pending_acceptance" | jq '.items[] | {id, status, sentFields}'
  curl -s ${H} ${J} -H 'If-Match: "<etag>"' -d '{"erpId":"DELTADRY","companyType":"sub"}' ` +
        `"$API/v1/companies/$C/exports/<id>/accept" | jq .status
  curl -s ${H} "$API/v1/companies/$C/exports/<id>" | jq '.status, .erpId, [.history[].to]'

Sync settings (direction, field owners, auto-import): GET/PUT $API/v1/companies/$C/sync-settings
${check ? '' : 'Ctrl-C stops everything.\n'}`,
    )

    if (check) {
      const link = await must(
        'step 3: link',
        201,
        call(
          'POST',
          `/v1/companies/${COMPANY}/links`,
          { type: 'vendor', procoreId: pAcme, erpId: eAcme },
          { 'idempotency-key': randomUUID() },
        ),
      )
      const toProcore = await waitRun(
        (
          await must(
            'step 4a',
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
            'step 4b',
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
        'step 5: discrepancy',
        200,
        call('GET', `/v1/companies/${COMPANY}/discrepancies/${discrepancyId}`),
      )
      const applied = await must(
        'step 5: apply',
        200,
        call(
          'POST',
          `/v1/companies/${COMPANY}/discrepancies/${discrepancyId}/apply`,
          { fields: { name: 'procore' } },
          { 'idempotency-key': randomUUID(), 'if-match': d.etag ?? '' },
        ),
      )
      const audit = await must('step 6: audit', 200, call('GET', `/v1/companies/${COMPANY}/audit`))
      const sent = await must(
        'step 7: send',
        201,
        call('POST', `/v1/companies/${COMPANY}/exports`, {
          type: 'vendor',
          procoreId: pDelta,
          sentBy: { name: 'Pat' },
        }),
      )
      await must(
        'step 7: accept',
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
        exported.body.status === 'exported'
      process.stdout.write(
        `check: link ${link.body.origin}, create-in-procore ${JSON.stringify(toProcore.result.counts)}, ` +
          `create-in-erp ${JSON.stringify(toErp.result.counts)}, ` +
          `apply ${applied.body.status}, audit entries ${audit.body.items.length}, ` +
          `send to ERP ${exported.body.status}: ${ok ? 'OK' : 'FAILED'}\n`,
      )
      await stop()
      process.exit(ok ? 0 : 1)
    }
  } catch (error) {
    console.error(error)
    await stop()
    process.exit(1)
  }
}

await main()
