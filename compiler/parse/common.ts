// Pieces every line parser shares: the fixed results (allocated once, not per line), the guard
// against lines that cannot be list data, whitespace scanning and the glob convention.
import { TOO_LONG_LINE } from '../lines.js';
import type { Action, ParsedLine, Scope } from '../types.js';

/** Shared results: parsers return the same frozen object for every blank line or repeated reason. */
export const SKIP: ParsedLine = Object.freeze({ kind: 'skip' });

const invalidCache = new Map<string, ParsedLine>();
const unsupportedCache = new Map<string, ParsedLine>();

/** Reasons are a small fixed vocabulary per parser, so caching one object per reason is bounded. */
export function invalid(reason: string): ParsedLine {
  let r = invalidCache.get(reason);
  if (r === undefined) {
    r = Object.freeze({ kind: 'invalid', reason });
    invalidCache.set(reason, r);
  }
  return r;
}

export function unsupported(reason: string): ParsedLine {
  let r = unsupportedCache.get(reason);
  if (r === undefined) {
    r = Object.freeze({ kind: 'unsupported', reason });
    unsupportedCache.set(reason, r);
  }
  return r;
}

export function rule(name: string, action: Action, scope: Scope): ParsedLine {
  return { kind: 'rule', name, action, scope };
}

/**
 * A NUL can only come from a binary or corrupted download (or the splitter's too-long marker);
 * such a line is rejected whole instead of being cut into something that looks like a name.
 */
export function rejectUnreadable(line: string): ParsedLine | null {
  if (line.indexOf('\u0000') === -1) return null;
  return line === TOO_LONG_LINE ? invalid('line-too-long') : invalid('nul-byte');
}

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c || c === 0x0d;
}

export function skipSpace(s: string, i: number, end: number): number {
  while (i < end && isSpace(s.charCodeAt(i))) i++;
  return i;
}

export function skipToken(s: string, i: number, end: number): number {
  while (i < end && !isSpace(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Characters a host may hold as written in a list: ASCII letters and digits, '-', '.', '_' and
 * anything non-ASCII (an IDN written raw; normaliseName converts it or rejects it).
 */
export function isHostChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2e ||
    c === 0x2d ||
    (c >= 0x41 && c <= 0x5a) ||
    c === 0x5f ||
    c > 0x7f
  );
}

/**
 * Glob patterns, as the parsers emit them (`patternKind: 'glob'`): lowercase ASCII where `*`
 * matches any run of characters, dots included. A leading `*.` means the rest of the pattern and
 * every name below it (the wildcard format's meaning of `*.`), so `*.ads*.msads.net` covers
 * `ads1.msads.net` and `x.ads1.msads.net`; a pattern without a leading `*.` matches whole names
 * only. Every glob holds at least one literal label character: a pattern made only of `*` and
 * `.` would block everything and is reported unsupported ('too-broad').
 *
 * `body` is the host as written, with the format's own subtree marker already removed.
 */
export function glob(body: string, scope: Scope, action: Action): ParsedLine {
  let text = body.toLowerCase();
  if (text.charCodeAt(text.length - 1) === 0x2e) text = text.slice(0, -1);
  let literal = false;
  let prev = 0x2e; // a leading '.' is an empty label too
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e && prev === 0x2e) return invalid('empty-label');
    if (c === 0x2a || c === 0x2e) {
      prev = c;
      continue;
    }
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) {
      return invalid('bad-glob-character');
    }
    literal = true;
    prev = c;
  }
  if (!literal) return unsupported('too-broad');
  if (text.length > 253) return invalid('too-long');
  return { kind: 'pattern', patternKind: 'glob', pattern: scope === 'subtree' ? `*.${text}` : text, action };
}

/** Index of the first `ch` in `s[from, end)` that is not inside double quotes, or `end`. */
export function indexOutsideQuotes(s: string, ch: number, from: number, end: number): number {
  let quoted = false;
  for (let i = from; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) quoted = !quoted;
    else if (c === ch && !quoted) return i;
  }
  return end;
}
