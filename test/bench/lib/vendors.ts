// Synthetic vendors for both sides, shared by the sync benchmark and the orchestrator's bulk-plan figure.

/** A seeded pseudo-random generator, so runs compare. */
function rng(seed: number) {
  let s = seed >>> 0
  return () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32
}

/**
 * N vendors a side. A name is a surname-like word (Zipf-ish over 20,000 made-up words of two or
 * three syllables from about 2,000, so names have a realistic trigram vocabulary), an optional
 * second word, a trade and a legal form. 40 % of the pairs share e-mail and name (the ERP spells
 * the legal form differently), 30 % only a name with one typo in the first word, 30 % have no twin.
 */
export function vendors(n: number) {
  const r = rng(42)
  const onsets = [
    'b',
    'c',
    'd',
    'f',
    'g',
    'h',
    'j',
    'k',
    'l',
    'm',
    'n',
    'p',
    'r',
    's',
    't',
    'v',
    'w',
    'z',
    'br',
    'ch',
    'cl',
    'cr',
    'dr',
    'fl',
    'gr',
    'pl',
    'pr',
    'sh',
    'st',
    'th',
    'tr',
  ]
  const nuclei = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou']
  const codas = ['', 'n', 'r', 's', 'l', 't', 'ck', 'm', 'nd', 'rt']
  const syl = onsets.flatMap((o) => nuclei.flatMap((v) => codas.map((c) => o + v + c)))
  const words = Array.from({ length: 20000 }, () =>
    Array.from({ length: 2 + Math.floor(r() * 2) }, () => syl[Math.floor(r() * syl.length)]).join(''),
  )
  const trades = [
    'Concrete',
    'Electric',
    'Plumbing',
    'Steel',
    'Roofing',
    'Paving',
    'Glass',
    'Drywall',
    'Masonry',
    'HVAC',
    'Excavation',
    'Landscaping',
    'Painting',
    'Flooring',
    'Insulation',
    'Framing',
    'Surveying',
    'Demolition',
    'Fencing',
    'Scaffolding',
  ]
  const forms = ['Inc.', 'LLC', 'Co.', '', 'Corp.']
  const cap = (w: string) => w[0]!.toUpperCase() + w.slice(1)
  const procore: Array<Record<string, unknown>> = []
  const erp: Array<Record<string, unknown>> = []
  for (let i = 0; i < n; i++) {
    const first = words[Math.floor(words.length * r() ** 2)]!
    const second = r() < 0.3 ? ` ${cap(words[Math.floor(r() * words.length)]!)}` : ''
    const base = `${cap(first)}${second} ${trades[Math.floor(r() * trades.length)]}`
    const kind = i % 10
    procore.push({
      id: String(4_300_000_000 + i),
      name: `${base} ${forms[i % 5]}`.trim(),
      email_address: kind < 4 ? `ap${i}@v${i}.example` : null,
      updated_at: '2024-01-01T00:00:00Z',
    })
    const typo =
      `${cap(first.slice(0, 2) + (first[2] === 'a' ? 'e' : 'a') + first.slice(3))}${second} ` +
      `${base.split(' ').at(-1)}`
    const name =
      kind < 4
        ? `${base} ${forms[(i + 1) % 5]}`.trim()
        : kind < 7
          ? typo
          : `${cap(words[Math.floor(r() * words.length)]!)} ${cap(words[Math.floor(r() * words.length)]!)} Holdings`
    erp.push({
      id: `V${String(i).padStart(7, '0')}`,
      code: `C${i}`,
      name,
      email: kind < 4 ? `AP${i}@v${i}.example` : '',
      updated_at: '2024-01-01T00:00:00Z',
    })
  }
  return { procore, erp }
}
