import { readFileSync } from 'node:fs'
import t from 'tap'

// `npm test` and `npm start` run on the Node the project pins (the `node` devDependency), even where
// npm itself runs on an older system Node.
t.test('tests run on the pinned Node', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    devDependencies: Record<string, string>
  }
  t.equal(process.version, `v${pkg.devDependencies.node}`)
  t.equal(process.versions.node.split('.')[0], '24')
})
