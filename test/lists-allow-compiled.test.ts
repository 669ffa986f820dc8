// The promise of lists/allow: compile every bundled vendor list (both levels) with the registry's
// default public lists — served from the offline corpus over a real HTTP server on 127.0.0.1 — and
// no allow-listed name may come out blocked.
import { createReadStream, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTS_DIR } from '../common/paths.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import { compile } from '../compiler/compile.js';
import { allowListParser } from '../compiler/parse/curated.js';
import { bundledSources, readRegistry, type SourceSpec, fromRegistry } from '../compiler/sources.js';
import { Blocklist } from '../server/blocklist.js';
import { CORPUS_DIR, HAS_CORPUS, tempDir } from './helpers/temp.js';

function allowNames(): string[] {
  const names: string[] = [];
  for (const src of bundledSources().filter((s) => s.format === 'allowlist')) {
    const parse = allowListParser();
    for (const line of readFileSync(src.path!, 'utf8').split('\n')) {
      const r = parse(line);
      for (const p of Array.isArray(r) ? r : [r]) if (p.kind === 'rule') names.push(p.name);
    }
  }
  return names;
}

/** The corpus copy of a registry list, by repository and path (MANIFEST.tsv). */
function corpusFileFor(url: string): string | null {
  const rows = readFileSync(join(CORPUS_DIR, 'MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1).map((r) => r.split('\t'));
  const u = url.toLowerCase();
  const row = rows.find(([, repo, path]) => u.includes(repo.toLowerCase()) && u.endsWith(`/${path.toLowerCase()}`));
  return row ? join(CORPUS_DIR, row[0]) : null;
}

describe.skipIf(!HAS_CORPUS)('allow lists hold against the default public lists', () => {
  if (!HAS_CORPUS) console.warn(`allow-list compile test skipped: ${CORPUS_DIR} is absent`);
  let server: Server;
  let port = 0;
  const files = new Map<string, string>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const file = files.get(req.url ?? '');
      if (!file) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => server?.close());

  for (const level of ['standard', 'strict'] as const) {
    it(`blocks no allow-listed name at the ${level} level`, async () => {
      const defaults = readRegistry(LISTS_DIR).filter((e) => e.default);
      expect(defaults.length).toBeGreaterThan(0);
      const remote: SourceSpec[] = defaults.map((e) => {
        const file = corpusFileFor(e.url);
        expect(file, `${e.id}: no corpus copy of ${e.url}`).not.toBeNull();
        files.set(`/${e.id}`, file!);
        return { ...fromRegistry(e), url: `http://127.0.0.1:${port}/${e.id}` };
      });
      const dir = tempDir();
      const report = await compile({
        dataDir: dir,
        sources: [...bundledSources(), ...remote],
        level,
        exclude: [],
        allow: [],
        deny: [],
        fetch: { timeoutMs: 5000, maxBytes: 64 << 20, concurrency: 4 },
        compilerVersion: 'test',
      });
      for (const s of report.sources) expect(s.status, s.id).not.toBe('failed');
      expect(report.sources.filter((s) => s.origin === 'registry').every((s) => s.status === 'fresh')).toBe(true);
      const bl = Blocklist.open(join(dir, BLOCKLIST_FILE));
      try {
        const names = allowNames();
        expect(names.length).toBeGreaterThan(100);
        const blocked = names.filter((n) => bl.decide(n).action === 'block').map((n) => `${n} (${bl.decide(n).reason})`);
        expect(blocked).toEqual([]);
        // The lists really do try to block some of them: the allow lists are doing work.
        const contested = names.filter((n) => bl.explain(n).rows.some((r) => r.claims.some((c) => c.action === 'block' && c.covers)));
        console.log(`${level}: ${names.length} allow-listed names, ${contested.length} of them also claimed by a block list, 0 blocked; ${report.totals.rules} rules`);
        expect(contested.length).toBeGreaterThan(0);
      } finally {
        bl.close();
      }
    }, 120_000);
  }
});
