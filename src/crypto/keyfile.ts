import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * For a machine with no ENCRYPTION_KEYS: a key generated once under DATA_DIR, readable only by
 * its owner, so `npm start` works with no configuration. Production sets ENCRYPTION_KEYS.
 */
export async function localKeyRing(dataDir: string): Promise<string> {
  const file = path.resolve(dataDir, 'encryption.key')
  if (!existsSync(file)) {
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, `local:${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error // another process created it first
      },
    )
  }
  return (await readFile(file, 'utf8')).trim()
}
