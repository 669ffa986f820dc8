// `hushdns compile` end to end: real list files and a real HTTP server on 127.0.0.1 in, a real
// SQLite table out, read back with the server's own reader.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicSuffix, nameAndParents } from '../common/names.js';
import { BLOCKLIST_FILE, BLOCKLIST_PREV_FILE } from '../common/schema.js';
import { loadConfig } from '../common/config.js';
import { compile, CompileError } from '../compiler/compile.js';
import { compileSettings } from '../compiler/settings.js';
import { DIFF_MAX_RULES } from '../compiler/diff.js';
import { formatReport } from '../compiler/report.js';
import { fromArgument, type SourceSpec } from '../compiler/sources.js';
import { MatcherError } from '../compiler/transforms/matchers.js';
import { Blocklist } from '../server/blocklist.js';
import { compileLists } from './helpers/server.js';
import { CORPUS_DIR, HAS_CORPUS, tempDir } from './helpers/temp.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');

function ruleNames(dataDir: string, where = '1'): Set<string> {
  const db = new Database(join(dataDir, BLOCKLIST_FILE), { readonly: true });
  try {
    const keys = db.prepare(`SELECT key FROM rule WHERE ${where}`).pluck().all() as string[];
    return new Set(keys.map((k) => k.split('\u0001').reverse().join('.')));
  } finally {
    db.close();
  }
}

function source(path: string, format?: string): SourceSpec {
  return fromArgument(format ? `${path}#${format}` : path, 'cli', []);
}

async function compileSources(dataDir: string, sources: SourceSpec[], extra: Partial<Parameters<typeof compile>[0]> = {}) {
  return compile({
    dataDir,
    sources,
    level: 'standard',
    exclude: [],
    allow: [],
    deny: [],
    fetch: { timeoutMs: 1000, maxBytes: 1 << 20, concurrency: 2, retries: 0, retryBaseMs: 10 },
    compilerVersion: 'test',
    ...extra,
  });
}

describe('compile: decisions and provenance', () => {
  it('keeps every list that named a rule, and the vendor from the catalog', async () => {
    const dir = tempDir();
    await compileLists(dir, {
      'a.txt#hosts': '0.0.0.0 tracking.miui.com\n0.0.0.0 ads.example.org\n',
      'b.txt#adblock': '||tracking.miui.com^\n',
    });
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      const d = bl.decide('tracking.miui.com');
      expect(d.action).toBe('block');
      expect(d.sources.sort()).toEqual(['file-a.txt', 'file-b.txt']);
      expect(d.vendor).toBe('xiaomi');
      expect(d.scope).toBe('subtree'); // the adblock claim covers the subtree; hosts only the name
      expect(bl.decide('x.tracking.miui.com').action).toBe('block');
      expect(bl.decide('x.ads.example.org').action).toBe('none');
    } finally {
      bl.close();
    }
  });

  it('attributes a name to its vendor in the catalog before the vendor its list names', async () => {
    const dir = tempDir();
    const path = join(dir, 'xiaomi-list.txt');
    writeFileSync(path, '||tracking.miui.com^\n||app-measurement.com^\n||unknown-cdn.example.net^\n');
    await compileSources(dir, [{ ...source(path, 'adblock'), vendor: 'xiaomi' }]);
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      expect(bl.decide('tracking.miui.com').vendor).toBe('xiaomi');
      expect(bl.decide('app-measurement.com').vendor, "the catalog's SDK, not the list's vendor").toBe('google-sdk');
      expect(bl.decide('unknown-cdn.example.net').vendor, 'the list names whose it is when the catalog does not know').toBe('xiaomi');
    } finally {
      bl.close();
    }
  });

  it('lets allow lists beat block lists and the user’s own entries beat both', async () => {
    const dir = tempDir();
    await compileLists(
      dir,
      {
        'block.txt#adblock': '||example.com^\n||pinned.example.net^\n',
        'allow.txt#adblock': '@@||shop.example.com^\n@@||keep.example.net^\n',
      },
      { allow: ['pinned.example.net'], deny: ['=keep.example.net', 'own.example.org'] },
    );
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      expect(bl.decide('ads.example.com').action).toBe('block');
      expect(bl.decide('cdn.shop.example.com').action).toBe('allow');
      expect(bl.decide('pinned.example.net').action).toBe('allow');
      expect(bl.decide('keep.example.net').action).toBe('block'); // user deny (exact) beats a list allow
      expect(bl.decide('sub.keep.example.net').action).toBe('allow'); // …but only the exact name
      expect(bl.decide('x.own.example.org').action).toBe('block');
    } finally {
      bl.close();
    }
  });

  it('reads config allow/deny entries as the API does: `*.name` and a padded name are subtree entries', async () => {
    const dir = tempDir();
    const list = join(dir, 'block.txt');
    writeFileSync(list, '||example.com^\n||ads.example.org^\n');
    const file = join(dir, 'hushdns.yaml');
    writeFileSync(file, `data-dir: ${JSON.stringify(dir)}\nbundled: false\ndefault-sources: false\nallow:\n  - "*.example.com"\n  - " ads.example.org"\n`);
    const settings = compileSettings(loadConfig({ file, env: {} }).config, file);
    expect(settings.allow).toEqual(['*.example.com', ' ads.example.org']);
    await compileSources(dir, [source(list, 'adblock')], { allow: settings.allow });
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      for (const name of ['example.com', 'cdn.example.com', 'ads.example.org', 'x.ads.example.org']) {
        const d = bl.decide(name);
        expect(d.action, name).toBe('allow');
        expect(d.scope, name).toBe('subtree');
      }
    } finally {
      bl.close();
    }
  });

  it('never writes a public suffix, an address, a single label or a housekeeping name, and counts why', async () => {
    const dir = tempDir();
    const report = await compileLists(dir, {
      'bad.txt#domains': ['com', 'co.uk', 'github.io', '192.168.1.1', 'localhost', 'intranet', 'ok.example.org', 'x'.repeat(64) + '.example.org', 'bad_char!.example.org'].join('\n'),
    });
    expect([...ruleNames(dir)]).toEqual(['ok.example.org']);
    const r = report.sources[0];
    expect(r.invalidByReason).toMatchObject({ 'public-suffix': 2, 'ip-address': 1, localhost: 1, 'single-label': 2, 'label-too-long': 1, 'bad-character': 1 });
  });

  it('drops the DoH canary and Private Relay names from lists and warns about the list', async () => {
    const dir = tempDir();
    const report = await compileLists(dir, { 'canary.txt#adblock': '||use-application-dns.net^\n||mask.icloud.com^\n||ads.example.org^\n' });
    expect([...ruleNames(dir)]).toEqual(['ads.example.org']);
    expect(report.sources[0].canary.sort()).toEqual(['mask.icloud.com', 'use-application-dns.net']);
    expect(report.warnings.join('\n')).toMatch(/file-canary\.txt lists .*use-application-dns\.net/);
  });

  it('applies global and per-source exclusions (exact, wildcard, regex) and counts them', async () => {
    const dir = tempDir();
    const list = join(dir, 'x.txt');
    writeFileSync(list, ['a.example.org', 'b.cdn.example.org', 'cdn.example.org', 'keep.example.org', 'ads123.example.net'].join('\n'));
    const spec = { ...source(list, 'domains'), exclude: ['/^ads\\d+\\./'] };
    const report = await compileSources(dir, [spec], { exclude: ['a.example.org', '*.cdn.example.org'] });
    expect([...ruleNames(dir)]).toEqual(['keep.example.org']);
    expect(report.sources[0].excluded).toBe(4);
  });

  it('compresses names covered by a parent subtree rule of the same action and reports it', async () => {
    const dir = tempDir();
    const report = await compileLists(dir, { 'l.txt#adblock': '||example.org^\n||ads.example.org^\n||x.y.example.org^\n@@||ok.example.org^\n' });
    expect([...ruleNames(dir)].sort()).toEqual(['example.org', 'ok.example.org']);
    expect(report.totals.compressed).toBe(2);
  });

  it('stores Pi-hole regexes and mid-label globs as patterns the server applies', async () => {
    const dir = tempDir();
    await compileLists(dir, { 're.txt#regex': '(^|\\.)ibs\\.lgappstv\\.com$\n', 'w.txt#wildcard': '*.ads*.msads.example\n' });
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      expect(bl.decide('ibs.lgappstv.com').action).toBe('block');
      expect(bl.decide('a.ibs.lgappstv.com').action).toBe('block');
      expect(bl.decide('x.ads12.msads.example').action).toBe('block');
      expect(bl.decide('lgappstv.com').action).toBe('none');
    } finally {
      bl.close();
    }
  });

  it('reports per-source changes against the previous build', async () => {
    const dir = tempDir();
    await compileLists(dir, { 'l.txt#domains': 'a.example.org\nb.example.org\n' });
    const second = await compileLists(dir, { 'l.txt#domains': 'a.example.org\nc.example.org\nd.example.org\n' });
    expect(second.sources[0].entriesDelta).toBe(1);
    expect(second.totals.added).toBe(2);
    expect(second.totals.removed).toBe(1);
    expect(existsSync(join(dir, BLOCKLIST_PREV_FILE))).toBe(true);
  });

  it('counts the names each list added and removed, not only its net change', async () => {
    const dir = tempDir();
    await compileLists(dir, { 'a.txt#domains': 'one.example.org\ntwo.example.org\n', 'b.txt#domains': 'shared.example.net\n' });
    // a swaps one name for another (net 0), b gains a name that a already had.
    const second = await compileLists(dir, {
      'a.txt#domains': 'one.example.org\nthree.example.org\n',
      'b.txt#domains': 'shared.example.net\none.example.org\n',
    });
    const [a, b] = second.sources;
    expect({ added: a.added, removed: a.removed, net: a.entriesDelta }).toEqual({ added: 1, removed: 1, net: 0 });
    expect({ added: b.added, removed: b.removed, net: b.entriesDelta }).toEqual({ added: 1, removed: 0, net: 1 });
    expect(second.totals).toMatchObject({ added: 1, removed: 1, diffSkipped: null });
    expect(formatReport(second)).toMatch(/file-a\.txt\s+local\s+domains\s+2\s+\+1 -1/);
  });

  it('says so when the added/removed count is skipped for a big table, and shows the net change instead', async () => {
    const dir = tempDir();
    const names = (from: number, n: number) => Array.from({ length: n }, (_, i) => `h${from + i}.example.org`).join('\n');
    await compileLists(dir, { 'big.txt#domains': names(0, DIFF_MAX_RULES + 1) });
    const second = await compileLists(dir, { 'big.txt#domains': names(5, DIFF_MAX_RULES + 1) });
    expect(second.sources[0]).toMatchObject({ added: null, removed: null, entriesDelta: 0 });
    expect(second.totals.diffSkipped).toMatch(/not counted above 300,000 rules/);
    expect(formatReport(second)).toMatch(/names added\/removed not counted above 300,000 rules \(300,\d{3} here\); the change column shows the net change/);
  }, 60_000);
});

describe('compile: exclusions, inclusions and the canary guard, in that order', () => {
  it('never lets a pattern decide the DoH canary or Private Relay, and warns about the list', async () => {
    const dir = tempDir();
    const report = await compileLists(dir, {
      're.txt#regex': ['(^|\\.)use-application-dns\\.net$', 'icloud\\.com$', '^ads\\.'].join('\n'),
      'w.txt#wildcard': '*.mask*.icloud.com\n',
    });
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      for (const name of ['use-application-dns.net', 'x.use-application-dns.net', 'mask.icloud.com', 'mask-h2.icloud.com']) {
        expect(bl.decide(name).action, name).toBe('none');
        expect(bl.explain(name).patterns, name).toEqual([]);
      }
      // Everything else the patterns were listed for stays blocked.
      expect(bl.decide('www.icloud.com').action).toBe('block');
      expect(bl.decide('ads.example.org').action).toBe('block');
      expect(bl.decide('a.mask2.icloud.com').action).toBe('block');
    } finally {
      bl.close();
    }
    expect(report.sources[0].canaryPatterns).toEqual(['(^|\\.)use-application-dns\\.net$ (use-application-dns.net)', 'icloud\\.com$ (mask.icloud.com, mask-h2.icloud.com)']);
    expect(report.sources[1].canaryPatterns).toHaveLength(1);
    expect(report.warnings.join('\n')).toMatch(/file-re\.txt has patterns that also match names hushdns answers itself: .*use-application-dns/);
  });

  it('applies exclusions to patterns by their text, before the canary guard', async () => {
    const dir = tempDir();
    const list = join(dir, 'p.txt');
    writeFileSync(list, ['(^|\\.)ibs\\.lgappstv\\.com$', '(^|\\.)use-application-dns\\.net$', '^keep\\.'].join('\n'));
    const report = await compileSources(dir, [{ ...source(list, 'regex'), exclude: ['/lgappstv/'] }], { exclude: ['/use-application/'] });
    expect(report.sources[0]).toMatchObject({ patterns: 1, excluded: 2, canaryPatterns: [] });
    const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
    try {
      expect(bl.decide('ibs.lgappstv.com').action).toBe('none');
      expect(bl.decide('keep.example.org').action).toBe('block');
    } finally {
      bl.close();
    }
  });

  it('counts an excluded canary name as excluded, not as a canary the list tried to block', async () => {
    const dir = tempDir();
    const list = join(dir, 'c.txt');
    writeFileSync(list, '||use-application-dns.net^\n||mask.icloud.com^\n||ads.example.org^\n');
    const report = await compileSources(dir, [source(list, 'adblock')], { exclude: ['use-application-dns.net'] });
    expect(report.sources[0]).toMatchObject({ excluded: 1, canary: ['mask.icloud.com'], entries: 1 });
  });

  it('keeps only the entries that match the inclusions, global and per source (exact, wildcard, regex)', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.txt');
    const b = join(dir, 'b.txt');
    writeFileSync(a, ['tracking.miui.com', 'data.mistat.xiaomi.com', 'ads.example.org', 'exact.example.net', 'other.example.net'].join('\n'));
    writeFileSync(b, ['ads1.example.org', 'ads2.example.org', 'logs.example.org'].join('\n'));
    const report = await compileSources(
      dir,
      [source(a, 'domains'), { ...source(b, 'domains'), include: ['/^ads\\d\\./'] }],
      { include: ['*.miui.com', '*.xiaomi.com', 'exact.example.net', '/^ads/'] },
    );
    expect([...ruleNames(dir)].sort()).toEqual(['ads.example.org', 'ads1.example.org', 'ads2.example.org', 'data.mistat.xiaomi.com', 'exact.example.net', 'tracking.miui.com']);
    expect(report.sources.map((r) => [r.entries, r.notIncluded])).toEqual([
      [4, 1],
      [2, 1],
    ]);
    expect(formatReport(report)).toMatch(/file-a\.txt .* 1 \(1 not included\)/);
  });

  it('applies inclusions to patterns by their text too', async () => {
    const dir = tempDir();
    const list = join(dir, 'r.txt');
    writeFileSync(list, ['^ads\\.', 'lgappstv'].join('\n'));
    const report = await compileSources(dir, [{ ...source(list, 'regex'), include: ['/lgappstv/'] }]);
    expect(report.sources[0]).toMatchObject({ patterns: 1, notIncluded: 1 });
  });

  it('reports every bad exclusion and inclusion pattern together, before fetching anything', async () => {
    const dir = tempDir();
    const list = join(dir, 'l.txt');
    writeFileSync(list, 'a.example.org\n');
    const err = await compileSources(dir, [{ ...source(list, 'domains'), include: ['/(/'] }], { exclude: ['/[/'], include: ['bad name!'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatcherError);
    expect((err as MatcherError).problems).toEqual([
      expect.stringMatching(/^exclude\[0\] = "\/\[\/": not a valid regular expression/),
      expect.stringMatching(/^include\[0\] = "bad name!": not a valid inclusion \(bad-character\)/),
      expect.stringMatching(/^source file-l\.txt: include\[0\] = "\/\(\/": not a valid regular expression/),
    ]);
  });
});

describe('compile: failures keep the last good table', () => {
  it('fails when a required source fails, leaving the previous table untouched', async () => {
    const dir = tempDir();
    await compileLists(dir, { 'l.txt#domains': 'a.example.org\n' });
    const before = readFileSync(join(dir, BLOCKLIST_FILE));
    const spec = { ...source(join(dir, 'l.txt'), 'domains'), required: true, url: 'http://127.0.0.1:9/never.txt', path: null };
    await expect(compileSources(dir, [spec])).rejects.toThrow(CompileError);
    expect(readFileSync(join(dir, BLOCKLIST_FILE)).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails when nothing usable came in', async () => {
    const dir = tempDir();
    const spec: SourceSpec = { ...source(join(ROOT, 'package.json')), url: 'http://127.0.0.1:9/list.txt', path: null, format: 'domains' };
    const err = await compileSources(dir, [spec]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).message).toMatch(/no source could be read/);
    expect(existsSync(join(dir, BLOCKLIST_FILE))).toBe(false);
  });

  it('says which list it could not recognise and how to declare its format', async () => {
    const dir = tempDir();
    const f = join(dir, 'mystery.txt');
    writeFileSync(f, 'lorem ipsum dolor\nsit amet\n');
    const ok = join(dir, 'ok.txt');
    writeFileSync(ok, 'ok.example.org\n');
    const report = await compileSources(dir, [source(f), source(ok, 'domains')]);
    expect(report.sources[0].status).toBe('failed');
    expect(report.sources[0].error).toMatch(/cannot tell the format.*#hosts/);
  });
});

describe('compile: fetching lists over HTTP', () => {
  let server: Server;
  let port = 0;
  const bodies = new Map<string, { status: number; body: string; etag?: string }>();
  const hits = new Map<string, number>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const b = bodies.get(path);
      if (!b) return res.writeHead(404).end();
      if (b.etag && req.headers['if-none-match'] === b.etag) return res.writeHead(304).end();
      res.writeHead(b.status, { 'content-type': 'text/plain', ...(b.etag ? { etag: b.etag } : {}) }).end(b.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => server.close());

  it('fetches fresh, then not-modified, then falls back to the stale copy when the list breaks', async () => {
    const dir = tempDir();
    bodies.set('/list.txt', { status: 200, body: '||ads.example.org^\n', etag: '"v1"' });
    const spec = () => fromArgument(`http://127.0.0.1:${port}/list.txt`, 'cli', []);
    const first = await compileSources(dir, [spec()]);
    expect(first.sources[0]).toMatchObject({ status: 'fresh', format: 'adblock', entries: 1 });
    const second = await compileSources(dir, [spec()]);
    expect(second.sources[0].status).toBe('not-modified');
    bodies.set('/list.txt', { status: 500, body: 'oops' });
    const third = await compileSources(dir, [spec()]);
    expect(third.sources[0].status).toBe('stale');
    expect(third.sources[0].error).toMatch(/500/);
    expect([...ruleNames(dir)]).toEqual(['ads.example.org']);
  });

  it('keeps the last good copy when a 200 answer is a plain-text error page, without replacing the cache', async () => {
    const dir = tempDir();
    const good = '0.0.0.0 ads.example.org\n0.0.0.0 track.example.net\n';
    bodies.set('/flaky.txt', { status: 200, body: good });
    const spec = () => fromArgument(`http://127.0.0.1:${port}/flaky.txt#hosts`, 'cli', []);
    const first = await compileSources(dir, [spec()]);
    expect(first.sources[0]).toMatchObject({ status: 'fresh', entries: 2 });
    const cached = join(dir, 'cache', `${spec().id}.txt`);
    expect(readFileSync(cached, 'utf8')).toBe(good);

    bodies.set('/flaky.txt', { status: 200, body: 'Service temporarily unavailable\nPlease try again later.\n' });
    const second = await compileSources(dir, [spec()]);
    expect(second.sources[0]).toMatchObject({ status: 'stale', entries: 2, invalid: 0 });
    expect(second.sources[0].error).toMatch(/flaky\.txt: the new copy holds no valid hosts entries \(2 not-an-ip\)/);
    expect(second.warnings.join('\n')).toMatch(/using the last good copy/);
    expect(readFileSync(cached, 'utf8')).toBe(good);
    expect([...ruleNames(dir)].sort()).toEqual(['ads.example.org', 'track.example.net']);
    expect(readdirSync(join(dir, 'cache')).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // A good copy is accepted again.
    bodies.set('/flaky.txt', { status: 200, body: '0.0.0.0 new.example.org\n' });
    const third = await compileSources(dir, [spec()]);
    expect(third.sources[0]).toMatchObject({ status: 'fresh', entries: 1 });
    expect([...ruleNames(dir)]).toEqual(['new.example.org']);
  });

  it('keeps the last good copy when a new copy collapses to a small fraction of it', async () => {
    const dir = tempDir();
    const hosts = (n: number) => Array.from({ length: n }, (_, i) => `0.0.0.0 h${i}.example.org`).join('\n');
    bodies.set('/shrinks.txt', { status: 200, body: hosts(200) });
    const spec = () => fromArgument(`http://127.0.0.1:${port}/shrinks.txt#hosts`, 'cli', []);
    expect((await compileSources(dir, [spec()])).sources[0].entries).toBe(200);
    bodies.set('/shrinks.txt', { status: 200, body: `${hosts(5)}\nService temporarily unavailable\n` });
    const collapsed = await compileSources(dir, [spec()]);
    expect(collapsed.sources[0]).toMatchObject({ status: 'stale', entries: 200 });
    expect(collapsed.sources[0].error).toMatch(/holds 5 valid entries where the last build read 200/);
    // A smaller list that is still a list (half) is taken.
    bodies.set('/shrinks.txt', { status: 200, body: hosts(100) });
    expect((await compileSources(dir, [spec()])).sources[0]).toMatchObject({ status: 'fresh', entries: 100 });
  });

  it('fails a source whose first download is an error page, with the reason, and builds from the others', async () => {
    const dir = tempDir();
    bodies.set('/down.txt', { status: 200, body: 'Service temporarily unavailable\n' });
    bodies.set('/up.txt', { status: 200, body: 'up.example.org\n' });
    const report = await compileSources(dir, [fromArgument(`http://127.0.0.1:${port}/down.txt`, 'cli', []), fromArgument(`http://127.0.0.1:${port}/up.txt#domains`, 'cli', [])]);
    expect(report.sources[0]).toMatchObject({ status: 'failed', entries: 0 });
    expect(report.sources[0].error).toMatch(/down\.txt: cannot tell the format/);
    expect(existsSync(join(dir, 'cache', `${report.sources[0].id}.txt`))).toBe(false);
    expect([...ruleNames(dir)]).toEqual(['up.example.org']);
  });

  it('rejects an HTML page (captive portal) for that source and keeps the others', async () => {
    const dir = tempDir();
    bodies.set('/portal.txt', { status: 200, body: '<!DOCTYPE html><html><body>Please log in</body></html>' });
    bodies.set('/good.txt', { status: 200, body: 'good.example.org\n' });
    const report = await compileSources(dir, [fromArgument(`http://127.0.0.1:${port}/portal.txt#domains`, 'cli', []), fromArgument(`http://127.0.0.1:${port}/good.txt#domains`, 'cli', [])]);
    expect(report.sources[0].status).toBe('failed');
    expect(report.sources[0].error).toMatch(/html/i);
    expect([...ruleNames(dir)]).toEqual(['good.example.org']);
  });
});

describe('compile: the command line', () => {
  it('prints a JSON report and exits non-zero, with the old table intact, when a required list is missing', async () => {
    const dir = tempDir();
    const list = join(dir, 'l.txt');
    writeFileSync(list, 'a.example.org\n');
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HUSHDNS_CONFIG: '' } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => res({ code, stdout, stderr }));
      });
    const ok = await run(['compile', '--data-dir', dir, '--no-default-sources', '--no-bundled', '--source', `${list}#domains`, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout) as { ok: boolean; totals: { rules: number } };
    expect(report.ok).toBe(true);
    expect(report.totals.rules).toBe(1);
    const missing = await run(['compile', '--data-dir', dir, '--no-default-sources', '--source', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.txt.*no such file/);
  });

  it('leaves the previous table intact and readable when the compile is killed mid-write', async () => {
    const dir = tempDir();
    await compileLists(dir, { 'small.txt#domains': 'before.example.org\n' });
    const big = join(dir, 'big.txt');
    const lines: string[] = [];
    for (let i = 0; i < 400_000; i++) lines.push(`0.0.0.0 host${i}.tracker${i % 997}.example.com`);
    writeFileSync(big, lines.join('\n'));
    const child = spawn(process.execPath, [CLI, 'compile', '--data-dir', dir, '--no-default-sources', '--no-bundled', '--source', `${big}#hosts`], { stdio: 'ignore' });
    // Kill it once the temp table exists and has grown: the writer is mid-way.
    const deadline = Date.now() + 20_000;
    let killedMidWrite = false;
    while (Date.now() < deadline && child.exitCode === null) {
      const tmp = readdirSync(dir).find((f) => f.startsWith(BLOCKLIST_FILE) && f.endsWith('.tmp'));
      if (tmp && statSync(join(dir, tmp)).size > 1_000_000) {
        child.kill('SIGKILL');
        killedMidWrite = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => child.once('close', r));
    expect(killedMidWrite, 'the compile finished before it could be killed mid-write').toBe(true);
    const db = new Database(join(dir, BLOCKLIST_FILE), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.prepare('SELECT key FROM rule').pluck().all()).toEqual(['org\u0001example\u0001before']);
    } finally {
      db.close();
    }
  });
});

describe('compile: a big compile through the command line', () => {
  it('writes the same table as an in-process compile (the CLI stages big inputs on a thread of its own)', async () => {
    const dir = tempDir();
    const hosts: string[] = [];
    const adblock: string[] = [];
    for (let i = 0; i < 150_000; i++) hosts.push(`0.0.0.0 h${i}.t${i % 5003}.example.com`);
    for (let i = 0; i < 150_000; i += 3) hosts.push(`0.0.0.0 h${i}.t${i % 5003}.example.com`); // repeats
    for (let i = 0; i < 5003; i += 7) adblock.push(`||t${i}.example.com^`, `@@||ok.t${i}.example.com^`);
    writeFileSync(join(dir, 'big.hosts'), hosts.join('\n'));
    writeFileSync(join(dir, 'sub.adblock'), adblock.join('\n'));
    const sources = [`${join(dir, 'big.hosts')}#hosts`, `${join(dir, 'sub.adblock')}#adblock`];
    const cliDir = join(dir, 'cli');
    const r = spawnSync(process.execPath, [CLI, 'compile', '--data-dir', cliDir, '--no-default-sources', '--no-bundled', '--json', ...sources.flatMap((s) => ['--source', s])], {
      encoding: 'utf8',
      env: { ...process.env, HUSHDNS_CONFIG: '' },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const cli = JSON.parse(r.stdout) as { totals: { entries: number; rules: number; compressed: number } };
    const libDir = join(dir, 'lib');
    const lib = await compileSources(libDir, sources.map((s) => fromArgument(s, 'cli', [])));
    expect(cli.totals).toMatchObject({ entries: lib.totals.entries, rules: lib.totals.rules, compressed: lib.totals.compressed });
    expect(lib.totals.compressed).toBeGreaterThan(10_000);
    const table = (d: string) => {
      const db = new Database(join(d, BLOCKLIST_FILE), { readonly: true });
      try {
        return { rules: db.prepare('SELECT * FROM rule ORDER BY key').raw().all(), bloom: db.prepare('SELECT bits, hashes FROM bloom').raw().get() };
      } finally {
        db.close();
      }
    };
    expect(table(cliDir)).toEqual(table(libDir));
  }, 90_000);
});

const HAGEZI_LISTS = ['native.xiaomi', 'native.huawei', 'native.oppo-realme', 'native.vivo', 'native.samsung', 'native.lgwebos', 'native.tiktok', 'native.amazon', 'native.winoffice', 'native.roku', 'native.apple', 'light'];

describe.skipIf(!HAS_CORPUS)('compile: the public corpus', () => {
  if (!HAS_CORPUS) console.warn(`corpus tests skipped: ${CORPUS_DIR} is absent`);

  for (const list of HAGEZI_LISTS) {
    it(`hagezi ${list}: adblock, wildcard, dnsmasq and rpz compile to the same table; hosts and domains to the exact set it blocks`, async () => {
      const subtreeSets: Set<string>[] = [];
      let subtreeDir = '';
      for (const format of ['adblock', 'wildcard', 'dnsmasq', 'rpz']) {
        const dir = tempDir();
        await compileSources(dir, [source(join(CORPUS_DIR, 'hagezi', format, `${list}.txt`), format)]);
        subtreeSets.push(ruleNames(dir, '(block & 3) = 2'));
        expect(ruleNames(dir, '(block & 3) <> 2').size, `${format}: every rule is a subtree rule`).toBe(0);
        subtreeDir = dir;
      }
      for (const s of subtreeSets.slice(1)) expect(s).toEqual(subtreeSets[0]);
      const exactSets: Set<string>[] = [];
      for (const format of ['domains', 'hosts']) {
        const dir = tempDir();
        await compileSources(dir, [source(join(CORPUS_DIR, 'hagezi', format, `${list}.txt`), format)]);
        exactSets.push(ruleNames(dir));
      }
      expect(exactSets[1]).toEqual(exactSets[0]);
      const bl = Blocklist.open(join(subtreeDir, BLOCKLIST_FILE));
      try {
        // A subtree rule on a public suffix (hagezi light lists a few hosting suffixes such as
        // live-website.com) is refused by design, so names below it stay exact-only.
        const underSuffix = (n: string) => nameAndParents(n).slice(1).some((p) => p.includes('.') && isPublicSuffix(p));
        const unblocked = [...exactSets[0]].filter((n) => bl.decide(n).action !== 'block');
        expect(unblocked.filter((n) => !underSuffix(n))).toEqual([]);
        if (unblocked.length > 0) console.log(`hagezi ${list}: ${unblocked.length} exact names sit below a refused public-suffix rule: ${unblocked.slice(0, 3).join(', ')}…`);
      } finally {
        bl.close();
      }
      expect(subtreeSets[0].size).toBeGreaterThan(0);
      if (list === 'native.xiaomi') expect([subtreeSets[0].size, exactSets[0].size]).toEqual([354, 470]);
    }, 120_000);
  }

  it('compiles every corpus list together without a crash and reports invalid lines per source', async () => {
    const manifest = readFileSync(join(CORPUS_DIR, 'MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1);
    const sources: SourceSpec[] = [];
    for (const row of manifest) {
      const [file, , , , format] = row.split('\t');
      if (format === 'top-sites') continue;
      sources.push({ ...source(join(CORPUS_DIR, file), format), id: file.replace(/[^a-zA-Z0-9._-]/g, '_') });
    }
    const dir = tempDir();
    const report = await compileSources(dir, sources);
    expect(report.sources).toHaveLength(sources.length);
    for (const s of report.sources) expect(s.status, s.id).toBe('local');
    const rows = report.sources.map((s) => `${s.id.padEnd(60)} ${String(s.entries).padStart(8)} entries ${String(s.invalid).padStart(7)} invalid ${String(s.unsupported).padStart(7)} unsupported`);
    console.log(`corpus compile: ${report.totals.rules} rules from ${report.totals.entries} entries in ${report.ms} ms\n${rows.join('\n')}`);
    expect(report.totals.rules).toBeGreaterThan(200_000);
    const easyprivacy = report.sources.find((s) => s.id.includes('easyprivacy'))!;
    expect(easyprivacy.unsupported).toBeGreaterThan(1000); // browser-only rules are skipped, never widened
  }, 240_000);
});
