import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { SecretBox, parseKeyRing, safeEqual } from '../../src/crypto/secrets.js'

const key = (id: string) => ({ id, key: randomBytes(32) })

t.test('sealed secrets open only with the same key and the same binding', async (t) => {
  const k1 = key('k1')
  const box = new SecretBox([k1])
  fc.assert(
    fc.property(
      fc.string(),
      fc.string({ minLength: 1 }),
      (plain, aad) => box.open(box.seal(plain, aad), aad) === plain,
    ),
  )

  const sealed = box.seal('refresh-token-canary', 'company:1:procore.refresh_token')
  t.notMatch(sealed, /canary/, 'ciphertext does not contain the plaintext')
  t.not(box.seal('same', 'a'), box.seal('same', 'a'), 'a fresh nonce every time')
  t.throws(() => box.open(sealed, 'company:2:procore.refresh_token'), 'another company cannot open it')
  t.throws(() => box.open(sealed, 'company:1:procore.access_token'), 'another column cannot open it')
  const parts = sealed.split('.')
  const flipped = Buffer.from(parts[3]!, 'base64url')
  flipped[0] = flipped[0]! ^ 1
  t.throws(
    () =>
      box.open(
        [...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'),
        'company:1:procore.refresh_token',
      ),
    'tampering is detected',
  )

  // Rotation: a new current key seals; the old one still opens what it sealed.
  const rotated = new SecretBox([key('k2'), k1])
  t.equal(rotated.open(sealed, 'company:1:procore.refresh_token'), 'refresh-token-canary')
  t.ok(rotated.isStale(sealed))
  t.notOk(rotated.isStale(rotated.seal('x', 'y')))
  t.throws(
    () => new SecretBox([key('k2')]).open(sealed, 'company:1:procore.refresh_token'),
    /unknown format or key/,
    'without the old key it cannot be opened',
  )
})

t.test('signatures and constant-time comparison', async (t) => {
  const box = new SecretBox([key('k1')])
  const sig = box.sign('oauth-state', 'payload')
  t.ok(box.verify('oauth-state', 'payload', sig))
  t.notOk(box.verify('oauth-state', 'payload2', sig))
  t.notOk(box.verify('other-purpose', 'payload', sig))
  t.notOk(box.verify('oauth-state', 'payload', sig.slice(1)))
  t.ok(safeEqual('Bearer abc', 'Bearer abc'))
  t.notOk(safeEqual('Bearer abc', 'Bearer abd'))
  t.notOk(safeEqual('short', 'a much longer value'))
})

t.test('key ring parsing', async (t) => {
  const ring = parseKeyRing(`new:${randomBytes(32).toString('base64')},old:${randomBytes(32).toString('base64')}`)
  t.same(
    ring.map((k) => k.id),
    ['new', 'old'],
  )
  t.throws(() => parseKeyRing('nokey'))
  t.throws(() => new SecretBox(parseKeyRing(`short:${randomBytes(16).toString('base64')}`)), /32 bytes/)
})
