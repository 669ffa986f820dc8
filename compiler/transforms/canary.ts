// The canary guard: special names (the DoH canary, iCloud Private Relay, DDR; common/special-names.ts)
// are answered by the server itself and never decided by a list. A rule for one is dropped. A block
// pattern that matches one is kept for every other name it matches but rewritten so it cannot match
// a special name or anything below it: dropping it would unblock everything else it was listed for
// (a regex `icloud\.com$` also covers the Private Relay names), and keeping it as it is lets
// `hushdns why` report the canary as blocked by a list, the signal that switches browsers to DoH.
import { lastTwoLabelsHash } from '../../common/names.js';
import { SPECIAL_NAMES, isSpecialName } from '../../common/special-names.js';
import { globToRegExp } from '../../server/blocklist.js';

const SPECIALS: readonly string[] = [SPECIAL_NAMES.dohCanary, ...SPECIAL_NAMES.privateRelay, SPECIAL_NAMES.ddr];
/** The last two labels of every special name: a name that ends in none of them is not special. */
const SPECIAL_TAILS = new Set(SPECIALS.map(lastTwoLabelsHash));

/** isSpecialName for a list entry whose lastTwoLabelsHash is `tail`. Hot: once per entry. */
export function isSpecialEntry(name: string, tail: number): boolean {
  return SPECIAL_TAILS.has(tail) && isSpecialName(name);
}

/** A special name and a name below it: a pattern that matches neither cannot decide either. */
const PROBES: readonly (readonly [special: string, probe: string])[] = SPECIALS.flatMap((s) => [
  [s, s],
  [s, `hushdns-probe.${s}`],
] as const);

export interface GuardedPattern {
  kind: 'regex' | 'glob';
  pattern: string;
  /** The special names the pattern as listed would have matched (empty: stored unchanged). */
  guarded: string[];
}

/** The pattern to store for a block pattern: unchanged, or a regex that spares the special names. */
export function guardPattern(kind: 'regex' | 'glob', pattern: string): GuardedPattern {
  // The server matches regexes case-insensitively and globs as globToRegExp reads them.
  let re: RegExp;
  try {
    re = kind === 'regex' ? new RegExp(pattern, 'i') : globToRegExp(pattern);
  } catch {
    // The parsers only pass patterns that compile; one that does not never matches on the server either.
    return { kind, pattern, guarded: [] };
  }
  const hit = new Set<string>();
  for (const [special, probe] of PROBES) if (re.test(probe)) hit.add(special);
  if (hit.size === 0) return { kind, pattern, guarded: [] };
  const guarded = [...hit];
  const names = guarded.map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('|');
  // Anchored at the start so the look-ahead is tried once; `[\s\S]*?` then lets the original
  // match anywhere, as an unanchored search would (its own `^` still only matches at 0).
  const original = kind === 'regex' ? pattern : re.source;
  return { kind: 'regex', pattern: `^(?!(?:.*\\.)?(?:${names})$)[\\s\\S]*?(?:${original})`, guarded };
}
