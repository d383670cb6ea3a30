// The built service's entry point (dist/src/server.js, see src/cli/build.ts). It turns on Node's module compile cache
// (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE) for what is loaded on first use, then runs the service's
// bundle from a code cache of its own, made once the service was ready (src/code-cache.ts). Asked for source maps
// (`node --enable-source-maps`, also in NODE_OPTIONS), it requires the bundle instead: Node maps the stack traces of
// what it loads itself, not those of code run through node:vm.
import { createRequire, enableCompileCache } from 'node:module'
import path from 'node:path'
import { runWithCodeCache } from './code-cache.js'

enableCompileCache()
const bundle = path.join(import.meta.dirname, 'service.cjs')
const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
if (flags.includes('--enable-source-maps')) createRequire(import.meta.url)(bundle)
else runWithCodeCache(bundle)
