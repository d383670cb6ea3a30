// The pure pieces of the benchmark report: medians over rounds, ratios to baselines, targets, the table.

export const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Nearest-rank percentile, p in 0..100. */
export const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

/** How a figure is judged: its value (or its ratio to the baseline) against a bound. */
export type Target =
  | { kind: 'max'; value: number } // value <= bound
  | { kind: 'min'; value: number } // value >= bound
  | { kind: 'maxRatio'; value: number } // value / baseline <= bound
  | { kind: 'minRatio'; value: number } // value / baseline >= bound

export interface Figure {
  /** Stable id, used by --only and in the JSON. */
  id: string
  label: string
  unit: string
  /** The service's value per round; the figure is their median. */
  rounds: number[]
  baselineLabel?: string
  baselineRounds?: number[]
  target?: Target
  /** Anything else worth printing (counts, breakdowns). */
  note?: string
}

export interface Row {
  id: string
  label: string
  unit: string
  value: number
  rounds: number[]
  baseline: number | null
  baselineLabel: string | null
  baselineRounds: number[] | null
  ratio: number | null
  target: string | null
  met: boolean | null
  note: string | null
}

export function describeTarget(t: Target, unit: string): string {
  switch (t.kind) {
    case 'max':
      return `<= ${t.value} ${unit}`
    case 'min':
      return `>= ${t.value} ${unit}`
    case 'maxRatio':
      return `<= ${t.value}x baseline`
    case 'minRatio':
      return `>= ${t.value}x baseline`
  }
}

export function judge(t: Target | undefined, value: number, ratio: number | null): boolean | null {
  if (!t || !Number.isFinite(value)) return null
  switch (t.kind) {
    case 'max':
      return value <= t.value
    case 'min':
      return value >= t.value
    case 'maxRatio':
      return ratio === null || !Number.isFinite(ratio) ? null : ratio <= t.value
    case 'minRatio':
      return ratio === null || !Number.isFinite(ratio) ? null : ratio >= t.value
  }
}

export function toRow(f: Figure): Row {
  const value = median(f.rounds)
  const baseline = f.baselineRounds ? median(f.baselineRounds) : null
  const ratio = baseline === null || baseline === 0 || !Number.isFinite(baseline) ? null : value / baseline
  return {
    id: f.id,
    label: f.label,
    unit: f.unit,
    value,
    rounds: f.rounds,
    baseline,
    baselineLabel: f.baselineLabel ?? null,
    baselineRounds: f.baselineRounds ?? null,
    ratio,
    target: f.target ? describeTarget(f.target, f.unit) : null,
    met: judge(f.target, value, ratio),
    note: f.note ?? null,
  }
}

export const num = (x: number | null): string => {
  if (x === null || !Number.isFinite(x)) return '-'
  if (Math.abs(x) >= 100) return String(Math.round(x))
  if (Math.abs(x) >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

/** A plain-text table: one line per figure, columns padded. */
export function table(rows: readonly Row[]): string {
  const head = ['figure', 'service', 'baseline', 'ratio', 'target', 'met', 'rounds']
  const lines = rows.map((r) => [
    r.label,
    `${num(r.value)} ${r.unit}`,
    r.baseline === null ? '-' : `${num(r.baseline)} ${r.unit} (${r.baselineLabel ?? ''})`,
    r.ratio === null ? '-' : `${num(r.ratio)}x`,
    r.target ?? '-',
    r.met === null ? '-' : r.met ? 'met' : 'NOT MET',
    r.rounds.map(num).join(' / '),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(fmt)].join('\n')
}
