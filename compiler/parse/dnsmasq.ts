// dnsmasq configuration lines as blocklists write them:
//   address=/name/[target]   (target `#`, 0.0.0.0, ::, empty, or any address)
//   server=/name/[upstream]  local=/name/
// Each names the domain and all its subdomains; one line may list several (`address=/a/b/#`).
// address= and local= are blocks whatever their target. `server=/name/` with no upstream means
// "answer from local data only", a block. `server=/name/#` means "use the standard servers": the
// name resolves normally even inside a blocked domain (dnsmasq takes the most specific entry), so
// it is an allow, which is how `hushdns export --format dnsmasq` writes exceptions.
// `server=/name/1.2.3.4` forwards the name elsewhere, which is routing, not blocking: unsupported
// 'forwarding', never widened into a block.
// `/#/` (every domain) is refused as 'match-all'. Other directives are configuration: skipped.
import type { Action, LineParser, ParsedLine } from '../types.js';
import { SKIP, glob, invalid, rejectUnreadable, rule, unsupported } from './common.js';

function nameEntry(name: string, action: Action): ParsedLine {
  if (name.length === 0) return unsupported('unqualified-names'); // `//` means "names without dots"
  if (name === '#') return unsupported('match-all');
  // dnsmasq's `*.` (2.86+) means subdomains only; the glob `*.*.name` says exactly that.
  return name.indexOf('*') === -1 ? rule(name, action, 'subtree') : glob(name, 'subtree', action);
}

function isDirectiveName(s: string, end: number): boolean {
  if (end === 0) return false;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d)) return false;
  }
  return true;
}

export const parseDnsmasq: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  const s = line.trim();
  if (s.length === 0 || s.charCodeAt(0) === 0x23 /* # */) return SKIP;
  const eq = s.indexOf('=');
  if (eq === -1) return isDirectiveName(s, s.length) ? SKIP : invalid('not-a-directive'); // e.g. `domain-needed`
  if (!isDirectiveName(s, eq)) return invalid('not-a-directive');
  const key = s.slice(0, eq);
  if (key !== 'address' && key !== 'server' && key !== 'local') return SKIP;
  if (s.charCodeAt(eq + 1) !== 0x2f /* / */) {
    // `server=1.1.1.1` declares an upstream for everything: configuration, not a rule.
    return key === 'server' ? SKIP : invalid('bad-directive');
  }
  const last = s.lastIndexOf('/');
  if (last === eq + 1) return invalid('bad-directive'); // `address=/name` with no closing slash
  const target = s.slice(last + 1).trim();
  if (key === 'server' && target !== '' && target !== '#') return unsupported('forwarding');
  const action: Action = key === 'server' && target === '#' ? 'allow' : 'block';
  const names = s.slice(eq + 2, last).split('/');
  if (names.length === 1) return nameEntry(names[0]!, action);
  return names.map((name) => nameEntry(name, action));
};
