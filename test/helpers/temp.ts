import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';

export function tempDir(prefix = 'hushdns-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** ../shared/corpus beside the repository, when present. */
export const CORPUS_DIR = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../../shared/corpus');
export const HAS_CORPUS = existsSync(CORPUS_DIR);
