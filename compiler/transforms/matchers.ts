// Exclusions and inclusions as users write them (config `exclude:` / `include:`, globally and per
// source): an exact name, a `*` wildcard (`*.cdn.example.com`, `ads*.example.com`) or a `/regex/`.
// A matcher is tried on a list entry as the list wrote it after normalising: a rule's name, or a
// pattern's text (a glob such as `*.ads*.example.com`, or a regex's source).
import { canonicalName } from '../../common/names.js';
import { UserError } from '../../common/errors.js';

export type NameMatcher = (text: string) => boolean;

export type MatcherKind = 'exclusion' | 'inclusion';

export class MatcherError extends UserError {
  readonly code = 'bad-matcher';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/**
 * One matcher for a list of patterns, or null when the list is empty. Every bad pattern is
 * reported, together, in one MatcherError naming `where` (e.g. `exclude`, `sources[2].include`).
 */
export function compileMatcher(patterns: readonly unknown[], kind: MatcherKind, where: string): NameMatcher | null {
  const exact = new Set<string>();
  const regexes: RegExp[] = [];
  const problems: string[] = [];
  patterns.forEach((raw, i) => {
    const at = `${where}[${i}] = ${JSON.stringify(raw)}`;
    if (typeof raw !== 'string') {
      problems.push(`${at}: expected text (an exact name, a *.wildcard or a /regex/)`);
      return;
    }
    const p = raw.trim();
    if (p.length === 0) return;
    if (p.length > 2 && p.startsWith('/') && p.endsWith('/')) {
      try {
        regexes.push(new RegExp(p.slice(1, -1), 'i'));
      } catch (err) {
        problems.push(`${at}: not a valid regular expression (${(err as Error).message})`);
      }
    } else if (p.includes('*')) {
      regexes.push(wildcardRegExp(p.toLowerCase()));
    } else {
      const n = canonicalName(p);
      if (n.ok) exact.add(n.name);
      else problems.push(`${at}: not a valid ${kind} (${n.reason}); write a name, a *.wildcard or a /regex/`);
    }
  });
  if (problems.length > 0) throw new MatcherError(problems);
  if (exact.size === 0 && regexes.length === 0) return null;
  if (regexes.length === 0) return (text) => exact.has(text);
  return (text) => {
    if (exact.has(text)) return true;
    for (let i = 0; i < regexes.length; i++) if (regexes[i]!.test(text)) return true;
    return false;
  };
}

/** `*` stands for any run of characters within one label; `*.example.com` also matches example.com itself, as wildcard lists mean it. */
function wildcardRegExp(p: string): RegExp {
  const body = p
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^.]*');
  // `*.rest`: any number of labels (none included) before `rest`, which covers one label too.
  return new RegExp(p.startsWith('*.') ? `^(?:[^.]*\\.)*?${body.slice('[^.]*\\.'.length)}$` : `^${body}$`);
}
