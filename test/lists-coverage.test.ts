// How much of hagezi's native vendor lists our bundled lists block, measured on the corpus copy
// of hagezi's release. The table shows what `hushdns serve` blocks offline, before any public list
// is fetched, and what the default public lists add. Coverage is never a target: our names are
// our own judgement, and every name hagezi does not list carries an `[own]` reason.
//
// UPDATE_LISTS_README=1 rewrites the table in lists/README.md; without it the test only checks
// that the committed table is current.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nameAndParents, normaliseName } from '../common/names.js';
import { LISTS_DIR, PACKAGE_ROOT } from '../common/paths.js';
import { describeList, type ListEntry } from '../compiler/parse/curated.js';
import { parserFor } from '../compiler/parse/index.js';
import { readRegistry } from '../compiler/sources.js';
import type { ListFormat, ParsedLine } from '../compiler/types.js';

const CORPUS = resolve(PACKAGE_ROOT, '../shared/corpus');
const hasCorpus = existsSync(join(CORPUS, 'hagezi', 'domains'));
if (!hasCorpus) console.warn(`lists-coverage: skipped, no blocklist corpus at ${CORPUS}`);

/** hagezi's native lists and the bundled lists that answer for the same vendor. */
const HAGEZI_VENDORS: { hagezi: string; ours: string[] }[] = [
  { hagezi: 'xiaomi', ours: ['xiaomi'] },
  { hagezi: 'huawei', ours: ['huawei', 'honor'] },
  { hagezi: 'oppo-realme', ours: ['oppo'] },
  { hagezi: 'vivo', ours: ['vivo'] },
  { hagezi: 'samsung', ours: ['samsung', 'samsung-tv'] },
  { hagezi: 'lgwebos', ours: ['lg'] },
  { hagezi: 'tiktok', ours: ['tiktok'] },
  { hagezi: 'amazon', ours: ['amazon'] },
  { hagezi: 'winoffice', ours: ['microsoft'] },
  { hagezi: 'roku', ours: ['roku'] },
  { hagezi: 'apple', ours: ['apple'] },
];

const README = join(LISTS_DIR, 'README.md');
const START = '<!-- coverage:start -->';
const END = '<!-- coverage:end -->';

/** Names a list blocks, normalised, as `{ exact, subtree }` sets (hagezi's canary names dropped). */
function readBlocks(path: string, format: ListFormat): { exact: Set<string>; subtree: Set<string> } {
  const parse = parserFor(format);
  const out = { exact: new Set<string>(), subtree: new Set<string>() };
  const take = (p: ParsedLine): void => {
    if (p.kind !== 'rule' || p.action !== 'block') return;
    const n = normaliseName(p.name);
    if (!n.ok || n.name.startsWith('h4g3z1-')) return;
    (p.scope === 'subtree' ? out.subtree : out.exact).add(n.name);
  };
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const r = parse(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (Array.isArray(r)) r.forEach(take);
    else take(r);
  }
  return out;
}

/** True when a list with these blocks blocks `name`. */
function blocks(list: { exact: Set<string>; subtree: Set<string> }, name: string): boolean {
  if (list.exact.has(name)) return true;
  for (const p of nameAndParents(name)) if (list.subtree.has(p)) return true;
  return false;
}

/** True when `name` or a parent is in `set`: a set of names read with subtree semantics. */
function underAny(set: Set<string>, name: string): boolean {
  for (const p of nameAndParents(name)) if (set.has(p)) return true;
  return false;
}

interface OurList {
  id: string;
  entries: ListEntry[];
}

const ourLists: OurList[] = readdirSync(join(LISTS_DIR, 'vendors'))
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => ({ id: basename(f, '.txt'), entries: describeList(readFileSync(join(LISTS_DIR, 'vendors', f), 'utf8'), 'curated').entries }));
const allowNames = readdirSync(join(LISTS_DIR, 'allow'))
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .flatMap((f) => describeList(readFileSync(join(LISTS_DIR, 'allow', f), 'utf8'), 'allow').entries.map((e) => e.name));

const ourStandard = new Set(ourLists.flatMap((l) => l.entries.filter((e) => e.level === 'standard').map((e) => e.name)));
const ourStrict = new Set(ourLists.flatMap((l) => l.entries.map((e) => e.name)));

/** The reason an `[own]` tag gives: the entry's own comment first, then its group's. */
function ownReason(e: ListEntry): string | null {
  for (const c of [e.comment, e.groupComment]) {
    const i = c?.indexOf('[own]') ?? -1;
    if (c && i !== -1) return c.slice(i + 5).trim();
  }
  return null;
}

describe.skipIf(!hasCorpus)('coverage of hagezi native vendor lists by our bundled lists', () => {
  // hagezi's domains format is the expanded list: every name exact. Its adblock form says the same
  // with subtree semantics; we read domains for counting and treat each name as covering its
  // subtree when asking "does hagezi list our name", as hagezi's own header says.
  const hagezi = new Map<string, Set<string>>();
  for (const { hagezi: v } of HAGEZI_VENDORS) hagezi.set(v, readBlocks(join(CORPUS, 'hagezi', 'domains', `native.${v}.txt`), 'domains').exact);
  const light = readBlocks(join(CORPUS, 'hagezi', 'domains', 'light.txt'), 'domains').exact;
  const anyHagezi = new Set<string>([...light, ...[...hagezi.values()].flatMap((s) => [...s])]);

  const registry = readRegistry(LISTS_DIR);
  const defaultOn = new Set(registry.filter((e) => e.default).map((e) => e.id));

  interface Row {
    hagezi: string;
    names: number;
    standard: number;
    strict: number;
    ours: string[];
    ourStandard: number;
    ourStrict: number;
    notInThisList: number;
    defaultAdds: number | null;
  }

  const rows: Row[] = HAGEZI_VENDORS.map(({ hagezi: v, ours }) => {
    const names = [...hagezi.get(v)!];
    const mine = ourLists.filter((l) => ours.includes(l.id)).flatMap((l) => l.entries);
    const standard = names.filter((n) => underAny(ourStandard, n)).length;
    return {
      hagezi: v,
      names: names.length,
      standard,
      strict: names.filter((n) => underAny(ourStrict, n)).length,
      ours,
      ourStandard: mine.filter((e) => e.level === 'standard').length,
      ourStrict: mine.length,
      notInThisList: mine.filter((e) => !underAny(hagezi.get(v)!, e.name)).length,
      defaultAdds: defaultOn.has(`hagezi-native-${v}`) ? names.length - standard : null,
    };
  });

  const ownNames = ourLists.map((l) => ({ id: l.id, entries: l.entries.filter((e) => !underAny(anyHagezi, e.name)) }));

  /** Allow-list names that the default public lists in the corpus block: kept working only by lists/allow. */
  const defaultBlocked = (() => {
    const lists = [...defaultOn]
      .map((id) => {
        const m = /^hagezi-native-(.+)$/.exec(id);
        const file = m ? join(CORPUS, 'hagezi', 'adblock', `native.${m[1]}.txt`) : id === 'hagezi-light' ? join(CORPUS, 'hagezi', 'adblock', 'light.txt') : null;
        return file && existsSync(file) ? { id, blocks: readBlocks(file, 'adblock') } : null;
      })
      .filter((x): x is { id: string; blocks: { exact: Set<string>; subtree: Set<string> } } => x !== null);
    const allowSet = new Set(allowNames);
    // an allow covers its subtree, so a block on a name below it counts as well
    const below = new Map<string, Set<string>>();
    for (const l of lists) {
      for (const b of [...l.blocks.exact, ...l.blocks.subtree]) {
        for (const p of nameAndParents(b).slice(1)) {
          if (!allowSet.has(p)) continue;
          if (!below.has(p)) below.set(p, new Set());
          below.get(p)!.add(l.id);
        }
      }
    }
    return allowNames
      .map((name) => {
        const self = lists.filter((l) => blocks(l.blocks, name)).map((l) => l.id);
        const under = [...(below.get(name) ?? [])].filter((id) => !self.includes(id));
        const by = [self.join(', '), under.length > 0 ? `names below it: ${under.join(', ')}` : ''].filter(Boolean).join('; ');
        return { name, by };
      })
      .filter((x) => x.by.length > 0);
  })();

  const pct = (n: number, of: number): string => (of === 0 ? '–' : `${Math.round((100 * n) / of)}%`);

  function markdown(): string {
    const out: string[] = [];
    out.push('Measured against hagezi/dns-blocklists release 2026-03-08 (the copy in `../shared/corpus`).');
    out.push('A hagezi name counts as blocked when one of our names is the same or a parent (subtree).');
    out.push('"Default lists add" is what the default public lists block beyond our standard level once fetched.');
    out.push('');
    out.push('| hagezi list | hagezi names | blocked by our standard | blocked by our strict | our lists | our names (standard / all) | ours not in this hagezi list | default lists add |');
    out.push('|---|---:|---:|---:|---|---:|---:|---:|');
    for (const r of rows) {
      out.push(
        `| ${r.hagezi} | ${r.names} | ${r.standard} (${pct(r.standard, r.names)}) | ${r.strict} (${pct(r.strict, r.names)}) | ${r.ours.join(', ')} | ${r.ourStandard} / ${r.ourStrict} | ${r.notInThisList} | ${r.defaultAdds === null ? 'list off by default' : r.defaultAdds} |`,
      );
    }
    out.push('');
    out.push('Our lists that hagezi has no native list for:');
    out.push('');
    out.push('| our list | names (standard / all) | not in any hagezi list |');
    out.push('|---|---:|---:|');
    const mapped = new Set(HAGEZI_VENDORS.flatMap((v) => v.ours));
    for (const l of ourLists.filter((l) => !mapped.has(l.id))) {
      const own = ownNames.find((o) => o.id === l.id)!.entries.length;
      out.push(`| ${l.id} | ${l.entries.filter((e) => e.level === 'standard').length} / ${l.entries.length} | ${own} |`);
    }
    out.push('');
    out.push('### Our names that no hagezi list has (native lists and Multi LIGHT), with our reason');
    out.push('');
    for (const o of ownNames.filter((o) => o.entries.length > 0)) {
      out.push(`- **${o.id}**: ${o.entries.map((e) => `\`${e.name}\`${e.level === 'strict' ? ' (strict)' : ''} — ${ownReason(e) ?? '(no reason)'}`).join('; ')}`);
    }
    out.push('');
    out.push('### Allow-list names that the default public lists block');
    out.push('');
    out.push('Allow beats block, so these keep working; without `lists/allow` the defaults would break them.');
    out.push('');
    for (const d of defaultBlocked) out.push(`- \`${d.name}\` (${d.by})`);
    return out.join('\n');
  }

  it('reports, for every hagezi vendor, how many of its names our lists block', () => {
    const table = markdown();
    console.log(`\n${table}\n`);
    for (const r of rows) {
      expect(r.names, r.hagezi).toBeGreaterThan(0);
      expect(r.strict, r.hagezi).toBeGreaterThanOrEqual(r.standard);
      expect(r.ourStrict, `${r.hagezi} has no list of ours`).toBeGreaterThan(0);
    }
  });

  it('gives a reason, tagged [own], for every one of our names that no hagezi list has', () => {
    const missing = ownNames.flatMap((o) => o.entries.filter((e) => ownReason(e) === null).map((e) => `${o.id}: ${e.name} (line ${e.line})`));
    expect(missing).toEqual([]);
    for (const o of ownNames) for (const e of o.entries) expect(ownReason(e)!.length, `${o.id}: ${e.name}`).toBeGreaterThan(10);
  });

  it('tags no name [own] in its own comment when hagezi lists it after all', () => {
    const stale = ourLists.flatMap((l) =>
      l.entries.filter((e) => e.comment?.includes('[own]') && underAny(anyHagezi, e.name)).map((e) => `${l.id}: ${e.name} (line ${e.line})`),
    );
    expect(stale).toEqual([]);
  });

  it('keeps every allow-list name reachable although the default public lists block some of them', () => {
    // informational: the names listed here are why lists/allow exists; none of them is ours to block
    for (const d of defaultBlocked) expect(underAny(ourStrict, d.name), d.name).toBe(false);
  });

  it('has the current table in lists/README.md (UPDATE_LISTS_README=1 refreshes it)', () => {
    const text = readFileSync(README, 'utf8');
    const start = text.indexOf(START);
    const end = text.indexOf(END);
    expect(start, `${README} needs ${START} and ${END} markers`).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const current = `${START}\n${markdown()}\n${END}`;
    if (process.env.UPDATE_LISTS_README === '1') {
      writeFileSync(README, text.slice(0, start) + current + text.slice(end + END.length));
      return;
    }
    expect(text.slice(start, end + END.length), 'the coverage table in lists/README.md is stale: run UPDATE_LISTS_README=1 npx vitest run test/lists-coverage.test.ts').toBe(current);
  });
});
