// Response Policy Zones (BIND zone-file syntax). Only QNAME triggers become rules:
//   name CNAME .              block name (NXDOMAIN)            *.name … → block its subtree
//   name CNAME *.             block name (NODATA)
//   name CNAME rpz-drop.      block name (drop)
//   name CNAME rpz-passthru.  allow name
//   name CNAME other.target.  block name (a redirect to a walled garden: the name is not reached)
//   name A|AAAA|TXT|… data    block name: local data replaces every answer for the name
// `x CNAME .` plus `*.x CNAME .` (how hagezi writes each entry) give an exact and a subtree claim
// on x; the pipeline merges them into one subtree rule.
// Skipped: `$TTL`, `$ORIGIN` (remembered: owner names below it are made relative), SOA and NS
// records, `;` comments, and the lines of a multi-line `( … )` record. IP, NSDNAME and client
// triggers (`….rpz-ip` etc.), rpz-tcp-only and `$INCLUDE` are unsupported.
//
// A zone file has state (origin, the previous owner, open parentheses), so each list needs its own
// parser from createRpzParser().
import type { Action, LineParser, ParsedLine, Scope } from '../types.js';
import { SKIP, indexOutsideQuotes, invalid, rejectUnreadable, unsupported } from './common.js';

const SKIPPED_TYPES = new Set(['SOA', 'NS']);
/** Local-data record types: any of them stands in for the real answers of the name. */
const DATA_TYPES = new Set(['A', 'AAAA', 'TXT', 'MX', 'SRV', 'PTR', 'NAPTR', 'CAA', 'HTTPS', 'SVCB', 'HINFO']);
const CLASSES = new Set(['IN', 'CH', 'HS', 'CS']);
const TRIGGER_SUFFIXES = ['.rpz-ip', '.rpz-nsip', '.rpz-nsdname', '.rpz-client-ip'];

function cnameAction(target: string): Action | 'tcp-only' {
  switch (target.toLowerCase()) {
    case 'rpz-passthru.':
      return 'allow';
    case 'rpz-tcp-only.':
      return 'tcp-only';
    default:
      // `.` NXDOMAIN, `*.` NODATA, `rpz-drop.`, or a local redirect target.
      return 'block';
  }
}

function isTtl(token: string): boolean {
  const c = token.charCodeAt(0);
  return c >= 0x30 && c <= 0x39;
}

/** Whitespace-separated fields of `s[0, end)`, parentheses dropped (they only join lines). */
function fields(s: string, end: number): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= end; i++) {
    const c = i === end ? 0x20 : s.charCodeAt(i);
    const separator = c === 0x20 || c === 0x09 || c === 0x28 || c === 0x29;
    if (separator) {
      if (start !== -1) out.push(s.slice(start, i));
      start = -1;
    } else if (start === -1) {
      start = i;
    }
  }
  return out;
}

function parenBalance(s: string, end: number): number {
  let depth = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x28) depth++;
    else if (c === 0x29) depth--;
  }
  return depth;
}

export function createRpzParser(): LineParser {
  /** Lowercase, with trailing dot; null until a `$ORIGIN` line. */
  let origin: string | null = null;
  let lastOwner: string | null = null;
  let openParens = 0;

  /** The trigger name an owner field stands for, relative to the zone, or why there is none. */
  function trigger(owner: string, data: Action): ParsedLine {
    let name = owner;
    if (name === '@') return unsupported('apex-record');
    if (name.charCodeAt(name.length - 1) === 0x2e && origin !== null) {
      const lower = name.toLowerCase();
      if (lower === origin) return unsupported('apex-record');
      if (!lower.endsWith(`.${origin}`)) return invalid('outside-origin');
      name = name.slice(0, name.length - origin.length - 1);
    }
    const lower = name.toLowerCase();
    for (const suffix of TRIGGER_SUFFIXES) {
      if (lower.endsWith(suffix) || lower.endsWith(`${suffix}.`)) return unsupported('rpz-trigger');
    }
    let scope: Scope = 'exact';
    if (name === '*' || name === '*.') return unsupported('match-all');
    if (name.startsWith('*.')) {
      scope = 'subtree';
      name = name.slice(2);
    }
    if (name.indexOf('*') !== -1) return invalid('bad-wildcard');
    if (name.length === 0) return invalid('empty');
    return { kind: 'rule', name, action: data, scope };
  }

  return (line) => {
    const unreadable = rejectUnreadable(line);
    if (unreadable) return unreadable;
    const end = indexOutsideQuotes(line, 0x3b /* ; */, 0, line.length);
    if (openParens > 0) {
      // Inside a multi-line record (in practice the SOA): its lines carry no rules.
      openParens += parenBalance(line, end);
      if (openParens < 0) openParens = 0;
      return SKIP;
    }
    const f = fields(line, end);
    if (f.length === 0) return SKIP;
    openParens = Math.max(0, parenBalance(line, end));

    const first = f[0]!;
    if (first.charCodeAt(0) === 0x24 /* $ */) {
      const directive = first.toUpperCase();
      if (directive === '$TTL') return SKIP;
      if (directive === '$ORIGIN') {
        const o = f[1];
        if (o === undefined) return invalid('bad-directive');
        origin = o === '.' ? null : (o.endsWith('.') ? o : `${o}.`).toLowerCase();
        return SKIP;
      }
      if (directive === '$INCLUDE' || directive === '$GENERATE') return unsupported(`directive:${directive.slice(1).toLowerCase()}`);
      return invalid('bad-directive');
    }

    // A line that starts with blank space continues the previous owner (`  NS  localhost.`).
    const c0 = line.charCodeAt(0);
    let k = 0;
    let owner = lastOwner;
    if (!(c0 === 0x20 || c0 === 0x09)) {
      owner = first;
      lastOwner = first;
      k = 1;
    }
    // TTL and class may come in either order before the type.
    for (let n = 0; n < 2 && k < f.length; n++) {
      const t = f[k]!;
      if (isTtl(t) || CLASSES.has(t.toUpperCase())) k++;
      else break;
    }
    const typeField = f[k];
    if (typeField === undefined) return invalid('no-type');
    const type = typeField.toUpperCase();
    if (SKIPPED_TYPES.has(type)) return SKIP;
    if (owner === null) return invalid('no-owner');
    if (type === 'CNAME') {
      const target = f[k + 1];
      if (target === undefined) return invalid('no-target');
      const action = cnameAction(target);
      if (action === 'tcp-only') return unsupported('rpz-tcp-only');
      return trigger(owner, action);
    }
    if (DATA_TYPES.has(type)) {
      if (f[k + 1] === undefined) return invalid('no-data');
      return trigger(owner, 'block');
    }
    if (type === 'DNAME') return unsupported('dname');
    return invalid('unknown-type');
  };
}
