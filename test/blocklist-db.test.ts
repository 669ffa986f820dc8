// The compiled blocklist contract end to end: the compiler's writer, the server's reader, the
// decision rules both follow, export, and the atomic swap. Real SQLite files in temp folders.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BloomFilter } from '../common/bloom.js';
import {
  Rank,
  decide,
  decodeClaim,
  encodeClaim,
  mergeClaims,
  nameOfKey,
  rankOf,
  treeKey,
  type Action,
  type ClaimScope,
  type RuleRow,
} from '../common/decision.js';
import { isSameOrSubdomain, treeSortKey } from '../common/names.js';
import { BLOCKLIST_FILE, BLOCKLIST_PREV_FILE, SCHEMA_VERSION, STRONG, STRONG_SELF, Scope } from '../common/schema.js';
import { exportTable, type ExportFormat } from '../compiler/export.js';
import { compileLists } from './helpers/server.js';
import { diffTables } from '../compiler/diff.js';
import { BlocklistWriter, readPreviousSources, type WriteStats } from '../compiler/write-db.js';
import { Blocklist, BlocklistError, BlocklistHandle, type BlocklistInfo } from '../server/blocklist.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'hushdns-blocklist-db-'));
let dirCount = 0;
const freshDir = (): string => {
  const d = join(scratch, `t${++dirCount}`);
  mkdirSync(d, { recursive: true });
  return d;
};
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Claim {
  name: string;
  action: Action;
  scope: ClaimScope;
  strong?: boolean;
  /** Index into SOURCE_NAMES (default 0). */
  source?: number;
  vendor?: string | null;
}
interface Pattern {
  kind: 'regex' | 'glob';
  pattern: string;
  action: Action;
  source?: number;
}

const SOURCE_NAMES = ['list-a', 'list-b', 'list-c', 'user'];

function writeTable(dir: string, claims: Claim[], opts: { patterns?: Pattern[]; compilerVersion?: string; expectedNames?: number } = {}): WriteStats {
  const w = BlocklistWriter.create(dir, { expectedNames: opts.expectedNames });
  const ids = SOURCE_NAMES.map((name, i) =>
    w.addSource({ name, url: `https://lists.example.net/${name}.txt`, format: i === 1 ? 'hosts' : 'adblock', vendor: i === 2 ? 'acme' : null, status: 'fresh', entries: 0 }),
  );
  for (const c of claims) w.addRule(c.name, c.action, c.scope, c.strong === true, ids[c.source ?? 0], c.vendor ?? null);
  for (const p of opts.patterns ?? []) w.addPattern(p.kind, p.pattern, p.action, ids[p.source ?? 0]);
  return w.finish({ compilerVersion: opts.compilerVersion ?? 'test' });
}

/** The decision straight from the definition: the highest-ranked claim that covers the name. */
function reference(name: string, claims: Claim[]): Action | 'none' {
  let best = 0;
  let action: Action | 'none' = 'none';
  for (const c of claims) {
    const covers = c.name === name || (c.scope === 'subtree' && isSameOrSubdomain(name, c.name));
    if (!covers) continue;
    const r = rankOf(c.action, c.strong === true);
    if (r > best) {
      best = r;
      action = c.action;
    }
  }
  return action;
}

function rowsOf(path: string): Map<string, { block: number; allow: number; vendor: string | null; block_sources: string | null; allow_sources: string | null }> {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT key, block, allow, vendor, block_sources, allow_sources FROM rule').all() as {
      key: string;
      block: number;
      allow: number;
      vendor: string | null;
      block_sources: string | null;
      allow_sources: string | null;
    }[];
    return new Map(rows.map(({ key, ...rest }) => [nameOfKey(key), rest]));
  } finally {
    db.close();
  }
}

describe('decision rules (common/decision.ts)', () => {
  it('encodes a claim as scope bits plus a strong bit and decodes it back', () => {
    expect(encodeClaim('exact', false)).toBe(Scope.Exact);
    expect(encodeClaim('subtree', true)).toBe(Scope.Subtree | STRONG);
    expect(decodeClaim(Scope.Subtree | STRONG)).toEqual({ scope: 'subtree', strong: true, strongBelow: true });
    expect(decodeClaim(Scope.Subtree | STRONG_SELF)).toEqual({ scope: 'subtree', strong: true, strongBelow: false });
    expect(decodeClaim(0)).toBeNull();
  });

  it('ranks strong allow over strong block over allow over block', () => {
    expect([rankOf('allow', true), rankOf('block', true), rankOf('allow', false), rankOf('block', false)]).toEqual([4, 3, 2, 1]);
  });

  it('merges exact and subtree claims to subtree, and keeps a strong exact claim strong on the name only', () => {
    const exact = encodeClaim('exact', false);
    const subtree = encodeClaim('subtree', false);
    expect(mergeClaims(exact, subtree)).toBe(Scope.Subtree);
    expect(mergeClaims(encodeClaim('exact', true), subtree)).toBe(Scope.Subtree | STRONG_SELF);
    expect(mergeClaims(encodeClaim('subtree', true), exact)).toBe(Scope.Subtree | STRONG);
    expect(mergeClaims(0, exact)).toBe(exact);
  });

  it('decides from the name and each parent, subtree claims only from parents', () => {
    const rows = new Map<string, RuleRow>([
      ['example.com', { name: 'example.com', block: encodeClaim('subtree', false), allow: 0, vendor: null, blockSources: [1], allowSources: [] }],
      ['cdn.example.com', { name: 'cdn.example.com', block: 0, allow: encodeClaim('exact', false), vendor: null, blockSources: [], allowSources: [2] }],
      ['host.example.net', { name: 'host.example.net', block: encodeClaim('exact', false), allow: 0, vendor: null, blockSources: [1], allowSources: [] }],
    ]);
    const asked: string[] = [];
    const lookup = (c: string) => {
      asked.push(c);
      return rows.get(c);
    };
    const d = decide('ads.example.com', lookup);
    expect(asked).toEqual(['ads.example.com', 'example.com', 'com']);
    expect(d.action).toBe('block');
    expect(d.matched).toMatchObject({ name: 'example.com', scope: 'subtree', strong: false });
    expect(decide('cdn.example.com', lookup)).toMatchObject({ action: 'allow', matched: { name: 'cdn.example.com', scope: 'exact' } });
    expect(decide('a.cdn.example.com', lookup).action).toBe('block');
    expect(decide('host.example.net', lookup).action).toBe('block');
    expect(decide('sub.host.example.net', lookup).action).toBe('none');
  });

  it('reports a strong exact claim merged with a weak subtree claim as exact on the name and subtree below', () => {
    const v = mergeClaims(encodeClaim('exact', true), encodeClaim('subtree', false));
    const row: RuleRow = { name: 'example.org', block: v, allow: encodeClaim('subtree', false), vendor: null, blockSources: [4], allowSources: [1] };
    const lookup = (c: string) => (c === 'example.org' ? row : undefined);
    expect(decide('example.org', lookup)).toMatchObject({ action: 'block', rank: Rank.StrongBlock, matched: { scope: 'exact', strong: true } });
    // Below the name only the weak subtree block applies, and the plain allow beats it.
    expect(decide('www.example.org', lookup)).toMatchObject({ action: 'allow', rank: Rank.Allow });
  });

  it('builds the same tree keys as treeSortKey and turns them back into names', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { minLength: 1, maxLength: 5 }), (labels) => {
        const name = labels.join('.');
        expect(treeKey(name)).toBe(treeSortKey(name));
        expect(nameOfKey(treeKey(name))).toBe(name);
      }),
      { numRuns: 300 },
    );
    // Anything a caller may pass: empty labels, Latin-1 and wider characters, overlong input.
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '.', '-', 'é', '€', '\u0001', 'Z'), maxLength: 40 }), (name) => {
        expect(treeKey(name)).toBe(treeSortKey(name));
      }),
      { numRuns: 500 },
    );
    for (const name of ['', '.', 'a.', '.a', 'a..b', 'x'.repeat(2000), `${'y'.repeat(600)}.${'z'.repeat(600)}`]) expect(treeKey(name)).toBe(treeSortKey(name));
  });
});

describe('writing the table (compiler/write-db.ts)', () => {
  it('merges every claim on a name into one row with sorted, distinct sources per action', () => {
    const dir = freshDir();
    const stats = writeTable(dir, [
      { name: 'tracker.example.com', action: 'block', scope: 'exact', source: 1 },
      { name: 'tracker.example.com', action: 'block', scope: 'subtree', source: 0 },
      { name: 'tracker.example.com', action: 'block', scope: 'subtree', source: 1 },
      { name: 'tracker.example.com', action: 'allow', scope: 'exact', source: 2 },
      { name: 'tracker.example.com', action: 'block', scope: 'exact', source: 1, vendor: 'acme' },
      { name: 'tracker.example.com', action: 'block', scope: 'exact', source: 2, vendor: 'globex' },
    ]);
    expect(stats).toMatchObject({ entries: 6, rules: 1, duplicates: 5, compressed: 0 });
    const row = rowsOf(stats.path).get('tracker.example.com');
    expect(row).toEqual({ block: Scope.Subtree, allow: Scope.Exact, vendor: 'acme', block_sources: '1,2,3', allow_sources: '3' });
  });

  it('drops a name whose claims an ancestor subtree claim of the same action already decides', () => {
    const dir = freshDir();
    const stats = writeTable(dir, [
      { name: 'example.com', action: 'block', scope: 'subtree' },
      { name: 'ads.example.com', action: 'block', scope: 'exact', source: 1 },
      { name: 'deep.ads.example.com', action: 'block', scope: 'subtree', source: 1 },
      // Kept: a strong claim outranks the weak subtree above it.
      { name: 'user.example.com', action: 'block', scope: 'exact', strong: true, source: 3 },
      // Kept: the allow changes the decision.
      { name: 'cdn.example.com', action: 'allow', scope: 'subtree', source: 2 },
      // Kept: a block below an allow matters.
      { name: 'ads.cdn.example.com', action: 'block', scope: 'exact', strong: true, source: 3 },
      // Dropped: the allow above already allows it at the same rank.
      { name: 'img.cdn.example.com', action: 'allow', scope: 'exact', source: 2 },
    ]);
    expect(stats).toMatchObject({ entries: 7, rules: 4, compressed: 3 });
    expect([...rowsOf(stats.path).keys()].sort()).toEqual(['ads.cdn.example.com', 'cdn.example.com', 'example.com', 'user.example.com']);
  });

  it('leaves out only the dominated claim of a name that also has a claim of the other action', () => {
    const dir = freshDir();
    const stats = writeTable(dir, [
      { name: 'example.com', action: 'block', scope: 'subtree' },
      { name: 'mixed.example.com', action: 'block', scope: 'exact', source: 1 },
      { name: 'mixed.example.com', action: 'allow', scope: 'exact', source: 2 },
    ]);
    expect(rowsOf(stats.path).get('mixed.example.com')).toEqual({ block: 0, allow: Scope.Exact, vendor: null, block_sources: null, allow_sources: '3' });
  });

  /** Writes random claims over `universe`, then compares the table's answers with the definition. */
  function checkAgainstDefinition(universe: string[], maxClaims: number, numRuns: number, seed: number): number {
    const probes = [...universe, ...universe.map((n) => `z.${n}`), ...universe.map((n) => `y.z.${n}`), 'org', 'net', 'example.com'];
    const claimArb = fc.record({
      name: fc.constantFrom(...universe),
      action: fc.constantFrom<Action>('block', 'allow'),
      scope: fc.constantFrom<ClaimScope>('exact', 'subtree'),
      strong: fc.boolean(),
      source: fc.integer({ min: 0, max: 3 }),
      vendor: fc.constantFrom<string | null>(null, null, 'acme', 'globex'),
    });
    let compressed = 0;
    fc.assert(
      fc.property(fc.array(claimArb, { minLength: 1, maxLength: maxClaims }), (claims) => {
        const dir = join(scratch, `prop-${++dirCount}`);
        const stats = writeTable(dir, claims);
        compressed += stats.compressed;
        const bl = Blocklist.open(stats.path, { cacheSize: 8 });
        try {
          for (const name of probes) {
            const want = reference(name, claims);
            const got = bl.decide(name);
            if (got.action !== want) throw new Error(`${name}: table says ${got.action} (${got.reason}), the claims say ${want}; claims ${JSON.stringify(claims)}`);
            // Asked twice: the cached answer is the same.
            expect(bl.decide(name).action).toBe(want);
          }
        } finally {
          bl.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns, seed },
    );
    return compressed;
  }

  it('never changes a decision by merging and compressing (property over random claim trees)', () => {
    const universe: string[] = [];
    for (const base of ['example.org', 'example.net']) {
      const grow = (name: string, depth: number): void => {
        universe.push(name);
        if (depth < 3) for (const l of ['a', 'b']) grow(`${l}.${name}`, depth + 1);
      };
      grow(base, 0);
    }
    expect(checkAgainstDefinition(universe, 30, 80, 20260125)).toBeGreaterThan(0);
  });

  it('never changes a decision when many claims land on the same few names (property)', () => {
    expect(checkAgainstDefinition(['example.org', 'a.example.org', 'b.a.example.org', 'example.net'], 12, 200, 4242)).toBeGreaterThan(0);
  });

  // The filter is fed while entries are staged and folded to size at the end; sized too small
  // (10 names expected) it is built again from the rows, sized far too big it folds down.
  it.each([undefined, 10, 50_000_000])('writes a Bloom filter with no false negatives over every row (expected names: %s)', (expectedNames) => {
    const dir = freshDir();
    const claims: Claim[] = [];
    for (let i = 0; i < 5000; i++) claims.push({ name: `h${i}.d${i % 97}.example.com`, action: i % 10 === 0 ? 'allow' : 'block', scope: i % 2 ? 'subtree' : 'exact' });
    const stats = writeTable(dir, claims, { expectedNames });
    const db = new Database(stats.path, { readonly: true });
    try {
      const { bits, hashes } = db.prepare('SELECT bits, hashes FROM bloom').get() as { bits: Buffer; hashes: number };
      const bloom = new BloomFilter(new Uint8Array(bits), hashes);
      const keys = db.prepare('SELECT key FROM rule').pluck().all() as string[];
      expect(keys.length).toBe(stats.rules);
      for (const k of keys) expect(bloom.mayContain(k)).toBe(true);
      let falsePositives = 0;
      for (let i = 0; i < 5000; i++) if (bloom.mayContain(treeKey(`other${i}.example.net`))) falsePositives++;
      expect(falsePositives).toBeLessThan(250);
      // 10 to 20 bits a name, never the staging size.
      expect(bits.length * 8).toBeGreaterThanOrEqual(10 * stats.rules);
      expect(bits.length * 8).toBeLessThanOrEqual(2 * 10 * (stats.rules + stats.compressed));
    } finally {
      db.close();
    }
  });

  it('writes meta, the schema version and a file with no free pages', () => {
    const dir = freshDir();
    const stats = writeTable(dir, [{ name: 'ads.example.com', action: 'block', scope: 'subtree' }], { compilerVersion: '9.9.9' });
    const db = new Database(stats.path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma('freelist_count', { simple: true })).toBe(0);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const meta = Object.fromEntries(db.prepare('SELECT key, value FROM meta').raw().all() as [string, string][]);
      expect(meta).toMatchObject({ schema_version: String(SCHEMA_VERSION), compiler_version: '9.9.9', rules: '1', entries: '1', sources: '4' });
      expect(Number(meta.built_at)).toBeGreaterThan(Date.now() - 60_000);
      expect(stats.bytes).toBe(statSync(stats.path).size);
    } finally {
      db.close();
    }
    expect(readdirSync(dir).sort()).toEqual([BLOCKLIST_FILE]);
  });

  it('keeps the replaced table as blocklist.prev.sqlite and reports what changed', () => {
    const dir = freshDir();
    writeTable(dir, [
      { name: 'old.example.com', action: 'block', scope: 'subtree', source: 0 },
      { name: 'kept.example.com', action: 'block', scope: 'subtree', source: 1 },
    ]);
    const w = BlocklistWriter.create(dir);
    const a = w.addSource({ name: 'list-a', status: 'fresh', entries: 5 });
    w.addRule('new.example.com', 'block', 'subtree', false, a, null);
    w.addRule('kept.example.com', 'block', 'subtree', false, a, null);
    w.finish({ compilerVersion: 'new' });
    expect(readPreviousSources(join(dir, BLOCKLIST_PREV_FILE)).get('list-b')).toEqual({ entries: 0, valid: 0 });
    const [live, prev] = [join(dir, BLOCKLIST_FILE), join(dir, BLOCKLIST_PREV_FILE)];
    const diff = diffTables(live, prev);
    expect(diff.counted && { added: diff.added, removed: diff.removed, bySource: Object.fromEntries(diff.bySource ?? []) }).toEqual({
      added: 1,
      removed: 1,
      // kept.example.com moved from list-b to list-a; old.example.com (list-a) went away.
      bySource: { 'list-a': { added: 2, removed: 1 }, 'list-b': { added: 0, removed: 1 } },
    });
    // Bigger tables get the totals alone, then nothing; the reason says which.
    expect(diffTables(live, prev, { total: 2, bySource: 1 })).toEqual({ counted: true, added: 1, removed: 1, bySource: null, why: 'not counted per list above 1 rules (2 here)' });
    expect(diffTables(live, prev, { total: 1, bySource: 1 })).toEqual({ counted: false, why: 'not counted above 1 rules (2 here)' });
    expect([...rowsOf(join(dir, BLOCKLIST_PREV_FILE)).keys()].sort()).toEqual(['kept.example.com', 'old.example.com']);
    expect([...rowsOf(join(dir, BLOCKLIST_FILE)).keys()].sort()).toEqual(['kept.example.com', 'new.example.com']);
  });

  it('leaves the live table untouched and removes its temp files on abort', () => {
    const dir = freshDir();
    writeTable(dir, [{ name: 'old.example.com', action: 'block', scope: 'subtree' }]);
    const w = BlocklistWriter.create(dir);
    const a = w.addSource({ name: 'list-a', status: 'fresh' });
    w.addRule('new.example.com', 'block', 'subtree', false, a, null);
    expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(true);
    w.abort();
    w.abort();
    expect(readdirSync(dir).sort()).toEqual([BLOCKLIST_FILE]);
    expect([...rowsOf(join(dir, BLOCKLIST_FILE)).keys()]).toEqual(['old.example.com']);
    expect(() => w.addRule('x.example.com', 'block', 'exact', false, a, null)).toThrow(/aborted/);
  });

  it('removes temp files of dead writers when the next writer starts', () => {
    const dir = freshDir();
    // pid 2^22+1 is above Linux's pid_max default and never alive.
    const stale = ['blocklist.sqlite.4194305.tmp', 'blocklist.sqlite.4194305.stage.tmp', 'blocklist.prev.sqlite.4194305.tmp'];
    for (const f of stale) writeFileSync(join(dir, f), 'left by a killed compile');
    writeFileSync(join(dir, 'notes.txt'), 'not ours');
    const w = BlocklistWriter.create(dir);
    for (const f of stale) expect(existsSync(join(dir, f))).toBe(false);
    expect(existsSync(join(dir, 'notes.txt'))).toBe(true);
    w.abort();
  });

  it('writes a usable table with no rules at all', () => {
    const stats = writeTable(freshDir(), []);
    expect(stats).toMatchObject({ entries: 0, rules: 0, duplicates: 0, compressed: 0 });
    const bl = Blocklist.open(stats.path);
    expect(bl.decide('www.example.com')).toMatchObject({ action: 'none', sources: [] });
    expect(bl.info().sources).toHaveLength(SOURCE_NAMES.length);
    bl.close();
  });

  it('rejects entries for a source it was not given', () => {
    const w = BlocklistWriter.create(freshDir());
    expect(() => w.addRule('a.example.com', 'block', 'exact', false, 7, null)).toThrow(/unknown source id 7/);
    w.abort();
  });
});

describe('reading the table (server/blocklist.ts)', () => {
  const claims: Claim[] = [
    { name: 'tracking.example.com', action: 'block', scope: 'subtree', source: 0 },
    { name: 'tracking.example.com', action: 'block', scope: 'subtree', source: 2, vendor: 'acme' },
    { name: 'ads.example.net', action: 'block', scope: 'exact', source: 1 },
    { name: 'ok.tracking.example.com', action: 'allow', scope: 'subtree', source: 3 },
    { name: 'forced.ok.tracking.example.com', action: 'block', scope: 'exact', strong: true, source: 3 },
  ];
  const patterns: Pattern[] = [
    { kind: 'regex', pattern: '^telemetry[0-9]+\\.', action: 'block', source: 0 },
    { kind: 'glob', pattern: 'ads*.example.org', action: 'block', source: 1 },
    { kind: 'regex', pattern: '^good\\.', action: 'allow', source: 2 },
    { kind: 'regex', pattern: '([unclosed', action: 'block', source: 0 },
    { kind: 'glob', pattern: '*.vortex*.data.example.net', action: 'block', source: 2 },
  ];
  let path = '';
  let bl: Blocklist;
  beforeAll(() => {
    path = writeTable(freshDir(), claims, { patterns }).path;
    bl = Blocklist.open(path);
  });
  afterAll(() => bl.close());

  it('names the rule and every list behind a block', () => {
    expect(bl.decide('pixel.tracking.example.com')).toEqual({
      action: 'block',
      ruleName: 'tracking.example.com',
      scope: 'subtree',
      strong: false,
      vendor: 'acme',
      sources: ['list-a', 'list-c'],
      reason: '||tracking.example.com^ (list-a, list-c)',
    });
    expect(bl.decide('ads.example.net')).toMatchObject({ action: 'block', scope: 'exact', sources: ['list-b'], reason: 'ads.example.net (list-b)' });
    expect(bl.decide('x.ads.example.net').action).toBe('none');
  });

  it('lets an allow beat a block and a strong block beat an allow', () => {
    expect(bl.decide('cdn.ok.tracking.example.com')).toMatchObject({ action: 'allow', ruleName: 'ok.tracking.example.com', reason: '@@||ok.tracking.example.com^ (user)' });
    expect(bl.decide('forced.ok.tracking.example.com')).toMatchObject({ action: 'block', strong: true, reason: 'forced.ok.tracking.example.com$important (user)' });
  });

  it('matches regex and glob patterns when no rule decides, and allow patterns beat plain blocks', () => {
    expect(bl.decide('telemetry42.example.io')).toMatchObject({ action: 'block', sources: ['list-a'], reason: '/^telemetry[0-9]+\\./ (list-a)' });
    expect(bl.decide('ads-eu.cdn.example.org')).toMatchObject({ action: 'block', reason: 'ads*.example.org (list-b)' });
    expect(bl.decide('good.tracking.example.com')).toMatchObject({ action: 'allow', reason: '@@/^good\\./ (list-c)' });
    expect(bl.decide('www.example.org').action).toBe('none');
    // A leading `*.` covers the rest of the glob and every name below it.
    expect(bl.decide('vortex-win.data.example.net')).toMatchObject({ action: 'block', reason: '*.vortex*.data.example.net (list-c)', vendor: 'acme' });
    expect(bl.decide('a.vortex1.data.example.net').action).toBe('block');
    expect(bl.decide('xvortex.data.example.net').action).toBe('none');
    expect(bl.info().invalidPatterns).toEqual([expect.objectContaining({ pattern: '([unclosed' })]);
  });

  it('explains every row for a name and its parents, covering or not', () => {
    const e = bl.explain('forced.ok.tracking.example.com');
    expect(e.decision.action).toBe('block');
    expect(e.rows.map((r) => r.name)).toEqual(['forced.ok.tracking.example.com', 'ok.tracking.example.com', 'tracking.example.com']);
    expect(e.rows[2].claims[0]).toMatchObject({ action: 'block', scope: 'subtree', covers: true, rank: Rank.Block });
    expect(e.rows[2].claims[0].sources.map((s) => s.name)).toEqual(['list-a', 'list-c']);
    expect(e.rows[2].claims[0].sources[0]).toMatchObject({ url: 'https://lists.example.net/list-a.txt', status: 'fresh' });
    const exact = bl.explain('sub.ads.example.net');
    expect(exact.rows[0]).toMatchObject({ name: 'ads.example.net', self: false, claims: [{ action: 'block', scope: 'exact', covers: false, rank: 0 }] });
  });

  it('describes the table it serves', () => {
    const info = bl.info();
    expect(info).toMatchObject({ path, rules: 4, patterns: 5, entries: 5, duplicates: 1, schemaVersion: SCHEMA_VERSION });
    expect(info.sources.map((s) => s.name)).toEqual(SOURCE_NAMES);
    expect(info.bytes).toBe(statSync(path).size);
  });

  it('keeps its decision cache bounded', () => {
    const small = Blocklist.open(path, { cacheSize: 4 });
    try {
      for (let i = 0; i < 20; i++) small.decide(`n${i}.tracking.example.com`);
      // Two generations of two: the newest names stay, older ones go.
      expect(small.info().cache.size).toBeLessThanOrEqual(4);
      expect(small.info().cache.size).toBeGreaterThanOrEqual(2);
      expect(small.decide('n0.tracking.example.com').action).toBe('block');
    } finally {
      small.close();
    }
  });

  it('refuses a missing, unreadable, foreign, damaged or garbage file with the matching code', () => {
    const dir = freshDir();
    const codeOf = (p: string): string => {
      try {
        Blocklist.open(p).close();
        return 'opened';
      } catch (err) {
        expect(err).toBeInstanceOf(BlocklistError);
        expect((err as BlocklistError).path).toBe(p);
        return (err as BlocklistError).code;
      }
    };
    expect(codeOf(join(dir, 'nothing.sqlite'))).toBe('missing');
    mkdirSync(join(dir, 'folder.sqlite'));
    expect(codeOf(join(dir, 'folder.sqlite'))).toBe('unreadable');
    const foreign = join(dir, 'foreign.sqlite');
    const db = new Database(foreign);
    db.exec('CREATE TABLE t (x)');
    db.pragma('user_version = 1');
    db.close();
    expect(codeOf(foreign)).toBe('wrong-schema');
    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, Buffer.alloc(8192, 'this is not a database '));
    expect(codeOf(garbage)).toBe('corrupt');
    const cut = join(dir, 'cut.sqlite');
    copyFileSync(path, cut);
    truncateSync(cut, Math.floor(statSync(path).size / 2));
    expect(codeOf(cut)).toBe('corrupt');
  });
});

describe('swapping tables under a running server (BlocklistHandle)', () => {
  it('answers from the new table right after a reload, with nothing stale from the old cache', () => {
    const dir = freshDir();
    const live = join(dir, BLOCKLIST_FILE);
    writeTable(dir, [{ name: 'shop.example.com', action: 'block', scope: 'subtree' }]);
    const swaps: BlocklistInfo[] = [];
    const handle = new BlocklistHandle(live, { onSwap: (i) => swaps.push(i), closeDelayMs: 50 });
    try {
      const first = handle.current()!;
      expect(first.decide('www.shop.example.com').action).toBe('block');
      writeTable(dir, [{ name: 'shop.example.com', action: 'allow', scope: 'subtree' }]);
      expect(handle.reload()).toBe(true);
      expect(swaps).toHaveLength(1);
      expect(handle.current()).not.toBe(first);
      expect(handle.current()!.decide('www.shop.example.com').action).toBe('allow');
      // The old table keeps answering a caller that still holds it, until it is retired.
      expect(first.decide('www.shop.example.com').action).toBe('block');
    } finally {
      handle.close();
    }
  });

  it('keeps serving the old table when the new file is garbage, missing or from another version', () => {
    const dir = freshDir();
    const live = join(dir, BLOCKLIST_FILE);
    writeTable(dir, [{ name: 'shop.example.com', action: 'block', scope: 'subtree' }]);
    const errors: BlocklistError[] = [];
    const handle = new BlocklistHandle(live, { onError: (e) => errors.push(e) });
    try {
      const serving = handle.current()!;
      const bad = join(dir, 'incoming');
      writeFileSync(bad, Buffer.alloc(4096, 'garbage '));
      renameSync(bad, live);
      expect(handle.reload()).toBe(false);
      const foreign = new Database(bad);
      foreign.exec('CREATE TABLE meta (key TEXT, value TEXT)');
      foreign.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      foreign.close();
      renameSync(bad, live);
      expect(handle.reload()).toBe(false);
      rmSync(live);
      expect(handle.reload()).toBe(false);
      expect(errors.map((e) => e.code)).toEqual(['corrupt', 'wrong-schema', 'missing']);
      expect(handle.current()).toBe(serving);
      expect(serving.decide('a.shop.example.com').action).toBe('block');
    } finally {
      handle.close();
    }
  });

  it('notices a newly compiled table by itself and retires the old one after a delay', async () => {
    const dir = freshDir();
    const live = join(dir, BLOCKLIST_FILE);
    writeTable(dir, [{ name: 'shop.example.com', action: 'block', scope: 'subtree' }]);
    const handle = new BlocklistHandle(live, { watch: true, pollMs: 100, closeDelayMs: 200 });
    try {
      const old = handle.current()!;
      writeTable(dir, [{ name: 'news.example.com', action: 'block', scope: 'subtree' }]);
      const deadline = Date.now() + 5000;
      while (handle.current() === old && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(handle.current()).not.toBe(old);
      expect(handle.current()!.decide('a.news.example.com').action).toBe('block');
      expect(handle.current()!.decide('a.shop.example.com').action).toBe('none');
      while (!old.isClosed && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 25));
      expect(old.isClosed).toBe(true);
    } finally {
      handle.close();
    }
  });

  it('starts without a table and picks one up when it appears', async () => {
    const dir = freshDir();
    const live = join(dir, BLOCKLIST_FILE);
    const errors: BlocklistError[] = [];
    const handle = new BlocklistHandle(live, { watch: true, pollMs: 100, onError: (e) => errors.push(e) });
    try {
      expect(handle.current()).toBeNull();
      writeTable(dir, [{ name: 'shop.example.com', action: 'block', scope: 'subtree' }]);
      const deadline = Date.now() + 5000;
      while (handle.current() === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(handle.current()?.decide('shop.example.com').action).toBe('block');
      expect(errors).toEqual([]);
    } finally {
      handle.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Export: each format is read back by a small reader that applies that format's own matching
// rules, and the blocked names are compared with the table's decisions.

type Verdict = (name: string) => boolean;

function suffixes(name: string): string[] {
  const out = [name];
  for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) out.push(name.slice(i + 1));
  return out;
}

function readExport(format: ExportFormat, text: string): Verdict {
  const lines = text.split('\n').filter((l) => l !== '' && !/^[#!;]/.test(l));
  switch (format) {
    case 'hosts':
    case 'domains': {
      const set = new Set(lines.map((l) => (format === 'hosts' ? l.split(/\s+/)[1] : l)));
      return (n) => set.has(n);
    }
    case 'adblock': {
      // AdGuard semantics: important allow > important block > allow > block.
      const rules = lines.map((l) => {
        const m = /^(@@)?(\|\|?)([a-z0-9._-]+)\^(\$important)?$/.exec(l);
        if (!m) throw new Error(`unexpected adblock line ${l}`);
        return { allow: m[1] === '@@', subtree: m[2] === '||', name: m[3], important: m[4] !== undefined };
      });
      return (n) => {
        let best = 0;
        let blocked = false;
        for (const r of rules) {
          if (!(r.name === n || (r.subtree && isSameOrSubdomain(n, r.name)))) continue;
          const rank = rankOf(r.allow ? 'allow' : 'block', r.important);
          if (rank > best) {
            best = rank;
            blocked = !r.allow;
          }
        }
        return blocked;
      };
    }
    case 'dnsmasq': {
      const entries = new Map<string, boolean>();
      for (const l of lines) {
        const m = /^(address|server)=\/([a-z0-9._-]+)\/#$/.exec(l);
        if (!m) throw new Error(`unexpected dnsmasq line ${l}`);
        entries.set(m[2], m[1] === 'address');
      }
      return (n) => {
        for (const s of suffixes(n)) if (entries.has(s)) return entries.get(s)!;
        return false;
      };
    }
    case 'unbound': {
      const zones = new Map<string, string>();
      const data = new Set<string>();
      for (const l of lines) {
        if (l === 'server:') continue;
        const z = /^local-zone: "([a-z0-9._-]+)\." (\w+)$/.exec(l);
        const d = /^local-data: "([a-z0-9._-]+)\. (A 0\.0\.0\.0|AAAA ::)"$/.exec(l);
        if (z) zones.set(z[1], z[2]);
        else if (d) data.add(d[1]);
        else throw new Error(`unexpected unbound line ${l}`);
      }
      return (n) => {
        for (const s of suffixes(n)) {
          const type = zones.get(s);
          if (type === undefined) continue;
          if (type === 'always_nxdomain') return true;
          if (type === 'always_transparent') return false;
          if (type === 'transparent') return s === n && data.has(n);
          throw new Error(`unexpected zone type ${type}`);
        }
        return data.has(n);
      };
    }
    case 'rpz': {
      const records = new Map<string, boolean>();
      for (const l of lines) {
        if (l.startsWith('$TTL') || l.startsWith('@ ')) continue;
        const m = /^(\*\.)?([a-z0-9._-]+) CNAME (\.|rpz-passthru\.)$/.exec(l);
        if (!m) throw new Error(`unexpected rpz line ${l}`);
        records.set(`${m[1] ?? ''}${m[2]}`, m[3] === '.');
      }
      return (n) => {
        if (records.has(n)) return records.get(n)!;
        for (const s of suffixes(n).slice(1)) if (records.has(`*.${s}`)) return records.get(`*.${s}`)!;
        return false;
      };
    }
  }
}

async function exportText(path: string, format: ExportFormat): Promise<{ text: string; written: number; lossy: number }> {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const res = await exportTable(path, format, out);
  return { text: chunks.join(''), ...res };
}

const FORMATS: ExportFormat[] = ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz'];

describe('exporting the table (compiler/export.ts)', () => {
  const claims: Claim[] = [
    { name: 'tracker.example.com', action: 'block', scope: 'subtree' },
    { name: 'cdn.tracker.example.com', action: 'allow', scope: 'subtree', source: 2 },
    { name: 'ads.example.net', action: 'block', scope: 'exact', source: 1 },
    { name: 'user.example.org', action: 'block', scope: 'exact', strong: true, source: 3 },
    { name: 'user.example.org', action: 'block', scope: 'subtree', source: 0 },
    { name: 'open.user.example.org', action: 'allow', scope: 'exact', source: 2 },
  ];
  const probes = [
    'tracker.example.com',
    'a.tracker.example.com',
    'cdn.tracker.example.com',
    'x.cdn.tracker.example.com',
    'ads.example.net',
    'www.ads.example.net',
    'user.example.org',
    'www.user.example.org',
    'open.user.example.org',
    'x.open.user.example.org',
    'example.org',
  ];
  let path = '';
  beforeAll(() => {
    path = writeTable(freshDir(), claims, { patterns: [{ kind: 'regex', pattern: '^ads[0-9]+\\.', action: 'block' }] }).path;
  });

  it('writes adblock rules that mean exactly what the table means', async () => {
    const { text, written, lossy } = await exportText(path, 'adblock');
    expect(text.split('\n').filter((l) => l && !l.startsWith('!'))).toEqual([
      '||tracker.example.com^',
      '@@||cdn.tracker.example.com^',
      '|ads.example.net^',
      '||user.example.org^',
      '|user.example.org^$important',
      '@@|open.user.example.org^',
    ]);
    expect({ written, lossy }).toEqual({ written: 6, lossy: 1 });
    expect(text).toMatch(/^! hushdns blocklist export \(adblock\)/);
  });

  it('writes rpz records for names and subtrees, with passthru for allows', async () => {
    const { text, lossy } = await exportText(path, 'rpz');
    const records = text.split('\n').filter((l) => l.includes(' CNAME '));
    expect(records).toEqual([
      'tracker.example.com CNAME .',
      '*.tracker.example.com CNAME .',
      'cdn.tracker.example.com CNAME rpz-passthru.',
      '*.cdn.tracker.example.com CNAME rpz-passthru.',
      'ads.example.net CNAME .',
      'user.example.org CNAME .',
      '*.user.example.org CNAME .',
      'open.user.example.org CNAME rpz-passthru.',
    ]);
    expect(lossy).toBe(1);
    expect(text).toMatch(/\n\$TTL 300\n@ IN SOA localhost\. hostmaster\.localhost\. \d+ /);
  });

  it('writes hosts and domains for blocked names and counts blocked subtrees as lossy', async () => {
    const hosts = await exportText(path, 'hosts');
    expect(hosts.text.split('\n').filter((l) => l.startsWith('0.0.0.0'))).toEqual(['0.0.0.0 tracker.example.com', '0.0.0.0 ads.example.net', '0.0.0.0 user.example.org']);
    // tracker.example.com and user.example.org subtrees, plus the pattern.
    expect(hosts.lossy).toBe(3);
    const domains = await exportText(path, 'domains');
    expect(domains.text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['tracker.example.com', 'ads.example.net', 'user.example.org']);
  });

  it('writes dnsmasq and unbound entries only where the decision changes', async () => {
    const dnsmasq = await exportText(path, 'dnsmasq');
    expect(dnsmasq.text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'address=/tracker.example.com/#',
      'server=/cdn.tracker.example.com/#',
      'address=/user.example.org/#',
    ]);
    // ads.example.net (exact), open.user.example.org (exact allow under a blocked subtree), the pattern.
    expect(dnsmasq.lossy).toBe(3);
    const unbound = await exportText(path, 'unbound');
    expect(unbound.text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'server:',
      'local-zone: "tracker.example.com." always_nxdomain',
      'local-zone: "cdn.tracker.example.com." always_transparent',
      'local-data: "ads.example.net. A 0.0.0.0"',
      'local-data: "ads.example.net. AAAA ::"',
      'local-zone: "user.example.org." always_nxdomain',
    ]);
    // open.user.example.org (allowed while its subdomains stay blocked), the pattern.
    expect(unbound.lossy).toBe(2);
  });

  it('round-trips every format to the same blocked names where it claims no loss', async () => {
    const bl = Blocklist.open(path);
    try {
      for (const format of FORMATS) {
        const { text } = await exportText(path, format);
        const blocked = readExport(format, text);
        for (const name of probes) {
          const want = bl.decide(name).action === 'block';
          const lossless = !lossyHere(format, name);
          if (lossless) expect({ format, name, blocked: blocked(name) }).toEqual({ format, name, blocked: want });
        }
      }
    } finally {
      bl.close();
    }
  });

  it('round-trips random tables: adblock and rpz always, the others whenever they report no loss', async () => {
    const universe = ['example.org', 'a.example.org', 'b.example.org', 'a.a.example.org', 'b.a.example.org', 'a.b.example.org', 'example.net', 'a.example.net'];
    const probeNames = [...universe, ...universe.map((n) => `z.${n}`), 'org', 'net'];
    const claimArb = fc.record({
      name: fc.constantFrom(...universe),
      action: fc.constantFrom<Action>('block', 'allow'),
      scope: fc.constantFrom<ClaimScope>('exact', 'subtree'),
      strong: fc.boolean(),
      source: fc.integer({ min: 0, max: 3 }),
    });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(claimArb, { minLength: 1, maxLength: 14 }), async (cs) => {
        const dir = join(scratch, `exp-${++runs}`);
        const p = writeTable(dir, cs).path;
        try {
          for (const format of FORMATS) {
            const { text, lossy } = await exportText(p, format);
            const blocked = readExport(format, text);
            for (const name of probeNames) {
              const want = reference(name, cs) === 'block';
              const got = blocked(name);
              if (format === 'adblock' || format === 'rpz' || lossy === 0) {
                if (got !== want) throw new Error(`${format}: ${name} exported ${got ? 'blocked' : 'not blocked'}, table ${want}; claims ${JSON.stringify(cs)}\n${text}`);
              } else if ((format === 'hosts' || format === 'domains') && got && !want) {
                throw new Error(`${format} blocks ${name} which the table does not`);
              }
            }
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40, seed: 7 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Export → compile: every export format read back by hushdns's own parsers gives the table's
// decisions (the adblock `|name^` bug widened exact rules into subtrees on the way back).

/** A claim as an adblock line, the syntax the table's model comes from. */
function adblockLine(c: Claim): string {
  return `${c.action === 'allow' ? '@@' : ''}${c.scope === 'subtree' ? '||' : '|'}${c.name}^${c.strong ? '$important' : ''}`;
}

/** Compiles `claims` from adblock lists (one per source), exports `format` and compiles the export. */
async function roundTrip(claims: Claim[], format: ExportFormat): Promise<{ original: string; again: string; lossy: number; text: string }> {
  const lists: Record<string, string> = {};
  for (const c of claims) lists[`${SOURCE_NAMES[c.source ?? 0]}.txt#adblock`] = `${lists[`${SOURCE_NAMES[c.source ?? 0]}.txt#adblock`] ?? ''}${adblockLine(c)}\n`;
  const first = freshDir();
  await compileLists(first, lists);
  const original = join(first, BLOCKLIST_FILE);
  const exported = await exportText(original, format);
  const second = freshDir();
  await compileLists(second, { [`export.txt#${format}`]: exported.text });
  return { original, again: join(second, BLOCKLIST_FILE), lossy: exported.lossy, text: exported.text };
}

function decisionsDiffer(a: string, b: string, names: string[]): string[] {
  const ta = Blocklist.open(a);
  const tb = Blocklist.open(b);
  try {
    return names.filter((n) => (ta.decide(n).action === 'block') !== (tb.decide(n).action === 'block'));
  } finally {
    ta.close();
    tb.close();
  }
}

describe('export → compile with our own parsers', () => {
  const universe = ['example.org', 'a.example.org', 'b.example.org', 'a.a.example.org', 'b.a.example.org', 'a.b.example.org', 'example.net', 'a.example.net'];
  const probeNames = [...universe, ...universe.map((n) => `z.${n}`)];
  const claimArb = (strong: boolean) =>
    fc.record({
      name: fc.constantFrom(...universe),
      action: fc.constantFrom<Action>('block', 'allow'),
      scope: fc.constantFrom<ClaimScope>('exact', 'subtree'),
      strong: strong ? fc.boolean() : fc.constant(false),
      source: fc.integer({ min: 0, max: 2 }),
    });

  it('reads |name^ back as the exact name it was written for', async () => {
    const { again, text } = await roundTrip([{ name: 'ads.example.org', action: 'block', scope: 'exact' }], 'adblock');
    expect(text).toContain('|ads.example.org^');
    const t = Blocklist.open(again);
    try {
      expect(t.decide('ads.example.org').action).toBe('block');
      expect(t.decide('www.ads.example.org').action).toBe('none');
    } finally {
      t.close();
    }
  });

  it('gives the same decisions in every format that reports no loss (random tables, plain claims)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(claimArb(false), { minLength: 1, maxLength: 10 }), async (cs) => {
        for (const format of FORMATS) {
          const { original, again, lossy, text } = await roundTrip(cs, format);
          if (format !== 'adblock' && format !== 'rpz' && lossy > 0) continue;
          const differ = decisionsDiffer(original, again, probeNames);
          if (differ.length > 0) throw new Error(`${format}: ${differ.join(', ')} decided differently after export and compile; claims ${JSON.stringify(cs)}\n${text}`);
        }
      }),
      { numRuns: 25, seed: 11 },
    );
  }, 120_000);

  it('gives the same decisions through adblock with $important claims too (random tables)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(claimArb(true), { minLength: 1, maxLength: 10 }), async (cs) => {
        const { original, again, text } = await roundTrip(cs, 'adblock');
        const differ = decisionsDiffer(original, again, probeNames);
        if (differ.length > 0) throw new Error(`adblock: ${differ.join(', ')} decided differently; claims ${JSON.stringify(cs)}\n${text}`);
      }),
      { numRuns: 25, seed: 12 },
    );
  }, 120_000);
});

/** Names the fixture's lossy hosts/domains/dnsmasq output cannot get right. */
function lossyHere(format: ExportFormat, name: string): boolean {
  if (format === 'hosts' || format === 'domains') return ['a.tracker.example.com', 'www.user.example.org', 'x.open.user.example.org'].includes(name);
  if (format === 'dnsmasq') return ['ads.example.net', 'open.user.example.org'].includes(name);
  if (format === 'unbound') return name === 'open.user.example.org';
  return false;
}

// ---------------------------------------------------------------------------------------------
// Crash safety: a compile killed at any point leaves a whole table at the live path.

const DIST_WRITER = join(ROOT, 'dist', 'compiler', 'write-db.js');
const WRITER_SOURCES = ['compiler/write-db.ts', 'compiler/stage.ts', 'compiler/stage-worker.ts', 'common/decision.ts', 'common/schema.ts', 'common/bloom.ts'].map((f) => join(ROOT, f));

/** Builds dist/compiler/write-db.js (and only what it imports) when it is missing or stale. */
function ensureDistWriter(): boolean {
  const newest = Math.max(...WRITER_SOURCES.map((f) => statSync(f).mtimeMs));
  if (existsSync(DIST_WRITER) && statSync(DIST_WRITER).mtimeMs >= newest) return true;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(
      process.execPath,
      [tsc, '--outDir', 'dist', '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--lib', 'ES2023', '--types', 'node', '--skipLibCheck', '--esModuleInterop', '--strict', 'compiler/write-db.ts', 'compiler/stage-worker.ts'],
      { cwd: ROOT, stdio: 'pipe', timeout: 50_000 },
    );
  } catch (err) {
    console.warn(`could not build ${DIST_WRITER}: ${(err as Error).message}`);
  }
  return existsSync(DIST_WRITER);
}

const CHILD = `
import { writeSync } from 'node:fs';
const { BlocklistWriter } = await import(process.env.WRITER_URL);
const w = BlocklistWriter.create(process.env.DATA_DIR);
const src = w.addSource({ name: 'big-list', status: 'fresh' });
const n = Number(process.env.ENTRIES);
writeSync(1, 'adding\\n');
for (let i = 0; i < n; i++) w.addRule('h' + i + '.d' + (i % 1000) + '.example.com', 'block', i % 2 ? 'subtree' : 'exact', false, src, null);
w.finish({ compilerVersion: 'new', onPhase: (p) => writeSync(1, 'phase:' + p + '\\n') });
writeSync(1, 'finished\\n');
`;

/** Runs the child writer and SIGKILLs it once its output shows `trigger`. */
function killChildAt(dataDir: string, trigger: string, entries: number): Promise<{ pid: number; output: string; killed: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { ...process.env, WRITER_URL: pathToFileURL(DIST_WRITER).href, DATA_DIR: dataDir, ENTRIES: String(entries) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let killed = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (!killed && output.includes(trigger)) {
        killed = child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolvePromise({ pid: child.pid!, output, killed });
    });
  });
}

const distReady = ensureDistWriter();
if (!distReady) console.warn(`skipping the SIGKILL tests: ${DIST_WRITER} is missing and could not be built`);

describe.skipIf(!distReady)('a compile killed mid-write (child process, SIGKILL)', () => {
  it('always leaves a whole table at the live path, and the next writer clears its leftovers', async () => {
    const dir = freshDir();
    const live = join(dir, BLOCKLIST_FILE);
    writeTable(dir, [{ name: 'old.example.com', action: 'block', scope: 'subtree' }], { compilerVersion: 'old' });
    const versionOf = (): string => {
      const db = new Database(live, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        return db.prepare("SELECT value FROM meta WHERE key = 'compiler_version'").pluck().get() as string;
      } finally {
        db.close();
      }
    };
    const triggers = ['adding', 'phase:sources', 'phase:rules', 'phase:bloom', 'phase:sync', 'phase:swap'];
    for (const trigger of triggers) {
      const { pid, output, killed } = await killChildAt(dir, trigger, 200_000);
      expect(output).toContain(trigger);
      const version = versionOf();
      if (killed && (trigger === 'adding' || trigger === 'phase:sources' || trigger === 'phase:rules')) {
        // Seconds of work were left: the old table must still be there.
        expect(version).toBe('old');
        expect(readdirSync(dir).some((f) => f.includes(`.${pid}.`))).toBe(true);
      } else {
        expect(['old', 'new']).toContain(version);
      }
      const bl = Blocklist.open(live);
      expect(bl.decide(version === 'old' ? 'a.old.example.com' : 'h1.d1.example.com').action).toBe('block');
      bl.close();
    }
    const w = BlocklistWriter.create(dir);
    w.abort();
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 120_000);
});

describe.skipIf(!distReady)('staging on a thread of its own (the built writer)', () => {
  type DistWriter = typeof BlocklistWriter;
  let Writer: DistWriter;
  beforeAll(async () => {
    Writer = ((await import(pathToFileURL(DIST_WRITER).href)) as { BlocklistWriter: DistWriter }).BlocklistWriter;
  });

  /** Every row of every table, in a fixed order: two writers that did the same work wrote the same file. */
  function dump(path: string): string {
    const db = new Database(path, { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
      return JSON.stringify(
        tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY 1, 2`).raw().all().map((r) => r.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : t === 'meta' && r[0] === 'built_at' ? 0 : v)))]),
      );
    } finally {
      db.close();
    }
  }

  /** The same work for both writers: many entries, patterns, and a source read twice (its first copy rolled back). */
  function work(staging: 'inline' | 'thread'): { path: string; threaded: boolean; stats: WriteStats } {
    const dir = freshDir();
    const w = Writer.create(dir, { staging });
    const a = w.addSource({ name: 'list-a', status: 'fresh' });
    const b = w.addSource({ name: 'list-b', status: 'fresh', vendor: 'acme' });
    for (let i = 0; i < 30_000; i++) w.addRule(`h${i}.d${i % 700}.example.com`, i % 3 ? 'block' : 'allow', i % 5 ? 'exact' : 'subtree', i % 11 === 0, a, i % 7 ? null : 'acme');
    w.addPattern('regex', '^telemetry[0-9]+\\.', 'block', a);
    const mark = w.mark();
    for (let i = 0; i < 20_000; i++) w.addRule(`broken${i}.example.net`, 'block', 'subtree', false, b, 'acme');
    w.addPattern('glob', 'broken*.example.org', 'block', b);
    w.rollbackTo(mark);
    for (let i = 0; i < 20_000; i += 2) w.addRule(`d${i % 700}.example.com`, 'block', 'subtree', false, b, 'acme');
    w.release(mark);
    const threaded = w.threaded;
    const stats = w.finish({ compilerVersion: 'same' });
    return { path: stats.path, threaded, stats };
  }

  it('writes the same table as staging on the caller\'s thread', () => {
    const inline = work('inline');
    const thread = work('thread');
    expect(inline.threaded).toBe(false);
    expect(thread.threaded).toBe(true);
    expect(thread.stats.rules).toBeGreaterThan(10_000);
    expect({ ...thread.stats, ms: 0, path: '' }).toEqual({ ...inline.stats, ms: 0, path: '' });
    expect(dump(thread.path)).toBe(dump(inline.path));
    const bl = Blocklist.open(thread.path);
    expect(bl.decide('broken1.example.net').action).toBe('none');
    expect(bl.decide('x.d2.example.com').action).toBe('block');
    bl.close();
  });

  it('chooses the thread for big inputs only, when there is a second core', () => {
    const small = Writer.create(freshDir(), { expectedNames: 500 });
    const big = Writer.create(freshDir(), { expectedNames: 1_000_000 });
    expect([small.threaded, big.threaded]).toEqual([false, availableParallelism() > 1]);
    small.abort();
    big.abort();
  });

  it('aborts cleanly: the live table untouched, no temp files, the thread stopped', () => {
    const dir = freshDir();
    writeTable(dir, [{ name: 'old.example.com', action: 'block', scope: 'subtree' }]);
    const w = Writer.create(dir, { staging: 'thread' });
    const a = w.addSource({ name: 'list-a', status: 'fresh' });
    for (let i = 0; i < 20_000; i++) w.addRule(`n${i}.example.com`, 'block', 'exact', false, a, null);
    w.abort();
    w.abort();
    expect(readdirSync(dir).sort()).toEqual([BLOCKLIST_FILE]);
    expect([...rowsOf(join(dir, BLOCKLIST_FILE)).keys()]).toEqual(['old.example.com']);
  });

  it('reports a failure on the thread from finish(), keeping the live table', () => {
    const dir = freshDir();
    writeTable(dir, [{ name: 'old.example.com', action: 'block', scope: 'subtree' }]);
    const w = Writer.create(dir, { staging: 'thread' });
    const a = w.addSource({ name: 'list-a', status: 'fresh' });
    w.addRule('new.example.com', 'block', 'exact', false, a, null);
    // An object binds as named parameters, which the statement has none of: the thread fails, the caller hears of it at finish.
    w.addPattern('regex', { not: 'text' } as unknown as string, 'block', a);
    expect(() => w.finish({ compilerVersion: 'new' })).toThrow(/staging the entries failed: staging pattern \[object Object\]: Too few parameter values/);
    expect(readdirSync(dir).sort()).toEqual([BLOCKLIST_FILE]);
    expect([...rowsOf(join(dir, BLOCKLIST_FILE)).keys()]).toEqual(['old.example.com']);
  });
});
