import t from 'tap'
import { judge, median, percentile, table, toRow } from './lib/stats.js'

t.test('median and percentile', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.ok(Number.isNaN(median([])))
  t.equal(median([Number.NaN, 5]), 5)
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5)
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10)
  t.equal(percentile([7], 99), 7)
})

t.test('a row: median of rounds, ratio to the baseline median, target judged', async (t) => {
  const row = toRow({
    id: 'intake',
    label: 'intake',
    unit: 'req/s',
    rounds: [100, 300, 200],
    baselineLabel: 'bare',
    baselineRounds: [400, 410, 390],
    target: { kind: 'minRatio', value: 0.7 },
  })
  t.equal(row.value, 200)
  t.equal(row.baseline, 400)
  t.equal(row.ratio, 0.5)
  t.equal(row.met, false)
  t.equal(row.target, '>= 0.7x baseline')
  t.equal(judge({ kind: 'max', value: 50 }, 49, null), true)
  t.equal(judge({ kind: 'min', value: 1000 }, 999, null), false)
  t.equal(judge({ kind: 'maxRatio', value: 2 }, 10, null), null)
  t.equal(judge(undefined, 1, 1), null)
})

t.test('the table has a header, a rule and one line per row', async (t) => {
  const rows = [
    toRow({ id: 'a', label: 'A', unit: 'ms', rounds: [1, 2, 3], target: { kind: 'max', value: 50 } }),
    toRow({ id: 'b', label: 'B', unit: 'ms', rounds: [] }),
  ]
  const lines = table(rows).split('\n')
  t.equal(lines.length, 4)
  t.match(lines[0], /^figure/)
  t.match(lines[2], /A\s+\| 2\.00 ms .*\| met/)
  t.match(lines[3], /B\s+\| - ms/)
})
