// How much of hagezi's native vendor lists our bundled lists block, measured on the corpus copy
// of hagezi's release. The table shows what `hushdns serve` blocks offline, before any public list
// is fetched, and what the default public lists add. Coverage is never a target: our names are
// our own judgement, and every name hagezi does not list carries an `[own]` reason.
//
// The same corpus checks what our comments say about public lists ("Perflyst lists it", "hagezi
// does not", "no list in the corpus has it"), and that a registry list that names a device vendor
// holds nothing the catalog gives to anyone else.
//
// UPDATE_LISTS_README=1 rewrites the table in lists/README.md; without it the test only checks
// that the committed table is current.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nameAndParents, normaliseName } from '../common/names.js';
import { LISTS_DIR, PACKAGE_ROOT } from '../common/paths.js';
import { VendorCatalog, deviceEvidence } from '../common/vendors.js';
import { describeList, type ListEntry } from '../compiler/parse/curated.js';
import { parserFor } from '../compiler/parse/index.js';
import { readRegistry } from '../compiler/sources.js';
import type { ListFormat, ParsedLine } from '../compiler/types.js';

const CORPUS = resolve(PACKAGE_ROOT, '../shared/corpus');
const hasCorpus = existsSync(join(CORPUS, 'hagezi', 'domains'));
if (!hasCorpus) console.warn(`lists-coverage: skipped, no blocklist corpus at ${CORPUS}`);

const catalog = VendorCatalog.load(LISTS_DIR);

/** hagezi's native lists and the catalog vendors of ours that answer for the same company. */
const HAGEZI_VENDORS: { hagezi: string; ours: string[] }[] = [
  { hagezi: 'xiaomi', ours: ['xiaomi', 'xiaomi-web'] },
  { hagezi: 'huawei', ours: ['huawei', 'huawei-web', 'honor', 'honor-web'] },
  { hagezi: 'oppo-realme', ours: ['oppo', 'oppo-web'] },
  { hagezi: 'vivo', ours: ['vivo', 'vivo-web'] },
  { hagezi: 'samsung', ours: ['samsung', 'samsung-web', 'samsung-tv'] },
  { hagezi: 'lgwebos', ours: ['lg', 'lg-web', 'alphonso'] },
  { hagezi: 'tiktok', ours: ['tiktok'] },
  { hagezi: 'amazon', ours: ['amazon', 'amazon-devices'] },
  { hagezi: 'winoffice', ours: ['microsoft', 'windows'] },
  { hagezi: 'roku', ours: ['roku', 'roku-web'] },
  { hagezi: 'apple', ours: ['apple', 'apple-web'] },
];

const README = join(LISTS_DIR, 'README.md');
const START = '<!-- coverage:start -->';
const END = '<!-- coverage:end -->';

interface Blocks {
  exact: Set<string>;
  subtree: Set<string>;
  regex: RegExp[];
}

/** Names a list blocks, normalised (hagezi's canary names dropped), and its regex rules. */
function readBlocks(path: string, format: ListFormat): Blocks {
  const parse = parserFor(format);
  const out: Blocks = { exact: new Set(), subtree: new Set(), regex: [] };
  const take = (p: ParsedLine): void => {
    if (p.kind === 'pattern' && p.action === 'block' && p.patternKind === 'regex') {
      out.regex.push(new RegExp(p.pattern));
      return;
    }
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

/** True when a list with these blocks blocks `name`, by the list's own semantics. */
function blocks(list: Blocks, name: string): boolean {
  if (list.exact.has(name)) return true;
  for (const p of nameAndParents(name)) if (list.subtree.has(p)) return true;
  return list.regex.some((r) => r.test(name));
}

/** True when `name` or a parent is in `set`: a set of names read with subtree semantics. */
function underAny(set: Set<string>, name: string): boolean {
  for (const p of nameAndParents(name)) if (set.has(p)) return true;
  return false;
}

interface OurList {
  id: string;
  /** The catalog vendor of the file's rules, or null when each name carries its own. */
  vendor: string | null;
  entries: ListEntry[];
}

const ourLists: OurList[] = readdirSync(join(LISTS_DIR, 'vendors'))
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => {
    const d = describeList(readFileSync(join(LISTS_DIR, 'vendors', f), 'utf8'), 'curated');
    return { id: basename(f, '.txt'), vendor: d.vendor, entries: d.entries };
  });
const allowLists: OurList[] = readdirSync(join(LISTS_DIR, 'allow'))
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => ({ id: `allow/${basename(f, '.txt')}`, vendor: null, entries: describeList(readFileSync(join(LISTS_DIR, 'allow', f), 'utf8'), 'allow').entries }));
const allowNames = allowLists.flatMap((l) => l.entries.map((e) => e.name));

const ourStandard = new Set(ourLists.flatMap((l) => l.entries.filter((e) => e.level === 'standard').map((e) => e.name)));
const ourStrict = new Set(ourLists.flatMap((l) => l.entries.map((e) => e.name)));
const vendorOfEntry = (l: OurList, e: ListEntry): string | null => l.vendor ?? catalog.vendorOf(e.name)?.id ?? null;

/** The reason an `[own]` tag gives: the entry's own comment first, then its group's. */
function ownReason(e: ListEntry): string | null {
  for (const c of [e.comment, e.groupComment]) {
    const i = c?.indexOf('[own]') ?? -1;
    if (c && i !== -1) return c.slice(i + 5).trim();
  }
  return null;
}

/**
 * The public lists our comments name, by the words the comments use, and their corpus copies.
 * "hagezi" means any of its native lists or Multi LIGHT, read with subtree semantics as hagezi's
 * own header says; the others are read as their format says (hosts: the name only).
 */
const NAMED_LISTS: Record<string, { file: string; format: ListFormat }[]> = {
  'hagezi Light': [{ file: 'hagezi/domains/light.txt', format: 'domains' }],
  Perflyst: [
    { file: 'perflyst/SmartTV.txt', format: 'domains' },
    { file: 'perflyst/android-tracking.txt', format: 'domains' },
    { file: 'perflyst/AmazonFireTV.txt', format: 'domains' },
    { file: 'perflyst/SessionReplay.txt', format: 'domains' },
    { file: 'perflyst/SmartTV-AGH.txt', format: 'adblock' },
    { file: 'perflyst/regex.list', format: 'regex' },
  ],
  WindowsSpyBlocker: ['spy', 'extra', 'update'].map((f) => ({ file: `windowsspyblocker/hosts/${f}.txt`, format: 'hosts' as const })),
  StevenBlack: [{ file: 'stevenblack/hosts', format: 'hosts' }],
  yhosts: [{ file: 'stevenblack/data/yhosts/hosts', format: 'hosts' }],
  adaway: [{ file: 'stevenblack/data/adaway.org/hosts', format: 'hosts' }],
  EasyPrivacy: [{ file: 'easylist/easyprivacy.txt', format: 'adblock' }],
  AdGuard: [
    { file: 'adguard-sdnsfilter/Filters/filter.txt', format: 'adblock' },
    { file: 'adguard-cname-trackers/combined_disguised_trackers.txt', format: 'adblock' },
  ],
  OISD: [{ file: 'oisd/oisd_small_abp.txt', format: 'adblock' }],
};
const LIST_WORDS = ['hagezi Light', 'hagezi', ...Object.keys(NAMED_LISTS).filter((k) => k !== 'hagezi Light')];
const WORD = LIST_WORDS.map((w) => w.replace(' ', '\\s')).join('|');
/** "Perflyst lists it", "EasyPrivacy and StevenBlack list both", "AdGuard lists kochava.com", "Perflyst's LG regex blocks it". */
const POSITIVE = new RegExp(`\\b((?:${WORD})(?:(?:,\\s*|\\s+and\\s+)(?:${WORD}))*)(?:'s [A-Za-z ]+?)?\\s+(?:lists?|blocks?)\\s+(it|both|them|[a-z0-9-]+(?:\\.[a-z0-9-]+)+)\\b`, 'g');
/** "hagezi does not", "Perflyst does not". */
const NEGATIVE = new RegExp(`\\b(${WORD})\\s+does not\\b`, 'g');
/** "no list in the corpus has it", "no public list blocks it". */
const NONE = /\bno (?:public )?list(?: in the corpus)? (?:has|lists|blocks) it\b/;

interface Claim {
  list: string;
  name: string;
  says: 'blocks' | 'does-not' | 'none';
}

/** What a comment claims about public lists, for the entry `name` it explains. */
function claimsIn(comment: string, name: string): Claim[] {
  const out: Claim[] = [];
  for (const m of comment.matchAll(POSITIVE)) {
    const target = ['it', 'both', 'them'].includes(m[2]) ? name : m[2];
    for (const list of m[1].split(/,\s*|\s+and\s+/)) out.push({ list: list.replace(/\s+/g, ' '), name: target, says: 'blocks' });
  }
  for (const m of comment.matchAll(NEGATIVE)) out.push({ list: m[1].replace(/\s+/g, ' '), name, says: 'does-not' });
  if (NONE.test(comment)) out.push({ list: '*', name, says: 'none' });
  return out;
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
    notInThisList: { name: string; level: 'standard' | 'strict'; inLight: boolean }[];
    defaultAdds: number | null;
  }

  const entriesOf = (vendors: string[]): ListEntry[] => ourLists.flatMap((l) => l.entries.filter((e) => vendors.includes(vendorOfEntry(l, e) ?? '')));

  const rows: Row[] = HAGEZI_VENDORS.map(({ hagezi: v, ours }) => {
    const names = [...hagezi.get(v)!];
    const mine = entriesOf(ours);
    const standard = names.filter((n) => underAny(ourStandard, n)).length;
    return {
      hagezi: v,
      names: names.length,
      standard,
      strict: names.filter((n) => underAny(ourStrict, n)).length,
      ours,
      ourStandard: mine.filter((e) => e.level === 'standard').length,
      ourStrict: mine.length,
      notInThisList: mine.filter((e) => !underAny(hagezi.get(v)!, e.name)).map((e) => ({ name: e.name, level: e.level, inLight: underAny(light, e.name) })),
      defaultAdds: defaultOn.has(`hagezi-native-${v}`) ? names.length - standard : null,
    };
  });

  const mapped = new Set(HAGEZI_VENDORS.flatMap((v) => v.ours));
  /** Our names hagezi has no native list for, by our list. */
  const unmapped = ourLists
    .map((l) => ({ id: l.id, entries: l.entries.filter((e) => !mapped.has(vendorOfEntry(l, e) ?? '')) }))
    .filter((l) => l.entries.length > 0);

  const ownNames = ourLists.map((l) => ({ id: l.id, entries: l.entries.filter((e) => !underAny(anyHagezi, e.name)) }));

  /** The default public lists as the compiler reads them (hagezi's adblock form), by registry id. */
  const defaultLists = [...defaultOn]
    .map((id) => {
      const m = /^hagezi-native-(.+)$/.exec(id);
      const file = m ? join(CORPUS, 'hagezi', 'adblock', `native.${m[1]}.txt`) : id === 'hagezi-light' ? join(CORPUS, 'hagezi', 'adblock', 'light.txt') : null;
      return file && existsSync(file) ? { id, blocks: readBlocks(file, 'adblock') } : null;
    })
    .filter((x): x is { id: string; blocks: Blocks } => x !== null);

  /** Allow-list names that the default public lists in the corpus block: kept working only by lists/allow. */
  const defaultBlocked = (() => {
    const allowSet = new Set(allowNames);
    // an allow covers its subtree, so a block on a name below it counts as well
    const below = new Map<string, Set<string>>();
    for (const l of defaultLists) {
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
        const self = defaultLists.filter((l) => blocks(l.blocks, name)).map((l) => l.id);
        const under = [...(below.get(name) ?? [])].filter((id) => !self.includes(id));
        const by = [self.join(', '), under.length > 0 ? `names below it: ${under.join(', ')}` : ''].filter(Boolean).join('; ');
        return { name, by };
      })
      .filter((x) => x.by.length > 0);
  })();

  const pct = (n: number, of: number): string => (of === 0 ? '–' : `${Math.round((100 * n) / of)}%`);
  const code = (e: { name: string; level: 'standard' | 'strict' }): string => `\`${e.name}\`${e.level === 'strict' ? ' (strict)' : ''}`;

  function markdown(): string {
    const out: string[] = [];
    out.push('Measured against hagezi/dns-blocklists release 2026-03-08 (the copy in `../shared/corpus`).');
    out.push('A hagezi name counts as blocked when one of our names is the same or a parent (subtree).');
    out.push('"Our vendors" are the catalog vendors whose names count for that hagezi list, from every');
    out.push('bundled list. "Default lists add" is what the default public lists block beyond our standard');
    out.push('level once fetched.');
    out.push('');
    out.push('| hagezi list | hagezi names | blocked by our standard | blocked by our strict | our vendors | our names (standard / all) | ours not in this hagezi list | default lists add |');
    out.push('|---|---:|---:|---:|---|---:|---:|---:|');
    for (const r of rows) {
      out.push(
        `| ${r.hagezi} | ${r.names} | ${r.standard} (${pct(r.standard, r.names)}) | ${r.strict} (${pct(r.strict, r.names)}) | ${r.ours.join(', ')} | ${r.ourStandard} / ${r.ourStrict} | ${r.notInThisList.length} | ${r.defaultAdds === null ? 'list off by default' : r.defaultAdds} |`,
      );
    }
    out.push('');
    out.push('### Our names that each hagezi native list does not have');
    out.push('');
    out.push('Marked "in Light" where hagezi\'s general Multi LIGHT list has them after all; every other one');
    out.push('carries an `[own]` reason, listed further below.');
    out.push('');
    for (const r of rows.filter((r) => r.notInThisList.length > 0)) {
      out.push(`- **${r.hagezi}**: ${r.notInThisList.map((e) => `${code(e)}${e.inLight ? ' in Light' : ''}`).join(', ')}`);
    }
    out.push('');
    out.push('Our names that hagezi has no native list for, by bundled list:');
    out.push('');
    out.push('| our list | names (standard / all) | not in any hagezi list |');
    out.push('|---|---:|---:|');
    for (const l of unmapped) {
      const own = l.entries.filter((e) => !underAny(anyHagezi, e.name)).length;
      out.push(`| ${l.id} | ${l.entries.filter((e) => e.level === 'standard').length} / ${l.entries.length} | ${own} |`);
    }
    out.push('');
    out.push('### Our names that no hagezi list has (native lists and Multi LIGHT), with our reason');
    out.push('');
    for (const o of ownNames.filter((o) => o.entries.length > 0)) {
      out.push(`- **${o.id}**: ${o.entries.map((e) => `${code(e)} — ${ownReason(e) ?? '(no reason)'}`).join('; ')}`);
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
      expect(r.ourStrict, `${r.hagezi} has no names of ours`).toBeGreaterThan(0);
    }
    for (const v of HAGEZI_VENDORS.flatMap((h) => h.ours)) expect(catalog.byId(v), v).toBeDefined();
  });

  it('gives a reason, tagged [own], for every one of our names that no hagezi list has', () => {
    const missing = ownNames.flatMap((o) => o.entries.filter((e) => ownReason(e) === null).map((e) => `${o.id}: ${e.name} (line ${e.line})`));
    expect(missing, missing.join('\n')).toEqual([]);
    for (const o of ownNames) for (const e of o.entries) expect(ownReason(e)!.length, `${o.id}: ${e.name}`).toBeGreaterThan(10);
  });

  it('tags no name [own] in its own comment when hagezi lists it after all', () => {
    const stale = ourLists.flatMap((l) =>
      l.entries.filter((e) => e.comment?.includes('[own]') && underAny(anyHagezi, e.name)).map((e) => `${l.id}: ${e.name} (line ${e.line})`),
    );
    expect(stale, stale.join('\n')).toEqual([]);
  });

  it('says only what the corpus confirms when a comment names a public list', () => {
    const lists = new Map<string, Blocks[]>(Object.entries(NAMED_LISTS).map(([k, files]) => [k, files.map((f) => readBlocks(join(CORPUS, f.file), f.format))]));
    const hagezis = { exact: new Set<string>(), subtree: anyHagezi, regex: [] } satisfies Blocks;
    lists.set('hagezi', [hagezis]);
    const byAny = (list: string, name: string): boolean => (lists.get(list) ?? []).some((b) => blocks(b, name));
    const wrong: string[] = [];
    let checked = 0;
    for (const l of [...ourLists, ...allowLists]) {
      for (const e of l.entries) {
        for (const c of [e.comment, e.groupComment]) {
          for (const claim of claimsIn(c ?? '', e.name)) {
            checked++;
            const where = `${l.id}: ${e.name} says`;
            if (claim.says === 'blocks' && !byAny(claim.list, claim.name)) wrong.push(`${where} ${claim.list} lists ${claim.name}; the corpus copy does not`);
            if (claim.says === 'does-not' && byAny(claim.list, claim.name)) wrong.push(`${where} ${claim.list} does not list it; the corpus copy does`);
            if (claim.says === 'none') {
              const by = [...lists.keys()].filter((k) => byAny(k, claim.name));
              if (by.length > 0) wrong.push(`${where} no list has it; ${by.join(', ')} do`);
            }
          }
        }
      }
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
    expect(checked, 'the claim patterns found nothing to check: have the comments changed their wording?').toBeGreaterThan(40);
  });

  it('reads the claims a comment makes, so the check above can fail', () => {
    expect(claimsIn('EasyPrivacy and StevenBlack list both; hagezi does not.', 'a.example.org')).toEqual([
      { list: 'EasyPrivacy', name: 'a.example.org', says: 'blocks' },
      { list: 'StevenBlack', name: 'a.example.org', says: 'blocks' },
      { list: 'hagezi', name: 'a.example.org', says: 'does-not' },
    ]);
    expect(claimsIn("[own] Perflyst's LG regex blocks it", 'x.example.org')).toEqual([{ list: 'Perflyst', name: 'x.example.org', says: 'blocks' }]);
    expect(claimsIn('AdGuard lists kochava.com, hagezi does not', 'control.kochava.com')[0]).toEqual({ list: 'AdGuard', name: 'kochava.com', says: 'blocks' });
    expect(claimsIn('hagezi Light and AdGuard list it', 'b.example.org').map((c) => c.list)).toEqual(['hagezi Light', 'AdGuard']);
    expect(claimsIn('[own] the same; no list in the corpus has it', 'c.example.org')).toEqual([{ list: '*', name: 'c.example.org', says: 'none' }]);
  });

  it('gives registry lists that name a device vendor only names the catalog gives that vendor', () => {
    // The compiler stores a registry list's vendor on every rule it reads. If a list that names a
    // device vendor also blocks website or CDN names (hagezi's Samsung list blocks samsung.com's
    // Adobe hosts), those rules would label a laptop on samsung.com a Galaxy phone. Such lists name
    // no vendor, and the catalog attributes each of their names.
    const problems: string[] = [];
    for (const e of registry.filter((r) => r.vendor !== null && r.vendor !== undefined)) {
      const v = catalog.byId(e.vendor!)!;
      if (deviceEvidence(v.kind) === 0) continue;
      const native = /^hagezi-native-(.+)$/.exec(e.id);
      const l = defaultLists.find((d) => d.id === e.id) ?? (native ? { id: e.id, blocks: readBlocks(join(CORPUS, 'hagezi', 'adblock', `native.${native[1]}.txt`), 'adblock') } : null);
      expect(l, `${e.id}: no corpus copy to check`).not.toBeNull();
      const foreign = [...l!.blocks.exact, ...l!.blocks.subtree].filter((n) => catalog.vendorOf(n)?.id !== v.id);
      if (foreign.length > 0) problems.push(`${e.id} names ${v.id} but blocks ${foreign.length} names the catalog does not give it, e.g. ${foreign.slice(0, 3).join(', ')}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
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
