// Adblock-style lists (ABP / AdGuard), read for the part DNS can express: a rule about a whole
// host. A rule that means less than "every request to this host" (a URL path, a content type,
// a third-party context, a page it applies on, one client) is reported unsupported and never
// widened into a block of the domain; browser lists (EasyPrivacy) are mostly such rules.
//
// Decided semantics (tests in test/compiler-parse.test.ts pin each one), after AdGuard's DNS
// filtering syntax: `||` matches the start of the host or of any label boundary in it, `|` the
// start (or the end) of the host itself, `^` the end of the host.
//   ||name^  ||name  ||name^|  ||name|  name^                   block name and its subtree
//   |name^  |name|  |name^|  |http://name^  |https://name^  ://name^   block name only (exact)
//   |name                               hosts starting with name: glob `name*`
//   .name^  .name                       only the names below name: glob `*.*.name`
// `name^` and `||name` without `^` also match hosts that merely end or start with the text in
// AdGuard (`badexample.org`, `example.org.evil`); reading them as the subtree is narrower, never wider.
//   @@ before any of these                                        allow instead of block
//   bare `name` (no anchor, no ^)       unsupported 'no-anchor': in ABP it is a URL substring
//   `*` inside the host                 glob pattern (see common.ts for the glob convention)
//   host ending with `.` (||name.)      unsupported 'tld-wildcard' (any TLD, or a name prefix)
//   host of digits and dots, [v6]       unsupported 'ip-rule' (matches URLs, not names)
//   /regex/                             unsupported 'regex-rule' (AdGuard's match URLs/IPs)
//   anything after the host but ^ / |   unsupported 'url-path'
//   ! comments, !+ hints, !#if, [Adblock Plus 2.0] headers, `# text`   skip
//   ##  #@#  #?#  #$#  #%#  (and @-, ?-variants), $$ / $@$ HTML rules  unsupported 'cosmetic'
//   ` # text` after a rule (Perflyst SmartTV-AGH)                   stripped, rule kept
// Modifiers:
//   $important                  block (or allow) marked important
//   $all                        plain block: "every request type" is what a DNS block does
//   $document / $doc            plain block on a block rule (the page itself is unwanted); on an
//                               @@ rule it means "do not filter on that site's pages", not
//                               "allow the host": unsupported 'modifier:document'
//   $dnsrewrite=NXDOMAIN|REFUSED   plain block on a block rule (an error answer is a block);
//                               any other rewrite, or on @@: unsupported 'modifier:dnsrewrite'
//   $badfilter                  unsupported 'badfilter' (it cancels another rule; not modelled)
//   $dnstype                    unsupported 'modifier:dnstype' (only some record types)
//   $client / $ctag             unsupported 'modifier:client' (only some clients)
//   $denyallow                  unsupported 'modifier:denyallow'
//   $third-party / 1p / 3p …    unsupported 'modifier:third-party'
//   $domain= / from= / to=      unsupported 'modifier:domain'
//   content types ($script, $image, $popup …)   unsupported 'modifier:content-type'
//   anything else ($csp=, $rewrite=, $redirect …)  unsupported 'modifier:other'
// The host is returned as written (case, raw Unicode); normaliseName lowercases and converts IDN.
import type { Action, LineParser, ParsedLine, Scope } from '../types.js';
import { SKIP, glob, invalid, isHostChar, isSpace, rejectUnreadable, unsupported } from './common.js';

const BANG = 0x21;
const HASH = 0x23;
const DOLLAR = 0x24;
const STAR = 0x2a;
const DOT = 0x2e;
const SLASH = 0x2f;
const AT = 0x40;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const CARET = 0x5e;
const PIPE = 0x7c;
const QUESTION = 0x3f;
const PERCENT = 0x25;

const PARTY = new Set(['third-party', '3p', 'first-party', '1p', 'strict1p', 'strict3p', 'strict-first-party', 'strict-third-party']);
const CONTENT_TYPES = new Set([
  'script', 'image', 'stylesheet', 'css', 'object', 'object-subrequest', 'xmlhttprequest', 'xhr',
  'subdocument', 'frame', 'ping', 'beacon', 'media', 'font', 'websocket', 'webrtc', 'other',
  'popup', 'popunder', 'elemhide', 'ehide', 'generichide', 'ghide', 'specifichide', 'shide',
  'genericblock', 'content', 'jsinject', 'urlblock', 'extension', 'stealth', 'inline-script',
  'inline-font', 'cookie', 'network', 'app', 'method', 'header', 'mp4', 'empty',
]);

/** `#` at `i` opens an element-hiding / scriptlet / CSS rule marker: ##, #@#, #?#, #$#, #%#, #$?#, #@$?#. */
function isCosmeticMarker(s: string, i: number): boolean {
  let j = i + 1;
  if (s.charCodeAt(j) === AT) j++;
  const c = s.charCodeAt(j);
  if (c === QUESTION || c === DOLLAR || c === PERCENT) {
    j++;
    if (s.charCodeAt(j) === QUESTION) j++;
  }
  return s.charCodeAt(j) === HASH;
}

/** `||111.175.219.*.js`: an address with a wildcard, not a host name. */
const IP_PREFIX_GLOB = /^\d{1,3}\.\d{1,3}\.[\d.]*\*/;

/** Digits and dots only (`1.2.3.4`, `192.168.`): an address or address prefix, not a name. */
function isAddressLike(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c !== DOT && (c < 0x30 || c > 0x39)) return false;
  }
  return true;
}

/** Why the modifiers keep this rule out of a DNS table, or null when they allow it. */
function modifierProblem(options: string, action: Action): { reason: string | null; important: boolean } {
  if (options.length === 0) return { reason: 'empty-modifier', important: false };
  let reason: string | null = null;
  let important = false;
  for (const raw of options.split(',')) {
    const eq = raw.indexOf('=');
    let name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? '' : raw.slice(eq + 1).trim().toLowerCase();
    const negated = name.charCodeAt(0) === 0x7e; /* ~ */
    if (negated) name = name.slice(1);
    if (name === 'badfilter') return { reason: 'badfilter', important: false };
    let problem: string | null = null;
    if (PARTY.has(name)) problem = 'modifier:third-party';
    else if (CONTENT_TYPES.has(name)) problem = 'modifier:content-type';
    else if (negated) problem = 'modifier:other';
    else if (name === 'important') important = true;
    else if (name === 'all') {
      // every request type: exactly what a DNS block does
    } else if (name === 'document' || name === 'doc') {
      if (action === 'allow') problem = 'modifier:document';
    } else if (name === 'dnsrewrite') {
      if (action === 'allow' || (value !== 'nxdomain' && value !== 'refused')) problem = 'modifier:dnsrewrite';
    } else if (name === 'domain' || name === 'from' || name === 'to') problem = 'modifier:domain';
    else if (name === 'denyallow') problem = 'modifier:denyallow';
    else if (name === 'client' || name === 'ctag') problem = 'modifier:client';
    else if (name === 'dnstype') problem = 'modifier:dnstype';
    else problem = 'modifier:other';
    if (problem !== null && reason === null) reason = problem;
  }
  return { reason, important };
}

/** The host part of a network rule (no `@@`, no `$options`), or why it is not a whole-host rule. */
function hostRule(p: string, action: Action): ParsedLine {
  const n = p.length;
  if (n === 0) return invalid('empty');
  if (p.charCodeAt(0) === SLASH) {
    // `/…/` (optionally followed by `$options`) is a regex; `/path/*` and friends are URL paths.
    const close = p.lastIndexOf('/');
    const isRegex = close > 0 && (close === n - 1 || p.charCodeAt(close + 1) === DOLLAR);
    return unsupported(isRegex ? 'regex-rule' : 'url-path');
  }
  let i = 0;
  // How the host is anchored at its start: `||` (a label boundary), `|` or a scheme (the start of
  // the host itself), `.` (a label boundary strictly inside the host) or not at all.
  let start: 'label' | 'host' | 'below' | 'none' = 'label';
  if (p.startsWith('://')) {
    i = 3;
    start = 'host';
  } else if (p.charCodeAt(0) === PIPE) {
    if (p.charCodeAt(1) === PIPE) {
      i = 2;
    } else {
      i = 1;
      start = 'host';
      if (p.startsWith('http://', 1)) i += 7;
      else if (p.startsWith('https://', 1)) i += 8;
    }
  } else if (p.charCodeAt(0) === DOT) {
    i = 1;
    start = 'below';
  } else {
    start = 'none';
  }
  if (p.charCodeAt(i) === LBRACKET) return unsupported('ip-rule'); // ||[2001:db8::1]^
  const hostStart = i;
  let hasStar = false;
  while (i < n) {
    const c = p.charCodeAt(i);
    if (c === STAR) hasStar = true;
    else if (!isHostChar(c)) break;
    i++;
  }
  const host = p.slice(hostStart, i);
  const ended = i < n;
  if (ended) {
    const c = p.charCodeAt(i);
    if (c === CARET) {
      // `^` may only be followed by the end anchor `|`.
      if (i + 1 < n && !(i + 2 === n && p.charCodeAt(i + 1) === PIPE)) return unsupported('url-path');
    } else if (c === PIPE) {
      if (i + 1 !== n) return unsupported('url-path');
    } else if (isSpace(c)) {
      return invalid('bad-syntax');
    } else {
      return unsupported('url-path');
    }
  } else if (start === 'none') {
    return unsupported('no-anchor');
  }
  if (host.length === 0) return invalid('empty');
  if (host.charCodeAt(host.length - 1) === DOT) return unsupported('tld-wildcard');
  if (isAddressLike(host)) return unsupported('ip-rule');
  if (hasStar && IP_PREFIX_GLOB.test(host)) return unsupported('ip-rule');
  if (start === 'below') return glob(`*.${host}`, 'subtree', action);
  if (start === 'host' && !ended) return glob(`${host}*`, 'exact', action);
  const scope: Scope = start === 'host' ? 'exact' : 'subtree';
  if (hasStar) return glob(host, scope, action);
  return { kind: 'rule', name: host, action, scope };
}

export const parseAdblock: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  let s = line.trim();
  if (s.length === 0) return SKIP;
  const c0 = s.charCodeAt(0);
  if (c0 === BANG) return SKIP; // comments, `!+ NOT_OPTIMIZED` hints, `!#if` preprocessor
  if (c0 === LBRACKET && s.charCodeAt(s.length - 1) === RBRACKET && s.indexOf('#') === -1) return SKIP;

  const hash = s.indexOf('#');
  if (hash !== -1) {
    if (isCosmeticMarker(s, hash)) return unsupported('cosmetic');
    if (hash === 0) return SKIP; // hosts-style comment, which AdGuard accepts
    // ABP has no inline comments, but some DNS lists append ` # why` to a rule.
    if (isSpace(s.charCodeAt(hash - 1))) s = s.slice(0, hash).trimEnd();
  }
  if (s.indexOf('$$') !== -1 || s.indexOf('$@$') !== -1) return unsupported('cosmetic');
  if (c0 === LBRACKET) return invalid('bad-syntax');

  let action: Action = 'block';
  if (s.charCodeAt(0) === AT && s.charCodeAt(1) === AT) {
    action = 'allow';
    s = s.slice(2);
  }
  // A regex may itself contain `$`; it is unsupported whatever its options.
  if (s.charCodeAt(0) === SLASH) return hostRule(s, action);
  const dollar = s.indexOf('$');
  if (dollar === -1) return hostRule(s, action);
  // `$script,domain=x` with no pattern at all applies to every URL: nothing DNS can hold.
  if (dollar === 0) return unsupported('no-host');
  const parsed = hostRule(s.slice(0, dollar), action);
  if (parsed.kind === 'unsupported') return parsed;
  const { reason, important } = modifierProblem(s.slice(dollar + 1), action);
  if (reason === 'empty-modifier') return invalid(reason);
  // A browser-only rule stays unsupported even when its pattern is also malformed.
  if (reason !== null) return unsupported(reason);
  if (important && parsed.kind === 'rule') return { ...parsed, important: true };
  return parsed;
};
