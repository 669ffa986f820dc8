// Our own list formats, bundled in lists/:
// - lists/vendors/<vendor>.txt: curated block lists. `[standard]` and `[strict]` section headers
//   set the level of the entries that follow (entries before any header are standard).
// - lists/allow/<topic>.txt: names that must never be blocked; no sections.
// Both: one plain lowercase hostname a line, covering the name and all its subdomains (`=name`
// covers the name only: a push host is allowed without the statistics host below it), `#`
// comments on their own line or after an entry. Anything else (two names, `*`, a URL, adblock
// syntax) is invalid: these files are ours, so a malformed line is a mistake to report, never a
// rule to guess at.
import type { LineParser, ParsedLine } from '../types.js';

export type CuratedLevel = 'standard' | 'strict';

/** What one line of a curated or allow list holds, before any level filtering. */
type CuratedLine =
  | { kind: 'blank' }
  | { kind: 'comment'; text: string }
  | { kind: 'section'; level: CuratedLevel }
  | { kind: 'entry'; name: string; comment: string | null; exact: boolean }
  | { kind: 'invalid'; reason: string };

const enum Ch {
  Tab = 0x09,
  Space = 0x20,
  Hash = 0x23,
  Dollar = 0x24,
  Star = 0x2a,
  Hyphen = 0x2d,
  Dot = 0x2e,
  Slash = 0x2f,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  Equals = 0x3d,
  At = 0x40,
  A = 0x41,
  Z = 0x5a,
  OpenBracket = 0x5b,
  CloseBracket = 0x5d,
  Caret = 0x5e,
  Underscore = 0x5f,
  a = 0x61,
  z = 0x7a,
  Pipe = 0x7c,
}

const isSpace = (c: number): boolean => c === Ch.Space || c === Ch.Tab;

/** Classify one line (no terminator). Shared by both parsers and by `describeList`. */
function readCuratedLine(line: string): CuratedLine {
  let start = 0;
  while (start < line.length && isSpace(line.charCodeAt(start))) start++;
  if (start === line.length) return { kind: 'blank' };
  if (line.charCodeAt(start) === Ch.Hash) return { kind: 'comment', text: line.slice(start + 1).trim() };

  const hash = line.indexOf('#', start);
  let end = hash === -1 ? line.length : hash;
  while (end > start && isSpace(line.charCodeAt(end - 1))) end--;
  const comment = hash === -1 ? null : line.slice(hash + 1).trim() || null;

  if (line.charCodeAt(start) === Ch.OpenBracket) {
    if (line.charCodeAt(end - 1) !== Ch.CloseBracket) return { kind: 'invalid', reason: 'bad-section-header' };
    const level = line.slice(start + 1, end - 1).trim();
    if (level === 'standard' || level === 'strict') return { kind: 'section', level };
    return { kind: 'invalid', reason: 'unknown-section' };
  }

  const exact = line.charCodeAt(start) === Ch.Equals;
  if (exact) start++;
  for (let i = start; i < end; i++) {
    const c = line.charCodeAt(i);
    if ((c >= Ch.a && c <= Ch.z) || (c >= Ch.Zero && c <= Ch.Nine) || c === Ch.Dot || c === Ch.Hyphen || c === Ch.Underscore) {
      continue;
    }
    if (isSpace(c)) return { kind: 'invalid', reason: 'several-names' };
    if (c === Ch.Star) return { kind: 'invalid', reason: 'wildcard' };
    if (c === Ch.Slash || c === Ch.Colon) return { kind: 'invalid', reason: 'url-or-address' };
    if (c === Ch.Pipe || c === Ch.Caret || c === Ch.At || c === Ch.Dollar) return { kind: 'invalid', reason: 'adblock-syntax' };
    if (c >= Ch.A && c <= Ch.Z) return { kind: 'invalid', reason: 'uppercase' };
    return { kind: 'invalid', reason: 'bad-character' };
  }
  const first = line.charCodeAt(start);
  if (first === Ch.Dot || line.charCodeAt(end - 1) === Ch.Dot) return { kind: 'invalid', reason: 'edge-dot' };
  if (start === end) return { kind: 'invalid', reason: 'bad-character' };
  return { kind: 'entry', name: line.slice(start, end), comment, exact };
}

const SKIP: ParsedLine = { kind: 'skip' };

/**
 * Parser for one curated vendor list. It remembers the current section, so make a new one per
 * file. At level 'strict' it returns the entries of both sections; at 'standard' it skips the
 * strict ones. Malformed lines are invalid at either level, so a standard compile reports them too.
 */
export function curatedParser(level: CuratedLevel): LineParser {
  let section: CuratedLevel = 'standard';
  return (line: string): ParsedLine => {
    const l = readCuratedLine(line);
    switch (l.kind) {
      case 'blank':
      case 'comment':
        return SKIP;
      case 'section':
        section = l.level;
        return SKIP;
      case 'invalid':
        return { kind: 'invalid', reason: l.reason };
      case 'entry':
        if (section === 'strict' && level === 'standard') return SKIP;
        return { kind: 'rule', name: l.name, action: 'block', scope: l.exact ? 'exact' : 'subtree' };
    }
  };
}

/** Parser for one allow list: every entry allows the name and its subtree (`=name`: the name only). */
export function allowListParser(): LineParser {
  return (line: string): ParsedLine => {
    const l = readCuratedLine(line);
    switch (l.kind) {
      case 'blank':
      case 'comment':
        return SKIP;
      case 'section':
        return { kind: 'invalid', reason: 'section-in-allow-list' };
      case 'invalid':
        return { kind: 'invalid', reason: l.reason };
      case 'entry':
        return { kind: 'rule', name: l.name, action: 'allow', scope: l.exact ? 'exact' : 'subtree' };
    }
  };
}

export interface ListEntry {
  name: string;
  level: CuratedLevel;
  /** 1-based line number. */
  line: number;
  /** The comment after the entry on its own line. */
  comment: string | null;
  /** Written `=name`: the name only, not its subdomains. */
  exact: boolean;
  /** The comment lines directly above the group of entries this one belongs to. */
  groupComment: string | null;
}

export interface DescribedList {
  /** The catalog id from a `# vendor: <id>` line in the file's leading comments. */
  vendor: string | null;
  entries: ListEntry[];
  invalid: { line: number; text: string; reason: string }[];
}

/**
 * Read a whole curated or allow list with its comments, for tests, reports and "why is this
 * blocked" answers. A group is a run of entries directly below a block of comment lines; a blank
 * line or a section header ends it, so a comment only explains the entries it touches.
 */
export function describeList(text: string, kind: 'curated' | 'allow'): DescribedList {
  const out: DescribedList = { vendor: null, entries: [], invalid: [] };
  const lines = text.split('\n');
  let section: CuratedLevel = 'standard';
  let pending: string[] = [];
  let group: string | null = null;
  let previous: CuratedLine['kind'] = 'blank';
  let leading = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    const l = readCuratedLine(raw);
    switch (l.kind) {
      case 'blank':
        pending = [];
        group = null;
        break;
      case 'comment': {
        if (leading && out.vendor === null) {
          const m = /^vendor:\s*([a-z0-9-]+)\s*$/.exec(l.text);
          if (m) out.vendor = m[1];
        }
        if (previous === 'entry') pending = [];
        pending.push(l.text);
        break;
      }
      case 'section':
        leading = false;
        if (kind === 'allow') out.invalid.push({ line: i + 1, text: raw, reason: 'section-in-allow-list' });
        section = l.level;
        pending = [];
        group = null;
        break;
      case 'invalid':
        leading = false;
        out.invalid.push({ line: i + 1, text: raw, reason: l.reason });
        break;
      case 'entry':
        leading = false;
        if (previous === 'comment') group = pending.join(' ').trim() || null;
        pending = [];
        out.entries.push({ name: l.name, level: section, line: i + 1, comment: l.comment, groupComment: group, exact: l.exact });
        break;
    }
    previous = l.kind;
  }
  return out;
}
