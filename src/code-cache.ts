// A V8 code cache for the built service (dist/src/service.cjs, see src/cli/build.ts), written once the service is
// ready. Node's compile cache is made as a module is loaded, so it holds only the functions compiled by then; most of
// the service's functions are compiled later, as its plugins and routes are registered, and were compiled again at
// every start. A cache made after the start holds those too.
//
// The cache file is named after the bundle's contents (and Node's version), so a changed build never reads the cache
// of another; what is read is checked (a CRC-32 of its own, then V8's checks), and a cache that fails them, or a
// directory that cannot be read or written, only means a start without one.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import vm from 'node:vm'
import { crc32 } from 'node:zlib'

/** What a start did with the code cache: none found, found and used, or found and refused (then written again). */
export type CodeCacheStatus = 'none' | 'used' | 'rejected'

interface Hook {
  status: CodeCacheStatus
  /** Called by the service once it is ready: writes the cache, unless the one used is still good. */
  ready(): void
}

const HOOK = Symbol.for('procore-erp-sync.code-cache')

/** For the service: the code cache of the start, when the service was loaded by `runWithCodeCache`. */
export function codeCache(): Hook | undefined {
  return (globalThis as Record<symbol, Hook | undefined>)[HOOK]
}

/**
 * The cache directory: Node's compile cache directory (NODE_COMPILE_CACHE, else os.tmpdir()/node-compile-cache).
 * A file in it is a CRC-32 of the rest (4 bytes, big-endian), then V8's cached data.
 */
export function codeCacheFile(bundle: string, source: Buffer, dir?: string): string {
  const key = createHash('sha1').update(`${process.version} ${process.arch}\n`).update(source).digest('hex')
  const folder = dir ?? (process.env.NODE_COMPILE_CACHE || path.join(tmpdir(), 'node-compile-cache'))
  return path.join(folder, `${path.basename(bundle)}-${key}.v8`)
}

/** Runs a CommonJS bundle as Node would require it, compiled from the code cache when there is a good one. */
export function runWithCodeCache(bundle: string): void {
  // Read as bytes: hashing those is cheaper than hashing the text (a few ms for the 2 MB bundle).
  const bytes = readFileSync(bundle)
  const file = codeCacheFile(bundle, bytes)
  let cachedData: Buffer | undefined
  let status: CodeCacheStatus = 'none'
  try {
    const read = readFileSync(file)
    if (read.length > 4 && read.readUInt32BE(0) === crc32(read.subarray(4))) cachedData = read.subarray(4)
    else status = 'rejected'
  } catch {
    // none yet, or not readable
  }
  const source = bytes.toString('utf8')
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  if (cachedData) status = script.cachedDataRejected ? 'rejected' : 'used'
  ;(globalThis as Record<symbol, Hook>)[HOOK] = {
    status,
    ready() {
      if (status === 'used') return
      const data = script.createCachedData()
      const crc = Buffer.alloc(4)
      crc.writeUInt32BE(crc32(data))
      // Written aside and renamed, so that a start at the same time never reads half a file.
      const partial = `${file}.${process.pid}`
      try {
        mkdirSync(path.dirname(file), { recursive: true })
        writeFileSync(partial, Buffer.concat([crc, data]))
        renameSync(partial, file)
      } catch {
        try {
          rmSync(partial, { force: true })
        } catch {
          // no cache, then
        }
      }
    },
  }
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void
  const module = { exports: {} }
  wrapper(module.exports, createRequire(bundle), module, bundle, path.dirname(bundle))
}
