// autocannon, either flat out (-c N -d S) or at a fixed offered rate (overallRate).
import autocannon from 'autocannon'

export interface LoadResult {
  rps: number
  p50: number
  p99: number
  ok: number
  non2xx: number
  errors: number
}

export async function load(opts: autocannon.Options): Promise<LoadResult> {
  const r = await autocannon({ ...opts })
  // A round in which no request completed has no latency (autocannon reports 0 ms): NaN, which the median leaves out
  // and the table shows as such, never a 0 ms round.
  const none = r['2xx'] === 0
  return {
    rps: r.requests.average,
    p50: none ? Number.NaN : r.latency.p50,
    p99: none ? Number.NaN : r.latency.p99,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  }
}
