// Exclusions as users write them (global `exclude:` and per-source `exclude:`): an exact name,
// a `*` wildcard (`*.cdn.example.com`, `ads*.example.com`) or a `/regex/`.

export type NameMatcher = (name: string) => boolean;

export class ExclusionError extends Error {
  readonly code = 'bad-exclusion';
}

export function compileExclusions(patterns: readonly string[], where: string): NameMatcher | null {
  if (patterns.length === 0) return null;
  const exact = new Set<string>();
  const regexes: RegExp[] = [];
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase();
    if (p.length === 0) continue;
    if (p.length > 2 && p.startsWith('/') && p.endsWith('/')) {
      try {
        regexes.push(new RegExp(raw.trim().slice(1, -1), 'i'));
      } catch (err) {
        throw new ExclusionError(`${where}: exclusion ${raw} is not a valid regular expression (${(err as Error).message})`);
      }
    } else if (p.includes('*')) {
      const body = p.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*');
      // `*.example.com` also excludes example.com itself, as wildcard lists mean it.
      regexes.push(new RegExp(p.startsWith('*.') ? `^(?:[^.]*\\.)*?${body.slice('[^.]*\\.'.length)}$|^${body}$` : `^${body}$`));
    } else {
      exact.add(p.endsWith('.') ? p.slice(0, -1) : p);
    }
  }
  return (name) => exact.has(name) || regexes.some((r) => r.test(name));
}
