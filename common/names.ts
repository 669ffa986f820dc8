// Domain names as both the compiler and the server see them: lowercase ASCII (IDN as punycode),
// no trailing dot. One place decides what a valid blockable name is, so a name the compiler
// writes is always a name the server can look up.
import { domainToASCII } from 'node:url';
import { createRequire } from 'node:module';

export type InvalidNameReason =
  | 'empty'
  | 'too-long'
  | 'empty-label'
  | 'label-too-long'
  | 'bad-character'
  | 'hyphen-edge'
  | 'bad-idn'
  | 'ip-address'
  | 'localhost'
  | 'single-label'
  | 'public-suffix';

export type NameResult = { ok: true; name: string } | { ok: false; reason: InvalidNameReason };

/** Names that hosts files map to loopback or broadcast addresses as housekeeping, never blocks. */
const HOUSEKEEPING_NAMES = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

/**
 * True for the names hosts files map for the OS itself (localhost, broadcasthost, ip6-*, …), in
 * any case. Hot (once per list entry): every such name starts with l, b, i or 0, so most names
 * are turned away on their first character, without hashing the string.
 */
export function isHousekeepingName(name: string): boolean {
  const c = name.charCodeAt(0) | 0x20;
  if (c !== 0x6c && c !== 0x62 && c !== 0x69 && c !== 0x30) return false;
  return HOUSEKEEPING_NAMES.has(name) || HOUSEKEEPING_NAMES.has(name.toLowerCase());
}

const MAX_NAME = 253; // presentation form without the trailing dot (255 octets on the wire)
const MAX_LABEL = 63;

const enum Ch {
  Dot = 0x2e,
  Hyphen = 0x2d,
  Underscore = 0x5f,
  Zero = 0x30,
  Nine = 0x39,
  A = 0x41,
  Z = 0x5a,
  a = 0x61,
  z = 0x7a,
}

/**
 * Normalise a name from a list or a user and decide whether it may be written as a rule.
 * Accepts `_` in labels (real lists carry `_dmarc`-style and `adman_test` names) but rejects
 * anything a resolver could never be asked for, addresses, housekeeping names, single labels
 * and bare public suffixes (a rule for `co.uk` would black out a country).
 */
export function normaliseName(input: string): NameResult {
  let name = input;
  if (name.length > 0 && name.charCodeAt(name.length - 1) === Ch.Dot) name = name.slice(0, -1);
  if (name.length === 0) return { ok: false, reason: 'empty' };

  // Fast path: one pass that validates plain ASCII and notices what needs more work.
  let needsLower = false;
  let nonAscii = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= Ch.A && c <= Ch.Z) needsLower = true;
    else if (c > 0x7f) nonAscii = true;
  }
  if (nonAscii) {
    if (name.length > 4 * MAX_NAME) return { ok: false, reason: 'too-long' };
    const ascii = domainToASCII(name.toLowerCase());
    if (ascii === '') return { ok: false, reason: 'bad-idn' };
    name = ascii;
  } else if (needsLower) {
    name = name.toLowerCase();
  }
  const structural = checkStructure(name);
  if (structural) return { ok: false, reason: structural };
  if (isHousekeepingName(name)) return { ok: false, reason: 'localhost' };
  if (name.indexOf('.') === -1) return { ok: false, reason: 'single-label' };
  if (isDottedQuad(name)) return { ok: false, reason: 'ip-address' };
  if (isPublicSuffix(name)) return { ok: false, reason: 'public-suffix' };
  return { ok: true, name };
}

export type EntryScope = 'exact' | 'subtree';

export type EntryResult = { ok: true; name: string; scope: EntryScope } | { ok: false; reason: InvalidNameReason };

/**
 * A user's allow or deny entry, as the API, the dashboard and the config's `allow`/`deny` take it:
 * `name` (or `*.name`) for the name and every name below it, `=name` for the name only; the name
 * normalised the way lists are (IDN, case, trailing dot). One parser, so an entry the API accepts
 * is one the config accepts, and both mean the same rule.
 */
export function parseUserEntry(input: string): EntryResult {
  const trimmed = input.trim();
  const exact = trimmed.startsWith('=');
  const n = normaliseName(exact ? trimmed.slice(1) : trimmed.replace(/^\*\./, ''));
  return n.ok ? { ok: true, name: n.name, scope: exact ? 'exact' : 'subtree' } : n;
}

/**
 * A name as typed by a person (`hushdns why Bücher.Example.`, an exclusion): lowercase, IDN as
 * punycode, no trailing dot, within the length and character rules. Unlike normaliseName it does
 * not ask whether the name may be a rule: `why com` or `why localhost` are fair questions.
 */
export function canonicalName(input: string): NameResult {
  let name = input.trim();
  if (name.length > 1 && name.charCodeAt(name.length - 1) === Ch.Dot) name = name.slice(0, -1);
  if (name.length === 0) return { ok: false, reason: 'empty' };
  if (/[^\x00-\x7f]/.test(name)) {
    if (name.length > 4 * MAX_NAME) return { ok: false, reason: 'too-long' };
    name = domainToASCII(name.toLowerCase());
    if (name === '') return { ok: false, reason: 'bad-idn' };
  } else {
    name = name.toLowerCase();
  }
  const structural = checkStructure(name);
  return structural ? { ok: false, reason: structural } : { ok: true, name };
}

/** Length, label and character rules of RFC 1035/1123 (plus `_`) on an already-lowercased name. */
function checkStructure(name: string): InvalidNameReason | null {
  if (name.length > MAX_NAME) return 'too-long';
  let labelStart = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i === name.length ? Ch.Dot : name.charCodeAt(i);
    if (c === Ch.Dot) {
      const len = i - labelStart;
      if (len === 0) return 'empty-label';
      if (len > MAX_LABEL) return 'label-too-long';
      if (name.charCodeAt(labelStart) === Ch.Hyphen || name.charCodeAt(i - 1) === Ch.Hyphen) {
        return 'hyphen-edge';
      }
      labelStart = i + 1;
      continue;
    }
    const ok =
      (c >= Ch.a && c <= Ch.z) || (c >= Ch.Zero && c <= Ch.Nine) || c === Ch.Hyphen || c === Ch.Underscore;
    if (!ok) return 'bad-character';
  }
  return null;
}

function isDottedQuad(name: string): boolean {
  const last = name.charCodeAt(name.length - 1);
  if (last < Ch.Zero || last > Ch.Nine) return false; // no TLD ends in a digit: skip the split
  const parts = name.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => p.length > 0 && p.length <= 3 && /^[0-9]+$/.test(p) && Number(p) <= 255);
}

/** True when `name` is itself a public suffix (ICANN or private section: `com`, `co.uk`, `github.io`). */
export function isPublicSuffix(name: string): boolean {
  tldts ??= createRequire(import.meta.url)('tldts') as typeof import('tldts');
  return tldts.getPublicSuffix(name, SUFFIX_OPTIONS) === name;
}

// `name` is already a valid lowercase host name: skip tldts's URL parsing and checks (~40 % of
// its cost, and this runs once per list entry).
const SUFFIX_OPTIONS = { allowPrivateDomains: true, extractHostname: false, validateHostname: false, detectIp: false, mixedInputs: false } as const;

// The Public Suffix List costs ~10 MB resident; the server loads it only if it ever validates a
// name (local records), the compiler on its first name.
let tldts: typeof import('tldts') | undefined;

/** The name itself followed by each parent, most specific first: a.b.c → a.b.c, b.c, c. */
export function nameAndParents(name: string): string[] {
  const out = [name];
  let i = name.indexOf('.');
  while (i !== -1) {
    out.push(name.slice(i + 1));
    i = name.indexOf('.', i + 1);
  }
  return out;
}

/** True when `name` equals `ancestor` or lies below it. */
export function isSameOrSubdomain(name: string, ancestor: string): boolean {
  if (name === ancestor) return true;
  return name.length > ancestor.length && name.endsWith(ancestor) && name.charCodeAt(name.length - ancestor.length - 1) === Ch.Dot;
}

/**
 * A 32-bit hash (FNV-1a) of a name's last two labels, read in place: a cheap way to ask "could a
 * name end in this registrable domain?" of a Set of numbers without slicing or hashing a string.
 */
export function lastTwoLabelsHash(name: string): number {
  const last = name.lastIndexOf('.');
  let h = 0x811c9dc5;
  for (let i = last === -1 ? 0 : name.lastIndexOf('.', last - 1) + 1; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Key that sorts a parent directly before all of its descendants: labels reversed and joined by
 * U+0001, which sorts below every character a label may hold ('-' included, which '.' would not).
 */
export function treeSortKey(name: string): string {
  return name.split('.').reverse().join('\u0001');
}
