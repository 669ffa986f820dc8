// The shared corpus of real public lists (../shared/corpus next to the repo), read through its
// MANIFEST.tsv. Benchmarks use it when present and say so visibly when it is not.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../../common/paths.js';

export const CORPUS_DIR = resolve(PACKAGE_ROOT, '../shared/corpus');

export interface CorpusFile {
  file: string;
  path: string;
  format: string;
  lines: number;
  bytes: number;
}

export function hasCorpus(dir = CORPUS_DIR): boolean {
  return existsSync(join(dir, 'MANIFEST.tsv'));
}

export function readManifest(dir = CORPUS_DIR): CorpusFile[] {
  const text = readFileSync(join(dir, 'MANIFEST.tsv'), 'utf8');
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const cols = header.split('\t');
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`${join(dir, 'MANIFEST.tsv')}: no ${name} column`);
    return i;
  };
  const [fi, fo, li, by] = [at('file'), at('format'), at('lines'), at('bytes')];
  return rows.map((r) => {
    const c = r.split('\t');
    return { file: c[fi], path: join(dir, c[fi]), format: c[fo], lines: Number(c[li]), bytes: Number(c[by]) };
  });
}

/** The blocklists among the corpus files (everything but the top-sites ranking). */
export function corpusBlocklists(dir = CORPUS_DIR): CorpusFile[] {
  return readManifest(dir).filter((f) => f.format !== 'top-sites' && existsSync(f.path));
}

export function topSitesFile(dir = CORPUS_DIR): string | null {
  const f = readManifest(dir).find((m) => m.format === 'top-sites');
  return f && existsSync(f.path) ? f.path : null;
}

/** hagezi's native (vendor telemetry) lists in adblock form: the home mix's telemetry names. */
export function hageziNativeAdblock(dir = CORPUS_DIR): CorpusFile[] {
  return readManifest(dir).filter((f) => f.file.startsWith('hagezi/adblock/native.') && f.format === 'adblock' && existsSync(f.path));
}

export function hageziNativeDomains(dir = CORPUS_DIR): CorpusFile[] {
  return readManifest(dir).filter((f) => f.file.startsWith('hagezi/domains/native.') && f.format === 'domains' && existsSync(f.path));
}
