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
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  }
}
