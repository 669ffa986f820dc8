// What happens to one normalised list entry before it reaches the writer, in the fixed order of
// issue 2: exclusions and inclusions (global and per source), then the canary guard. Dedupe and
// compress follow in the writer (write-db.ts).
import { guardPattern, isSpecialEntry, type GuardedPattern } from './canary.js';
import { MatcherError, compileMatcher, type MatcherKind, type NameMatcher } from './matchers.js';

export interface Matchers {
  exclude: NameMatcher | null;
  include: NameMatcher | null;
}

/** Why an entry was not kept ('special': a rule for a name the server answers itself). */
export type Dropped = 'excluded' | 'not-included' | 'special';

export class EntryFilter {
  private readonly plain: boolean;

  constructor(
    private readonly global: Matchers,
    private readonly source: Matchers,
  ) {
    this.plain = !global.exclude && !global.include && !source.exclude && !source.include;
  }

  /** null: keep the rule for `name` (`tail`: its lastTwoLabelsHash). Hot: once per list entry. */
  rule(name: string, tail: number): Dropped | null {
    if (!this.plain) {
      const dropped = this.match(name);
      if (dropped) return dropped;
    }
    return isSpecialEntry(name, tail) ? 'special' : null;
  }

  /**
   * A pattern is matched by its text (the glob or the regex source), as exclusions of AdGuard's
   * HostlistCompiler match rule text. A kept block pattern comes back guarded (canary.ts).
   */
  pattern(kind: 'regex' | 'glob', text: string, action: 'block' | 'allow'): Exclude<Dropped, 'special'> | GuardedPattern {
    const dropped = this.plain ? null : this.match(text);
    if (dropped) return dropped;
    return action === 'block' ? guardPattern(kind, text) : { kind, pattern: text, guarded: [] };
  }

  private match(text: string): 'excluded' | 'not-included' | null {
    if (this.global.exclude?.(text) || this.source.exclude?.(text)) return 'excluded';
    if ((this.global.include && !this.global.include(text)) || (this.source.include && !this.source.include(text))) return 'not-included';
    return null;
  }
}

/**
 * The matchers of one compile: global `exclude`/`include` and each source's own. Every bad pattern
 * of every list is reported together, in one MatcherError, before anything is fetched.
 */
export function buildFilters(
  global: { exclude: readonly unknown[]; include: readonly unknown[] },
  sources: readonly { id: string; exclude: readonly unknown[]; include: readonly unknown[] }[],
): { global: Matchers; bySource: Map<string, Matchers> } {
  const problems: string[] = [];
  const build = (patterns: readonly unknown[], kind: MatcherKind, where: string): NameMatcher | null => {
    try {
      return compileMatcher(patterns, kind, where);
    } catch (err) {
      if (!(err instanceof MatcherError)) throw err;
      problems.push(...err.problems);
      return null;
    }
  };
  const globalMatchers = { exclude: build(global.exclude, 'exclusion', 'exclude'), include: build(global.include, 'inclusion', 'include') };
  const bySource = new Map<string, Matchers>();
  for (const s of sources) {
    bySource.set(s.id, { exclude: build(s.exclude, 'exclusion', `source ${s.id}: exclude`), include: build(s.include, 'inclusion', `source ${s.id}: include`) });
  }
  if (problems.length > 0) throw new MatcherError(problems);
  return { global: globalMatchers, bySource };
}
