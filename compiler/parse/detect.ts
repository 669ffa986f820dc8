// Guesses a list's format from a sample of its first lines, for sources that do not say.
// Each line is given a shape; a format "fits" the lines whose shapes it can read, and the format
// that fits (nearly) every data line wins. Comment lines starting with `#` are neutral: hosts,
// domains, wildcard, dnsmasq, unbound and regex lists all use them, and the `###` banners of
// hosts files only look like adblock element hiding. When several formats fit equally (a list of
// bare names is a valid domains, wildcard and regex list), a `Syntax:` header line such as
// hagezi's picks among them; otherwise the plainest reading wins (domains).
import { isIP } from 'node:net';
import type { ListFormat } from '../types.js';

/** How many non-blank lines of a list the detector looks at. */
export const DETECT_SAMPLE_LINES = 200;
/** Share of the data lines a format must read for the guess to count as confident. */
const MIN_FIT = 0.9;

type Shape =
  | 'neutral' // `#` comment, blank, a lone label
  | 'bang' // `!` comment
  | 'header' // `[Adblock Plus 2.0]`
  | 'semicolon' // `;` comment
  | 'zone' // rpz directive, record, or SOA continuation
  | 'unbound'
  | 'dnsmasq'
  | 'hosts'
  | 'adblock'
  | 'regex'
  | 'wildcard'
  | 'name'
  | 'other';

const FITS: Record<ListFormat, ReadonlySet<Shape>> = {
  hosts: new Set<Shape>(['hosts']),
  domains: new Set<Shape>(['name']),
  wildcard: new Set<Shape>(['name', 'wildcard']),
  // Browser lists hold path fragments made of host characters (`-click-tracker.`, `.beacon.min.js`).
  adblock: new Set<Shape>(['adblock', 'bang', 'header', 'name']),
  dnsmasq: new Set<Shape>(['dnsmasq']),
  unbound: new Set<Shape>(['unbound']),
  rpz: new Set<Shape>(['zone', 'semicolon']),
  regex: new Set<Shape>(['regex', 'name']),
};
/** Among formats that fit equally well, the one read when nothing else says otherwise. */
const PREFERENCE: readonly ListFormat[] = ['domains', 'wildcard', 'regex', 'hosts', 'adblock', 'dnsmasq', 'unbound', 'rpz'];

const ZONE_TYPES = new Set(['SOA', 'NS', 'CNAME', 'A', 'AAAA', 'TXT', 'MX', 'PTR', 'SRV', 'DNAME']);
const UNBOUND_KEYS = /^(server|local-zone|local-data|local-data-ptr|forward-zone|stub-zone|remote-control|auth-zone|view):/;
const DNSMASQ_RULE = /^(address|server|local)=\//;
/** Any other `key=value` line of a dnsmasq configuration (`cache-size=1000`, `server=192.0.2.53`). */
const DNSMASQ_OPTION = /^[a-z][a-z0-9-]*=[^/]*$/;
const SYNTAX_HEADER = /^[#!;]\s*syntax\s*:\s*(.+)$/i;

function isHostChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c > 0x7f
  );
}

function hasCosmeticMarker(s: string): boolean {
  return /#@?[$?%]?\??#/.test(s);
}

function shapeOf(raw: string): Shape {
  const s = raw.trim();
  if (s.length === 0) return 'neutral';
  const c0 = s.charCodeAt(0);
  if (c0 === 0x23 /* # */) return 'neutral';
  if (c0 === 0x21 /* ! */) return 'bang';
  if (c0 === 0x5b /* [ */ && s.endsWith(']')) return 'header';
  if (c0 === 0x3b /* ; */) return 'semicolon';
  if (/^\$(TTL|ORIGIN|INCLUDE|GENERATE)\b/i.test(s)) return 'zone';
  if (UNBOUND_KEYS.test(s)) return 'unbound';
  if (DNSMASQ_RULE.test(s) || DNSMASQ_OPTION.test(s)) return 'dnsmasq';

  const fields = s.split(/[ \t]+/);
  if (fields.length >= 2 && isIP(fields[0]!.replace(/%.*$/, '')) !== 0) return 'hosts';
  const semi = s.indexOf(';');
  const beforeComment = semi === -1 ? s : s.slice(0, semi).trim();
  const zoneFields = beforeComment.split(/[ \t]+/);
  if (raw.length > 0 && (raw.charCodeAt(0) === 0x20 || raw.charCodeAt(0) === 0x09) && ZONE_TYPES.has(zoneFields[0]!.toUpperCase())) {
    return 'zone'; // owner-less record: `  NS  localhost.`
  }
  if (zoneFields.length >= 3 && zoneFields.slice(1, 4).some((f) => ZONE_TYPES.has(f.toUpperCase()))) return 'zone';
  // The inside of a multi-line SOA: `2024010101 ; serial`, `3600 )`.
  if (/^[0-9smhdwSMHDW \t()]+$/.test(beforeComment) && (semi !== -1 || /[()]/.test(beforeComment))) return 'zone';

  if (c0 === 0x2f /* / */) return 'adblock';
  if (s.indexOf('\\') !== -1 || c0 === 0x28 /* ( */ || c0 === 0x5e /* ^ */) return 'regex';
  if (s.startsWith('||') || s.startsWith('@@') || c0 === 0x7c || s.indexOf('^') !== -1 || s.indexOf('$') !== -1) return 'adblock';
  if (hasCosmeticMarker(s)) return 'adblock';

  // A name, possibly followed by ` # comment`.
  const hash = s.indexOf('#');
  const token = (hash === -1 ? s : s.slice(0, hash)).trim();
  if (token.length === 0 || /[ \t]/.test(token)) return 'other';
  let star = false;
  for (let i = c0 === 0x3d /* = */ ? 1 : 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 0x2a) star = true;
    else if (!isHostChar(c)) return /[/?&=]/.test(token) ? 'adblock' : 'other';
  }
  if (star || c0 === 0x3d) return 'wildcard';
  // One label says nothing: a dnsmasq flag (`domain-needed`) as much as a garbage entry (`inf`).
  return token.indexOf('.') === -1 ? 'neutral' : 'name';
}

/** What a `Syntax:` header line (hagezi and others) says the list is, if it says. */
function syntaxHint(s: string): ListFormat | null {
  const m = SYNTAX_HEADER.exec(s.trim());
  if (!m) return null;
  const v = m[1]!.toLowerCase();
  if (/adblock|adguard|ublock/.test(v)) return 'adblock';
  if (v.includes('dnsmasq')) return 'dnsmasq';
  if (v.includes('unbound')) return 'unbound';
  if (/\brpz\b|response policy/.test(v)) return 'rpz';
  if (v.includes('hosts')) return 'hosts';
  // hagezi's compressed name lists say "without subdomains": subdomains are implied, not listed.
  if (v.includes('wildcard') || v.includes('without subdomains')) return 'wildcard';
  if (v.includes('regex')) return 'regex';
  if (v.includes('domains')) return 'domains';
  return null;
}

export interface Detection {
  format: ListFormat | null;
  /** Share of the sampled data lines the chosen format reads (0 when nothing was chosen). */
  fit: number;
  dataLines: number;
}

/** {@link detectFormat} with the numbers behind the guess, for reports. */
export function detectFormatDetailed(sample: readonly string[]): Detection {
  const counts = new Map<Shape, number>();
  let seen = 0;
  let data = 0;
  let hint: ListFormat | null = null;
  for (const line of sample) {
    if (seen >= DETECT_SAMPLE_LINES) break;
    const text = line.charCodeAt(0) === 0xfeff ? line.slice(1) : line;
    if (text.trim().length === 0) continue;
    seen++;
    const shape = shapeOf(text);
    if (shape === 'neutral' || shape === 'bang' || shape === 'semicolon') hint ??= syntaxHint(text);
    if (shape === 'neutral') continue;
    data++;
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  }
  if (data === 0) return { format: null, fit: 0, dataLines: 0 };
  let best: ListFormat[] = [];
  let bestFit = -1;
  for (const format of PREFERENCE) {
    let n = 0;
    for (const shape of FITS[format]) n += counts.get(shape) ?? 0;
    const fit = n / data;
    if (fit > bestFit) {
      best = [format];
      bestFit = fit;
    } else if (fit === bestFit) {
      best.push(format);
    }
  }
  if (bestFit < MIN_FIT) return { format: null, fit: bestFit, dataLines: data };
  const format = hint !== null && best.includes(hint) ? hint : best[0]!;
  return { format, fit: bestFit, dataLines: data };
}

/**
 * The format of a list judged from its first lines (at most {@link DETECT_SAMPLE_LINES} non-blank
 * ones are read), or null when no format reads at least 90% of them.
 */
export function detectFormat(sample: readonly string[]): ListFormat | null {
  return detectFormatDetailed(sample).format;
}
