import t from 'tap'
import { sign, verify, newNotificationSecret, TIMESTAMP_TOLERANCE_SECONDS } from '../../src/erp/signature.js'
import { signStandardWebhook } from '../standins/erp/index.js'

// The Standard Webhooks reference vector, and the protocol README's worked example.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const REFERENCE = {
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: '1614265330',
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}
const README = {
  id: 'msg_2Kx9d8QvT3mZ',
  timestamp: '1714564800',
  body: '{"type":"record.updated","resource":"vendors","id":"V000123","occurred_at":"2024-05-01T12:00:00.000000Z"}',
  signature: 'v1,Q2bqd+u47Lb6Ds1bupZsHsyIECbO+TO+hm1b7N7SEqA=',
}

const at = (v: { timestamp: string }, offsetSeconds = 0) => (Number(v.timestamp) + offsetSeconds) * 1000
const input = (v: typeof REFERENCE, over: Partial<Parameters<typeof verify>[0]> = {}) => ({
  id: v.id,
  timestamp: v.timestamp,
  signature: v.signature,
  body: Buffer.from(v.body),
  secrets: [SECRET],
  now: at(v),
  ...over,
})

t.test('known answers: the reference vector and the README example', async (t) => {
  for (const v of [REFERENCE, README]) {
    t.equal(sign(SECRET, v.id, v.timestamp, v.body), v.signature)
    t.equal(signStandardWebhook(SECRET, v.id, v.timestamp, v.body), v.signature, 'the stand-in signs the same')
    t.match(verify(input(v)), { ok: true, id: v.id, timestamp: Number(v.timestamp) })
  }
  t.match(
    verify(input(REFERENCE, { secrets: [SECRET.slice('whsec_'.length)] })),
    { ok: true },
    'the whsec_ prefix is optional',
  )
})

t.test('the rejection matrix', async (t) => {
  const cases: Array<[string, Partial<Parameters<typeof verify>[0]>, string]> = [
    ['no webhook-id', { id: undefined }, 'headers_missing'],
    ['no webhook-timestamp', { timestamp: undefined }, 'headers_missing'],
    ['no webhook-signature', { signature: undefined }, 'headers_missing'],
    ['empty signature', { signature: '' }, 'headers_missing'],
    ['timestamp not a number', { timestamp: '1614265330.5' }, 'headers_invalid'],
    ['id with spaces', { id: 'msg 1' }, 'headers_invalid'],
    ['too old', { now: at(REFERENCE, TIMESTAMP_TOLERANCE_SECONDS + 1) }, 'timestamp_too_old'],
    ['too new', { now: at(REFERENCE, -(TIMESTAMP_TOLERANCE_SECONDS + 1)) }, 'timestamp_too_new'],
    ['tampered body', { body: Buffer.from('{"test": 2432232315}') }, 'signature_invalid'],
    ['other id', { id: 'msg_other' }, 'signature_invalid'],
    ['another secret', { secrets: [newNotificationSecret()] }, 'signature_invalid'],
    ['no secret at all', { secrets: [] }, 'signature_invalid'],
    ['truncated signature', { signature: REFERENCE.signature.slice(0, -4) }, 'signature_invalid'],
    ['bare signature without version', { signature: REFERENCE.signature.slice(3) }, 'signature_invalid'],
    ['right bytes under v1a', { signature: REFERENCE.signature.replace('v1,', 'v1a,') }, 'signature_invalid'],
    ['body re-serialised', { body: Buffer.from(JSON.stringify(JSON.parse(REFERENCE.body))) }, 'signature_invalid'],
  ]
  for (const [name, over, failure] of cases) t.match(verify(input(REFERENCE, over)), { ok: false, failure }, name)
  t.match(
    verify(input(REFERENCE, { now: at(REFERENCE, TIMESTAMP_TOLERANCE_SECONDS) })),
    { ok: true },
    'exactly 5 minutes old is accepted',
  )
  t.match(
    verify(input(REFERENCE, { now: at(REFERENCE, -TIMESTAMP_TOLERANCE_SECONDS) })),
    { ok: true },
    'exactly 5 minutes ahead is accepted',
  )
})

t.test('rotation: one valid signature among several, for any valid secret, is enough', async (t) => {
  const next = newNotificationSecret()
  const withNext = sign(next, REFERENCE.id, REFERENCE.timestamp, REFERENCE.body)
  t.match(
    verify(input(REFERENCE, { signature: `v1,Zm9v ${withNext}`, secrets: [next] })),
    { ok: true },
    'a broken entry before the valid one',
  )
  t.match(
    verify(input(REFERENCE, { signature: `${withNext} ${REFERENCE.signature}`, secrets: [SECRET] })),
    { ok: true },
    'old secret, two signatures',
  )
  t.match(
    verify(input(REFERENCE, { signature: REFERENCE.signature, secrets: [next, SECRET] })),
    { ok: true },
    'previous secret still valid',
  )
  t.match(verify(input(REFERENCE, { signature: withNext, secrets: [newNotificationSecret(), SECRET] })), {
    ok: false,
    failure: 'signature_invalid',
  })
  t.match(newNotificationSecret(), /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.equal(Buffer.from(newNotificationSecret().slice(6), 'base64').length, 32)
})
