// Where the package's own files live, whether we run from TypeScript sources (tests) or from
// dist/ (the CLI and the Docker image): walk up to the package.json that names hushdns.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string };
      if (parsed.name === 'hushdns') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the hushdns package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();
export const LISTS_DIR = join(PACKAGE_ROOT, 'lists');
export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
