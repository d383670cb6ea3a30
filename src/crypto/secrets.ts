import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * AES-256-GCM for secrets at rest (OAuth tokens, client secrets, ERP tokens, notification
 * secrets). Each value is bound to where it belongs through the additional authenticated data
 * (e.g. `company:5358233:procore.refresh_token`), so a ciphertext copied to another company or
 * column fails to open. The key id travels with the value, so keys can rotate.
 *
 * Format: `v1.<keyId>.<iv b64url>.<ciphertext b64url>.<tag b64url>`.
 */
export class SecretBox {
  private readonly keys: Map<string, Buffer>
  private readonly currentId: string

  /** keys: first is current (used to seal); the others only open older values. */
  constructor(keys: ReadonlyArray<{ id: string; key: Buffer }>) {
    const first = keys[0]
    if (!first) throw new Error('SecretBox needs at least one key')
    for (const k of keys) {
      if (k.key.length !== 32) throw new Error(`encryption key ${k.id} must be 32 bytes`)
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(k.id))
        throw new Error(`encryption key id ${k.id} must be 1–32 of A-Z a-z 0-9 _ -`)
    }
    this.keys = new Map(keys.map((k) => [k.id, k.key]))
    this.currentId = first.id
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentId)!, iv)
    cipher.setAAD(Buffer.from(aad))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return [
      'v1',
      this.currentId,
      iv.toString('base64url'),
      ciphertext.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.')
  }

  open(sealed: string, aad: string): string {
    const [version, keyId, iv, ciphertext, tag] = sealed.split('.')
    const key = keyId === undefined ? undefined : this.keys.get(keyId)
    if (version !== 'v1' || !key || !iv || ciphertext === undefined || !tag)
      throw new Error('secret cannot be opened: unknown format or key')
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(aad))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
  }

  /** True when the value was sealed with an older key and should be re-sealed. */
  isStale(sealed: string): boolean {
    return sealed.split('.')[1] !== this.currentId
  }

  /** HMAC with a key derived from the current encryption key, for signing short-lived tokens (OAuth state). */
  sign(purpose: string, data: string): string {
    const key = createHash('sha256').update(this.keys.get(this.currentId)!).update(`sign:${purpose}`).digest()
    return createHmac('sha256', key).update(data).digest('base64url')
  }

  verify(purpose: string, data: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(purpose, data))
    const given = Buffer.from(signature)
    return expected.length === given.length && timingSafeEqual(expected, given)
  }
}

/** Parses `ENCRYPTION_KEYS`: `id:base64key[,id:base64key…]`, current first. */
export function parseKeyRing(value: string): Array<{ id: string; key: Buffer }> {
  return value.split(',').map((entry) => {
    const [id, encoded] = entry.trim().split(':')
    if (!id || !encoded) throw new Error('each entry must be <id>:<base64 of 32 bytes>')
    return { id, key: Buffer.from(encoded, 'base64') }
  })
}

/** Constant-time equality of two strings of any length (both are hashed first). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

export const newSecret = (bytes = 32) => randomBytes(bytes).toString('base64url')
