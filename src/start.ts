// The built service's entry point (dist/src/server.js, see src/cli/build.ts). It turns on Node's module compile cache
// (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE) before the service is loaded: from the second start of
// a build on, the service's code is read from that cache instead of being compiled again.
import { enableCompileCache } from 'node:module'

enableCompileCache()
await import('./server.js')
